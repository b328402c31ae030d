"""Signing in and acting from the web UI in a real headless Chromium: each action's confirmation in a
dialog and its live result, refusals of forged and cross-site posts, a service without roles, the
keyboard alone, and the attention page updating live (docs/RULES.md rules 32–33)."""
import http.server
import os
import threading
import uuid

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import KEY, VIEWER_KEY
from test_ui import SCREENSHOTS, wait


def sign_in(browser, server, service="e2e", key=KEY):
    browser.delete_all_cookies()
    browser.get(server + "/login")
    browser.find_element(By.ID, "service").send_keys(service)
    browser.find_element(By.ID, "key").send_keys(key + Keys.ENTER)
    wait(browser, lambda: "/login" not in browser.current_url, message="away from the sign-in form")
    wait(browser, lambda: browser.execute_script(
        "return document.readyState === 'complete' && document.querySelector('.account .signed-in') !== null"),
        message="signed in")


def state_of(api, dataset, product):
    return next(p["state"] for p in api.plan(dataset)["data_products"] if p["id"] == product)


def dialog_text(browser):
    return browser.execute_script("const d = document.querySelector('dialog.action-dialog[open]'); return d ? d.innerText : ''")


def post_from_page(browser, path, fields):
    """Posts a form from the page's own script (as a forger with script access would); the answer's status."""
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', body: new URLSearchParams(arguments[1])}).then(r => done(r.status));",
        path, fields)


def failed_plan(api):
    dataset, ids = api.submit([("extract", True), ("load", True), ("other", True)], edges=[(0, 1)])
    api.update(dataset, ids[0], "failed")
    return dataset, ids


def test_signing_in_shows_the_service_and_signing_out_ends_it(browser, server):
    browser.delete_all_cookies()
    browser.get(server + "/")
    browser.find_element(By.CSS_SELECTOR, "a.sign-in").click()
    wait(browser, lambda: "/login" in browser.current_url)
    browser.find_element(By.ID, "service").send_keys("e2e")
    browser.find_element(By.ID, "key").send_keys("wrong" + Keys.ENTER)
    wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#login-error"), message="the error")
    assert browser.find_element(By.ID, "service").get_attribute("value") == "e2e"
    sign_in(browser, server)
    # The session cookie is not readable by scripts.
    assert "fletcher_session" not in browser.execute_script("return document.cookie")
    browser.find_element(By.CSS_SELECTOR, "form.sign-out button").click()
    wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "a.sign-in"), message="signed out")


def test_clearing_every_failed_product_confirms_in_a_dialog_and_updates_live(browser, server, api):
    dataset, ids = failed_plan(api)
    api.update(dataset, ids[2], "failed")
    sign_in(browser, server)
    browser.get(f"{server}/plan/{dataset}")
    wait(browser, lambda: browser.find_element(By.CSS_SELECTOR, ".live").text == "Live", message="live")
    browser.find_element(By.CSS_SELECTOR, "button.action.clear_failed").click()
    wait(browser, lambda: "2 data products would change state" in dialog_text(browser), message="the dry run")
    assert "Clear every failed data product of this plan?" in dialog_text(browser)
    # Nothing changed before confirming.
    assert state_of(api, dataset, ids[0]) == "failed"
    browser.save_screenshot(os.path.join(SCREENSHOTS, "confirm-clear.png"))
    browser.find_element(By.CSS_SELECTOR, "dialog.action-dialog .confirm-form button").click()
    wait(browser, lambda: "Cleared the failed products: 2 data products changed state." in
         browser.find_element(By.CSS_SELECTOR, "main > p.notice").text, message="the notice")
    assert not browser.find_elements(By.CSS_SELECTOR, "dialog.action-dialog[open]")
    # The states arrive live.
    cell = lambda i: browser.find_element(By.CSS_SELECTOR, f"#row-{ids[i]} .state-cell").text
    wait(browser, lambda: cell(0) == "queued" and cell(2) == "queued", message="queued live")
    assert state_of(api, dataset, ids[0]) == "queued"
    history = api.call("GET", f"/api/data_product/{dataset}/{ids[0]}/history")["events"]
    assert any(event["reason"] == "web" and event["actor"] == "e2e" for event in history)


def test_retry_now_and_disable_on_the_product_page(browser, server, api):
    dataset, ids = failed_plan(api)
    sign_in(browser, server)
    browser.get(f"{server}/plan/{dataset}/product/{ids[0]}")
    browser.find_element(By.CSS_SELECTOR, "button.action.retry").click()
    wait(browser, lambda: "now?" in dialog_text(browser), message="the confirmation")
    # Cancel closes the dialog and changes nothing.
    browser.find_element(By.CSS_SELECTOR, "dialog.action-dialog a.cancel").click()
    wait(browser, lambda: not browser.find_elements(By.CSS_SELECTOR, "dialog.action-dialog[open]"))
    assert state_of(api, dataset, ids[0]) == "failed"
    browser.find_element(By.CSS_SELECTOR, "button.action.retry").click()
    wait(browser, lambda: "now?" in dialog_text(browser))
    browser.find_element(By.CSS_SELECTOR, "dialog.action-dialog .confirm-form button").click()
    badge = lambda: browser.find_element(By.CSS_SELECTOR, ".product-detail .state-cell").text
    wait(browser, lambda: badge() == "queued", message="queued on the page")
    assert not browser.find_elements(By.CSS_SELECTOR, "button.action.retry")
    # A report through the API shows on the open page.
    api.update(dataset, ids[0], "running")
    wait(browser, lambda: badge() == "running", message="running, live")
    browser.find_element(By.CSS_SELECTOR, "button.action.disable").click()
    wait(browser, lambda: "Disable" in dialog_text(browser))
    browser.find_element(By.CSS_SELECTOR, "dialog.action-dialog .confirm-form button").click()
    wait(browser, lambda: badge() == "disabled", message="disabled")
    assert state_of(api, dataset, ids[0]) == "disabled"


def test_pause_and_unpause_swap_the_button_and_the_status(browser, server, api):
    dataset, _ = api.submit([("a", True)])
    sign_in(browser, server)
    browser.get(f"{server}/plan/{dataset}")
    wait(browser, lambda: browser.find_element(By.CSS_SELECTOR, ".live").text == "Live")
    browser.find_element(By.CSS_SELECTOR, "button.action.pause").click()
    wait(browser, lambda: "Pause this plan?" in dialog_text(browser))
    browser.find_element(By.CSS_SELECTOR, "dialog.action-dialog .confirm-form button").click()
    wait(browser, lambda: browser.find_element(By.CSS_SELECTOR, "[data-status]").text == "Paused", message="paused")
    wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "button.action.unpause"), message="the unpause button")
    assert api.plan(dataset)["dataset"]["paused"] is True
    browser.find_element(By.CSS_SELECTOR, "button.action.unpause").click()
    wait(browser, lambda: "Unpause this plan?" in dialog_text(browser))
    browser.find_element(By.CSS_SELECTOR, "dialog.action-dialog .confirm-form button").click()
    wait(browser, lambda: browser.find_element(By.CSS_SELECTOR, "[data-status]").text == "Active", message="active")


def test_a_service_without_roles_sees_no_action_and_its_forged_post_is_refused(browser, server, api):
    dataset, ids = failed_plan(api)
    sign_in(browser, server, service="viewer", key=VIEWER_KEY)
    for path in [f"/plan/{dataset}", f"/plan/{dataset}/product/{ids[0]}"]:
        browser.get(server + path)
        assert not browser.find_elements(By.CSS_SELECTOR, "form.action-form")
    token = browser.find_element(By.CSS_SELECTOR, "form.sign-out input[name=csrf]").get_attribute("value")
    status = post_from_page(browser, f"/plan/{dataset}/action",
                            {"csrf": token, "action": "clear", "product": ids[0], "confirm": "yes"})
    assert status == 403
    assert state_of(api, dataset, ids[0]) == "failed"


def test_posts_without_the_token_or_from_another_site_change_nothing(browser, server, api):
    dataset, ids = failed_plan(api)
    sign_in(browser, server)
    browser.get(f"{server}/plan/{dataset}")
    fields = {"action": "clear", "product": ids[0], "confirm": "yes"}
    assert post_from_page(browser, f"/plan/{dataset}/action", fields) == 403
    assert post_from_page(browser, f"/plan/{dataset}/action", dict(fields, csrf="forged")) == 403
    # A page of another site (served from localhost, another site than 127.0.0.1) posting the
    # form, even with a stolen token: the session cookie stays home (SameSite=Strict) and the
    # origin is not ours.
    token = browser.find_element(By.CSS_SELECTOR, "form.sign-out input[name=csrf]").get_attribute("value")
    inputs = "".join(f'<input type="hidden" name="{name}" value="{value}">' for name, value in dict(fields, csrf=token).items())
    page = (f'<!doctype html><title>elsewhere</title><form method="post" action="{server}/plan/{dataset}/action">'
            f'{inputs}</form><script>document.forms[0].submit()</script>').encode()

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    elsewhere = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    threading.Thread(target=elsewhere.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://localhost:{elsewhere.server_address[1]}/")
        wait(browser, lambda: "Nothing was changed" in browser.find_element(By.TAG_NAME, "body").text, message="the refusal")
    finally:
        elsewhere.shutdown()
    assert state_of(api, dataset, ids[0]) == "failed"


def tab_to(browser, selector, limit=300):
    """Presses Tab until the focused element matches `selector` (proving it is reachable by keyboard)."""
    for _ in range(limit):
        if browser.execute_script("return document.activeElement && document.activeElement.matches(arguments[0])", selector):
            return
        browser.switch_to.active_element.send_keys(Keys.TAB)
    raise AssertionError(f"{selector} not reached with Tab")


def test_every_action_can_be_done_with_the_keyboard_alone(browser, server, api):
    dataset, ids = failed_plan(api)
    browser.delete_all_cookies()
    browser.get(f"{server}/plan/{dataset}/product/{ids[0]}")
    tab_to(browser, "a.sign-in")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait(browser, lambda: "/login" in browser.current_url)
    tab_to(browser, "#service")
    browser.switch_to.active_element.send_keys("e2e" + Keys.TAB)
    browser.switch_to.active_element.send_keys(KEY + Keys.ENTER)
    # Back on the product's page, signed in.
    wait(browser, lambda: f"/product/{ids[0]}" in browser.current_url and browser.find_elements(By.CSS_SELECTOR, "button.action.retry"))
    tab_to(browser, "button.action.retry")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    # The dialog opens with the confirm button focused; Escape closes it, Enter confirms.
    wait(browser, lambda: browser.execute_script("return document.activeElement.closest('.confirm-form') !== null"))
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(browser, lambda: not browser.find_elements(By.CSS_SELECTOR, "dialog.action-dialog[open]"))
    assert state_of(api, dataset, ids[0]) == "failed"
    tab_to(browser, "button.action.retry")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait(browser, lambda: browser.execute_script("return document.activeElement.closest('.confirm-form') !== null"))
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait(browser, lambda: state_of(api, dataset, ids[0]) == "queued", message="retried by keyboard")
    # The plan's actions too.
    browser.get(f"{server}/plan/{dataset}")
    tab_to(browser, "button.action.pause")
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait(browser, lambda: browser.execute_script("return document.activeElement.closest('.confirm-form') !== null"))
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    wait(browser, lambda: api.plan(dataset)["dataset"]["paused"] is True, message="paused by keyboard")


def test_the_attention_page_shows_a_failure_live(browser, server, api):
    marker = "live" + uuid.uuid4().hex[:6]
    dataset, ids = api.submit([("nightly load", True)], extra={"team": marker})
    browser.get(f"{server}/attention?dataset={marker}")
    wait(browser, lambda: browser.find_element(By.CSS_SELECTOR, ".live").text == "Live", message="live")
    assert browser.find_element(By.CSS_SELECTOR, "[data-attention-count=failed]").text == "0"
    api.call("PUT", f"/api/data_product/{dataset}/update",
             [{"id": ids[0], "state": "failed", "passback": {"error": "upstream file missing"}}])
    wait(browser, lambda: browser.find_element(By.CSS_SELECTOR, "[data-attention-count=failed]").text == "1",
         timeout=30, message="the count")
    row = browser.find_element(By.CSS_SELECTOR, "#failed tbody tr")
    assert "upstream file missing" in row.text
    browser.save_screenshot(os.path.join(SCREENSHOTS, "attention.png"))
    row.find_element(By.CSS_SELECTOR, f"a[href='/plan/{dataset}/product/{ids[0]}']").click()
    wait(browser, lambda: f"/product/{ids[0]}" in browser.current_url)


def test_search_rows_show_state_counts_and_a_paused_badge(browser, server, api):
    marker = "bars" + uuid.uuid4().hex[:6]
    dataset, ids = api.submit([("a", True), ("b", True), ("c", True)], extra={"team": marker})
    api.update(dataset, ids[0], "failed")
    api.call("PUT", f"/api/plan/{dataset}/pause")
    browser.get(f"{server}/?search_by={marker}")
    row = browser.find_element(By.CSS_SELECTOR, "#results tr")
    assert row.find_element(By.CSS_SELECTOR, ".badge.status.paused").text == "Paused"
    bar = row.find_element(By.CSS_SELECTOR, ".state-bar")
    assert "1 failed" in bar.get_attribute("aria-label") and "2 queued" in bar.get_attribute("aria-label")

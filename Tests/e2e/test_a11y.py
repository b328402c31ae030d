"""Accessibility: axe-core (bundled by axe-selenium-python) run in the real browser on every page
of the web UI, with products in every state, signed in and out, in light and dark colours, finds
no critical or serious WCAG 2 A/AA violation; a confirmation dialog open included."""
import json
import uuid

import pytest
from axe_selenium_python import Axe

from selenium.webdriver.common.by import By

from test_actions import dialog_text, sign_in
from test_ui import wait

# The axe-core that axe-selenium-python bundles knows the WCAG 2.0 A and AA tags.
WCAG = ["wcag2a", "wcag2aa"]


def violations(browser):
    """axe's critical and serious WCAG 2 A/AA violations on the page shown, as (rule, impact,
    nodes' targets and the first node's summary)."""
    browser.set_script_timeout(30)
    axe = Axe(browser)
    axe.inject()
    results = axe.run(options={"runOnly": {"type": "tag", "values": WCAG}})
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5], v["nodes"][0].get("failureSummary", ""))
            for v in results["violations"] if v["impact"] in ("critical", "serious")]


@pytest.fixture(scope="module")
def plan(api):
    """A plan with a product in each state (and a late one), its dataset's and products' ids."""
    products = [("waiting on parent", True), ("queued now", True), ("running now", True), ("succeeded", True),
                ("failed", True), ("disabled", True), ("manual", False)]
    dataset, ids = api.submit(products, edges=[(3, 0)], extra={"team": "a11y"})
    api.update(dataset, ids[2], "running")
    api.update(dataset, ids[4], "failed")
    api.call("DELETE", f"/api/data_product/{dataset}", [ids[5]])
    return dataset, ids


def pages(server, plan):
    dataset, ids = plan
    return {
        "home": server + "/",
        "search": server + "/?search_by=a11y",
        "plan": f"{server}/plan/{dataset}",
        "failed product": f"{server}/plan/{dataset}/product/{ids[4]}",
        "running product": f"{server}/plan/{dataset}/product/{ids[2]}",
        "disabled product": f"{server}/plan/{dataset}/product/{ids[5]}",
        "not found": f"{server}/plan/{uuid.uuid4()}",
        "unknown page": server + "/no/such/page",
        "sign in": server + "/login",
        "needs attention": server + "/attention",
        "needs attention, filtered": server + "/attention?dataset=a11y&compute=cams&age=24h",
    }


def colours(browser, scheme):
    """Shows pages in the light or dark scheme, as the reader's system asks."""
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})


@pytest.fixture(params=["light", "dark"])
def scheme(request, browser):
    colours(browser, request.param)
    yield request.param
    colours(browser, "light")


@pytest.fixture(params=["signed out", "signed in"])
def visitor(request, browser, server):
    if request.param == "signed in":
        sign_in(browser, server)
    else:
        browser.delete_all_cookies()
    return request.param


@pytest.mark.parametrize("name", ["home", "search", "plan", "failed product", "running product", "disabled product",
                                  "not found", "unknown page", "sign in", "needs attention", "needs attention, filtered"])
def test_no_critical_or_serious_wcag_violation(browser, server, plan, name, scheme, visitor):
    browser.get(pages(server, plan)[name])
    wait(browser, lambda: browser.execute_script("return document.readyState") == "complete")
    found = violations(browser)
    assert found == [], json.dumps(found, indent=1)


@pytest.mark.parametrize("where", ["plan", "failed product"])
def test_a_confirmation_and_a_refusal_have_no_violation(browser, server, plan, scheme, where):
    sign_in(browser, server)
    browser.get(pages(server, plan)[where])
    button = "button.action.clear_failed" if where == "plan" else "button.action.retry"
    browser.find_element(By.CSS_SELECTOR, button).click()
    wait(browser, lambda: "?" in dialog_text(browser), message="the confirmation")
    found = violations(browser)
    assert found == [], json.dumps(found, indent=1)
    # The page a browser without JavaScript gets: the confirmation, then a refusal.
    dataset, ids = plan
    token = browser.find_element(By.CSS_SELECTOR, "form.sign-out input[name=csrf]").get_attribute("value")
    for fields in [{"csrf": token, "action": "retry", "product": ids[4]}, {"csrf": "forged", "action": "pause"}]:
        browser.execute_script(
            "const form = document.createElement('form'); form.method = 'post'; form.action = arguments[0];"
            "for (const [name, value] of Object.entries(arguments[1])) {"
            "  const input = document.createElement('input'); input.type = 'hidden'; input.name = name;"
            "  input.value = value; form.append(input); }"
            "document.body.append(form); HTMLFormElement.prototype.submit.call(form);",
            f"/plan/{dataset}/action", fields)
        wait(browser, lambda: "/action" in browser.current_url and browser.execute_script("return document.readyState") == "complete")
        found = violations(browser)
        assert found == [], json.dumps(found, indent=1)

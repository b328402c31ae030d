"""The web UI in a real headless Chromium: search as you type, infinite scroll, the drawn plan,
live updates, retry and timeout countdowns, escaping, and a 10,000-product plan."""
import datetime
import os
import re
import tempfile
import time
import urllib.request
import uuid

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

# Where the README's pictures go: the folder scripts/e2e.sh names (docs/screenshots when asked to
# refresh them), else a temporary folder, so a run outside e2e.sh leaves the repository as it was.
SCREENSHOTS = os.environ.get("FLETCHER_SCREENSHOTS") or tempfile.mkdtemp(prefix="fletcher-screenshots-")


def wait(browser, condition, timeout=10, message=""):
    return WebDriverWait(browser, timeout, poll_frequency=0.05,
                         ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
                         ).until(lambda _: condition(), message)


def rows(browser):
    """The dataset ids listed, read in one go (the list is replaced as results arrive)."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#results a.plan-link')).map(a => a.textContent)")


def fill(browser, element):
    """The computed fill of a drawn node's shape."""
    return browser.execute_script(
        "const shape = arguments[0].querySelector('path, polygon'); return getComputedStyle(shape).fill;", element)


def test_typing_in_the_search_box_shows_matching_plans(browser, server, api):
    marker = "typed" + uuid.uuid4().hex[:6]
    wanted, _ = api.submit([("a", True)], extra={"team": f"{marker}-alpha"})
    api.submit([("a", True)], extra={"team": f"{marker}-beta"})
    browser.get(server + "/")
    box = browser.find_element(By.ID, "search_by")
    box.send_keys(f"{marker}-alp")
    wait(browser, lambda: rows(browser) == [wanted], message="the matching plan alone")
    assert f"search_by={marker}-alp" in browser.current_url
    # Enter searches at once.
    box.clear()
    box.send_keys(marker + Keys.ENTER)
    wait(browser, lambda: len(rows(browser)) == 2, message="both plans")
    # Each row is a keyboard-reachable link to its plan.
    browser.find_element(By.CSS_SELECTOR, "#results a.plan-link").send_keys(Keys.ENTER)
    wait(browser, lambda: "/plan/" in browser.current_url)


def test_scrolling_to_the_end_loads_the_next_page(browser, server, api):
    marker = "scroll" + uuid.uuid4().hex[:6]
    for index in range(60):
        api.submit([("a", True)], extra={"n": index, "tag": marker})
    browser.get(f"{server}/?search_by={marker}")
    assert len(rows(browser)) == 50
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    wait(browser, lambda: len(rows(browser)) == 60, message="page 2 arrives")
    assert not browser.find_elements(By.CSS_SELECTOR, "tr.more")


def test_the_plan_is_drawn_one_node_per_enabled_product_coloured_by_state(browser, server, api):
    dataset, ids = api.submit([("extract", True), ("transform", True), ("load", True), ("old", True)],
                              edges=[(0, 1), (1, 2)])
    api.update(dataset, ids[0], "success")
    api.update(dataset, ids[1], "failed")
    api.call("DELETE", f"/api/data_product/{dataset}", [ids[3]])
    browser.get(f"{server}/plan/{dataset}")
    nodes = browser.find_elements(By.CSS_SELECTOR, "figure.graph svg g.node")
    assert len(nodes) == 3
    by_id = {node.get_attribute("id"): node for node in nodes}
    node = lambda i: by_id["dp" + ids[i].replace("-", "")]
    assert fill(browser, node(0)) == "rgb(63, 163, 77)"     # success: green
    assert fill(browser, node(1)) == "rgb(229, 72, 77)"     # failed: red
    assert fill(browser, node(2)) == "rgb(230, 230, 230)"   # waiting: light grey
    labels = [n.find_element(By.CSS_SELECTOR, "text").text for n in nodes]
    assert "extract:1.0" in labels
    # The disabled product is in the table, greyed, and not in the drawing.
    row = browser.find_element(By.ID, f"row-{ids[3]}")
    assert "disabled" in row.get_attribute("class")
    # Greyed in the muted text colour (not by opacity, which would fail contrast).
    muted = browser.execute_script("return getComputedStyle(document.body).getPropertyValue('--muted').trim()")
    assert muted == "#5c6773"
    assert row.find_element(By.CSS_SELECTOR, "td").value_of_css_property("color") == "rgba(92, 103, 115, 1)"
    # Clicking a node opens the product's detail in a panel.
    node(1).find_element(By.CSS_SELECTOR, "a").click()
    dialog = browser.find_element(By.CSS_SELECTOR, "dialog.detail")
    wait(browser, lambda: dialog.is_displayed() and "transform:1.0" in dialog.text, message="detail panel")
    assert "Parents" in dialog.text and "extract:1.0" in dialog.text


def test_a_state_change_through_the_api_shows_without_reloading(browser, server, api):
    dataset, ids = api.submit([("first", True), ("second", True)], edges=[(0, 1)])
    browser.get(f"{server}/plan/{dataset}")
    wait(browser, lambda: "Live" == browser.find_element(By.CSS_SELECTOR, ".live").text, message="stream open")
    browser.execute_script("window.__sameDocument = true")
    api.update(dataset, ids[0], "success")
    second = "dp" + ids[1].replace("-", "")
    wait(browser, lambda: "queued" in browser.find_element(By.ID, second).get_attribute("class"), timeout=30,
         message="node recoloured")
    badge = browser.find_element(By.CSS_SELECTOR, f"#row-{ids[0]} .state-cell").text
    assert badge == "success"
    assert browser.find_element(By.CSS_SELECTOR, '[data-count="success"]').text == "1"
    assert browser.execute_script("return window.__sameDocument") is True
    api.call("PUT", f"/api/plan/{dataset}/pause")
    wait(browser, lambda: browser.find_element(By.CSS_SELECTOR, "[data-status]").text == "Paused", timeout=30)


def live_streams(server):
    """The event streams the server holds open (its `fletcher_live_streams` gauge)."""
    with urllib.request.urlopen(server + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("fletcher_live_streams "):
                return float(line.split()[1])
    raise AssertionError("/metrics has no fletcher_live_streams")


def test_a_page_left_closes_its_stream_and_opens_it_again_when_shown_again(browser, server, api):
    """A page left for another may be kept in the browser's back/forward cache. Its stream closes
    (kept open, it holds one of the six connections the browser makes to the server: after six
    live pages, the next one waited a minute for a connection), and opens again when the page is
    shown again, which catches up on what changed meanwhile. (The server notices a stream's end
    at its next write, a heartbeat at most 15 s later.)"""
    dataset, ids = api.submit([("first", True), ("second", True)], edges=[(0, 1)])
    browser.get(server + "/login")
    wait(browser, lambda: live_streams(server) == 0, timeout=60, message="no stream open")
    for page in ["/attention", f"/plan/{dataset}/product/{ids[0]}", f"/plan/{dataset}"]:
        browser.get(server + page)
        wait(browser, lambda: live_streams(server) >= 1 and browser.execute_script(
            "return document.readyState === 'complete'"), timeout=60, message=f"{page}'s stream open")
    wait(browser, lambda: "Live" == browser.find_element(By.CSS_SELECTOR, ".live").text, message="plan live")
    browser.execute_script("window.__kept = true")
    browser.get(server + "/login")
    wait(browser, lambda: live_streams(server) == 0, timeout=60, message="every stream closed once its page was left")

    api.update(dataset, ids[0], "success")
    browser.back()
    assert browser.execute_script("return window.__kept === true"), "the plan page is the one kept in the cache"
    wait(browser, lambda: live_streams(server) == 1, timeout=60, message="the stream open again")
    second = "dp" + ids[1].replace("-", "")
    wait(browser, lambda: "queued" in browser.find_element(By.ID, second).get_attribute("class"), timeout=30,
         message="what changed while away shown")
    wait(browser, lambda: "Live" == browser.find_element(By.CSS_SELECTOR, ".live").text, message="live again")
    api.update(dataset, ids[1], "running")
    wait(browser, lambda: "running" in browser.find_element(By.ID, second).get_attribute("class"), timeout=30,
         message="a later change shown live")


def instant(text):
    """An RFC 3339 time as an aware datetime."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def same_millisecond(page_time, api_time):
    """The page writes milliseconds (what browsers read), the API microseconds."""
    return abs(instant(page_time) - instant(api_time)) < datetime.timedelta(milliseconds=1)


def test_timeout_and_retry_countdowns_tick_and_follow_the_api_live(browser, server, api):
    dataset, slow, after = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    product = lambda id, name, **limits: dict(id=id, compute="cams", name=name, version="1.0", eager=True, **limits)
    api.call("POST", "/api/plan", {
        "dataset": {"id": dataset, "extra": {}},
        "data_products": [product(slow, "slow", max_queued_s=600, retries=1), product(after, "after")],
        "dependencies": [{"parent_id": slow, "child_id": after}],
    })
    stored = next(p for p in api.plan(dataset)["data_products"] if p["id"] == slow)
    if stored.get("timeout_at") is None:
        pytest.skip("needs a data product's own limits stored and its timeout_at in the API")
    browser.get(f"{server}/plan/{dataset}")
    wait(browser, lambda: "Live" == browser.find_element(By.CSS_SELECTOR, ".live").text, message="stream open")
    cell = lambda id, name: browser.find_element(By.CSS_SELECTOR, f"#row-{id} .{name}-cell").text
    # The queued product's timeout: the API's time in the <time>, counted down by the script.
    countdown = browser.find_element(By.CSS_SELECTOR, f"#row-{slow} .timer-cell time[data-countdown]")
    assert same_millisecond(countdown.get_attribute("datetime"), stored["timeout_at"])
    first = cell(slow, "timer")
    assert re.fullmatch(r"times out in (9 m \d+ s|10 m)", first), first
    wait(browser, lambda: cell(slow, "timer") != first, message="the countdown ticks")
    assert cell(slow, "try") == "1" and cell(after, "try") == "" and cell(after, "timer") == ""
    # A failure with a retry left: the timeout ends and the retry's countdown arrives, without a reload.
    browser.execute_script("window.__sameDocument = true")
    api.update(dataset, slow, "failed")
    wait(browser, lambda: cell(slow, "timer").startswith("retry in "), timeout=30, message="the retry's countdown")
    assert "times out" not in cell(slow, "timer")
    assert browser.execute_script("return window.__sameDocument") is True
    retry_at = next(p for p in api.plan(dataset)["data_products"] if p["id"] == slow)["retry_at"]
    countdown = browser.find_element(By.CSS_SELECTOR, f"#row-{slow} .timer-cell time[data-countdown]")
    assert same_millisecond(countdown.get_attribute("datetime"), retry_at)
    # The detail lists the failed try and the pending retry.
    browser.find_element(By.CSS_SELECTOR, f"#row-{slow} a.product-link").click()
    dialog = browser.find_element(By.CSS_SELECTOR, "dialog.detail")
    wait(browser, lambda: dialog.is_displayed() and "Tries" in dialog.text, message="detail panel with its tries")
    row = dialog.find_element(By.CSS_SELECTOR, 'table.tries tr[data-try="1"]')
    assert "failed" in row.find_element(By.CSS_SELECTOR, ".outcome").text
    assert "Retry at" in dialog.text and "as try 2" in dialog.text


def test_a_script_in_user_data_does_not_run(browser, server, api):
    marker = "xss" + uuid.uuid4().hex[:6]
    payload = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
    dataset, ids = api.submit([(payload, True)], extra={"note": payload, "tag": marker})
    for path in [f"/?search_by={marker}", f"/plan/{dataset}", f"/plan/{dataset}/product/{ids[0]}"]:
        browser.get(server + path)
        # Loaded (images included: an injected onerror would have run by now), and the payload is
        # text: no element of it exists, no handler ran.
        wait(browser, lambda: browser.execute_script("return document.readyState") == "complete", timeout=30,
             message="page loaded")
        assert browser.execute_script(
            "return document.querySelectorAll('img[src=\"x\"], img[onerror]').length"
            " + Array.from(document.scripts).filter(s => s.text.includes('__pwned')).length") == 0, path
        assert browser.execute_script("return window.__pwned") is None, path
        assert "<script>" in browser.find_element(By.TAG_NAME, "main").text, path


def test_a_ten_thousand_product_plan_loads_filters_and_focuses(browser, server, api):
    count = 10_000
    products = [(f"step {i}", i % 5 != 0) for i in range(count)]
    edges = [((i - 1) // 3, i) for i in range(1, count)]
    dataset, ids = api.submit(products, edges=edges)
    started = time.time()
    browser.get(f"{server}/plan/{dataset}")
    loaded = time.time() - started
    assert "too many to draw at once" in browser.find_element(By.CSS_SELECTOR, ".graph-section").text
    assert len(browser.find_elements(By.CSS_SELECTOR, ".product-table tbody tr")) == 100
    assert browser.find_element(By.CSS_SELECTOR, '[data-count="waiting"]').text.isdigit()
    print(f"the 10,000-product page loaded in {loaded:.1f} s (figures: scripts/measure-pages.py)")
    # Filter by name.
    name = browser.find_element(By.CSS_SELECTOR, "form.filter input[name=name]")
    name.send_keys("step 9999" + Keys.ENTER)
    # The filter loads the 10,000-product page again: generous, for a busy machine.
    wait(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, ".product-table tbody tr")) == 1, timeout=60)
    # Focus the drawing on a product.
    focus = browser.find_element(By.ID, "focus")
    focus.send_keys("step 4242" + Keys.ENTER)
    wait(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "g.node.focus"), timeout=60, message="focused node")
    focused = browser.find_element(By.CSS_SELECTOR, "g.node.focus")
    assert focused.get_attribute("id") == "dp" + ids[4242].replace("-", "")
    # Zoom changes the view box.
    svg = browser.find_element(By.CSS_SELECTOR, "figure.graph svg")
    view_box = lambda: browser.execute_script("return arguments[0].getAttribute('viewBox')", svg)
    before = view_box()
    assert before
    browser.find_element(By.CSS_SELECTOR, "[data-zoom=in]").click()
    assert view_box() != before


def test_screenshots(browser, server, api):
    """The README's pictures, taken by the same browser."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    names = ["Ingest orders", "Ingest customers", "Clean orders", "Join", "Daily report", "Weekly report",
             "Archive", "Quality checks"]
    dataset, ids = api.submit([(n, i != 6) for i, n in enumerate(names)],
                              edges=[(0, 2), (2, 3), (1, 3), (3, 4), (3, 7), (4, 5), (4, 6)],
                              extra={"team": "finance", "owner": "data-platform"})
    for index, state in [(0, "success"), (1, "success"), (2, "success"), (3, "success"), (4, "running"),
                         (7, "failed")]:
        api.update(dataset, ids[index], state)
    browser.get(f"{server}/?search_by=finance")
    browser.save_screenshot(os.path.join(SCREENSHOTS, "search.png"))
    browser.get(f"{server}/plan/{dataset}")
    wait(browser, lambda: browser.find_element(By.CSS_SELECTOR, ".live").text == "Live")
    browser.save_screenshot(os.path.join(SCREENSHOTS, "plan.png"))
    timeline = browser.find_element(By.CSS_SELECTOR, ".timeline details")
    browser.execute_script("arguments[0].open = true; arguments[0].scrollIntoView()", timeline)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".timeline-chart rect.tl")) >= 6
    browser.save_screenshot(os.path.join(SCREENSHOTS, "timeline.png"))
    # A phone's viewport (a desktop window cannot be made that narrow).
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        browser.get(f"{server}/plan/{dataset}")
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone"
        browser.save_screenshot(os.path.join(SCREENSHOTS, "plan-phone.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

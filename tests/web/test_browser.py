"""The dashboards in headless Chromium against the running, seeded coordinator: each role signs
in through the form, sees its own data and nothing of other users, a streamer rotates a key
through the UI, a friend fills in a setup token, and every page is saved as a screenshot."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from .accessibility import assert_accessible
from .conftest import PASSWORD, Seeded, requested_urls, save_screenshot


def submit(driver, button_id: str | None = None, selector: str | None = None) -> None:
    """Click a submit button and wait until the browser has left the page it was on and shows
    the next one."""
    page = driver.find_element(By.TAG_NAME, "html")
    if button_id:
        driver.find_element(By.ID, button_id).click()
    else:
        driver.find_element(By.CSS_SELECTOR, selector).click()

    def left(_) -> bool:
        try:
            page.is_enabled()
        except WebDriverException:  # stale, or (Chromium) "does not belong to the document"
            return True
        return False

    WebDriverWait(driver, 10).until(left)
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "main"))


def sign_in(driver, seeded: Seeded, username: str) -> None:
    driver.delete_all_cookies()
    driver.get(seeded.url + "/signin")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(driver, "signin")
    assert driver.find_element(By.ID, "whoami").text == username


def assert_spans_the_page(driver, chart) -> None:
    """A chart is as wide as the page's content column (not a fixed part of it)."""
    column = driver.execute_script(
        "const main = getComputedStyle(arguments[0]);"
        "return arguments[0].clientWidth - parseFloat(main.paddingLeft)"
        " - parseFloat(main.paddingRight);",
        driver.find_element(By.ID, "main"),
    )
    assert abs(chart.rect["width"] - column) <= 1, (chart.rect, column)
    assert column > 1000  # the 1280-pixel window: the column is wide, so "full" means something


def text_of(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def test_sign_in_page_and_a_wrong_password(browser, coordinator: Seeded, screenshots: Path):
    browser.delete_all_cookies()
    browser.get(coordinator.url + "/operator")
    assert browser.current_url == coordinator.url + "/signin"
    assert_accessible(browser)
    save_screenshot(browser, screenshots, "signin")
    browser.find_element(By.ID, "username").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys("not the password")
    submit(browser, "signin")
    assert browser.find_element(By.CSS_SELECTOR, "[role=alert]").text == (
        "Wrong username or password."
    )
    assert browser.get_cookie("streamr_session") is None


def test_operator_sees_the_whole_platform(browser, coordinator: Seeded, screenshots: Path):
    before = datetime.now(UTC)
    sign_in(browser, coordinator, "opsadmin")
    assert browser.current_url == coordinator.url + "/operator"
    live = text_of(browser, "live-streams")
    assert "alice-live" in live and "bob-secret" in live and "alice-quiet" not in live
    nodes = text_of(browser, "online-nodes")
    assert "carol-attic" in nodes and "dave-den" in nodes and "carol-cellar" not in nodes
    assert "Nodes online\n2 of 3" in text_of(browser, "mesh-health")
    # An hour's history: 50 viewer-minutes by friends, 10 by the origin, plus the open sessions
    # (2 on edges, 1 at the origin) for as long as they have run.
    share = text_of(browser, "traffic-share")
    least, most = coordinator.open_viewer_minutes(before, datetime.now(UTC))
    found = re.search(r"last hour ([\d.]+) min ([\d.]+) min ([\d.]+) %", share)
    assert found, share
    friends, origin, percent = map(float, found.groups())
    assert 50 + 2 * least - 0.05 <= friends <= 50 + 2 * most + 0.05, (share, least, most)
    assert 10 + least - 0.05 <= origin <= 10 + most + 0.05, (share, least, most)
    assert percent == pytest.approx(100 * friends / (friends + origin), abs=0.2)
    assert "20.00" in text_of(browser, "payout-periods")  # two pools of 10.00
    # The viewer history is under an hour old: only the last one or two hourly bars have height.
    hourly = browser.find_element(By.ID, "hourly-chart")
    heights = [
        float(rect.get_attribute("height")) for rect in hourly.find_elements(By.TAG_NAME, "rect")
    ]
    assert len(heights) == 48 and 1 <= sum(1 for h in heights if h > 0) <= 4, heights
    chart = browser.find_element(By.ID, "payout-chart")
    assert chart.find_elements(By.CSS_SELECTOR, "rect.bar")
    assert_spans_the_page(browser, hourly)
    assert_spans_the_page(browser, chart)
    assert browser.get_cookie("streamr_session")["httpOnly"] is True
    assert_accessible(browser)
    save_screenshot(browser, screenshots, "operator")


def test_streamer_sees_only_their_streams_and_rotates_a_key(
    browser, coordinator: Seeded, screenshots: Path
):
    sign_in(browser, coordinator, "alice")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "bob-secret" not in page and "dave-den" not in page
    stream = coordinator.streams["alice-live"]
    row = text_of(browser, f"stream-{stream['id']}")
    assert "live" in row and "rtmp://ingest.example.net/live/alice-live" in row
    relays = text_of(browser, "relays")
    assert "carol-attic" in relays and "carol-cellar" in relays and "dave-den" not in relays
    assert "7.50" in relays and "2.50" in relays  # 3 MB vs 1 MB of a 10.00 pool
    assert re.search(r"last 24 h .* 7\d\.\d %", text_of(browser, "savings"))
    assert_accessible(browser)
    save_screenshot(browser, screenshots, "streamer")

    # Without the confirmation box nothing changes.
    submit(browser, f"rotate-{stream['id']}")
    assert "Tick the box to confirm" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    old_key = stream["stream_key"]
    browser.find_element(By.ID, f"confirm-{stream['id']}").click()
    submit(browser, f"rotate-{stream['id']}")
    new_key = text_of(browser, "new-key-value")
    assert new_key.startswith("sk_") and new_key != old_key
    # The script ran (under the page's CSP) and offers a Copy button.
    assert "js" in browser.find_element(By.TAG_NAME, "html").get_attribute("class")
    assert browser.find_element(By.CSS_SELECTOR, "#new-key button.copy").is_displayed()
    assert_accessible(browser)
    save_screenshot(browser, screenshots, "streamer-new-key")
    # The origin now refuses the old key and accepts the new one.
    assert coordinator.hook("on_publish", "alice-live", f"?key={old_key}").status_code != 200
    assert coordinator.hook("on_publish", "alice-live", f"?key={new_key}").status_code == 200
    stream["stream_key"] = new_key
    # Shown once: a reload does not show it again.
    browser.get(coordinator.url + "/streamer")
    assert new_key not in browser.page_source


def test_friend_sees_own_nodes_and_earnings_and_a_setup_command(
    browser, coordinator: Seeded, screenshots: Path
):
    sign_in(browser, coordinator, "carol")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "dave-den" not in page and "bob-secret" not in page
    nodes = text_of(browser, "nodes")
    assert re.search(r"carol-attic online 100\.0 %", nodes), nodes
    assert re.search(r"carol-cellar offline", nodes), nodes
    assert text_of(browser, "balance") == "10.00 credits"
    earnings = browser.find_element(By.ID, "earnings-chart")
    assert earnings.find_elements(By.CSS_SELECTOR, "rect")
    assert_spans_the_page(browser, earnings)
    assert "<setup token>" in text_of(browser, "setup-command")
    assert_accessible(browser)
    save_screenshot(browser, screenshots, "friend")
    submit(browser, "make-setup-token")
    command = text_of(browser, "setup-command")
    assert re.fullmatch(
        r"STREAMR_FRIEND_TOKEN=stu_[\w-]{43} sudo -E \./node/setup\.sh "
        rf"--coordinator {re.escape(coordinator.url)} --name my-node",
        command,
    ), command
    # The token it holds can register a node (what the kit does with it) and nothing else: an
    # empty registration passes authorization and fails validation; anything else is refused.
    token = command.split()[0].split("=", 1)[1]
    bearer = {"Authorization": f"Bearer {token}"}
    register = httpx.post(coordinator.url + "/api/v1/nodes", json={}, headers=bearer)
    assert register.status_code == 422, register.text
    me = httpx.get(coordinator.url + "/api/v1/auth/me", headers=bearer)
    assert me.status_code == 403, me.text
    assert_accessible(browser)
    save_screenshot(browser, screenshots, "friend-setup")
    # Signing out in the browser ends the session.
    submit(browser, selector="header button[type=submit]")
    assert browser.current_url == coordinator.url + "/signin"
    browser.get(coordinator.url + "/friend")
    assert browser.current_url == coordinator.url + "/signin"


def test_error_pages_keep_the_header(browser, coordinator: Seeded, screenshots: Path):
    """A streamer who opens the operator page gets a 403 page under their usual header: who is
    signed in, the way home, what is live, the API docs, and signing out."""
    sign_in(browser, coordinator, "alice")
    browser.get(coordinator.url + "/operator")
    assert "This page is for the admin role" in text_of(browser, "main")
    assert text_of(browser, "whoami") == "alice"
    site = browser.find_element(By.CSS_SELECTOR, "header nav[aria-label=Site]")
    links = {a.text: a.get_attribute("href") for a in site.find_elements(By.TAG_NAME, "a")}
    assert links == {
        "Your page": coordinator.url + "/streamer",
        "Live now": coordinator.url + "/watch",
        "API docs": coordinator.url + "/docs",
    }
    assert browser.find_element(By.CSS_SELECTOR, "header button[type=submit]").is_displayed()
    assert_accessible(browser)
    save_screenshot(browser, screenshots, "forbidden")
    submit(browser, selector="header button[type=submit]")  # signing out works from here too
    assert browser.current_url == coordinator.url + "/signin"


def test_pages_work_without_javascript(
    browser_without_javascript, coordinator: Seeded, screenshots: Path
):
    """Sign-in, a confirmed key rotation and sign-out are plain forms: no script needed."""
    driver = browser_without_javascript
    sign_in(driver, coordinator, "bob")
    assert "alice-live" not in driver.find_element(By.TAG_NAME, "main").text
    stream = coordinator.streams["bob-secret"]
    driver.find_element(By.ID, f"confirm-{stream['id']}").click()
    submit(driver, f"rotate-{stream['id']}")
    new_key = text_of(driver, "new-key-value")
    assert new_key.startswith("sk_") and new_key != stream["stream_key"]
    # No script ran, so the Copy button (which needs one) is hidden and the key is plain text.
    assert "js" not in (driver.find_element(By.TAG_NAME, "html").get_attribute("class") or "")
    assert not driver.find_element(By.CSS_SELECTOR, "#new-key button.copy").is_displayed()
    assert coordinator.hook("on_publish", "bob-secret", f"?key={new_key}").status_code == 200
    stream["stream_key"] = new_key
    save_screenshot(driver, screenshots, "streamer-without-javascript")
    submit(driver, selector="header button[type=submit]")
    assert driver.current_url == coordinator.url + "/signin"


def test_api_docs_render_with_no_network(browser, coordinator: Seeded, screenshots: Path):
    """Swagger UI comes from the coordinator itself: the browser resolves no host name, yet
    /docs shows every operation, "Try it out" works under the page's CSP, and no request of
    the page left this coordinator."""
    requested_urls(browser)  # forget the earlier pages' requests and messages
    browser.get_log("browser")
    browser.get(coordinator.url + "/docs")
    play = WebDriverWait(browser, 20).until(
        lambda d: d.find_element(
            By.CSS_SELECTOR, '.opblock-summary-path[data-path="/api/v1/play/{stream}"]'
        )
    )
    assert play.is_displayed()
    assert "StreamrP2P coordinator" in browser.find_element(By.CSS_SELECTOR, ".info .title").text
    paths = {
        element.get_attribute("data-path")
        for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    assert {"/api/v1/streams", "/api/v1/nodes/{node_id}/reports", "/health"} <= paths
    save_screenshot(browser, screenshots, "api-docs")
    # Try a public operation: Swagger UI fetches it from this coordinator.
    browser.find_element(
        By.CSS_SELECTOR, '.opblock-summary-path[data-path="/api/v1/streams/live"]'
    ).click()
    operation = browser.find_element(By.CSS_SELECTOR, ".opblock.is-open")
    operation.find_element(By.CSS_SELECTOR, "button.try-out__btn").click()
    operation.find_element(By.CSS_SELECTOR, "button.execute").click()
    status = WebDriverWait(browser, 10).until(
        lambda _: operation.find_element(
            By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"
        )
    )
    assert status.text.startswith("200"), status.text
    assert "alice-live" in operation.find_element(By.CSS_SELECTOR, ".live-responses-table").text
    requested = requested_urls(browser)
    assert coordinator.url + "/docs/assets/swagger-ui-bundle.js" in requested
    assert coordinator.url + "/openapi.json" in requested
    elsewhere = [
        url
        for url in requested
        if not url.startswith(coordinator.url + "/") and not url.startswith("data:")
    ]
    assert not elsewhere, elsewhere
    problems = [
        entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
    ]
    assert not problems, problems  # no CSP violation, no failed load
    # And the browser really has no way out: the CDN that FastAPI's default page uses fails.
    with pytest.raises(WebDriverException, match="ERR_NAME_NOT_RESOLVED"):
        browser.get("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css")

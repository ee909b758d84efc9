"""`/watch/<stream>` served over HTTPS, as prod serves it: the coordinator behind a TLS front
(devenv/load_balancer.py, standing in for the ALB's HTTPS listener) whose one rule forwards the
origin's play paths (`srs.render.PLAY_PATHS`, the rule components/srs_origin.py puts on the real
listener) to the origin, and a coordinator told that front as the origin's play URL. Headless
Chromium, trusting the front's self-signed certificate by its key only, plays the origin's HLS
under the page's own https origin; the origin's plain http address is refused from such a page
as mixed content, which is why prod no longer hands it out."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from selenium.webdriver.common.by import By
from streamr_coordinator.migrate import upgrade_to_head

from bench.coordinator_hooks import serving
from devenv import load_balancer, services
from srs.render import PLAY_PATHS

from .conftest import chromium, requested_urls
from .media import Recordings, running_origin
from .test_watch import STREAM, _plays_from, coordinator_environment, live_stream, serve_command


@dataclass
class SecureSite:
    url: str  # https://127.0.0.1:<front port>
    origin_url: str  # the origin's own http address, behind the front
    front: load_balancer.LoadBalancer
    origin_requests: list[str]


@pytest.fixture(scope="module")
def secure_site(recordings: Recordings) -> Iterator[SecureSite]:
    origin_requests: list[str] = []
    port = services.free_port()
    coordinator = f"http://127.0.0.1:{port}"
    with (
        running_origin(recordings.origin_root, origin_requests) as origin_url,
        load_balancer.running([load_balancer.Rule(PLAY_PATHS, origin_url)], coordinator) as front,
        services.postgres(durable=False) as postgres,
    ):
        database_url = postgres.url()
        upgrade_to_head(database_url)
        environment = coordinator_environment(database_url, front.url)
        with serving(serve_command(port), port, environment):
            # The streamer and the origin's hook reach the coordinator through the front too.
            with httpx.Client(base_url=front.url, verify=False, timeout=10) as client:  # noqa: S501
                live_stream(client)
            yield SecureSite(front.url, origin_url, front, origin_requests)


# The origin's public address by a name, as in prod: Chromium exempts loopback addresses from
# mixed-content blocking, not a host name (this one still resolves to loopback, nothing else).
ORIGIN_HOST = "origin.streamr.test"


@pytest.fixture(scope="module")
def trusting_browser(secure_site: SecureSite):
    """Chromium that accepts the front's certificate, identified by its public key, and no
    other (`--ignore-certificate-errors-spki-list` needs a profile directory of its own)."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        driver = chromium(
            arguments=(
                f"--user-data-dir={profile}",
                f"--ignore-certificate-errors-spki-list={secure_site.front.spki_sha256}",
                # Replaces the usual rules (the last switch wins), adding the origin's name.
                f"--host-resolver-rules=MAP {ORIGIN_HOST} 127.0.0.1 , MAP * ~NOTFOUND , "
                "EXCLUDE 127.0.0.1",
            )
        )
        try:
            yield driver
        finally:
            driver.quit()


def test_the_https_page_plays_the_origins_hls_through_its_own_origin(
    trusting_browser, secure_site: SecureSite
) -> None:
    play = httpx.get(f"{secure_site.url}/api/v1/play/{STREAM}", verify=False).json()  # noqa: S501
    assert play["origin"] == {
        "hls_url": f"{secure_site.url}/live/{STREAM}.m3u8",
        "flv_url": f"{secure_site.url}/live/{STREAM}.flv",
    }
    requested_urls(trusting_browser)  # drain the log
    secure_site.front.forwarded.clear()
    trusting_browser.get(f"{secure_site.url}/watch/{STREAM}")
    said = _plays_from(trusting_browser, "origin")
    assert said == "Playing from the origin (HLS through hls.js): no friend's edge has room."
    # Page, players, play plan, playlist and segments: all https, all from the page's origin
    # (a fresh profile's own chrome:// pages aside; media plays from blob: URLs).
    requested = [url for url in requested_urls(trusting_browser) if url.startswith("http")]
    assert requested and all(url.startswith(f"{secure_site.url}/") for url in requested), requested
    routed = dict(secure_site.front.forwarded)
    assert routed[f"/live/{STREAM}.m3u8"] == secure_site.origin_url
    assert routed[f"/watch/{STREAM}"] != secure_site.origin_url
    assert any(path.endswith(".ts") for path in secure_site.origin_requests)
    mixed = [
        entry["message"]
        for entry in trusting_browser.get_log("browser")
        if "Mixed Content" in entry["message"]
    ]
    assert mixed == []


# What the page would do with the origin's plain address (prod's defect): hls.js loads the
# playlist with XHR, which an https page may not point at http.
_FETCH_HTTP = """
const done = arguments[arguments.length - 1];
const request = new XMLHttpRequest();
request.open("GET", arguments[0]);
request.onload = () => done("loaded " + request.status);
request.onerror = () => done("refused");
request.send();
"""


def test_the_origins_http_address_is_refused_from_the_https_page(
    trusting_browser, secure_site: SecureSite
) -> None:
    trusting_browser.get(f"{secure_site.url}/watch/{STREAM}")
    trusting_browser.find_element(By.ID, "video")
    port = secure_site.origin_url.rsplit(":", 1)[1]
    plain = f"http://{ORIGIN_HOST}:{port}/live/{STREAM}.m3u8"
    assert trusting_browser.execute_async_script(_FETCH_HTTP, plain) == "refused"
    console = [entry["message"] for entry in trusting_browser.get_log("browser")]
    assert any("Mixed Content" in message and plain in message for message in console), console

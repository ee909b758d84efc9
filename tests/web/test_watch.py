"""`/watch/<stream>` in headless Chromium with real media: a coordinator (real PostgreSQL) whose
stream is live, a friend's edge serving an FLV recording over HTTP (it admits a viewer only after
the coordinator accepted the ticket in the viewer's URL, as SRS's `on_play` does) and an origin
serving another recording as HLS. The page plays from the edge; from the origin when the edge is
unreachable or stalls; and says where it plays from."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait
from streamr_coordinator.migrate import upgrade_to_head

from bench.coordinator_hooks import serving
from devenv import load_balancer, services
from scripts import vendor_player_libs as vendor
from tests.coordinator.test_mesh_client import API_KEY as HEADSCALE_API_KEY
from tests.coordinator.test_mesh_client import FakeHeadscale
from tests.coordinator.test_mesh_client import _handler as fake_headscale_handler

from .accessibility import assert_accessible
from .conftest import BOOTSTRAP, HOOK_SECRET, PASSWORD, requested_urls, save_screenshot
from .media import STREAM, Edge, Recordings, running_edge, running_origin
from .test_browser import sign_in, submit, text_of


@dataclass
class Site:
    url: str
    node: dict
    recording: bytes
    origin_requests: list[str]
    headscale: FakeHeadscale

    def announce_edge(self, play_base_url: str) -> None:
        """The node kit says where viewers play from it, and heartbeats."""
        token = {"Authorization": f"Bearer {self.node['node_token']}"}
        answer = httpx.put(
            f"{self.url}/api/v1/nodes/{self.node['id']}/edge",
            json={"play_base_url": play_base_url},
            headers=token,
        )
        assert answer.status_code == 204, answer.text
        assert httpx.post(f"{self.url}/api/v1/node/heartbeat", headers=token).status_code == 200

    def edge(self, **behaviour) -> Edge:
        return Edge(self.url, self.node["node_token"], self.recording, **behaviour)


def _register(client: httpx.Client, username: str, role: str) -> dict[str, str]:
    body = {"username": username, "password": PASSWORD}
    assert client.post("/api/v1/auth/register", json={**body, "role": role}).status_code == 201
    return {
        "Authorization": f"Bearer {client.post('/api/v1/auth/login', json=body).json()['token']}"
    }


def coordinator_environment(database_url: str, origin_url: str) -> dict[str, str]:
    """The watch page's coordinator: `origin_url` is the origin's play URL it hands out."""
    environment = {
        **os.environ,
        "STREAMR_DATABASE_URL": database_url,
        "STREAMR_TOKEN_PEPPER": "watch-pepper-0123456789abcdef0123456789abcdef",
        "STREAMR_HOOK_SECRET": HOOK_SECRET,
        "STREAMR_ADMIN_BOOTSTRAP_TOKEN": BOOTSTRAP,
        "STREAMR_AUTH_RATE_LIMIT_PER_MINUTE": "1000",
        "STREAMR_PAYOUT_CHECK_SECONDS": "0",
        "STREAMR_ORIGIN_PLAY_URL": origin_url,
        # The test edges listen on loopback: here loopback is "the mesh".
        "STREAMR_MESH_PREFIXES": '["127.0.0.0/8"]',
        "STREAMR_NODE_ONLINE_SECONDS": "3600",
        "STREAMR_LOG_LEVEL": "WARNING",
    }
    environment.pop("STREAMR_REDIS_URL", None)
    return environment


def serve_command(port: int) -> list[str]:
    command = [sys.executable, "-m", "streamr_coordinator", "serve", "--host", "127.0.0.1"]
    return [*command, "--port", str(port)]


def live_stream(client: httpx.Client) -> None:
    """A streamer's STREAM, published at the origin (its `on_publish` hook as SRS sends it)."""
    streamer = _register(client, "gardener", "streamer")
    stream = client.post("/api/v1/streams", json={"name": STREAM}, headers=streamer)
    assert stream.status_code == 201, stream.text
    publish = client.post(
        "/hooks/srs/on_publish",
        headers={"Authorization": f"Bearer {HOOK_SECRET}"},
        json={
            "server_id": "srs-origin",
            "service_id": "o1",
            "action": "on_publish",
            "client_id": "obs",
            "ip": "203.0.113.7",
            "vhost": "__defaultVhost__",
            "app": "live",
            "stream": STREAM,
            "param": f"?key={stream.json()['stream_key']}",
        },
    )
    assert publish.json() == {"code": 0}, publish.text


@pytest.fixture(scope="module")
def site(recordings: Recordings) -> Iterator[Site]:
    origin_requests: list[str] = []
    headscale = FakeHeadscale()
    mesh = ThreadingHTTPServer(("127.0.0.1", 0), fake_headscale_handler(headscale))
    threading.Thread(target=mesh.serve_forever, args=(0.05,), daemon=True).start()
    with (
        mesh,
        running_origin(recordings.origin_root, origin_requests) as origin_url,
        services.postgres(durable=False) as postgres,
    ):
        database_url = postgres.url()
        upgrade_to_head(database_url)
        port = services.free_port()
        environment = {
            **coordinator_environment(database_url, origin_url),
            "STREAMR_HEADSCALE_URL": f"http://127.0.0.1:{mesh.server_address[1]}",
            "STREAMR_HEADSCALE_API_KEY": HEADSCALE_API_KEY,
        }
        with serving(serve_command(port), port, environment) as (url, _):
            client = httpx.Client(base_url=url, timeout=10)
            live_stream(client)
            friend = _register(client, "shed-owner", "friend")
            node = client.post(
                "/api/v1/nodes", json={"name": "shed-pi", "capacity_viewers": 50}, headers=friend
            )
            assert node.status_code == 201, node.text
            yield Site(url, node.json(), recordings.flv, origin_requests, headscale)
            mesh.shutdown()
    assert headscale.violations == []


def _source(browser) -> tuple[str, str]:
    element = browser.find_element(By.ID, "source")
    return element.get_attribute("data-kind"), element.text


def _plays_from(browser, kind: str, past_seconds: float = 1.0, timeout: float = 40) -> str:
    """Wait until the page plays from `kind` and the video has advanced past `past_seconds`;
    what the page says about its source."""

    def playing(driver) -> bool:
        current = driver.execute_script("return document.getElementById('video').currentTime")
        return _source(driver)[0] == kind and current > past_seconds

    try:
        WebDriverWait(browser, timeout, poll_frequency=0.2).until(playing)
    except Exception:
        logs = [entry["message"] for entry in browser.get_log("browser")]
        raise AssertionError(
            f"not playing from {kind}: {_source(browser)}; console: {logs}"
        ) from None
    return _source(browser)[1]


def test_the_page_plays_from_a_friends_edge_and_says_so(
    browser, site: Site, screenshots: Path
) -> None:
    with running_edge(site.edge()) as edge:
        site.announce_edge(edge.url)
        requested_urls(browser)  # drain the log
        browser.get(f"{site.url}/watch/{STREAM}")
        said = _plays_from(browser, "edge")
        assert said == f"Playing from a friend's edge (node {site.node['id']})."
        assert browser.find_element(By.ID, "off-mesh").is_displayed() is False
        # The viewer's URL carried a ticket for this node, which the coordinator accepted.
        (ticket,) = edge.tickets
        assert ticket.startswith(f"t1.{site.node['id']}.")
        assert edge.probes >= 1  # reachability was checked before playing
        width = browser.execute_script("return document.getElementById('video').videoWidth")
        assert width == 320  # the edge's recording, decoded
        assert_accessible(browser)
        save_screenshot(browser, screenshots, "watch-edge")
        requested = requested_urls(browser)
    # Players and page come from the coordinator; media from the edge; nothing from elsewhere.
    assert f"{site.url}/static/vendor/mpegts.js" in requested
    hosts = {url.split("/")[2] for url in requested if url.startswith("http")}
    assert hosts <= {site.url.split("/")[2], edge.url.split("/")[2]}, hosts
    assert not site.origin_requests


def test_an_unreachable_edge_falls_back_to_the_origins_hls(
    browser, site: Site, screenshots: Path
) -> None:
    closed = f"http://127.0.0.1:{services.free_port()}"  # nothing listens: refused at once
    site.announce_edge(closed)
    site.origin_requests.clear()
    browser.get(f"{site.url}/watch/{STREAM}")
    said = _plays_from(browser, "origin")
    assert said == (
        "Playing from the origin (HLS through hls.js): no friend's edge is reachable from here."
    )
    source = browser.execute_script("return document.getElementById('video').currentSrc")
    assert source.startswith("blob:")  # Media Source Extensions, fed by hls.js
    assert browser.find_element(By.ID, "off-mesh").is_displayed()
    assert f"/live/{STREAM}.m3u8" in site.origin_requests
    assert any(path.endswith(".ts") for path in site.origin_requests)
    assert_accessible(browser)
    save_screenshot(browser, screenshots, "watch-origin")


def test_an_edge_that_never_answers_is_given_up_after_the_probe(browser, site: Site) -> None:
    """Off the mesh, an edge's address often swallows packets: connections neither succeed nor
    fail. The probe gives up after its own short time, so the viewer gets the origin without
    waiting for the player's (much longer) timeouts."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes connections; nobody ever reads or answers
        site.announce_edge(f"http://127.0.0.1:{silent.getsockname()[1]}")
        browser.get(f"{site.url}/watch/{STREAM}")
        said = _plays_from(browser, "origin")
    assert said.endswith(": no friend's edge is reachable from here.")
    assert browser.find_element(By.ID, "off-mesh").is_displayed()


def test_an_https_page_skips_http_edges_and_says_so(
    browser_over_https, site: Site, screenshots: Path
) -> None:
    """Issue 23, prod: the coordinator is https only, and an https page may not fetch http media
    (mixed content). The page (served over TLS here by devenv/load_balancer.py, as the load
    balancer serves it) does not even probe an edge offered only over http: it goes to the
    origin at once and says why.
    (Loopback is exempt from mixed-content blocking, so this origin plays here over http; on AWS
    the origin is reached under the page's own https origin, see test_watch_https.py.)"""
    with running_edge(site.edge()) as edge:
        site.announce_edge(edge.url)
        site.origin_requests.clear()
        with load_balancer.running((), site.url) as front:
            browser_over_https.get(f"{front.url}/watch/{STREAM}")
            said = _plays_from(browser_over_https, "origin")
            help_text = text_of(browser_over_https, "local-network")
            save_screenshot(browser_over_https, screenshots, "watch-https-origin")
    assert said == (
        "Playing from the origin (HLS through hls.js): this page is served over https and the "
        "friends' edge(s) offered serve only plain http, which the browser blocks."
    )
    assert edge.probes == 0 and edge.tickets == []  # never asked, no ticket spent
    assert f"/live/{STREAM}.m3u8" in site.origin_requests
    # Not the "join the mesh" advice: being on the mesh would not help here.
    assert browser_over_https.find_element(By.ID, "off-mesh").is_displayed() is False
    assert "local network" in help_text


def test_an_https_page_plays_from_an_edge_serving_https(browser_over_https, site: Site) -> None:
    """An edge that serves TLS (on AWS: for its edge name, see coordinator/README.md) is played
    from the https page like any other: probed, then HTTP-FLV through mpegts.js."""
    with (
        running_edge(site.edge()) as edge,
        load_balancer.running((), edge.url) as edge_front,
        load_balancer.running((), site.url) as page_front,
    ):
        site.announce_edge(edge_front.url)
        browser_over_https.get(f"{page_front.url}/watch/{STREAM}")
        said = _plays_from(browser_over_https, "edge")
    assert said == f"Playing from a friend's edge (node {site.node['id']})."
    assert edge.probes >= 1 and len(edge.tickets) == 1


# A browser without Media Source Extensions (Safari on iPhones before iOS 17.1): neither mpegts.js
# nor hls.js can work there, only the browser's own HLS.
_NO_MEDIA_SOURCE = """
for (const name of ["MediaSource", "ManagedMediaSource", "WebKitMediaSource"]) {
  Object.defineProperty(window, name, { value: undefined, configurable: true });
}
"""


def test_without_media_source_extensions_the_origin_plays_through_the_browsers_hls(
    browser, site: Site
) -> None:
    with running_edge(site.edge()) as edge:
        site.announce_edge(edge.url)
        script = browser.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": _NO_MEDIA_SOURCE}
        )
        try:
            browser.get(f"{site.url}/watch/{STREAM}")
            said = _plays_from(browser, "origin")
            source = browser.execute_script("return document.getElementById('video').currentSrc")
        finally:
            browser.execute_cdp_cmd(
                "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
            )
    assert said == (
        "Playing from the origin (HLS through the browser's own HLS): this browser cannot play "
        "from friends' edges (it has no Media Source Extensions)."
    )
    assert source.endswith(f"/live/{STREAM}.m3u8")  # the browser fetches the playlist itself
    assert edge.tickets == []  # no edge session was opened for a viewer who cannot use it
    assert browser.find_element(By.ID, "off-mesh").is_displayed() is False


def test_a_stalling_edge_is_left_for_the_origin(browser, site: Site) -> None:
    with running_edge(site.edge(stall_after=4)) as edge:
        site.announce_edge(edge.url)
        site.origin_requests.clear()
        browser.get(f"{site.url}/watch/{STREAM}")
        _plays_from(browser, "edge")
        said = _plays_from(browser, "origin", timeout=60)
    assert said.endswith(f": node {site.node['id']} stalled.")
    assert len(edge.tickets) == 1


def test_a_viewer_joins_through_an_invite_the_streamer_made(
    browser, site: Site, screenshots: Path
) -> None:
    """The streamer makes an invite on their page; someone without an account opens the link,
    presses the button and gets a viewer key with the steps for their device."""
    sign_in(browser, site, "gardener")
    browser.find_element(By.ID, "invite-hours").clear()
    browser.find_element(By.ID, "invite-hours").send_keys("2")
    submit(browser, "create-invite")
    link = text_of(browser, "new-invite-link")
    assert link.startswith(f"{site.url}/invite?code=inv_")
    assert "0 of 10" in text_of(browser, "invites")
    assert_accessible(browser)
    save_screenshot(browser, screenshots, "streamer-invite")

    browser.delete_all_cookies()  # the viewer has no account
    browser.get(link)
    assert f"You are invited to watch {STREAM}" in text_of(browser, "main")
    assert_accessible(browser)
    submit(browser, "open-invite")
    key = text_of(browser, "viewer-key")
    assert key == site.headscale.keys[-1]["key"]
    assert site.headscale.keys[-1]["aclTags"] == ["tag:viewer"]
    assert "?code=" not in browser.current_url  # the key page is the POST's answer
    for platform in ("linux", "macos", "windows", "android", "ios"):
        assert browser.find_element(By.ID, platform).is_displayed()
    assert key in text_of(browser, "command-linux")
    assert_accessible(browser)
    save_screenshot(browser, screenshots, "invite-key")
    watch = browser.find_element(By.LINK_TEXT, STREAM).get_attribute("href")
    assert watch == f"{site.url}/watch/{STREAM}"


def test_the_players_are_served_by_the_coordinator_and_nothing_else_from_vendor(
    site: Site,
) -> None:
    for name in ("mpegts.js", "hls.light.min.js"):
        answer = httpx.get(f"{site.url}/static/vendor/{name}")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
        assert answer.content == (vendor.VENDOR / name).read_bytes()
    assert httpx.get(f"{site.url}/static/vendor/mpegts.js.LICENSE").status_code == 404
    assert httpx.get(f"{site.url}/static/vendor/..%2Fwatch.js").status_code == 404


def test_an_unknown_stream_is_404_and_the_live_list_links_the_watch_page(site: Site) -> None:
    answer = httpx.get(f"{site.url}/watch/no-such-stream")
    assert answer.status_code == 404
    assert "There is no stream called no-such-stream" in answer.text
    listing = httpx.get(f"{site.url}/watch")
    assert f'href="/watch/{STREAM}"' in listing.text

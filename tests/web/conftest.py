"""A real coordinator (`python -m streamr_coordinator serve`) on real PostgreSQL, seeded through its
HTTP API (and SQL for history: finished viewer sessions, contribution reports, a paid period),
shared by the dashboard tests of one session."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from streamr_coordinator.domain.payouts import pay_period, period_containing
from streamr_coordinator.migrate import upgrade_to_head

from bench.coordinator_hooks import serving
from devenv import services

from .media import STREAM, Recordings, flv_recording, hls_recording

PASSWORD = "correct horse battery"
HOOK_SECRET = "web-hook-secret-0123456789abcdef0123456789"
BOOTSTRAP = "web-bootstrap-token-0123456789abcdef0123"
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".local" / "screenshots"
PERIOD_SECONDS = 3600


@dataclass
class Seeded:
    """Who exists and what they own, as the tests expect to see it (or never see it)."""

    url: str
    database_url: str
    streams: dict[str, dict] = field(default_factory=dict)  # name -> API response (with key)
    nodes: dict[str, dict] = field(default_factory=dict)  # name -> API response (with token)
    paid: dict[str, int] = field(default_factory=dict)  # friend -> total paid (minor units)
    # When the open viewer sessions started: between these two moments.
    viewers_since: tuple[datetime, datetime] = (datetime.min, datetime.min)

    def open_viewer_minutes(self, before: datetime, after: datetime) -> tuple[float, float]:
        """How long the open viewer sessions have run at some moment between these two: the
        least and the most, in minutes."""
        earliest, latest = self.viewers_since
        return (before - latest).total_seconds() / 60, (after - earliest).total_seconds() / 60

    def hook(
        self,
        action: str,
        stream: str,
        param: str = "",
        client_id: str = "c1",
        credential: str = HOOK_SECRET,
    ):
        """A hook as the host's relay sends it: the origin's secret (or an edge's node token)
        as the bearer credential."""
        body = {
            "server_id": "srs-origin",
            "action": action,
            "client_id": client_id,
            "ip": "203.0.113.7",
            "vhost": "__defaultVhost__",
            "app": "live",
            "stream": stream,
            "param": param,
        }
        return httpx.post(
            f"{self.url}/hooks/srs/{action}",
            json=body,
            headers={"Authorization": f"Bearer {credential}"},
        )


def _account(client: httpx.Client, username: str, role: str) -> dict[str, str]:
    body = {"username": username, "password": PASSWORD}
    if role == "admin":
        response = client.post(
            "/api/v1/auth/bootstrap-admin", json=body, headers={"X-Bootstrap-Token": BOOTSTRAP}
        )
    else:
        response = client.post("/api/v1/auth/register", json={**body, "role": role})
    assert response.status_code == 201, response.text
    login = client.post("/api/v1/auth/login", json=body)
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


def _seed(seeded: Seeded) -> None:
    client = httpx.Client(base_url=seeded.url, timeout=10)
    _account(client, "opsadmin", "admin")
    auth = {
        name: _account(client, name, role)
        for name, role in (
            ("alice", "streamer"),
            ("bob", "streamer"),
            ("carol", "friend"),
            ("dave", "friend"),
        )
    }
    for owner, name in (("alice", "alice-live"), ("alice", "alice-quiet"), ("bob", "bob-secret")):
        response = client.post(
            "/api/v1/streams",
            json={"name": name, "title": f"{name} show", "payout_pool_minor": 1000},
            headers=auth[owner],
        )
        assert response.status_code == 201, response.text
        seeded.streams[name] = response.json()
    for owner, name in (("carol", "carol-attic"), ("carol", "carol-cellar"), ("dave", "dave-den")):
        response = client.post(
            "/api/v1/nodes", json={"name": name, "capacity_viewers": 20}, headers=auth[owner]
        )
        assert response.status_code == 201, response.text
        seeded.nodes[name] = response.json()

    # Live now: alice-live and bob-secret publish; viewers on carol's edge, dave's edge, the origin.
    for name in ("alice-live", "bob-secret"):
        key = seeded.streams[name]["stream_key"]
        assert seeded.hook("on_publish", name, f"?key={key}").status_code == 200
    for number, node in enumerate(("carol-attic", "dave-den")):
        token = {"Authorization": f"Bearer {seeded.nodes[node]['node_token']}"}
        edge = client.put(
            f"/api/v1/nodes/{seeded.nodes[node]['id']}/edge",
            json={"play_base_url": f"http://100.64.0.{number + 10}:8080"},
            headers=token,
        )
        assert edge.status_code == 204, edge.text
        assert client.post("/api/v1/node/heartbeat", headers=token).status_code in (200, 204)

    def routed_viewer(stream: str, node: str, viewer: str) -> None:
        """A viewer asks where to play, and plays the node's edge with its ticket."""
        edges = client.get(f"/api/v1/play/{stream}").json()["edges"]
        (url,) = [e["flv_url"] for e in edges if e["node_id"] == seeded.nodes[node]["id"]]
        param = "?" + url.partition("?")[2]
        token = seeded.nodes[node]["node_token"]
        answer = seeded.hook("on_play", stream, param, client_id=viewer, credential=token)
        assert answer.status_code == 200, answer.text

    viewers_from = datetime.now(UTC)
    routed_viewer("alice-live", "carol-attic", "v1")
    assert seeded.hook("on_play", "alice-live", client_id="v2").status_code == 200
    routed_viewer("bob-secret", "dave-den", "v3")
    seeded.viewers_since = (viewers_from, datetime.now(UTC))

    # History: an hour ago, 30 viewer-minutes from carol's attic and 10 from the origin on
    # alice-live; reports received in the period before the current one, then that period paid.
    now = datetime.now(UTC)
    start, end = period_containing(now - timedelta(seconds=PERIOD_SECONDS), PERIOD_SECONDS)
    engine = create_engine(seeded.database_url)
    ids = {name: stream["id"] for name, stream in seeded.streams.items()}
    node_ids = {name: node["id"] for name, node in seeded.nodes.items()}
    with engine.begin() as connection:
        sessions = [
            (ids["alice-live"], node_ids["carol-attic"], 30),
            (ids["alice-live"], None, 10),
            (ids["bob-secret"], node_ids["dave-den"], 20),
        ]
        for index, (stream_id, node_id, minutes) in enumerate(sessions):
            connection.execute(
                text(
                    "INSERT INTO viewer_sessions (stream_id, node_id, server_id, client_id,"
                    " client_ip, started_at, ended_at) VALUES (:s, :n, 'srs', :c, '198.51.100.1',"
                    " :start, :end)"
                ),
                {
                    "s": stream_id,
                    "n": node_id,
                    "c": f"old{index}",
                    "start": now - timedelta(minutes=50),
                    "end": now - timedelta(minutes=50 - minutes),
                },
            )
        for node, stream, verified in (
            ("carol-attic", "alice-live", 3_000_000),
            ("carol-cellar", "alice-live", 1_000_000),
            ("dave-den", "bob-secret", 2_000_000),
        ):
            connection.execute(
                text(
                    "INSERT INTO contribution_reports (node_id, stream_id, interval_start,"
                    " interval_end, bytes_served, verified_bytes, viewers, received_at)"
                    " VALUES (:n, :s, :a, :b, :v, :v, 1, :r)"
                ),
                {
                    "n": node_ids[node],
                    "s": ids[stream],
                    "a": start,
                    "b": start + timedelta(seconds=60),
                    "v": verified,
                    "r": start + timedelta(seconds=90),
                },
            )
    engine.dispose()

    async def pay() -> None:
        async_engine = create_async_engine(seeded.database_url)
        async with async_engine.begin() as connection:
            result = await pay_period(connection, start, end)
        await async_engine.dispose()
        assert result.paid_now and result.total_minor == 2000, result

    asyncio.run(pay())
    # Pools of 1000 split by verified bytes at full trust.
    seeded.paid = {"carol": 1000, "dave": 1000}


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Recordings:
    media = tmp_path_factory.mktemp("media")
    return Recordings(flv_recording(media).read_bytes(), hls_recording(media / "origin", STREAM))


@pytest.fixture(scope="session")
def coordinator() -> Iterator[Seeded]:
    with services.postgres(durable=False) as postgres:
        database_url = postgres.url()
        upgrade_to_head(database_url)
        port = services.free_port()
        environment = {
            **os.environ,
            "STREAMR_DATABASE_URL": database_url,
            "STREAMR_TOKEN_PEPPER": "web-pepper-0123456789abcdef0123456789abcdef",
            "STREAMR_HOOK_SECRET": HOOK_SECRET,
            "STREAMR_ADMIN_BOOTSTRAP_TOKEN": BOOTSTRAP,
            "STREAMR_AUTH_RATE_LIMIT_PER_MINUTE": "1000",
            "STREAMR_PAYOUT_CHECK_SECONDS": "0",
            "STREAMR_ORIGIN_PLAY_URL": "http://origin.example.net:8080",
            # Another host than the play URL's: the page must name the configured publish URL.
            "STREAMR_ORIGIN_PUBLISH_URL": "rtmp://ingest.example.net/live",
            "STREAMR_TRUSTED_PROXIES": '["127.0.0.0/8"]',
            "STREAMR_LOG_LEVEL": "WARNING",
        }
        environment.pop("STREAMR_REDIS_URL", None)
        command = [sys.executable, "-m", "streamr_coordinator", "serve", "--host", "127.0.0.1"]
        with serving([*command, "--port", str(port)], port, environment) as (url, _):
            seeded = Seeded(url, database_url)
            _seed(seeded)
            yield seeded


CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


def chromium(javascript: bool = True, arguments: tuple[str, ...] = ()):
    """Headless Debian Chromium driven through its own chromedriver (nothing is downloaded).

    It resolves no host name and reaches only loopback, as on a machine with no network: a page
    that needs anything from elsewhere (a CDN) breaks here. Its performance log records every
    request the pages make (see `requested_urls`). `arguments`: more command-line switches."""
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.fail(
            "Debian chromium and chromium-driver are missing: run `make system-deps`", False
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # we run as root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1400",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        *arguments,
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def requested_urls(driver) -> list[str]:
    """Every URL the browser's pages requested since the last call (it drains the log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


@pytest.fixture(scope="session")
def browser():
    driver = chromium(javascript=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def browser_over_https():
    """For pages behind `devenv/load_balancer.py`, whose certificate each run makes anew."""
    driver = chromium(True, ("--ignore-certificate-errors",))
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def browser_without_javascript():
    driver = chromium(javascript=False)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def save_screenshot(driver, directory: Path, name: str) -> Path:
    """Into pytest's tmp dir, and a copy at .local/screenshots/ to look at after the run."""
    path = directory / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot for {name}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / path.name)
    return path


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def signed_in(seeded: Seeded, username: str, headers: dict[str, str] | None = None):
    """A client holding `username`'s session cookie, and the sign-in response."""
    client = httpx.Client(base_url=seeded.url, timeout=10, headers=headers or {})
    form = client.get("/signin")
    token = CSRF.search(form.text).group(1)
    response = client.post(
        "/signin", data={"csrf_token": token, "username": username, "password": PASSWORD}
    )
    return client, response


def csrf_of(page: httpx.Response) -> str:
    return CSRF.search(page.text).group(1)

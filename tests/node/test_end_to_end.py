"""A friend's node from registration to a paid balance, on the real coordinator (a subprocess on
real PostgreSQL and Redis) with the real reporter (a plain-python3 process per poll, so every poll
is also a restart), fed by a fake SRS API: the coordinator is stopped for a while, an answer is
"lost" (the report arrives twice), the counter resets, the token is renewed — and what is stored is
exactly what SRS served, once. Hooks reach the coordinator as on the hosts, through the origin's and
the edge's hook relays (`srs/hook_relay.py` processes); the coordinator's log holds no secret."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from streamr_coordinator.context import AppContext
from streamr_coordinator.db import make_engine
from streamr_coordinator.domain import payouts
from streamr_coordinator.settings import Settings

from scripts.record_srs import HookRelay

from .conftest import HOOK_SECRET, PASSWORD, PEPPER, Account, Api, CoordinatorProcess, FakeSrs

REPORTER = Path("node/reporter.py")
# The reporter must run on a bare python3 (a Raspberry Pi): never the virtualenv's.
PLAIN_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
POOL_MINOR = 10_000
STEP = timedelta(seconds=10)


def write_state(state_dir: Path, node: dict) -> None:
    """What setup.sh leaves for the reporter."""
    state_dir.mkdir(mode=0o700)
    path = state_dir / "node.json"
    fields = {key: node[key] for key in ("id", "name", "node_token", "token_expires_at")}
    path.write_text(json.dumps(fields))
    path.chmod(0o600)


def run_reporter(
    coordinator: str, state_dir: Path, srs: FakeSrs, now: datetime, status: int = 0
) -> str:
    arguments = ["--coordinator", coordinator, "--state-dir", str(state_dir), "--srs-api", srs.url]
    result = subprocess.run(
        [PLAIN_PYTHON, str(REPORTER), *arguments, "--once", "--now", now.isoformat()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ["PATH"]},  # nothing from the virtualenv
    )
    assert result.returncode == status, result.stderr
    return result.stderr


def pay_everything(database_url: str) -> list[payouts.PeriodResult]:
    settings = Settings(database_url=database_url, token_pepper=PEPPER, hook_secret=HOOK_SECRET)

    async def pay() -> list[payouts.PeriodResult]:
        engine = make_engine(settings)
        ctx = AppContext.single_engine(settings, engine)
        try:
            return await payouts.pay_due_periods(ctx, now=datetime.now(UTC) + timedelta(hours=2))
        finally:
            await engine.dispose()

    return asyncio.run(pay())


def unsent(state_dir: Path) -> list[dict]:
    """The report items in the reporter's on-disk queue."""
    lines = (state_dir / "spool.jsonl").read_text().splitlines()
    return [item for line in lines for item in json.loads(line)["items"]]


@pytest.fixture
def hook_relays() -> Iterator[list[HookRelay]]:
    """The relay processes a test starts, stopped at its end."""
    started: list[HookRelay] = []
    yield started
    for process in started:
        process.stop()


@dataclass
class Relay:
    """A streamer's stream, live at the origin; a friend, the friend's node registered with the
    friend's token (its state directory written as setup.sh does, its edge online); and viewers
    who ask the coordinator where to play and then play from the node's edge."""

    api: Api
    database: Engine
    friend: Account
    node: dict
    stream: str
    state_dir: Path
    origin_relay: HookRelay
    edge_relay: HookRelay
    stream_key: str = ""
    tickets: list[str] = field(default_factory=list)  # what the coordinator gave viewers

    @classmethod
    def start(
        cls,
        coordinator: CoordinatorProcess,
        tmp_path: Path,
        hook_relays: list[HookRelay],
        node_name: str,
        stream_name: str,
        pool_minor: int = 0,
    ) -> Relay:
        api = Api(coordinator.url)
        streamer, friend = api.account("streamer"), api.account("friend")
        stream = api.client.post(
            "/api/v1/streams",
            json={"name": stream_name, "payout_pool_minor": pool_minor},
            headers=streamer.auth,
        )
        assert stream.status_code == 201, stream.text
        registered = api.client.post(
            "/api/v1/nodes", json={"name": node_name, "capacity_viewers": 20}, headers=friend.auth
        )
        assert registered.status_code == 201, registered.text
        state_dir = tmp_path / "state"
        write_state(state_dir, registered.json())
        # The origin host's relay holds the hook secret; the edge's reads the node's token.
        secret_file = tmp_path / "hook-credential"
        secret_file.write_text(HOOK_SECRET + "\n")
        secret_file.chmod(0o600)
        origin_log, edge_log = tmp_path / "origin-relay.log", tmp_path / "edge-relay.log"
        hook_relays.append(HookRelay(coordinator.url, secret_file, origin_log))
        hook_relays.append(
            HookRelay(coordinator.url, state_dir / "node.json", edge_log, key="node_token")
        )
        database = create_engine(coordinator.database_url)
        relay = cls(
            api, database, friend, registered.json(), stream_name, state_dir, *hook_relays[-2:]
        )
        relay.stream_key = stream.json()["stream_key"]
        relay.origin_hook("on_publish", "obs", f"?key={relay.stream_key}")
        node_auth = {"Authorization": f"Bearer {relay.node['node_token']}"}
        edge = api.client.put(
            f"/api/v1/nodes/{relay.node['id']}/edge",
            json={"play_base_url": "http://100.64.0.9:8080"},
            headers=node_auth,
        )
        assert edge.status_code == 204, edge.text
        assert api.client.post("/api/v1/node/heartbeat", headers=node_auth).status_code == 200
        return relay

    def event(self, action: str, client_id: str, param: str, server_id: str) -> dict:
        """A hook body as SRS sends it (see tests/reference/srs/hooks.jsonl)."""
        body = {
            "server_id": server_id,
            "service_id": "svc1",
            "action": action,
            "client_id": client_id,
            "ip": "100.64.0.9",
            "vhost": "__defaultVhost__",
            "app": "live",
            "tcUrl": "rtmp://100.64.0.2/live",
            "stream": self.stream,
            "param": param,
            "stream_url": f"/live/{self.stream}",
            "stream_id": "vid-1",
        }
        if action == "on_play":
            body["pageUrl"] = ""
        return body

    def origin_hook(self, action: str, client_id: str, param: str = "") -> None:
        """What the origin's SRS sends to its relay (no credential: the relay adds the secret)."""
        body = self.event(action, client_id, param, "streamr-origin")
        answer = httpx.post(f"{self.origin_relay.url}/hooks/srs/{action}", json=body)
        assert answer.json() == {"code": 0}, answer.text

    def hook(self, action: str, viewer: str) -> None:
        """What the edge's SRS sends when a viewer starts or stops playing. A viewer first asks
        the coordinator where to play and gets the node's edge URL with a ticket; the edge's SRS
        passes the URL's query on, to its on_play hook and to the origin when it pulls."""
        param = ""
        if action == "on_play":
            answer = self.api.client.get(f"/api/v1/play/{self.stream}")
            assert answer.status_code == 200, answer.text
            (url,) = [
                e["flv_url"] for e in answer.json()["edges"] if e["node_id"] == self.node["id"]
            ]
            param = "?" + urlsplit(url).query
            self.tickets.append(parse_qs(urlsplit(url).query)["ticket"][0])
        body = self.event(action, viewer, param, self.node["name"].replace("_", "-"))
        answer = httpx.post(f"{self.edge_relay.url}/hooks/srs/{action}", json=body)
        assert answer.json() == {"code": 0}, answer.text
        if action == "on_play":
            self.origin_hook("on_play", "edge-pull", param)  # the edge pulls (once) from the origin

    def viewers_since(self, hours: int, *viewers: str) -> None:
        for viewer in viewers:
            self.hook("on_play", viewer)
        for table in ("viewer_sessions", "edge_pulls", "broadcasts"):
            self.sql(
                f"UPDATE {table} SET started_at = now() - make_interval(hours => :hours)",  # noqa: S608
                hours=hours,
            )

    def sql(self, statement: str, **params) -> list[tuple]:
        with self.database.begin() as connection:
            result = connection.execute(text(statement), params)
            return result.all() if result.returns_rows else []


def test_a_friend_relays_reports_through_restarts_and_an_outage_and_is_paid_the_pool(
    coordinator: CoordinatorProcess,
    fake_srs: FakeSrs,
    tmp_path: Path,
    hook_relays: list[HookRelay],
) -> None:
    relay = Relay.start(
        coordinator, tmp_path, hook_relays, "pi-in-the-hall", "friday-show", POOL_MINOR
    )
    api, friend, node, name, state_dir = (
        relay.api,
        relay.friend,
        relay.node,
        relay.stream,
        relay.state_dir,
    )
    node_auth = {"Authorization": f"Bearer {node['node_token']}"}
    # Two viewers play from the edge (its SRS calls the hooks with the node token) since an hour.
    relay.viewers_since(1, "v1", "v2")

    # The series: a poll every 10 s of the reporter's clock, from 30 minutes ago.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    served = 0  # what the fake SRS has served since the first poll
    counter = 0
    poll = 0

    def advance_and_poll(increment: int | None = None, reset_to: int | None = None) -> str:
        nonlocal served, counter, poll
        if poll > 0:
            if reset_to is not None:
                counter, served = reset_to, served + reset_to
            else:
                counter, served = counter + increment, served + increment
        fake_srs.streams = {name: {"send_bytes": counter, "clients": 2}}
        output = run_reporter(coordinator.url, state_dir, fake_srs, start + poll * STEP)
        poll += 1
        return output

    def queued() -> list[dict]:
        return unsent(state_dir)

    # Up and running: every poll is reported at once.
    for step in range(10):
        advance_and_poll(increment=400_000 + step * 1_000)
    assert queued() == []
    mine = api.client.get("/api/v1/nodes", headers=friend.auth).json()
    assert [(n["name"], n["online"]) for n in mine] == [("pi-in-the-hall", True)]

    # The coordinator goes away: reports queue up on disk, across reporter restarts.
    coordinator.stop()
    for step in range(8):
        output = advance_and_poll(increment=300_000 + step)
        assert "items stay queued" in output
    advance_and_poll(reset_to=123_456)  # SRS restarted the stream meanwhile
    assert len(queued()) == 9
    coordinator.start()

    # One queued report reaches the coordinator, but the answer is lost: it is sent again later.
    early = api.client.post(
        f"/api/v1/nodes/{node['id']}/reports", json={"reports": queued()[:1]}, headers=node_auth
    )
    assert early.json()["results"][0]["status"] == "accepted"

    # Time passes: the token is within a week of expiring, so the reporter renews it first.
    state = json.loads((state_dir / "node.json").read_text())
    state["token_expires_at"] = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    (state_dir / "node.json").write_text(json.dumps(state))
    output = advance_and_poll(increment=500_000)
    assert "renewed the node token" in output
    renewed = json.loads((state_dir / "node.json").read_text())
    assert renewed["node_token"] != node["node_token"]
    assert oct((state_dir / "node.json").stat().st_mode & 0o777) == "0o600"
    assert queued() == []

    for step in range(5):
        advance_and_poll(increment=200_000 + step)
    assert queued() == []

    relay.hook("on_stop", "v1")  # the viewers leave; their sessions end now
    relay.hook("on_stop", "v2")
    ((count, total, periods, verified),) = relay.sql(
        "SELECT count(*), sum(bytes_served), count(DISTINCT date_trunc('hour', received_at)), "
        "count(*) FILTER (WHERE verified_bytes = bytes_served) FROM contribution_reports"
    )
    assert (count, total) == (poll - 1, served)  # one report per interval: none lost, none twice
    assert verified == count  # two viewers at 4 Mb/s could watch all of it

    paid = pay_everything(coordinator.database_url)
    assert sum(result.total_minor for result in paid) == POOL_MINOR * periods
    earnings = api.client.get("/api/v1/earnings", headers=friend.auth).json()
    assert earnings["balance_minor"] == POOL_MINOR * periods  # the only relay gets each pool
    assert earnings["nodes"] == [{"id": node["id"], "name": "pi-in-the-hall", "trust": 1.0}]

    # The node leaves (teardown): the reporter stops with the status its unit does not restart.
    renewed_auth = {"Authorization": f"Bearer {renewed['node_token']}"}
    assert api.client.delete("/api/v1/node", headers=renewed_auth).status_code == 204
    output = run_reporter(coordinator.url, state_dir, fake_srs, start + poll * STEP, status=3)
    assert "the node token is no longer valid" in output
    relay.database.dispose()

    # Nothing secret in what the coordinator and the relays logged through all of that.
    secrets = {
        "hook secret": HOOK_SECRET,
        "node token": node["node_token"],
        "renewed node token": renewed["node_token"],
        "stream key": relay.stream_key,
        "password": PASSWORD,
        "friend's bearer token": friend.token,
        "ticket": relay.tickets[0],
    }
    coordinator_log = coordinator.log_path.read_text()
    assert "/hooks/srs/on_play" in coordinator_log  # the relayed hooks are in it
    for log in (coordinator_log, relay.origin_relay.log(), relay.edge_relay.log()):
        assert [name for name, value in secrets.items() if value in log] == []


def test_the_reporter_service_killed_and_restarted_through_an_outage_continues_the_series(
    coordinator: CoordinatorProcess,
    fake_srs: FakeSrs,
    tmp_path: Path,
    hook_relays: list[HookRelay],
) -> None:
    """The long-running reporter (as systemd runs it) on the real clock: SIGKILLed and started
    again, the coordinator stopped meanwhile. Its intervals never overlap, and what is stored is
    exactly what the SRS counter moved by between the first and the last sample."""
    relay = Relay.start(coordinator, tmp_path, hook_relays, "garage-box", "live-now")
    name, state_dir = relay.stream, relay.state_dir
    relay.viewers_since(1, "v1")

    first_counter = 1_000_000
    fake_srs.streams = {name: {"send_bytes": first_counter, "clients": 1}}
    command = [PLAIN_PYTHON, str(REPORTER), "--coordinator", coordinator.url]
    command += ["--state-dir", str(state_dir), "--srs-api", fake_srs.url, "--interval", "1"]
    log = (tmp_path / "reporter.log").open("ab")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, stdout=log, stderr=log, env={"PATH": os.environ["PATH"]})

    def serve_polls(polls: int) -> None:
        """Move the counter once after each poll the reporter makes (three requests: the vhost
        counter, the clients, the vhost counter again), `polls` times."""
        for _ in range(polls):
            seen = fake_srs.requests
            deadline = time.monotonic() + 30
            while fake_srs.requests < seen + 3 or fake_srs.requests % 3:
                assert time.monotonic() < deadline, "the reporter stopped polling"
                time.sleep(0.05)
            counters = fake_srs.streams[name]
            fake_srs.streams = {name: {**counters, "send_bytes": counters["send_bytes"] + 250_000}}

    reporter = start()
    serve_polls(4)
    reporter.kill()  # SIGKILL: no chance to tidy up
    reporter.wait()
    coordinator.stop()
    reporter = start()
    serve_polls(4)  # the coordinator is away: these queue up
    coordinator.start()
    serve_polls(3)

    deadline = time.monotonic() + 60  # the counter stands still now: nothing new is queued
    while unsent(state_dir):
        assert time.monotonic() < deadline, "the queue did not drain"
        time.sleep(0.2)
    reporter.terminate()
    reporter.wait()
    log.close()

    rows = relay.sql(
        "SELECT interval_start, interval_end, bytes_served FROM contribution_reports "
        "ORDER BY interval_start"
    )
    last = json.loads((state_dir / "spool.jsonl").read_text().splitlines()[-1])["sample"]
    assert unsent(state_dir) == []
    assert len(rows) >= 8
    # No overlap (a poll that saw no bytes move makes no report, so gaps are allowed) ...
    assert all(rows[i][1] <= rows[i + 1][0] for i in range(len(rows) - 1))
    # ... and every byte the counter moved by is in exactly one report, across the kill.
    assert sum(row[2] for row in rows) == last["sent"] - first_counter
    relay.database.dispose()


def test_a_long_outages_backlog_drains_in_batches_of_at_most_500(
    coordinator: CoordinatorProcess,
    fake_srs: FakeSrs,
    tmp_path: Path,
    hook_relays: list[HookRelay],
) -> None:
    """1 200 queued reports (over three hours of 10 s intervals, as a day-long outage leaves
    them) reach the coordinator in three batches, all accepted, and leave the queue empty."""
    relay = Relay.start(coordinator, tmp_path, hook_relays, "backlog-box", "long-show")
    relay.viewers_since(4, "v1")
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3, minutes=30)
    backlog = [
        {
            "stream": relay.stream,
            "interval_start": (first + index * STEP).isoformat(),
            "interval_end": (first + (index + 1) * STEP).isoformat(),
            "bytes_served": 10_000 + index,
            "viewers": 1,
        }
        for index in range(1_200)
    ]
    spool = relay.state_dir / "spool.jsonl"
    spool.write_text(json.dumps({"items": backlog}) + "\n")
    fake_srs.streams = {relay.stream: {"send_bytes": 0, "clients": 1}}

    run_reporter(coordinator.url, relay.state_dir, fake_srs, datetime.now(UTC))

    assert unsent(relay.state_dir) == []
    ((count, total),) = relay.sql("SELECT count(*), sum(bytes_served) FROM contribution_reports")
    assert (count, total) == (1_200, sum(item["bytes_served"] for item in backlog))
    posts = [
        line
        for line in coordinator.log_path.read_text().splitlines()
        if f'"POST /api/v1/nodes/{relay.node["id"]}/reports 200"' in line
    ]
    assert len(posts) == 3  # 500 + 500 + 200
    relay.database.dispose()

#!/usr/bin/env python3
"""A friend's node end to end on a real SRS: the coordinator (`python -m streamr_coordinator
serve` on local PostgreSQL and Redis from devenv), a real SRS origin and friend edge on loopback
(configs from `srs/render.py`, hooks through each host's relay, `srs/hook_relay.py`, which adds the
hook secret or the node token as a header), the reporter (`node/reporter.py` on plain python3,
default interval) on the edge's API, ffmpeg publishers (one with a wrong key and one without a key,
both refused, then the streamer's), viewers on the edge (HTTP-FLV first, RTMP, a 5-second one,
and one without a ticket, refused), then the period is paid.

Prints what SRS counted as sent, what the coordinator stored from the reporter, the error, the
viewer sessions it saw and the friend's balance; exits 1 when a viewer got nothing, a refused
client got in, the error is over 5 % or the friend is not paid.

    .venv/bin/python scripts/real_edge_run.py --srs /path/to/srs/trunk/objs/srs \
        [--record tests/fixtures/srs/logs-real-edge-run --srs-source "..."]

`--record DIR` keeps what every process logged (both SRS consoles, both relays, the coordinator)
and the run's throwaway credentials in `secrets.json`, for tests/srs/test_logs_hold_no_secret.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from record_srs import (
    STREAM,
    Clock,
    HookRelay,
    Ports,
    Srs,
    Viewer,
    credential_file,
    publisher,
    relisten,
    srs_version,
)
from sqlalchemy import create_engine, text
from streamr_coordinator.context import AppContext
from streamr_coordinator.db import make_engine
from streamr_coordinator.domain import payouts
from streamr_coordinator.migrate import upgrade_to_head
from streamr_coordinator.settings import Settings

from devenv import services
from srs.render import EdgeSettings, OriginSettings, render_edge, render_origin

ROOT = Path(__file__).resolve().parent.parent
PEPPER = "real-edge-run-pepper-0123456789abcdef0123"
HOOK_SECRET = "real-edge-run-hook-secret-0123456789abcd"  # noqa: S105 - a throwaway local run
PASSWORD = "correct horse battery"  # noqa: S105
POOL_MINOR = 10_000
PUBLISH_SECONDS = 45
VIEWERS = (
    Viewer("flv-first", "flv", "edge", start=5, seconds=24),
    Viewer("rtmp", "rtmp", "edge", start=9, seconds=10),
    Viewer("flv-5s", "flv", "edge", start=14, seconds=5),
)
# Refused: no ticket from the coordinator, so the edge's on_play is denied.
TICKETLESS = Viewer("flv-no-ticket", "flv", "edge", start=12, seconds=3)
WRONG_KEY = "not-the-stream-key-0123456789"
SETTLE_SECONDS = 15  # after the last viewer: the reporter's last interval, then its send


def account(api: httpx.Client, username: str, role: str) -> dict[str, str]:
    body = {"username": username, "password": PASSWORD}
    created = api.post("/api/v1/auth/register", json={**body, "role": role})
    created.raise_for_status()
    login = api.post("/api/v1/auth/login", json=body)
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['token']}"}


def queued(state: Path) -> int:
    """Report items still in the reporter's on-disk queue."""
    spool = state / "spool.jsonl"
    lines = spool.read_text().splitlines() if spool.exists() else []
    return sum(len(json.loads(line).get("items", [])) for line in lines if line.strip())


def pay(database_url: str) -> None:
    settings = Settings(database_url=database_url, token_pepper=PEPPER, hook_secret=HOOK_SECRET)

    async def run() -> None:
        engine = make_engine(settings)
        ctx = AppContext.single_engine(settings, engine)
        try:
            await payouts.pay_due_periods(ctx, now=datetime.now(UTC) + timedelta(hours=2))
        finally:
            await engine.dispose()

    asyncio.run(run())


@contextlib.contextmanager
def coordinator(database_url: str, work: Path, **settings: str) -> Iterator[httpx.Client]:
    """`streamr-coordinator serve` on a free loopback port (log in `work`), once it answers;
    `settings` are more STREAMR_* variables."""
    port = services.free_port()
    environment = {
        **os.environ,
        "STREAMR_DATABASE_URL": database_url,
        "STREAMR_TOKEN_PEPPER": PEPPER,
        "STREAMR_HOOK_SECRET": HOOK_SECRET,
        "STREAMR_PAYOUT_CHECK_SECONDS": "0",
        # No mesh on this machine: edges play from loopback, so loopback is "the mesh".
        "STREAMR_MESH_PREFIXES": '["127.0.0.0/8"]',
        **settings,
    }
    command = [sys.executable, "-m", "streamr_coordinator", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    with (work / "coordinator.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own coordinator
            command, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.monotonic() + 30
        while True:
            try:
                api.get("/health").raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield api
    finally:
        process.terminate()
        process.wait(timeout=20)


def run(binary: Path, work: Path, secrets: dict[str, list[str]]) -> int:
    with services.postgres() as postgres, services.redis() as redis:
        redis.start()
        database_url = postgres.create_database("real_edge_run")
        upgrade_to_head(database_url)
        with coordinator(database_url, work, STREAMR_REDIS_URL=redis.url) as api:
            return relay(api, str(api.base_url).rstrip("/"), database_url, binary, work, secrets)


def relay(
    api: httpx.Client,
    coordinator_url: str,
    database_url: str,
    binary: Path,
    work: Path,
    secrets: dict[str, list[str]],
) -> int:
    streamer, friend = account(api, "streamer1", "streamer"), account(api, "friend1", "friend")
    bearer = [header["Authorization"].split(" ", 1)[1] for header in (streamer, friend)]
    created = api.post(
        "/api/v1/streams", json={"name": STREAM, "payout_pool_minor": POOL_MINOR}, headers=streamer
    )
    created.raise_for_status()
    stream_key = created.json()["stream_key"]
    registered = api.post(
        "/api/v1/nodes", json={"name": "real-edge", "capacity_viewers": 10}, headers=friend
    )
    registered.raise_for_status()
    node = registered.json()
    state = work / "state"
    state.mkdir(mode=0o700)
    fields = ("id", "name", "node_token", "token_expires_at")
    (state / "node.json").write_text(json.dumps({key: node[key] for key in fields}))
    (state / "node.json").chmod(0o600)
    secrets.update(
        hook_secret=[HOOK_SECRET],
        node_token=[node["node_token"]],
        stream_key=[stream_key, WRONG_KEY],
        password=[PASSWORD],
        bearer_token=bearer,
    )

    relays = [
        HookRelay(
            coordinator_url,
            credential_file(work, "hook-credential", HOOK_SECRET),
            work / "origin-relay.log",
        ),
        HookRelay(coordinator_url, state / "node.json", work / "edge-relay.log", key="node_token"),
    ]
    ports = {"origin": Ports.pick(), "edge": Ports.pick()}
    origin_config = render_origin(
        OriginSettings(coordinator_url, server_id="origin", hook_relay_port=relays[0].port)
    )
    edge_config = render_edge(
        EdgeSettings("127.0.0.1", server_id="real-edge", hook_relay_port=relays[1].port)
    )
    origin = Srs(binary, "origin", relisten(origin_config, ports["origin"]), ports["origin"], work)
    edge = Srs(
        binary,
        "edge",
        relisten(edge_config, ports["edge"], ports["origin"].rtmp),
        ports["edge"],
        work,
    )
    plain_python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    reporter_command = [plain_python, str(ROOT / "node" / "reporter.py")]
    reporter_command += ["--coordinator", coordinator_url, "--state-dir", str(state)]
    reporter_command += ["--srs-api", f"http://127.0.0.1:{ports['edge'].api}"]
    with (work / "reporter.log").open("wb") as log:
        reporter = subprocess.Popen(  # noqa: S603 - our own reporter
            reporter_command, stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin"}
        )
    node_auth = {"Authorization": f"Bearer {node['node_token']}"}
    announced = api.put(
        f"/api/v1/nodes/{node['id']}/edge",
        json={"play_base_url": f"http://127.0.0.1:{ports['edge'].http}"},
        headers=node_auth,
    )
    announced.raise_for_status()
    try:
        # Refused at the origin's on_publish: SRS logs the denial (with the hook's URL and body).
        refused_publishes = [
            publisher(ports["origin"], 3, key).wait(timeout=30) for key in (WRONG_KEY, "")
        ]
        clock = Clock()
        publishing = publisher(ports["origin"], PUBLISH_SECONDS, stream_key)
        viewers = []
        for viewer in VIEWERS:
            delay = max(0.0, viewer.start - clock.now())
            thread = threading.Timer(delay, routed, (api, node["id"], viewer, clock, ports))
            thread.start()
            viewers.append(thread)
        ticketless = threading.Timer(TICKETLESS.start, TICKETLESS.run, (clock, ports))
        ticketless.start()
        viewers.append(ticketless)
        for thread in viewers:
            thread.join()
        secrets["ticket"] = [v.query.removeprefix("?ticket=") for v in VIEWERS if v.query]
        time.sleep(SETTLE_SECONDS)
        counted = sum(v["send_bytes"] for v in edge.api("vhosts")["vhosts"])
        deadline = time.monotonic() + 60
        while queued(state) and time.monotonic() < deadline:
            time.sleep(0.5)
        publishing.wait(timeout=PUBLISH_SECONDS + 30)
    finally:
        reporter.terminate()
        reporter.wait(timeout=20)
        edge.stop()
        origin.stop()
        for hook_relay in relays:
            hook_relay.stop()

    database = create_engine(database_url)
    with database.begin() as connection:
        reports = connection.execute(
            text(
                "SELECT count(*), coalesce(sum(bytes_served), 0), coalesce(sum(verified_bytes), 0) "
                "FROM contribution_reports"
            )
        ).one()
        reports = tuple(int(value) for value in reports)
        sessions = connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE node_id IS NOT NULL), count(*) FROM viewer_sessions"
            )
        ).one()
    database.dispose()
    pay(database_url)
    earnings = api.get("/api/v1/earnings", headers=friend).json()
    error = 100.0 * (reports[1] - counted) / counted if counted else float("inf")
    print(
        json.dumps(
            {
                "srs_version": srs_version(binary),
                "refused_publishers_exit_status": refused_publishes,
                "ticketless_viewer": {
                    "received_bytes": TICKETLESS.received_bytes,
                    "error": TICKETLESS.error,
                },
                "viewers": [
                    {
                        "name": v.name,
                        "ticket": "ticket=" in v.query,
                        "received_bytes": v.received_bytes,
                        "error": v.error,
                    }
                    for v in VIEWERS
                ],
                "srs_counted_sent_bytes": counted,
                "reports": reports[0],
                "reported_bytes": reports[1],
                "verified_bytes": reports[2],
                "error_percent": round(error, 3),
                "viewer_sessions_on_the_node": sessions[0],
                "viewer_sessions": sessions[1],
                "friend_balance_minor": earnings["balance_minor"],
            },
            indent=2,
        )
    )
    played = all(v.received_bytes > 0 and not v.error for v in VIEWERS)
    refused = TICKETLESS.received_bytes == 0 and all(status != 0 for status in refused_publishes)
    return 0 if played and refused and abs(error) <= 5 and earnings["balance_minor"] > 0 else 1


def routed(
    api: httpx.Client, node_id: int, viewer: Viewer, clock: Clock, ports: dict[str, Ports]
) -> None:
    """Play as a real viewer does: ask the coordinator where to play, and take this node's edge
    URL with its ticket (the edge passes the query on to its on_play and to the origin's)."""
    answer = api.get(f"/api/v1/play/{STREAM}")
    answer.raise_for_status()
    urls = [edge["flv_url"] for edge in answer.json()["edges"] if edge["node_id"] == node_id]
    if not urls:
        viewer.error = f"/api/v1/play offered no edge of node {node_id}: {answer.text}"
        return
    viewer.query = "?" + urlsplit(urls[0]).query
    viewer.run(clock, ports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--srs", required=True, type=Path, help="the SRS binary (objs/srs)")
    parser.add_argument("--keep", type=Path, help="keep the work folder (logs, state) here")
    parser.add_argument("--record", type=Path, help="record the logs as a fixture folder here")
    parser.add_argument("--srs-source", default="", help="where the binary was built from")
    args = parser.parse_args(argv)
    if not args.srs.is_file():
        parser.error(f"--srs {args.srs} is not a file: build SRS first (tests/fixtures/srs)")
    secrets: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="real-edge-") as work_dir:
        try:
            status = run(args.srs.resolve(), Path(work_dir), secrets)
        finally:
            if args.keep:
                shutil.copytree(work_dir, args.keep, dirs_exist_ok=True)
        if args.record:
            record_logs(Path(work_dir), args.record, secrets, args.srs, args.srs_source)
        return status


LOGS = {
    "origin.log.gz": "origin/console.log",
    "edge.log.gz": "edge/console.log",
    "origin-relay.log": "origin-relay.log",
    "edge-relay.log": "edge-relay.log",
    "coordinator.log.gz": "coordinator.log",
}


def record_logs(
    work: Path, target: Path, secrets: dict[str, list[str]], binary: Path, srs_source: str
) -> None:
    """Every process's log as it was written (work paths shown as `/work`), and the run's
    throwaway credentials, which the tests search those logs for."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name, source in LOGS.items():
        content = (work / source).read_text(errors="replace").replace(str(work), "/work")
        if name.endswith(".gz"):
            with gzip.open(target / name, "wt") as file:
                file.write(content)
        else:
            (target / name).write_text(content)
    (target / "secrets.json").write_text(json.dumps(secrets, indent=2, sort_keys=True) + "\n")
    meta = {"srs_version": srs_version(binary), "srs_source": srs_source, "logs": sorted(LOGS)}
    (target / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A friend's node end to end on a real SRS: the coordinator (`python -m streamr_coordinator
serve` on local PostgreSQL and Redis from devenv), a real SRS origin and friend edge on loopback
(configs from `srs/render.py`, hooks to the coordinator with the hook secret and the node token),
the reporter (`node/reporter.py` on plain python3, default interval) on the edge's API, an ffmpeg
publisher, viewers on the edge (HTTP-FLV first, RTMP, a 5-second one), then the period is paid.

Prints what SRS counted as sent, what the coordinator stored from the reporter, the error, the
viewer sessions it saw and the friend's balance; exits 1 when a viewer got nothing, the error is
over 5 % or the friend is not paid.

    .venv/bin/python scripts/real_edge_run.py --srs /path/to/srs/trunk/objs/srs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
    Ports,
    Srs,
    Viewer,
    publisher,
    relisten,
    srs_version,
)
from sqlalchemy import create_engine, text
from streamr_coordinator.cache import Cache
from streamr_coordinator.context import AppContext
from streamr_coordinator.db import make_engine, make_sessionmaker
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
        ctx = AppContext(settings, engine, engine, make_sessionmaker(engine), Cache(None))
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


def run(binary: Path, work: Path) -> int:
    with services.postgres() as postgres, services.redis() as redis:
        redis.start()
        database_url = postgres.create_database("real_edge_run")
        upgrade_to_head(database_url)
        with coordinator(database_url, work, STREAMR_REDIS_URL=redis.url) as api:
            return relay(api, str(api.base_url).rstrip("/"), database_url, binary, work)


def relay(
    api: httpx.Client, coordinator_url: str, database_url: str, binary: Path, work: Path
) -> int:
    streamer, friend = account(api, "streamer1", "streamer"), account(api, "friend1", "friend")
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

    ports = {"origin": Ports.pick(), "edge": Ports.pick()}
    origin_config = render_origin(OriginSettings(coordinator_url, server_id="origin"))
    edge_config = render_edge(EdgeSettings(coordinator_url, "127.0.0.1", server_id="real-edge"))
    origin = Srs(
        binary,
        "origin",
        relisten(origin_config, ports["origin"], hook_secret=HOOK_SECRET),
        ports["origin"],
        work,
    )
    edge = Srs(
        binary,
        "edge",
        relisten(edge_config, ports["edge"], ports["origin"].rtmp, node_token=node["node_token"]),
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
    clock = Clock()
    node_auth = {"Authorization": f"Bearer {node['node_token']}"}
    announced = api.put(
        f"/api/v1/nodes/{node['id']}/edge",
        json={"play_base_url": f"http://127.0.0.1:{ports['edge'].http}"},
        headers=node_auth,
    )
    announced.raise_for_status()
    try:
        publishing = publisher(ports["origin"], PUBLISH_SECONDS, stream_key)
        viewers = []
        for viewer in VIEWERS:
            delay = max(0.0, viewer.start - clock.now())
            thread = threading.Timer(delay, routed, (api, node["id"], viewer, clock, ports))
            thread.start()
            viewers.append(thread)
        for thread in viewers:
            thread.join()
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
    return 0 if played and abs(error) <= 5 and earnings["balance_minor"] > 0 else 1


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
    parser.add_argument("--keep", type=Path, help="keep the logs in this folder")
    args = parser.parse_args(argv)
    if not args.srs.is_file():
        parser.error(f"--srs {args.srs} is not a file: build SRS first (tests/fixtures/srs)")
    with tempfile.TemporaryDirectory(prefix="real-edge-") as work_dir:
        try:
            return run(args.srs.resolve(), Path(work_dir))
        finally:
            if args.keep:
                shutil.copytree(work_dir, args.keep, dirs_exist_ok=True)


if __name__ == "__main__":
    sys.exit(main())

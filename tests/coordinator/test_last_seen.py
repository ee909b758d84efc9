"""Heartbeats reach `nodes.last_seen` in batches: at once when a node comes online, within a flush
interval otherwise, at shutdown, never backwards, and a crash loses no more than one flush."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis as redis_client
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import event
from streamr_coordinator.app import create_app
from streamr_coordinator.cache import presence_key
from streamr_coordinator.context import AppContext
from streamr_coordinator.db import make_engine
from streamr_coordinator.domain import last_seen
from streamr_coordinator.domain.tokens import cache_key
from streamr_coordinator.security import keyed_hash
from streamr_coordinator.settings import Settings

from devenv import services

from .conftest import HOOK_SECRET, PEPPER
from .support import Api


def _beat(client: TestClient | httpx.Client, node: dict) -> datetime:
    """One heartbeat; returns a time no earlier than the beat's own."""
    answer = client.post(
        "/api/v1/node/heartbeat", headers={"Authorization": f"Bearer {node['node_token']}"}
    )
    assert answer.status_code == 200, answer.text
    return datetime.now(UTC)


def _stored(sql, node: dict) -> datetime | None:
    ((seen,),) = sql("SELECT last_seen FROM nodes WHERE id = :id", id=node["id"])
    return seen


def _eventually(condition: Callable[[], bool], what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextmanager
def _instance(settings: Settings, **changes) -> Iterator[TestClient]:
    """Another coordinator process on the same PostgreSQL and Redis, started and stopped here."""
    with TestClient(create_app(settings.model_copy(update=changes))) as client:
        yield client


def test_a_node_coming_online_is_written_at_once_and_routed_to(
    api: Api, sql, settings: Settings
) -> None:
    friend, streamer = api.account("friend"), api.account("streamer")
    node = api.node(friend, "fresh")
    stream = api.stream(streamer, "first-beat")
    api.publish(stream)
    with _instance(settings, last_seen_flush_seconds=15) as slow_flush:
        before = datetime.now(UTC)
        response = slow_flush.put(
            f"/api/v1/nodes/{node['id']}/edge",
            json={"play_base_url": "http://100.64.0.9:8080"},
            headers={"Authorization": f"Bearer {node['node_token']}"},
        )
        assert response.status_code == 204
        after = _beat(slow_flush, node)
        # No flush has run (15 s): the first beat was written through.
        assert before <= _stored(sql, node) <= after
        assert api.ticket(stream["name"], node["id"])


def test_later_beats_reach_postgres_within_a_flush_interval(
    api: Api, sql, settings: Settings
) -> None:
    node = api.node(api.account("friend"), "steady")
    with _instance(settings, last_seen_flush_seconds=1) as instance:
        first = _beat(instance, node)
        time.sleep(0.01)
        before = datetime.now(UTC)
        second = _beat(instance, node)
        _eventually(lambda: _stored(sql, node) >= before, "the flush", seconds=10)
        assert first < _stored(sql, node) <= second


def test_the_flush_refreshes_presence_until_the_online_window_after_the_beat(
    api: Api, settings: Settings, redis_url: str
) -> None:
    node = api.node(api.account("friend"), "present")
    presence = redis_client.Redis.from_url(redis_url)
    key = presence_key(node["id"])
    with _instance(settings, last_seen_flush_seconds=1) as instance:
        _beat(instance, node)  # new here: presence set at once
        presence.delete(key)  # as if it had lapsed
        beat = _beat(instance, node)  # known here: its presence waits for the flush
        _eventually(lambda: presence.exists(key) == 1, "the flush", seconds=10)
        lasts = presence.pttl(key) / 1000
        online = settings.node_online_seconds
        assert online - (datetime.now(UTC) - beat).total_seconds() - 1 <= lasts <= online


def test_shutdown_writes_what_the_process_holds(api: Api, sql, settings: Settings) -> None:
    node = api.node(api.account("friend"), "stopping")
    with _instance(settings, last_seen_flush_seconds=15) as instance:
        first = _beat(instance, node)
        before = datetime.now(UTC)
        second = _beat(instance, node)
        assert _stored(sql, node) <= first  # held in the process, not written yet
    assert before <= _stored(sql, node) <= second


def test_without_redis_a_node_is_still_written_at_once_then_in_batches(
    api: Api, sql, settings: Settings, redis_server: services.Redis
) -> None:
    node = api.node(api.account("friend"), "no-redis")
    redis_server.stop()
    with _instance(settings, last_seen_flush_seconds=15) as instance:
        before = datetime.now(UTC)
        first = _beat(instance, node)
        assert before <= _stored(sql, node) <= first
        second = _beat(instance, node)
        assert _stored(sql, node) <= first
    assert first <= _stored(sql, node) <= second


def test_beats_after_the_first_ask_postgresql_and_redis_nothing(
    api: Api, settings: Settings, redis_url: str
) -> None:
    """The node token's lookup is cached (and remembered in the process) longer than a beat
    interval, and a beat's last_seen and presence wait for the flush: a node beating steadily
    costs PostgreSQL no statement and Redis no command per beat."""
    node = api.node(api.account("friend"), "cached")
    with _instance(settings, last_seen_flush_seconds=15) as instance:
        _beat(instance, node)
        entry = cache_key(keyed_hash(PEPPER, node["node_token"]))
        assert redis_client.Redis.from_url(redis_url).ttl(entry) > 2 * settings.heartbeat_seconds
        ctx: AppContext = instance.app.state.ctx
        _eventually(
            lambda: ctx.revocations.vouches_for(b"", time.monotonic()),
            "the first read of the revocations",
            seconds=10,
        )
        statements: list[str] = []

        def seen(_conn, _cursor, statement, *_args) -> None:
            if "api_tokens" in statement or "nodes" in statement:
                statements.append(statement)

        for engine in (ctx.engine, ctx.soft_engine):
            event.listen(engine.sync_engine, "before_cursor_execute", seen)
        redis = redis_client.Redis.from_url(redis_url)
        commands_before = redis.info("stats")["total_commands_processed"]
        for _ in range(20):
            _beat(instance, node)
        assert statements == []
        # The one command: the INFO that reads the count (the flush, every 15 s, has not run).
        assert redis.info("stats")["total_commands_processed"] == commands_before + 1


def _seed_nodes(sql, count: int) -> list[int]:
    (owner,) = sql(
        "INSERT INTO users (username, password_hash, role) "
        "VALUES ('many', 'x', 'friend') RETURNING id"
    )[0]
    rows = sql(
        "INSERT INTO nodes (owner_id, name, capacity_viewers) "
        "SELECT :owner, 'n' || i, 10 FROM generate_series(1, :count) AS i RETURNING id",
        owner=owner,
        count=count,
    )
    return [row[0] for row in rows]


def test_two_processes_flushing_at_once_never_move_last_seen_back(settings: Settings, sql) -> None:
    """Two processes hold beats of the same nodes, each newer for half of them, and flush at the
    same moment, again and again, their beats in opposite orders: no deadlock, no error, and
    every node keeps the newest beat either process had."""
    ids = _seed_nodes(sql, 300)
    base = datetime(2026, 12, 1, tzinfo=UTC)

    async def run() -> None:
        contexts = []
        for _ in range(2):
            engine = make_engine(settings, durable=False)
            contexts.append(AppContext.single_engine(settings, engine))
        try:
            for round_ in range(20):
                at = base + timedelta(minutes=round_)
                first, second = contexts
                for index, node_id in enumerate(ids):
                    newer, older = at + timedelta(seconds=2), at + timedelta(seconds=1)
                    first.last_seen.note(node_id, newer if index % 2 else older)
                for index, node_id in reversed(list(enumerate(ids))):
                    newer, older = at + timedelta(seconds=2), at + timedelta(seconds=1)
                    second.last_seen.note(node_id, older if index % 2 else newer)
                await asyncio.gather(*(last_seen.flush(ctx) for ctx in contexts))
                assert all(len(ctx.last_seen) == 0 for ctx in contexts)
            # And one process alone, late with an older beat: it changes nothing.
            first.last_seen.note(ids[0], base)
            await last_seen.flush(first)
        finally:
            for ctx in contexts:
                await ctx.engine.dispose()

    asyncio.run(run())
    newest = base + timedelta(minutes=19, seconds=2)
    assert sql("SELECT DISTINCT last_seen FROM nodes WHERE id = ANY(:ids)", ids=ids) == [(newest,)]


def test_a_crash_loses_at_most_the_beats_since_the_last_flush(
    api: Api, sql, settings: Settings, database_url: str, redis_url: str
) -> None:
    """A real coordinator process is killed (SIGKILL) holding a beat: that beat is lost, the one
    written before stays, and the node's next beat, at another instance, is not taken for a node
    coming back (its Redis presence outlived the crash) and reaches PostgreSQL with that
    instance's next flush. The settings keep a flush within half a beat, so the lost beat never
    makes a node look offline (`test_a_flush_slower_than_half_a_beat_is_refused`)."""
    node = api.node(api.account("friend"), "survivor")
    port = services.free_port()
    environment = {
        **os.environ,
        "STREAMR_DATABASE_URL": database_url,
        "STREAMR_REDIS_URL": redis_url,
        "STREAMR_TOKEN_PEPPER": PEPPER,
        "STREAMR_HOOK_SECRET": HOOK_SECRET,
        "STREAMR_LAST_SEEN_FLUSH_SECONDS": "15",
        "STREAMR_SWEEP_SECONDS": "0",
        "STREAMR_PAYOUT_CHECK_SECONDS": "0",
    }
    command = [sys.executable, "-m", "streamr_coordinator", "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "1"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as doomed:
            _eventually(lambda: _answers(doomed), "the coordinator process", seconds=60)
            written = _beat(doomed, node)
            time.sleep(0.01)
            _beat(doomed, node)  # held by the process
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    lost = _stored(sql, node)
    assert lost <= written
    with _instance(settings, last_seen_flush_seconds=15) as survivor:
        before = datetime.now(UTC)
        after = _beat(survivor, node)
        assert _stored(sql, node) == lost  # held: the node did not "come back"
    assert before <= _stored(sql, node) <= after


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/health").status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("flush", [16, 100])
def test_a_flush_slower_than_half_a_beat_is_refused(flush: int) -> None:
    with pytest.raises(ValidationError, match="STREAMR_LAST_SEEN_FLUSH_SECONDS must be at most 15"):
        Settings(
            database_url="postgresql+psycopg://u@h/d",
            token_pepper=PEPPER,
            hook_secret=HOOK_SECRET,
            last_seen_flush_seconds=flush,
        )

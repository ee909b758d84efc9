"""Outages say so: PostgreSQL restarted under load (real uvicorn, real HTTP), and Redis paused
(SIGSTOP) while a token is revoked."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis as redis_client
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from streamr_coordinator.api.deps import get_session
from streamr_coordinator.app import create_app
from streamr_coordinator.domain.revocations import POLL_SECONDS
from streamr_coordinator.domain.tokens import cache_key
from streamr_coordinator.security import keyed_hash
from streamr_coordinator.settings import Settings

from devenv import services

from .conftest import HOOK_SECRET, PEPPER
from .databases import Databases
from .support import Api, served, srs_event
from .test_reports import Relay

OUTAGE_SECONDS = 4
# Every instance refuses a revoked token within a read of the revocations (each POLL_SECONDS),
# with room for the read itself on a busy machine.
REVOCATION_BOUND_SECONDS = POLL_SECONDS + 1


@dataclass
class Answer:
    caller: str
    status: int
    retry_after: str | None
    body: Any


@dataclass
class Load:
    """Callers hammering the coordinator over HTTP, each recording every answer."""

    url: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, caller: str, response: httpx.Response) -> Answer:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        answer = Answer(caller, response.status_code, response.headers.get("retry-after"), body)
        with self.lock:
            self.answers.append(answer)
        return answer

    def caller(
        self, name: str, call: Callable[[httpx.Client], httpx.Response], pause: float = 0.02
    ) -> None:
        def loop() -> None:
            with httpx.Client(base_url=self.url, timeout=30) as client:
                while not self.stop.is_set():
                    self.record(name, call(client))
                    time.sleep(pause)

        self.threads.append(threading.Thread(target=loop, name=name, daemon=True))

    def run(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def last(self, caller: str) -> Answer:
        return [answer for answer in self.answers if answer.caller == caller][-1]


class Reporter:
    """A node kit's reporter: batches of new intervals, each batch retried until it is answered
    (as node/reporter.py does); what the coordinator acknowledged is kept."""

    def __init__(self, relay: Relay, load: Load) -> None:
        self.relay = relay
        self.load = load
        self.next_offset = 0
        self.pending: list[dict[str, Any]] = []
        self.acknowledged: set[str] = set()
        self.not_accepted: list[dict[str, Any]] = []

    def __call__(self, client: httpx.Client) -> httpx.Response:
        if not self.pending:  # five one-second intervals, after the last ones
            self.pending = [self.relay.item(self.next_offset + n, seconds=1) for n in range(5)]
            self.next_offset += 5
        response = client.post(
            f"/api/v1/nodes/{self.relay.node['id']}/reports",
            json={"reports": self.pending},
            headers={"Authorization": f"Bearer {self.relay.node['node_token']}"},
        )
        if response.status_code == 200:
            for result in response.json()["results"]:
                if result["status"] in ("accepted", "duplicate"):
                    self.acknowledged.add(result["interval_start"])
                else:
                    self.not_accepted.append(result)
            self.pending = []
        return response


@pytest.fixture(scope="module")
def postgres() -> Iterator[services.Postgres]:
    """A durable server of this module's own (the session's runs without fsync): the restart
    test counts on every acknowledged report surviving, as it must in production."""
    with services.postgres() as server:
        yield server


@pytest.fixture(scope="module")
def databases(postgres: services.Postgres) -> Iterator[Databases]:
    clones = Databases(postgres, "outages")
    yield clones
    clones.close()


@pytest.fixture
def quiet_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO)
    yield caplog


def test_postgres_restart_under_load_answers_503_with_retry_after_and_loses_no_report(
    postgres: services.Postgres,
    database_url: str,
    settings: Settings,
    api: Api,
    sql,
    quiet_logs: pytest.LogCaptureFixture,
) -> None:
    relay = Relay(api, sql)
    relay.viewers(2)
    streamer = api.account("streamer")
    bearer = {"Authorization": f"Bearer {streamer.token}"}
    stream = relay.stream["name"]
    with served(create_app(settings)) as url:
        load = Load(url)
        reporter = Reporter(relay, load)
        load.caller("reports", reporter, pause=0.1)
        load.caller("streams", lambda c: c.get("/api/v1/streams", headers=bearer))
        load.caller("me", lambda c: c.get("/api/v1/auth/me", headers=bearer))
        load.caller("play", lambda c: c.get(f"/api/v1/play/{stream}"))
        load.caller(
            "hook",
            lambda c: c.post(
                "/hooks/srs/on_publish",
                headers={"Authorization": f"Bearer {HOOK_SECRET}"},  # as the hook relay sends it
                json=srs_event("on_publish", stream, "?key=wrong"),
            ),
        )
        load.run()
        time.sleep(1.5)
        postgres.stop()
        try:
            time.sleep(OUTAGE_SECONDS)
        finally:
            postgres.start()
        # Everything recovers by itself: wait until every caller has been answered normally.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(load.last(name).status < 500 for name in ("reports", "streams", "me", "play")):
                break
            time.sleep(0.2)
        time.sleep(1)
        load.finish()

    answers = load.answers
    unavailable = [a for a in answers if a.status == 503]
    server_errors = [a for a in answers if a.status >= 500 and a.status != 503]
    engine = create_engine(database_url)  # a new pool: the fixture's connections died with it
    with engine.connect() as connection:
        stored = {
            start.isoformat()
            for (start,) in connection.execute(
                text("SELECT interval_start FROM contribution_reports WHERE node_id = :node"),
                {"node": relay.node["id"]},
            )
        }
    engine.dispose()
    print(
        f"postgres restart: {len(answers)} requests, {len(unavailable)} answered 503, "
        f"{len(server_errors)} other 5xx; {len(reporter.acknowledged)} reports acknowledged, "
        f"{len(stored & reporter.acknowledged)} of them stored"
    )
    assert server_errors == []
    assert unavailable, "the outage was not seen: no 503 at all"
    for answer in unavailable:
        assert answer.retry_after is not None and int(answer.retry_after) > 0, answer
        assert isinstance(answer.body, dict) and answer.body["detail"], answer
        if answer.caller == "hook":
            assert answer.body["code"] == 503, answer  # SRS denies: fails closed
    for name, ok in (("reports", 200), ("streams", 200), ("me", 200), ("play", 200), ("hook", 403)):
        assert load.last(name).status == ok, load.last(name)
    assert reporter.not_accepted == []
    assert reporter.acknowledged, "no report was acknowledged"
    assert reporter.acknowledged <= stored, reporter.acknowledged - stored
    traces = [r for r in quiet_logs.records if r.exc_info or "Traceback" in r.getMessage()]
    assert traces == [], [f"{r.name}: {r.getMessage()}" for r in traces]


def test_a_request_session_whose_connection_died_closes_quietly(settings: Settings, sql) -> None:
    """Seen in CI during the restart above: PostgreSQL went away after a handler had answered, the
    request session's closing rollback failed on the dead connection, and as the response had
    started already the error escaped as "Exception in ASGI application". Closing must drop the
    dead connection instead (the answer was decided; nothing is left half-done by a rollback that
    cannot run)."""
    with TestClient(create_app(settings)) as client:
        ctx = client.app.state.ctx

        async def a_request_outlived_by_its_connection() -> int:
            sessions = get_session(ctx)
            session = await anext(sessions)
            backend = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            sql("SELECT pg_terminate_backend(:backend)", backend=backend)
            with pytest.raises(StopAsyncIteration):
                await anext(sessions)  # the dependency's teardown
            async with ctx.sessions() as fresh:  # the pool hands out a live connection next
                return (await fresh.execute(text("SELECT 1"))).scalar_one()

        assert client.portal.call(a_request_outlived_by_its_connection) == 1


def _wait(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _within(seconds: float, check: Callable[[], None]) -> None:
    """`check` passes within `seconds` (it is tried until then; its last failure is raised)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.05)


def test_a_token_revoked_while_redis_is_paused_stays_refused_after_it_resumes(
    settings: Settings, redis_server: services.Redis, api: Api
) -> None:
    """Two instances share PostgreSQL and Redis; one revokes while Redis is stopped (SIGSTOP),
    so the cached lookups cannot be deleted. The revoking instance refuses the tokens at once,
    the other within its next read of the revocations (it remembers the node token it
    authenticated: `domain.beats`), and neither accepts them again, during the pause or after
    Redis returns with the stale entries (each instance of our own reads the recent revocations
    from PostgreSQL)."""
    friend = api.account("friend")
    node = api.node(friend, "paused-box")
    node_bearer = {"Authorization": f"Bearer {node['node_token']}"}
    cache = redis_client.Redis.from_url(redis_server.url)
    keys = [cache_key(keyed_hash(PEPPER, token)) for token in (friend.token, node["node_token"])]
    with TestClient(create_app(settings)) as other:
        instances = {"revoking": api.client, "other": other}

        def refused_by(name: str) -> None:
            client = instances[name]
            assert client.get("/api/v1/auth/me", headers=friend.auth).status_code == 401, name
            heartbeat = client.post("/api/v1/node/heartbeat", headers=node_bearer)
            assert heartbeat.status_code == 401, (name, heartbeat.text)

        def refused_everywhere() -> None:
            for name in instances:
                refused_by(name)

        for client in instances.values():  # both look the tokens up: now they are cached
            assert client.get("/api/v1/auth/me", headers=friend.auth).status_code == 200
            assert client.post("/api/v1/node/heartbeat", headers=node_bearer).status_code == 200
        assert all(cache.exists(key) for key in keys)
        admin = api.account("admin")
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        try:
            revoked = api.client.post(
                f"/api/v1/admin/users/{friend.id}/revoke-tokens", headers=admin.auth
            )
            assert revoked.status_code == 204, revoked.text
            refused_by("revoking")
            _within(REVOCATION_BOUND_SECONDS, lambda: refused_by("other"))
            paused_until = time.monotonic() + 2
            while time.monotonic() < paused_until:
                refused_everywhere()
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
        # The stale entries are still there: the revocation could not delete them.
        assert all(cache.exists(key) for key in keys)
        # Each instance leaves Redis alone for a few seconds after a failure, then reads it
        # again (the stale entries included): refused throughout.
        resumed_until = time.monotonic() + 8
        while time.monotonic() < resumed_until:
            refused_everywhere()
            time.sleep(0.1)
        assert all(cache.exists(key) for key in keys), "the stale entries expired meanwhile"

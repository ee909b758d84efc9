"""What the node kit runs against in its tests: the real coordinator as a subprocess (real
PostgreSQL and Redis; it can be stopped and started again on the same database), and a fake SRS
HTTP API that answers in the shape of a real SRS edge's (recorded) with counters the test sets.
"""

from __future__ import annotations

import copy
import functools
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis as redis_client

from devenv import services
from tests.coordinator.databases import Databases

from . import recordings

PEPPER = "node-kit-pepper-0123456789abcdef0123456789"
HOOK_SECRET = "node-kit-hook-secret-0123456789abcdef0123"
PASSWORD = "correct horse battery"
_users = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[services.Postgres]:
    with services.postgres(durable=False) as server:
        yield server


@pytest.fixture(scope="session")
def databases(postgres: services.Postgres) -> Iterator[Databases]:
    clones = Databases(postgres, "node_kit")
    yield clones
    clones.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[services.Redis]:
    with services.redis() as server:
        yield server


class CoordinatorProcess:
    """`python -m streamr_coordinator serve` on a fixed port, startable again after a stop."""

    def __init__(self, database_url: str, redis_url: str, log_path: Path, **settings: str) -> None:
        self.database_url = database_url
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.environment = {
            **os.environ,
            "STREAMR_DATABASE_URL": database_url,
            "STREAMR_REDIS_URL": redis_url,
            "STREAMR_TOKEN_PEPPER": PEPPER,
            "STREAMR_HOOK_SECRET": HOOK_SECRET,
            "STREAMR_PAYOUT_CHECK_SECONDS": "0",  # the test pays the period itself
            "STREAMR_AUTH_RATE_LIMIT_PER_MINUTE": "1000",
            **{f"STREAMR_{key.upper()}": value for key, value in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "streamr_coordinator", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.environment, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/health", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"coordinator did not start: {self.log_path.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


@dataclass
class Account:
    id: int
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Api:
    """The coordinator's API as the people in the story use it."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)

    def account(self, role: str) -> Account:
        username = f"{role}{next(_users)}"
        body = {"username": username, "password": PASSWORD}
        created = self.client.post("/api/v1/auth/register", json={**body, "role": role})
        assert created.status_code == 201, created.text
        login = self.client.post("/api/v1/auth/login", json=body)
        assert login.status_code == 200, login.text
        return Account(created.json()["id"], login.json()["token"])


@pytest.fixture
def database_url(databases: Databases) -> Iterator[str]:
    """A fresh migrated database (a clone of a template migrated once)."""
    with databases.database() as url:
        yield url


@pytest.fixture
def coordinator(
    database_url: str, redis_server: services.Redis, tmp_path: Path
) -> Iterator[CoordinatorProcess]:
    redis_server.start()
    # Every test's database numbers its nodes from 1: what Redis remembers of an earlier test's
    # node 1 (its token, when its last_seen was last written) must not carry over.
    redis_client.Redis.from_url(redis_server.url).flushdb()
    process = CoordinatorProcess(database_url, redis_server.url, tmp_path / "coordinator.log")
    process.start()
    yield process
    process.stop()


ENDPOINTS = ("streams", "clients", "vhosts")


@functools.cache
def _recorded_answers() -> dict[str, dict]:
    """A real edge's answers while a viewer played (tests/fixtures/srs), as the fake's templates."""
    return next(
        frame.answers
        for frame in recordings.frames("edge-viewers")
        if frame.answers["clients"]["clients"] and frame.answers["vhosts"]["vhosts"]
    )


@dataclass
class FakeSrs:
    """SRS's HTTP API (`/api/v1/streams/`, `/clients/`, `/vhosts/`, the real recorded answers as
    templates) serving the streams the test sets: each stream's `clients` connections, the first
    of which has sent all of its `send_bytes`, and a vhost counter that is their sum (so lowering
    a counter is an SRS restart)."""

    streams: dict[str, dict[str, int]] = field(default_factory=dict)

    def answer(self, endpoint: str) -> dict:
        recorded = _recorded_answers()
        body = copy.deepcopy(recorded[endpoint])
        if endpoint == "streams":
            template = recorded["streams"]["streams"][0]
            body["streams"] = [
                {**copy.deepcopy(template), "name": name, **counters}
                for name, counters in self.streams.items()
            ]
        elif endpoint == "clients":
            template = recorded["clients"]["clients"][0]
            body["clients"] = [
                {
                    **copy.deepcopy(template),
                    "id": f"{name}-{number}",
                    "name": name,
                    "send_bytes": counters["send_bytes"] if number == 0 else 0,
                }
                for name, counters in self.streams.items()
                for number in range(max(counters["clients"], 1))
            ]
        else:
            total = sum(counters["send_bytes"] for counters in self.streams.values())
            body["vhosts"][0]["send_bytes"] = total
        return body

    def __post_init__(self) -> None:
        self.api = recordings.SrsApi(
            lambda endpoint: self.answer(endpoint) if endpoint in ENDPOINTS else None
        )
        self.url = self.api.url

    @property
    def requests(self) -> int:
        return self.api.requests

    def close(self) -> None:
        self.api.close()


@pytest.fixture
def fake_srs() -> Iterator[FakeSrs]:
    srs = FakeSrs()
    yield srs
    srs.close()

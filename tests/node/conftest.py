"""What the node kit runs against in its tests: the real coordinator as a subprocess (real
PostgreSQL and Redis; it can be stopped and started again on the same database), and a fake SRS
HTTP API that answers in the shape of a real SRS's `/api/v1/streams/` with counters the test sets.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import redis as redis_client
from streamr_coordinator.migrate import upgrade_to_head

from devenv import services
from tests import reference

REFERENCE_STREAMS = reference.SRS / "api-streams.json"
PEPPER = "node-kit-pepper-0123456789abcdef0123456789"
HOOK_SECRET = "node-kit-hook-secret-0123456789abcdef0123"
PASSWORD = "correct horse battery"
_databases = itertools.count()
_users = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[services.Postgres]:
    with services.postgres() as server:
        yield server


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
def database_url(postgres: services.Postgres) -> Iterator[str]:
    name = f"node_kit_{next(_databases)}"
    url = postgres.create_database(name)
    upgrade_to_head(url)
    yield url
    postgres.drop_database(name)


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


@dataclass
class FakeSrs:
    """SRS's `/api/v1/streams/` answer (the real captured one) with the streams the test sets."""

    streams: dict[str, dict[str, int]] = field(default_factory=dict)
    requests: int = 0

    def __post_init__(self) -> None:
        reference = json.loads(REFERENCE_STREAMS.read_text())
        template = reference["streams"][0]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self.path.startswith("/api/v1/streams/"):
                    self.send_error(404)
                    return
                fake.requests += 1
                body = copy.deepcopy(reference)
                body["streams"] = [
                    {**copy.deepcopy(template), "name": name, **counters}
                    for name, counters in fake.streams.items()
                ]
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_srs() -> Iterator[FakeSrs]:
    srs = FakeSrs()
    yield srs
    srs.close()

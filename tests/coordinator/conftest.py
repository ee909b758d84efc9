"""Real PostgreSQL and Redis for the coordinator's tests.

One server of each per test session (from `devenv`, PostgreSQL without fsync: nothing here needs
to outlive the machine); every test gets its own database, cloned from a template that was
migrated once (`databases.py`), and an empty Redis. Passwords are hashed at Argon2's cheapest
cost (see `cheap_password_hashes`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as redis_client
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from streamr_coordinator import security
from streamr_coordinator.app import create_app
from streamr_coordinator.settings import Settings

from devenv import services

from .databases import Databases
from .support import Api, Coordinator

PEPPER = "test-pepper-0123456789abcdef0123456789"
HOOK_SECRET = "test-hook-secret-0123456789abcdef0123"
BOOTSTRAP = "test-bootstrap-token-0123456789abcdef"
# What the coordinator hashes passwords with, before `cheap_password_hashes` replaces it.
PRODUCTION_PASSWORDS = security._passwords


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Argon2id at one pass over 64 KiB instead of three over 64 MiB: these tests sign up and
    sign in thousands of times, and at the production cost (0.1 s a hash on a quiet 2-core
    machine, 1 s on a busy one) that was most of what an authorization test spent. Hashes are
    still argon2id, salted, stored and verified the same way; `test_accounts.py` checks the
    production cost with the coordinator's own hasher."""
    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "_passwords", cheap)
        yield


@pytest.fixture(scope="session")
def postgres() -> Iterator[services.Postgres]:
    with services.postgres(durable=False) as server:
        yield server


@pytest.fixture(scope="session")
def databases(postgres: services.Postgres) -> Iterator[Databases]:
    clones = Databases(postgres, "test")
    yield clones
    clones.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[services.Redis]:
    with services.redis() as server:
        yield server


@pytest.fixture
def database_url(databases: Databases) -> Iterator[str]:
    with databases.database() as url:
        yield url


@pytest.fixture
def redis_url(redis_server: services.Redis) -> str:
    redis_server.start()  # a test may have stopped it
    redis_client.Redis.from_url(redis_server.url).flushdb()
    return redis_server.url


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        token_pepper=PEPPER,
        hook_secret=HOOK_SECRET,
        admin_bootstrap_token=BOOTSTRAP,
        trusted_proxies=["10.0.0.0/8"],
        auth_rate_limit_per_minute=1000,
        payout_check_seconds=0,  # tests pay periods themselves, at the times they choose
        sweep_seconds=0,  # and sweep live state themselves, at the times they choose
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client, hook_secret=HOOK_SECRET, bootstrap_token=BOOTSTRAP)


@pytest.fixture
def sql(database_url: str):
    """Run SQL against the test's database directly (to check what is stored)."""
    engine = create_engine(database_url)

    def run(statement: str, **params):
        from sqlalchemy import text

        with engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return result.fetchall() if result.returns_rows else result.rowcount

    yield run
    engine.dispose()


@pytest.fixture
def coordinator(settings: Settings) -> Iterator[Coordinator]:
    """One coordinator instance's domain layer (its own pool), for tests that pay periods."""
    instance = Coordinator(settings)
    yield instance
    instance.close()

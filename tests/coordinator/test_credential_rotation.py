"""Credentials AWS rotates under a running coordinator: it follows them with no restart.

RDS rotates the managed master password every 7 days; the Headscale host issues a new API key
monthly. On AWS the coordinator's host rewrites both files from Secrets Manager every minute
(`streamr-coordinator-secrets.timer`, components/coordinator_user_data.yaml), and the coordinator
reads them at each use. The bound: from the moment the host has refreshed a file, the next new
connection or mesh request uses the new credential, so the coordinator is back within one refresh
period (60 s) of a rotation, by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from streamr_coordinator.app import create_app
from streamr_coordinator.settings import Settings

from devenv import services

from .conftest import HOOK_SECRET
from .support import Api
from .test_mesh_client import API_KEY, FakeHeadscale
from .test_mesh_client import fake as fake

ROLE = "rotating_master"  # a constant: safe to splice into SQL
BEFORE = "password-before-rotation"
AFTER = "password-after-rotation"


@pytest.fixture
def password_login(postgres: services.Postgres, database_url: str) -> Iterator[str]:
    """A login role that must give its password (the session's server trusts loopback)."""
    database = database_url.rsplit("/", 1)[1]
    postgres.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{BEFORE}'")
    postgres.psql(
        f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {ROLE}; "
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {ROLE}",
        database=database,
    )
    hba = Path(postgres.psql("SHOW hba_file"))
    trusted = hba.read_text()
    hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n{trusted}")
    postgres.psql("SELECT pg_reload_conf()")
    try:
        yield database
    finally:
        hba.write_text(trusted)
        postgres.psql("SELECT pg_reload_conf()")
        postgres.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        postgres.psql(f"DROP ROLE {ROLE}")


def test_a_rotated_database_password_is_followed_without_a_restart(
    postgres: services.Postgres, password_login: str, settings: Settings, tmp_path: Path
) -> None:
    password_file = tmp_path / "database-password"
    password_file.write_text(BEFORE + "\n")
    rotating = settings.model_copy(
        update={
            "database_url": None,
            "database_host": "127.0.0.1",
            "database_port": postgres.port,
            "database_name": password_login,
            "database_user": ROLE,
            "database_password_file": password_file,
            "database_sslmode": "disable",
        }
    )
    with TestClient(create_app(rotating)) as client:
        api = Api(client, hook_secret=HOOK_SECRET, bootstrap_token=settings.admin_bootstrap_token)
        api.account("streamer")
        assert client.get("/ready").status_code == 200

        # The rotation: a new password, and the open sessions gone (as pool_recycle retires them).
        postgres.psql(f"ALTER ROLE {ROLE} PASSWORD '{AFTER}'")
        postgres.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = 'rotating_master'"
        )
        # Until the host has refreshed the file, logins fail: not ready, and it says so.
        assert client.get("/ready").status_code == 503

        password_file.write_text(AFTER + "\n")  # the host's refresh
        # From the first request after the refresh on, everything works again.
        for _ in range(3):
            assert client.get("/ready").status_code == 200
        api.account("streamer")


def test_a_rotated_headscale_api_key_is_followed_without_a_restart(
    settings: Settings, fake: FakeHeadscale, tmp_path: Path
) -> None:
    key_file = tmp_path / "headscale-api-key"
    meshed = settings.model_copy(
        update={"headscale_url": fake.url, "headscale_api_key_file": key_file}  # type: ignore[attr-defined]
    )
    with TestClient(create_app(meshed)) as client:
        api = Api(client, hook_secret=HOOK_SECRET, bootstrap_token=settings.admin_bootstrap_token)
        friend = api.account("friend")

        # First boot: Headscale has not issued the key yet. Registration says try again.
        waiting = client.post(
            "/api/v1/nodes", json={"name": "early", "capacity_viewers": 5}, headers=friend.auth
        )
        assert waiting.status_code == 503
        assert "no Headscale API key yet" in waiting.json()["detail"]

        key_file.write_text(API_KEY + "\n")
        assert api.node(friend, "attic-pi")["mesh"]["preauth_key"]

        # The monthly rotation: Headscale now accepts only the new key...
        fake.api_key = "hskey-api-rotated-000000-fedcba9876543210fedcba9876543210"
        refused = client.post(
            "/api/v1/nodes", json={"name": "stale", "capacity_viewers": 5}, headers=friend.auth
        )
        assert refused.status_code == 502
        # ...and once the host has written it, the coordinator uses it with no restart.
        key_file.write_text(fake.api_key + "\n")
        assert api.node(friend, "garage-pi")["mesh"]["preauth_key"]

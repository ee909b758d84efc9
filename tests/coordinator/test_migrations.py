"""Migrations: `upgrade head` builds exactly the models, and many instances may run it at once."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from streamr_coordinator.migrate import alembic_config, upgrade_to_head
from streamr_coordinator.models import Base

from devenv import services

from .conftest import HOOK_SECRET, PEPPER


def _head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_upgrade_head_on_an_empty_database_matches_the_models(postgres: services.Postgres) -> None:
    url = postgres.create_database("migrations_drift")
    try:
        upgrade_to_head(url)
        engine = create_engine(url)
        with engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
            )
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        engine.dispose()
        assert differences == []
        assert version == _head()
    finally:
        postgres.drop_database("migrations_drift")


def test_several_instances_migrating_at_once_all_succeed(postgres: services.Postgres) -> None:
    url = postgres.create_database("migrations_race")
    try:
        environment = {
            **os.environ,
            "STREAMR_DATABASE_URL": url,
            "STREAMR_TOKEN_PEPPER": PEPPER,
            "STREAMR_HOOK_SECRET": HOOK_SECRET,
        }
        command = [sys.executable, "-m", "streamr_coordinator", "migrate"]
        starts = [
            subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        results = [(process.wait(timeout=120), process.stderr.read()) for process in starts]
        assert [code for code, _ in results] == [0, 0, 0, 0], results
        assert (
            postgres.psql("SELECT version_num FROM alembic_version", "migrations_race") == _head()
        )
        tables = postgres.psql(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "migrations_race"
        )
        assert int(tables) == len(Base.metadata.tables) + 1  # + alembic_version
    finally:
        postgres.drop_database("migrations_race")


def test_migrate_with_bad_settings_names_the_variable(postgres: services.Postgres) -> None:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("STREAMR_")
    }
    environment["STREAMR_DATABASE_URL"] = postgres.url()
    environment["STREAMR_TOKEN_PEPPER"] = "short"
    result = subprocess.run(
        [sys.executable, "-m", "streamr_coordinator", "migrate"],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "STREAMR_TOKEN_PEPPER" in result.stderr and "STREAMR_HOOK_SECRET" in result.stderr

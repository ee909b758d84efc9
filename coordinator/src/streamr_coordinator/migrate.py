"""Run Alembic migrations to head, safely from many instances at once.

Every instance runs this at start; a PostgreSQL advisory lock makes them take turns, and the ones
that come second find nothing left to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

HERE = Path(__file__).resolve().parent
LOCK_ID = 0x5354524D  # "STRM": one lock for migrations, across the whole database


def alembic_config() -> Config:
    return Config(str(HERE / "alembic.ini"))


def upgrade_to_head(database_url: str) -> None:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": LOCK_ID})
            connection.commit()
            try:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})
                connection.commit()
    finally:
        engine.dispose()

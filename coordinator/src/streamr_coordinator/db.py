"""The async engine and session factory; one per process, created by the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from .settings import Settings


def make_engine(settings: Settings, *, durable: bool = True) -> AsyncEngine:
    """A pool of connections. `durable=False` commits asynchronously (no WAL flush wait): for
    state that is soft or re-reported anyway (live flags, viewer sessions, last_seen), where a
    database crash may lose the last fraction of a second but never corrupts anything.

    No pre-ping: it would cost a round trip per checkout; a connection that died is discarded
    on its first error instead (`pool_recycle` keeps them fresh).

    With a password file, every new connection reads the password then: after a rotation, open
    connections keep working and the next ones log in with the new password.
    """
    engine = create_async_engine(
        settings.sqlalchemy_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_recycle=1800,
        connect_args={} if durable else {"options": "-c synchronous_commit=off"},
    )
    if settings.database_password_file is not None:

        @event.listens_for(engine.sync_engine, "do_connect")
        def _current_password(
            _dialect: Any, _record: Any, _args: Any, parameters: dict[str, Any]
        ) -> None:
            parameters["password"] = settings.current_database_password() or ""

    return engine


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection on which each statement commits by itself: one round trip per statement
    instead of BEGIN, statement, COMMIT. For work that is one statement, or statements that need
    no transaction together (SRS hooks: SRS waits for each answer)."""
    async with engine.connect() as connection:
        yield await connection.execution_options(isolation_level="AUTOCOMMIT")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)

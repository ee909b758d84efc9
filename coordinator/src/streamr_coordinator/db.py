"""The async engine and session factory; one per process, created by the app's lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from .settings import Settings

# What a caller is told to wait before trying again while PostgreSQL is unreachable: about one
# restart of the database (a Multi-AZ failover takes longer, and callers simply ask again).
RETRY_AFTER_SECONDS = 5


def make_engine(
    settings: Settings, *, durable: bool = True, autocommit: bool = False
) -> AsyncEngine:
    """A pool of connections. `durable=False` commits asynchronously (no WAL flush wait): for
    state that is soft or re-reported anyway (live flags, viewer sessions, last_seen), where a
    database crash may lose the last fraction of a second but never corrupts anything.
    `autocommit=True`: every statement commits by itself, set once per connection rather than
    at each checkout (as `autocommit()` does): for hot work that is one statement.

    No pre-ping: it would cost a round trip per checkout; a connection that died is discarded
    on its first error instead (`pool_recycle` keeps them fresh).

    No overflow: a burst beyond the pool waits for a pooled connection (a few milliseconds)
    rather than opening one (a TCP and authentication handshake) that is closed again as soon as
    it is returned; those handshakes were the hooks' tail at 200 requests/s (and a new backend
    compiles and plans `ingest_reports` again). A pool exhausted for
    `pool_timeout` seconds is answered 503 (see `database_unavailable`).

    With a password file, every new connection reads the password then: after a rotation, open
    connections keep working and the next ones log in with the new password.
    """
    engine = create_async_engine(
        settings.sqlalchemy_url,
        pool_size=settings.database_pool_size,
        max_overflow=0,
        pool_recycle=1800,
        connect_args={} if durable else {"options": "-c synchronous_commit=off"},
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
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


@asynccontextmanager
async def driver_autocommit(engine: AsyncEngine) -> AsyncIterator[psycopg.AsyncConnection]:
    """psycopg's own connection, from the engine's pool, on which each statement commits by
    itself: for the SRS hooks, which SRS waits for. SQLAlchemy's Connection around it cost
    about 300 µs of CPU per hook (statement compilation and execution context, the isolation
    level set and reset, result wrapping); the pool with its size, recycling and password
    rotation stays the engine's. psycopg's errors are raised as SQLAlchemy's and a lost
    connection is invalidated, so an outage is answered 503 like everywhere else."""
    try:
        pooled = await engine.raw_connection()
    except psycopg.Error as error:  # could not connect: PostgreSQL down or restarting
        raise _translated(engine, error, lost=False) from error
    driver: psycopg.AsyncConnection = pooled.driver_connection  # type: ignore[assignment]
    try:
        await driver.set_autocommit(True)
        yield driver
    except psycopg.Error as error:
        lost = engine.dialect.is_disconnect(error, pooled.dbapi_connection, None)
        if lost:
            await greenlet_spawn(pooled.invalidate, error)
        raise _translated(engine, error, lost=lost) from error
    finally:
        if pooled.is_valid:
            # Back to the pool as SQLAlchemy handed it out; mid-statement (a cancelled request)
            # it cannot be, so it is discarded.
            if driver.info.transaction_status == TransactionStatus.IDLE:
                await driver.set_autocommit(False)
            else:
                await greenlet_spawn(pooled.invalidate)
        await greenlet_spawn(pooled.close)


def _translated(engine: AsyncEngine, error: psycopg.Error, *, lost: bool) -> DBAPIError:
    """psycopg's error as SQLAlchemy raises it (its OperationalError for psycopg's, and so on)."""
    return DBAPIError.instance(
        None, None, error, psycopg.Error, connection_invalidated=lost, dialect=engine.dialect
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` means PostgreSQL could not be reached or dropped the connection (down,
    restarting, failing over, every pooled connection busy), as opposed to a bug in a query:
    the first is answered 503 with Retry-After, the second stays a 500."""
    if isinstance(error, PoolTimeout):
        return True
    return isinstance(error, DBAPIError) and (
        error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    )


def unavailable_reason(error: BaseException) -> str:
    """One line for the log: the driver's first line, no statement or parameters."""
    cause = getattr(error, "orig", None) or error
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def log_failure(log: logging.Logger, what: str, error: BaseException) -> None:
    """A failed background step: one line when the database is just unreachable (an outage is
    not a bug), the stack trace otherwise."""
    if database_unavailable(error):
        log.warning("%s: database unavailable: %s", what, unavailable_reason(error))
    else:
        log.error(what, exc_info=error)

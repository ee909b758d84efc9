"""The async engine and session factory; one per process, created by the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import event, make_url
from sqlalchemy.dialects.postgresql.psycopg import PGDialectAsync_psycopg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

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


class DriverPool:
    """psycopg connections of their own for the SRS hooks, which SRS waits for: each in autocommit
    (a statement commits by itself) with asynchronous commit (soft state, as `make_engine`'s
    `durable=False`).

    Not SQLAlchemy's pool: at 200 hooks/s its checkout and return (greenlets, events, the reset,
    autocommit switched on and off) took about 0.3 ms of a hook's 2 ms, measured in the
    coordinator, where each hook runs on cold caches; here they take microseconds. The same rules:
    at most `database_pool_size` connections, opened when needed with the engines' parameters and
    the current password (a password file is re-read), the most recently used idle one first,
    none handed out older than `RECYCLE_SECONDS`. A connection that was lost, or is left in a
    statement or a transaction, is closed (psycopg itself cancels the statement of a cancelled
    request and rolls back). psycopg's errors are raised as SQLAlchemy's, and waiting
    `POOL_TIMEOUT_SECONDS` for a connection as its pool timeout, so the app answers 503 for an
    outage as it does everywhere else."""

    RECYCLE_SECONDS = 1800
    POOL_TIMEOUT_SECONDS = 30  # SQLAlchemy's default, which the engines keep

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._slots = asyncio.BoundedSemaphore(settings.database_pool_size)
        self._idle: list[tuple[float, psycopg.AsyncConnection]] = []  # (opened at, connection)
        self._closed = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        try:
            async with asyncio.timeout(self.POOL_TIMEOUT_SECONDS):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolTimeout(
                f"no hook connection free within {self.POOL_TIMEOUT_SECONDS} s "
                f"(STREAMR_DATABASE_POOL_SIZE={self._settings.database_pool_size})"
            ) from None
        try:
            opened, connection = await self._checkout()
            try:
                yield connection
            except psycopg.Error as error:
                lost = connection.closed or connection.broken
                if lost:  # the server went away: the idle ones are gone too (SQLAlchemy's rule)
                    await self._close_idle()
                raise _translated(error, lost=lost) from error
            finally:
                idle = connection.info.transaction_status == TransactionStatus.IDLE
                if idle and not self._closed:
                    self._idle.append((opened, connection))
                else:  # lost, left mid-statement or mid-transaction, or the pool was closed
                    await connection.close()
        finally:
            self._slots.release()

    async def _checkout(self) -> tuple[float, psycopg.AsyncConnection]:
        while self._idle:
            opened, connection = self._idle.pop()
            if time.monotonic() - opened < self.RECYCLE_SECONDS:
                return opened, connection
            await connection.close()
        # The engines' connection parameters (not a URL string: libpq refuses, say, a space in
        # a password that SQLAlchemy renders unquoted), and the password file as they read it.
        _, parameters = _PSYCOPG.create_connect_args(make_url(self._settings.sqlalchemy_url))
        if self._settings.database_password_file is not None:
            parameters["password"] = self._settings.current_database_password() or ""
        try:
            connection = await psycopg.AsyncConnection.connect(
                **parameters, autocommit=True, options="-c synchronous_commit=off"
            )
        except psycopg.Error as error:  # could not connect: PostgreSQL down or restarting
            raise _translated(error, lost=False) from error
        return time.monotonic(), connection

    async def close(self) -> None:
        """At shutdown: the idle connections now, those in use when they come back."""
        self._closed = True
        await self._close_idle()

    async def _close_idle(self) -> None:
        while self._idle:
            await self._idle.pop()[1].close()


# Only its connection parameters are used (what an engine would connect with).
_PSYCOPG = PGDialectAsync_psycopg()


def _translated(error: psycopg.Error, *, lost: bool) -> DBAPIError:
    """psycopg's error as SQLAlchemy raises it (its OperationalError for psycopg's, and so on:
    the psycopg dialect renames none of them)."""
    return DBAPIError.instance(None, None, error, psycopg.Error, connection_invalidated=lost)


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

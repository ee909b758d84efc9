"""The connection pool: under a burst larger than itself, and the hooks' driver connections."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from streamr_coordinator.db import driver_autocommit, make_engine
from streamr_coordinator.settings import Settings

POOL = 2
BURST = 8


def test_a_burst_beyond_the_pool_waits_for_pooled_connections_instead_of_opening_new_ones(
    settings: Settings, sql
) -> None:
    """Eight statements at once on a pool of two: all are answered, by the pool's two backends
    (an overflow connection would be a new backend, opened and closed within the burst), and
    PostgreSQL never sees more than two connections from the engine meanwhile."""
    small = settings.model_copy(update={"database_pool_size": POOL})

    async def burst() -> tuple[set[int], int]:
        engine = make_engine(small)

        async def one() -> int:
            async with engine.connect() as connection:
                pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                await connection.execute(text("SELECT pg_sleep(0.1)"))
                return pid

        async def most_backends_seen(work: asyncio.Future) -> int:
            most = 0
            while not work.done():
                most = max(most, await asyncio.to_thread(_backends, sql))
                await asyncio.sleep(0.02)
            return most

        try:
            work = asyncio.gather(*(one() for _ in range(BURST)))
            most = await most_backends_seen(work)
            return set(await work), most
        finally:
            await engine.dispose()

    pids, most = asyncio.run(burst())
    assert len(pids) == POOL
    assert 1 <= most <= POOL


def _backends(sql) -> int:
    """Connections to the test's database other than the one asking (nothing else uses it)."""
    return sql(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )[0][0]


def test_a_hook_s_driver_connection_goes_back_to_the_pool_transactional(
    settings: Settings, sql
) -> None:
    """A hook's statements commit by themselves; the same pooled connection, handed to
    SQLAlchemy next, is transactional again: what it rolls back is not stored."""
    single = settings.model_copy(update={"database_pool_size": 1})
    sql("CREATE TABLE pool_probe (value text)")

    async def hook_then_rolled_back_write() -> tuple[int, int]:
        engine = make_engine(single)
        try:
            async with driver_autocommit(engine) as connection:
                await connection.execute("INSERT INTO pool_probe VALUES ('hook')")
                hook_pid = await (await connection.execute("SELECT pg_backend_pid()")).fetchone()
            async with engine.connect() as connection:
                await connection.execute(text("INSERT INTO pool_probe VALUES ('rolled back')"))
                pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                await connection.rollback()
            assert hook_pid is not None
            return hook_pid[0], pid
        finally:
            await engine.dispose()

    hook_pid, pid = asyncio.run(hook_then_rolled_back_write())
    assert hook_pid == pid  # the very same connection
    assert sql("SELECT value FROM pool_probe") == [("hook",)]


def test_a_failed_hook_statement_is_raised_as_sqlalchemy_s_error_and_the_connection_stays(
    settings: Settings,
) -> None:
    """Errors look as they do everywhere else (the app answers DBAPIError), and a statement's
    error does not cost the pool its connection."""
    single = settings.model_copy(update={"database_pool_size": 1})

    async def failing_then_working() -> tuple[type, bool, int]:
        engine = make_engine(single)
        try:
            try:
                async with driver_autocommit(engine) as connection:
                    await connection.execute("SELECT no_such_column FROM streams")
            except DBAPIError as error:
                caught, invalidated = type(error), error.connection_invalidated
            async with driver_autocommit(engine) as connection:
                row = await (await connection.execute("SELECT 1")).fetchone()
            assert row is not None
            return caught, invalidated, row[0]
        finally:
            await engine.dispose()

    caught, invalidated, one = asyncio.run(failing_then_working())
    assert issubclass(caught, ProgrammingError)
    assert not invalidated
    assert one == 1

"""The connection pools: the engines' under a burst larger than themselves, and the hooks' own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from psycopg.pq import TransactionStatus
from pydantic import SecretStr
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from streamr_coordinator.db import DriverPool, database_unavailable, make_engine
from streamr_coordinator.settings import Settings

from devenv.services import free_port

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


@asynccontextmanager
async def _pool(settings: Settings, **changes: object) -> AsyncIterator[DriverPool]:
    """A hook pool of one connection (unless `changes` say otherwise), closed at the end."""
    pool = DriverPool(settings.model_copy(update={"database_pool_size": 1, **changes}))
    try:
        yield pool
    finally:
        await pool.close()


async def _pid(connection) -> int:
    row = await (await connection.execute("SELECT pg_backend_pid()")).fetchone()
    assert row is not None
    return row[0]


def test_hook_connections_commit_each_statement_asynchronously_and_are_reused(
    settings: Settings, sql
) -> None:
    """A hook's statement is stored without a transaction around it, with asynchronous commit
    (soft state), and the next hook gets the same backend."""
    sql("CREATE TABLE pool_probe (value text)")

    async def two_hooks() -> tuple[int, int, str]:
        async with _pool(settings) as pool:
            async with pool.connection() as connection:
                await connection.execute("INSERT INTO pool_probe VALUES ('hook')")
                first = await _pid(connection)
            async with pool.connection() as connection:
                second = await _pid(connection)
                row = await (await connection.execute("SHOW synchronous_commit")).fetchone()
            assert row is not None
            return first, second, row[0]

    first, second, synchronous_commit = asyncio.run(two_hooks())
    assert first == second
    assert synchronous_commit == "off"
    assert sql("SELECT value FROM pool_probe") == [("hook",)]


def test_a_failed_hook_statement_is_raised_as_sqlalchemy_s_error_and_the_connection_stays(
    settings: Settings,
) -> None:
    """Errors look as they do everywhere else (the app answers DBAPIError), and a statement's
    error does not cost the pool its connection."""

    async def failing_then_working() -> tuple[type, bool, int, int]:
        async with _pool(settings) as pool:
            try:
                async with pool.connection() as connection:
                    before = await _pid(connection)
                    await connection.execute("SELECT no_such_column FROM streams")
            except DBAPIError as error:
                caught, invalidated = type(error), error.connection_invalidated
            async with pool.connection() as connection:
                after = await _pid(connection)
            return caught, invalidated, before, after

    caught, invalidated, before, after = asyncio.run(failing_then_working())
    assert issubclass(caught, ProgrammingError)
    assert not invalidated
    assert before == after


def test_a_hook_cancelled_mid_transaction_leaves_nothing_behind(settings: Settings, sql) -> None:
    """A request cancelled while its transaction runs (the client went away): what it wrote is
    not stored, and the next hook gets a connection outside any transaction, whether it is the
    same one (psycopg cancels the statement and rolls back) or a new one."""
    sql("CREATE TABLE pool_probe (value text)")

    async def cancelled_then_next() -> tuple[TransactionStatus, int]:
        started = asyncio.Event()
        async with _pool(settings) as pool:

            async def slow() -> None:
                async with pool.connection() as connection, connection.transaction():
                    await connection.execute("INSERT INTO pool_probe VALUES ('cancelled')")
                    started.set()
                    await connection.execute("SELECT pg_sleep(5)")

            task = asyncio.create_task(slow())
            await started.wait()
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            async with pool.connection() as connection:
                status = connection.info.transaction_status
                row = await (await connection.execute("SELECT count(*) FROM pool_probe")).fetchone()
            assert row is not None
            return status, row[0]

    assert asyncio.run(cancelled_then_next()) == (TransactionStatus.IDLE, 0)


def test_a_connection_left_in_a_transaction_is_not_handed_on(settings: Settings) -> None:
    async def left_open_then_next() -> tuple[int, int, TransactionStatus]:
        async with _pool(settings) as pool:
            async with pool.connection() as connection:
                await connection.execute("BEGIN")
                left = await _pid(connection)
            async with pool.connection() as connection:
                return left, await _pid(connection), connection.info.transaction_status

    left, next_one, status = asyncio.run(left_open_then_next())
    assert left != next_one
    assert status == TransactionStatus.IDLE


def test_a_password_with_a_space_reaches_postgres_as_it_is(
    settings: Settings, database_url: str
) -> None:
    """The hooks connect with the engines' parameters, not a URL string that libpq would refuse
    (the test server trusts local connections, so any password logs in)."""
    spaced = make_url(database_url).set(password="two words").render_as_string(hide_password=False)

    async def hook() -> int:
        async with (
            _pool(settings, database_url=SecretStr(spaced)) as pool,
            pool.connection() as connection,
        ):
            return await _pid(connection)

    assert asyncio.run(hook()) > 0


def test_old_hook_connections_are_replaced(settings: Settings, monkeypatch) -> None:
    monkeypatch.setattr(DriverPool, "RECYCLE_SECONDS", 0)

    async def two() -> tuple[int, int]:
        async with _pool(settings) as pool:
            async with pool.connection() as connection:
                first = await _pid(connection)
            async with pool.connection() as connection:
                return first, await _pid(connection)

    first, second = asyncio.run(two())
    assert first != second


def test_hooks_beyond_the_pool_wait_and_then_time_out_as_unavailable(
    settings: Settings, monkeypatch
) -> None:
    """No connection beyond `database_pool_size`: a hook waits for one, and one that waited the
    pool timeout is answered 503 (`database_unavailable`), like the engines' pool timeout."""
    monkeypatch.setattr(DriverPool, "POOL_TIMEOUT_SECONDS", 0.3)

    async def held_then_waiting() -> tuple[BaseException, int, int]:
        async with _pool(settings) as pool:
            async with pool.connection() as held:
                holder = await _pid(held)
                with pytest.raises(PoolTimeout) as timed_out:
                    async with pool.connection():
                        pass

            async def released_soon() -> None:
                async with pool.connection() as connection:
                    await connection.execute("SELECT pg_sleep(0.1)")

            first = asyncio.create_task(released_soon())
            await asyncio.sleep(0.02)
            async with pool.connection() as connection:  # waits for the first, then reuses it
                waited = await _pid(connection)
            await first
            return timed_out.value, holder, waited

    error, holder, waited = asyncio.run(held_then_waiting())
    assert database_unavailable(error)
    assert "STREAMR_DATABASE_POOL_SIZE=1" in str(error)
    assert holder == waited


def test_hooks_with_postgres_unreachable_are_unavailable(settings: Settings, monkeypatch) -> None:
    monkeypatch.setattr(DriverPool, "POOL_TIMEOUT_SECONDS", 1)
    unreachable = SecretStr(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x")

    async def twice() -> list[BaseException]:
        errors = []
        async with _pool(settings, database_url=unreachable) as pool:
            for _ in range(2):  # the failed connect gave its slot back: no pool timeout
                with pytest.raises(DBAPIError) as failed:
                    async with pool.connection():
                        pass
                errors.append(failed.value)
        return errors

    for error in asyncio.run(twice()):
        assert isinstance(error, OperationalError)
        assert database_unavailable(error)

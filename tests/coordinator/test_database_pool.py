"""The connection pool under a burst larger than itself."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from streamr_coordinator.db import make_engine
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

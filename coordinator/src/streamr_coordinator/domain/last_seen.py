"""`nodes.last_seen`, the durable copy of heartbeats, written in batches.

A node beats every `heartbeat_seconds` (30 s); writing each beat to PostgreSQL would make the
hottest route a durable write. Instead each process keeps the newest beat per node and writes
them all every `STREAMR_LAST_SEEN_FLUSH_SECONDS` with one statement, and once more at shutdown.
A node that comes online is written at once (write-through), so routing, which reads
`last_seen`, offers it from its first beat. The flush also refreshes the Redis presence of the
nodes it writes (one pipeline, each until the online window after its beat): a steady beat
itself touches neither (`domain.beats`).

A crash loses the beats of at most one flush interval (the next beat goes to a live process,
which buffers it: the node's Redis presence outlived the crash). The interval is at most half a
beat (settings), so `last_seen` is then at most two and a half beats old, inside the online
window (three beats): the node stays online through a crash.

The statement never moves `last_seen` backwards, so processes may flush in any order; it locks
the rows in id order, so two processes flushing overlapping nodes cannot deadlock.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..db import autocommit, log_failure

if TYPE_CHECKING:
    from ..context import AppContext

log = logging.getLogger(__name__)

_WRITE = text(
    """
WITH beat AS (
    SELECT id, max(seen) AS seen
    FROM unnest(CAST(:ids AS bigint[]), CAST(:seens AS timestamptz[])) AS v(id, seen)
    GROUP BY id
), newer AS (
    SELECT nodes.id, beat.seen FROM nodes JOIN beat ON beat.id = nodes.id
    WHERE nodes.last_seen IS NULL OR nodes.last_seen < beat.seen
    ORDER BY nodes.id
    FOR NO KEY UPDATE OF nodes
)
UPDATE nodes SET last_seen = newer.seen FROM newer
WHERE nodes.id = newer.id AND (nodes.last_seen IS NULL OR nodes.last_seen < newer.seen)
"""
)


class LastSeenBuffer:
    """The newest heartbeat per node that this process has not written yet."""

    def __init__(self) -> None:
        self._pending: dict[int, datetime] = {}

    def note(self, node_id: int, seen: datetime) -> None:
        known = self._pending.get(node_id)
        if known is None or known < seen:
            self._pending[node_id] = seen

    def take(self) -> dict[int, datetime]:
        pending, self._pending = self._pending, {}
        return pending

    def __len__(self) -> int:
        return len(self._pending)


async def write(engine: AsyncEngine, beats: dict[int, datetime]) -> None:
    """Move each node's `last_seen` forward to its beat (never back); one statement."""
    if not beats:
        return
    async with autocommit(engine) as connection:
        await connection.execute(_WRITE, {"ids": list(beats), "seens": list(beats.values())})


async def write_through(ctx: AppContext, node_id: int, seen: datetime) -> None:
    """A node that came online: written now. If PostgreSQL fails, the beat waits in the buffer
    (and the caller sees the failure)."""
    try:
        await write(ctx.soft_engine, {node_id: seen})
    except BaseException:
        ctx.last_seen.note(node_id, seen)
        raise


async def flush(ctx: AppContext) -> None:
    """Refresh the Redis presence of the nodes whose beats the buffer holds and write the beats;
    if PostgreSQL fails they go back, to be written with the next flush."""
    beats = ctx.last_seen.take()
    await ctx.cache.refresh_presence(beats, ctx.settings.node_online_seconds)
    try:
        await write(ctx.soft_engine, beats)
    except BaseException:
        for node_id, seen in beats.items():
            ctx.last_seen.note(node_id, seen)
        raise


async def flush_at_shutdown(ctx: AppContext) -> None:
    """The last flush of a process that stops; what PostgreSQL refuses now is lost (the online
    window covers it, as it covers a crash)."""
    try:
        await flush(ctx)
    except Exception as error:
        log_failure(log, "last_seen not written at shutdown", error)


async def run_last_seen_flush(ctx: AppContext) -> None:
    """Flush every `last_seen_flush_seconds`, forever. A failure is logged once when it starts
    (no stack trace when the database is just unreachable); the beats wait for the next flush."""
    failing = False
    while True:
        await asyncio.sleep(ctx.settings.last_seen_flush_seconds)
        try:
            await flush(ctx)
            if failing:
                log.info("last_seen written again")
            failing = False
        except Exception as error:
            if not failing:
                log_failure(log, "last_seen not written", error)
            failing = True

"""Live state that converges on what is really happening, whatever hooks were lost.

Hooks say when things start and stop, but a crashed SRS says nothing. So every instance sweeps
every `sweep_seconds`:

- An SRS origin process that has sent no heartbeat for `origin_silence_seconds` is gone: its
  broadcasts end (the streams go offline), and its viewers' sessions and the edges' pulls from it
  close, all at its last heartbeat. A restarted origin is a new process (a new `service_id`), so
  the same rule ends what the crashed one left open. Bound: silence + one sweep after the crash.
- A node whose last heartbeat is older than `node_online_seconds` is offline: its viewer sessions
  and its pulls close at its last heartbeat (or at their start, if it never sent one). Bound:
  `node_online_seconds` + one sweep.

Every statement is idempotent and takes the cut-offs as parameters (decided by `cutoffs`, pure,
with time as a parameter), so any number of instances may sweep at once, and tests sweep at the
times they choose.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..context import AppContext
from ..db import autocommit, log_failure

log = logging.getLogger("streamr.liveness")

_ALIVE = text("""
INSERT INTO origin_heartbeats (server_id, service_id) VALUES (:server_id, :service_id)
ON CONFLICT (server_id, service_id) DO UPDATE SET last_seen = now()
""")

_END_BROADCASTS = text("""
WITH silent AS (
    SELECT server_id, service_id, last_seen FROM origin_heartbeats WHERE last_seen < :origin
), ended AS (
    UPDATE broadcasts b SET ended_at = greatest(b.started_at, s.last_seen)
    FROM silent s
    WHERE b.ended_at IS NULL AND b.server_id = s.server_id AND b.service_id = s.service_id
    RETURNING b.stream_id
)
UPDATE streams SET is_live = false, live_since = NULL WHERE id IN (SELECT stream_id FROM ended)
""")
_END_ORIGIN_PULLS = text("""
WITH silent AS (
    SELECT server_id, service_id, last_seen FROM origin_heartbeats WHERE last_seen < :origin
)
UPDATE edge_pulls p SET ended_at = greatest(p.started_at, s.last_seen)
FROM silent s
WHERE p.ended_at IS NULL AND p.server_id = s.server_id AND p.service_id = s.service_id
""")
_END_ORIGIN_SESSIONS = text("""
WITH silent AS (
    SELECT server_id, service_id, last_seen FROM origin_heartbeats WHERE last_seen < :origin
)
UPDATE viewer_sessions v SET ended_at = greatest(v.started_at, s.last_seen)
FROM silent s
WHERE v.ended_at IS NULL AND v.node_id IS NULL
  AND v.server_id = s.server_id AND v.service_id = s.service_id
""")
_END_NODE_SESSIONS = text("""
WITH offline AS (
    SELECT id, last_seen FROM nodes WHERE last_seen IS NULL OR last_seen < :node
)
UPDATE viewer_sessions v SET ended_at = greatest(v.started_at, coalesce(n.last_seen, v.started_at))
FROM offline n
WHERE v.ended_at IS NULL AND v.node_id = n.id
""")
_END_NODE_PULLS = text("""
WITH offline AS (
    SELECT id, last_seen FROM nodes WHERE last_seen IS NULL OR last_seen < :node
)
UPDATE edge_pulls p SET ended_at = greatest(p.started_at, coalesce(n.last_seen, p.started_at))
FROM offline n
WHERE p.ended_at IS NULL AND p.node_id = n.id
""")


@dataclass(frozen=True)
class Cutoffs:
    origin: datetime  # an origin process silent since before this is gone
    node: datetime  # a node not heard from since before this is offline


def cutoffs(now: datetime, origin_silence_seconds: int, node_online_seconds: int) -> Cutoffs:
    return Cutoffs(
        origin=now - timedelta(seconds=origin_silence_seconds),
        node=now - timedelta(seconds=node_online_seconds),
    )


@dataclass(frozen=True)
class Swept:
    streams_ended: int
    sessions_closed: int
    pulls_closed: int


async def origin_alive(engine: AsyncEngine, server_id: str, service_id: str) -> None:
    async with autocommit(engine) as connection:
        await connection.execute(_ALIVE, {"server_id": server_id, "service_id": service_id})


async def sweep(engine: AsyncEngine, limits: Cutoffs) -> Swept:
    """Close what is over; one transaction (the statements touch different rows)."""
    values = {"origin": limits.origin, "node": limits.node}
    async with engine.begin() as connection:

        async def run(statement) -> int:
            return (await connection.execute(statement, values)).rowcount

        streams = await run(_END_BROADCASTS)
        pulls = await run(_END_ORIGIN_PULLS) + await run(_END_NODE_PULLS)
        sessions = await run(_END_ORIGIN_SESSIONS) + await run(_END_NODE_SESSIONS)
    return Swept(streams, sessions, pulls)


async def sweep_now(ctx: AppContext, now: datetime) -> Swept:
    settings = ctx.settings
    limits = cutoffs(now, settings.origin_silence_seconds, settings.node_online_seconds)
    return await sweep(ctx.engine, limits)


async def run_sweeper(ctx: AppContext) -> None:
    """Every instance runs this: each statement is idempotent."""
    while True:
        try:
            async with ctx.engine.connect() as connection:
                now = (await connection.execute(text("SELECT now()"))).scalar_one()
            swept = await sweep_now(ctx, now)
            if swept.streams_ended or swept.sessions_closed or swept.pulls_closed:
                log.info(
                    "swept",
                    extra={
                        "streams_ended": swept.streams_ended,
                        "sessions_closed": swept.sessions_closed,
                        "pulls_closed": swept.pulls_closed,
                    },
                )
        except Exception as error:  # the next sweep retries; a failed one was rolled back whole
            log_failure(log, "sweep failed", error)
        await asyncio.sleep(ctx.settings.sweep_seconds)

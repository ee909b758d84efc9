"""Friend nodes: presence from heartbeats (Redis with a TTL, PostgreSQL `last_seen` as the
durable copy, written at most every few seconds per node) and online status derived from both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from ..context import AppContext
from ..models import FULL_TRUST, Node
from ..schemas import NodeOut

# PostgreSQL's last_seen may lag Redis by at most this much.
LAST_SEEN_WRITE_EVERY_SECONDS = 15


def presence_key(node_id: int) -> str:
    return f"node:online:{node_id}"


async def heartbeat(ctx: AppContext, node_id: int) -> None:
    online_for = ctx.settings.node_online_seconds
    due = await ctx.cache.mark_present(
        presence_key(node_id),
        online_for,
        throttle_key=f"node:seen-written:{node_id}",
        every=LAST_SEEN_WRITE_EVERY_SECONDS,
    )
    if due:
        async with ctx.engine.begin() as connection:
            await connection.execute(
                text("UPDATE nodes SET last_seen = now() WHERE id = :id"), {"id": node_id}
            )


async def describe(
    ctx: AppContext, nodes: list[Node], now: datetime | None = None
) -> list[NodeOut]:
    """Nodes with their online status: Redis presence when Redis answers, else `last_seen` age."""
    now = now or datetime.now(UTC)
    horizon = now - timedelta(seconds=ctx.settings.node_online_seconds)
    present = await ctx.cache.exists([presence_key(node.id) for node in nodes])
    described = []
    for index, node in enumerate(nodes):
        recently_seen = node.last_seen is not None and node.last_seen >= horizon
        described.append(
            NodeOut(
                id=node.id,
                owner_id=node.owner_id,
                name=node.name,
                capacity_viewers=node.capacity_viewers,
                trust=node.trust_bp / FULL_TRUST,
                online=present[index] or recently_seen if present is not None else recently_seen,
                last_seen=node.last_seen,
                created_at=node.created_at,
            )
        )
    return described

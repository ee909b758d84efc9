"""Friend nodes: presence from heartbeats (Redis with a TTL; PostgreSQL's `last_seen` as the
durable copy, written in batches by each process: see `last_seen`) and online status from both."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from ..cache import presence_key
from ..context import AppContext
from ..models import FULL_TRUST, Node
from ..schemas import NodeOut
from . import last_seen, tokens
from .edge_names import edge_name
from .tokens import Principal


async def heartbeat(ctx: AppContext, token: str) -> Principal | None:
    """Note a beat of the node holding `token` and return who called (None: nobody).

    A steady beat is answered from memory (`domain.beats`): the token remembered, the node known
    online because it beat here within the online window; the beat waits in this process's
    `last_seen` buffer, whose flush also refreshes the node's Redis presence. A node new to this
    process costs one Redis round trip for its presence, and when it has just come online (no
    presence, or no Redis to ask) its beat is written at once, so routing sees it online now.
    """
    principal = await tokens.authenticate(ctx, token)
    if principal is None or principal.node_id is None:
        return principal
    node_id, online_for = principal.node_id, ctx.settings.node_online_seconds
    now = datetime.now(UTC)
    known_online = ctx.beats.beat(node_id, time.monotonic(), online_for)
    if known_online or await ctx.cache.mark_present(node_id, online_for):
        ctx.last_seen.note(node_id, now)
    else:
        await last_seen.write_through(ctx, node_id, now)
    return principal


async def describe(
    ctx: AppContext, nodes: list[Node], now: datetime | None = None
) -> list[NodeOut]:
    """Nodes with their online status: Redis presence when Redis answers, else `last_seen` age."""
    now = now or datetime.now(UTC)
    horizon = now - timedelta(seconds=ctx.settings.node_online_seconds)
    present = await ctx.cache.exists([presence_key(node.id) for node in nodes])
    domain = ctx.settings.edge_domain
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
                edge_name=edge_name(domain, node.id) if domain else None,
            )
        )
    return described

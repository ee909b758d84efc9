"""Friend nodes: presence from heartbeats (Redis with a TTL; PostgreSQL's `last_seen` as the
durable copy, written in batches by each process: see `last_seen`) and online status from both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ..cache import presence_key
from ..context import AppContext
from ..models import FULL_TRUST, Node
from ..schemas import NodeOut
from ..security import keyed_hash
from . import last_seen, tokens
from .edge_names import edge_name
from .tokens import Principal


async def heartbeat(ctx: AppContext, token: str) -> Principal | None:
    """Refresh the presence of the node holding `token` and return who called (None: nobody).

    The hot path is one Redis round trip, shared by the heartbeats that arrive together, that
    checks the cached token and refreshes presence; PostgreSQL is asked only when Redis cannot
    vouch for the token. The beat goes to this process's `last_seen` buffer, except when the
    node just came online: then it is written at once, so routing sees it online now.
    """
    now = datetime.now(UTC)
    token_hash = keyed_hash(ctx.pepper, token)
    online_for = ctx.settings.node_online_seconds
    scripted = (
        await ctx.cache.node_heartbeat(tokens.cache_key(token_hash), online_for)
        if tokens.cache_trusted(ctx, token_hash)
        else None
    )
    arrived: bool | None = None  # whether the node just came online (None: not known yet)
    if scripted is not None:
        entry, arrived = scripted
        principal = tokens.from_cache_entry(entry, token_hash, now)
    else:
        principal = await tokens.authenticate(ctx, token)
    if principal is None or principal.node_id is None:
        return principal
    if arrived is None:
        arrived = await ctx.cache.mark_present(principal.node_id, online_for)
    if arrived:
        await last_seen.write_through(ctx, principal.node_id, now)
    else:
        ctx.last_seen.note(principal.node_id, now)
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

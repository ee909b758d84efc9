"""What each dashboard shows, read straight from PostgreSQL (small SQL over the existing tables).

Every query that a streamer or friend page runs is filtered by the signed-in user's id in SQL,
so another user's rows never reach the template.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ..context import AppContext
from ..domain import nodes as node_domain
from ..models import FULL_TRUST, Node, Stream
from ..schemas import NodeOut
from .charts import Share

WINDOWS = (("last hour", 3600), ("last 24 h", 86400))

# Viewer-seconds inside the window, split by who served them (node_id NULL = the origin), and the
# bytes friends spared the origin (their viewer-seconds at each stream's bitrate).
_SHARE = text("""
SELECT
    coalesce(sum(served) FILTER (WHERE node_id IS NOT NULL), 0),
    coalesce(sum(served) FILTER (WHERE node_id IS NULL), 0),
    coalesce(sum(served * bitrate_kbps * 125) FILTER (WHERE node_id IS NOT NULL), 0)
FROM (
    SELECT v.node_id, s.bitrate_kbps,
        extract(epoch FROM least(coalesce(v.ended_at, now()), now())
            - greatest(v.started_at, now() - make_interval(secs => :seconds))) AS served
    FROM viewer_sessions v JOIN streams s ON s.id = v.stream_id
    WHERE v.started_at < now()
      AND coalesce(v.ended_at, now()) > now() - make_interval(secs => :seconds)
      AND (CAST(:owner_id AS bigint) IS NULL OR s.owner_id = CAST(:owner_id AS bigint))
) sessions
""")


@dataclass(frozen=True)
class Saving:
    share: Share
    bytes_saved: int


async def shares(session: AsyncSession, owner_id: int | None = None) -> list[Saving]:
    """Friends' share of viewer time per window, over every stream or one streamer's."""
    found = []
    for window, seconds in WINDOWS:
        edge, origin, saved = (
            await session.execute(_SHARE, {"seconds": seconds, "owner_id": owner_id})
        ).one()
        found.append(Saving(Share(window, float(edge), float(origin)), int(saved)))
    return found


_HOURLY = text("""
WITH hours AS (
    SELECT generate_series(date_trunc('hour', now()) - interval '23 hours',
        date_trunc('hour', now()), interval '1 hour') AS start
)
SELECT h.start,
    coalesce(sum(extract(epoch FROM least(coalesce(v.ended_at, now()), now(),
        h.start + interval '1 hour') - greatest(v.started_at, h.start)))
        FILTER (WHERE v.node_id IS NOT NULL), 0),
    coalesce(sum(extract(epoch FROM least(coalesce(v.ended_at, now()), now(),
        h.start + interval '1 hour') - greatest(v.started_at, h.start)))
        FILTER (WHERE v.id IS NOT NULL AND v.node_id IS NULL), 0)
FROM hours h
LEFT JOIN viewer_sessions v ON v.started_at < h.start + interval '1 hour'
    AND coalesce(v.ended_at, now()) > h.start AND v.started_at < now()
GROUP BY h.start
ORDER BY h.start
""")


async def hourly_viewer_time(session: AsyncSession) -> list[tuple[datetime, float, float]]:
    """Viewer-seconds per hour of the last 24, served by edges and by the origin."""
    rows = await session.execute(_HOURLY)
    return [(start, float(edge), float(origin)) for start, edge, origin in rows]


@dataclass(frozen=True)
class StreamRow:
    id: int
    name: str
    title: str
    owner: str
    enabled: bool
    is_live: bool
    live_since: datetime | None
    bitrate_kbps: int
    payout_pool_minor: int
    edge_viewers: int
    origin_viewers: int

    @property
    def viewers(self) -> int:
        return self.edge_viewers + self.origin_viewers


_STREAMS = text("""
SELECT s.id, s.name, s.title, u.username, s.enabled, s.is_live, s.live_since, s.bitrate_kbps,
    s.payout_pool_minor,
    count(v.id) FILTER (WHERE v.node_id IS NOT NULL),
    count(v.id) FILTER (WHERE v.node_id IS NULL)
FROM streams s
JOIN users u ON u.id = s.owner_id
LEFT JOIN viewer_sessions v ON v.stream_id = s.id AND v.ended_at IS NULL
WHERE s.deleted_at IS NULL
  AND (CAST(:owner_id AS bigint) IS NULL OR s.owner_id = CAST(:owner_id AS bigint))
  AND (NOT :live_only OR (s.is_live AND s.enabled))
GROUP BY s.id, u.username
ORDER BY s.is_live DESC, s.name
""")


async def streams(
    session: AsyncSession, owner_id: int | None = None, live_only: bool = False
) -> list[StreamRow]:
    rows = await session.execute(_STREAMS, {"owner_id": owner_id, "live_only": live_only})
    return [StreamRow(*row) for row in rows]


async def owned_stream(session: AsyncSession, stream_id: int, owner_id: int) -> Stream | None:
    return await session.scalar(
        select(Stream).where(
            Stream.id == stream_id, Stream.owner_id == owner_id, Stream.deleted_at.is_(None)
        )
    )


@dataclass(frozen=True)
class NodeRow:
    node: NodeOut
    owner: str
    open_sessions: int
    play_base_url: str | None


async def node_rows(ctx: AppContext, session: AsyncSession, owner_id: int | None = None):
    """Nodes with online status (the same rule as the API), owner and current load."""
    query = select(Node).order_by(Node.id)
    if owner_id is not None:
        query = query.where(Node.owner_id == owner_id)
    found = list(await session.scalars(query))
    described = await node_domain.describe(ctx, found)
    owners = dict(
        (await session.execute(text("SELECT id, username FROM users WHERE role = 'friend'"))).all()
    )
    loads = dict(
        (
            await session.execute(
                text(
                    "SELECT node_id, count(*) FROM viewer_sessions "
                    "WHERE ended_at IS NULL AND node_id IS NOT NULL GROUP BY node_id"
                )
            )
        ).all()
    )
    return [
        NodeRow(out, owners.get(node.owner_id, ""), loads.get(node.id, 0), node.play_base_url)
        for node, out in zip(found, described, strict=True)
    ]


@dataclass(frozen=True)
class MeshHealth:
    nodes: int
    online: int
    reachable: int  # online and told us where viewers can play from it
    open_sessions: int
    capacity_online: int
    mean_trust_percent: float
    mesh_configured: bool

    @property
    def load_percent(self) -> float:
        return 100 * self.open_sessions / self.capacity_online if self.capacity_online else 0.0


def mesh_health(rows: list[NodeRow], mesh_configured: bool) -> MeshHealth:
    online = [row for row in rows if row.node.online]
    return MeshHealth(
        nodes=len(rows),
        online=len(online),
        reachable=sum(1 for row in online if row.play_base_url),
        open_sessions=sum(row.open_sessions for row in online),
        capacity_online=sum(row.node.capacity_viewers for row in online),
        mean_trust_percent=100 * sum(r.node.trust for r in rows) / len(rows) if rows else 0.0,
        mesh_configured=mesh_configured,
    )


@dataclass(frozen=True)
class PeriodTotal:
    period_start: datetime
    period_end: datetime
    entries: int
    total_minor: int


async def payout_periods(session: AsyncSession, user_id: int | None = None, limit: int = 24):
    """Paid periods, oldest first (for charts), with totals: everyone's, or one friend's."""
    rows = await session.execute(
        text("""
SELECT p.period_start, p.period_end, count(e.node_id), coalesce(sum(e.amount_minor), 0)
FROM payout_periods p
LEFT JOIN ledger_entries e ON e.period_start = p.period_start
    AND (CAST(:user_id AS bigint) IS NULL OR e.user_id = CAST(:user_id AS bigint))
GROUP BY p.period_start
ORDER BY p.period_start DESC
LIMIT :limit
"""),
        {"user_id": user_id, "limit": limit},
    )
    return [PeriodTotal(*row) for row in reversed(rows.all())]


@dataclass(frozen=True)
class Relay:
    stream_name: str
    node_id: int
    node_name: str | None  # None: the node was deleted since
    owner: str
    periods: int
    verified_bytes: int
    amount_minor: int


@dataclass(frozen=True)
class FriendsValue:
    """Over the last 30 days: the bytes friends' nodes delivered for a streamer's streams as the
    coordinator verified them (contribution reports, bounded by viewer sessions), and what the
    friends were paid for those streams."""

    verified_bytes: int
    paid_minor: int

    def saved_usd(self, usd_per_gb: float) -> float:
        """What the origin would have paid to send those bytes itself."""
        return self.verified_bytes / 1e9 * usd_per_gb


async def friends_value(session: AsyncSession, streamer_id: int) -> FriendsValue:
    row = (
        await session.execute(
            text("""
SELECT
    (SELECT coalesce(sum(r.verified_bytes), 0) FROM contribution_reports r
     JOIN streams s ON s.id = r.stream_id
     WHERE s.owner_id = :owner_id AND r.interval_end > now() - interval '30 days'),
    (SELECT coalesce(sum(e.amount_minor), 0) FROM ledger_entries e
     JOIN streams s ON s.id = e.stream_id
     WHERE s.owner_id = :owner_id AND e.period_start > now() - interval '30 days')
"""),
            {"owner_id": streamer_id},
        )
    ).one()
    return FriendsValue(int(row[0]), int(row[1]))


async def relays(session: AsyncSession, streamer_id: int) -> list[Relay]:
    """Which nodes relayed this streamer's streams and what they were paid, over all periods."""
    rows = await session.execute(
        text("""
SELECT s.name, e.node_id, n.name, u.username, count(*), sum(e.verified_bytes), sum(e.amount_minor)
FROM ledger_entries e
JOIN streams s ON s.id = e.stream_id
JOIN users u ON u.id = e.user_id
LEFT JOIN nodes n ON n.id = e.node_id
WHERE s.owner_id = :owner_id
GROUP BY s.name, e.node_id, n.name, u.username
ORDER BY s.name, sum(e.amount_minor) DESC, e.node_id
"""),
        {"owner_id": streamer_id},
    )
    return [Relay(*row[:4], int(row[4]), int(row[5]), int(row[6])) for row in rows]


@dataclass(frozen=True)
class Earning:
    period_start: datetime
    stream_name: str | None
    node_name: str | None
    verified_bytes: int
    trust_percent: float
    amount_minor: int


async def earnings(session: AsyncSession, friend_id: int, limit: int = 20):
    """A friend's balance and latest ledger entries."""
    balance = await session.scalar(
        text("SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE user_id = :user_id"),
        {"user_id": friend_id},
    )
    rows = await session.execute(
        text("""
SELECT e.period_start, s.name, n.name, e.verified_bytes, e.trust_bp, e.amount_minor
FROM ledger_entries e
LEFT JOIN streams s ON s.id = e.stream_id
LEFT JOIN nodes n ON n.id = e.node_id
WHERE e.user_id = :user_id
ORDER BY e.period_start DESC, e.stream_id, e.node_id
LIMIT :limit
"""),
        {"user_id": friend_id, "limit": limit},
    )
    history = [
        Earning(start, stream, node, verified, 100 * trust / FULL_TRUST, amount)
        for start, stream, node, verified, trust, amount in rows
    ]
    return int(balance), history

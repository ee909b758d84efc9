"""Viewer routing: which edges a viewer should play a stream from.

Any online friend edge that has told us where it plays from and has room can serve any stream
(an SRS edge pulls from the origin on its first viewer), so candidates are ranked by load (open
viewer sessions / capacity), edges already relaying the stream first among equals, then by id so
the answer is stable. The origin is the fallback. One SQL statement.

Each edge URL carries a fresh ticket for that node and stream (see `tickets`): the edge lets the
viewer in, and we credit the node, only with it. An edge serving HTTPS for its edge name (see
`edge_names`) is named by it, so an https page may play from it; any other by its mesh address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address
from urllib.parse import quote, urlsplit

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from . import tickets
from .edge_names import edge_base_url, edge_name

APP = "live"

_CANDIDATES = text("""
WITH stream AS (
    SELECT id FROM streams
    WHERE name = :name AND deleted_at IS NULL AND enabled AND NOT moderated AND is_live
),
load AS (
    SELECT v.node_id, count(*) AS sessions, count(*) FILTER (WHERE v.stream_id = s.id) AS relaying
    FROM viewer_sessions v CROSS JOIN stream s
    WHERE v.ended_at IS NULL AND v.node_id IS NOT NULL
    GROUP BY v.node_id
)
SELECT (SELECT id FROM stream), n.id, n.play_base_url, n.tls_port,
    coalesce(l.sessions, 0)::float / n.capacity_viewers AS load
FROM nodes n LEFT JOIN load l ON l.node_id = n.id
WHERE EXISTS (SELECT 1 FROM stream)
  AND n.play_base_url IS NOT NULL AND n.trust_bp > 0
  AND n.last_seen >= now() - make_interval(secs => :online_seconds)
  AND coalesce(l.sessions, 0) < n.capacity_viewers
ORDER BY load, coalesce(l.relaying, 0) DESC, n.id
LIMIT :limit
""")
_LIVE = text(
    "SELECT 1 FROM streams "
    "WHERE name = :name AND deleted_at IS NULL AND enabled AND NOT moderated AND is_live"
)


def off_mesh(base_url: str, mesh: Sequence[IPv4Network | IPv6Network]) -> str | None:
    """Why viewers must not be sent to `base_url` (None: its host is an address on the mesh)."""
    ranges = ", ".join(str(network) for network in mesh)
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
        address = ip_address(parts.hostname or "")
    except ValueError:
        return (
            f"{base_url!r} is not scheme://address[:port] with an IP address on the mesh ({ranges})"
        )
    if parts.username is not None or not any(address in network for network in mesh):
        return f"{address} is not an address on the mesh ({ranges})"
    return None


@dataclass(frozen=True)
class Edge:
    node_id: int
    flv_url: str
    load: float


def flv_url(base: str, stream: str, ticket: str | None = None) -> str:
    query = f"?ticket={quote(ticket, safe='')}" if ticket else ""
    return f"{base.rstrip('/')}/{APP}/{stream}.flv{query}"


def hls_url(base: str, stream: str) -> str:
    return f"{base.rstrip('/')}/{APP}/{stream}.m3u8"


@dataclass(frozen=True)
class Tickets:
    key: bytes
    now: datetime
    lifetime: timedelta


async def edges_for(
    engine: AsyncEngine,
    stream: str,
    online_seconds: int,
    limit: int,
    issuing: Tickets,
    mesh: Sequence[IPv4Network | IPv6Network],
    edge_domain: str | None,
) -> list[Edge] | None:
    """Edges for `stream`, best first, each URL with its ticket; None when the stream is not
    live (or unknown). An edge whose URL is off the mesh (stored before the mesh's ranges
    changed) is left out. With `edge_domain`, an edge with a TLS port is played over HTTPS by
    its edge name."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                _CANDIDATES, {"name": stream, "online_seconds": online_seconds, "limit": limit}
            )
        ).all()
        if not rows and (await connection.execute(_LIVE, {"name": stream})).first() is None:
            return None
    return [
        Edge(
            node_id,
            flv_url(
                edge_base_url(edge_name(edge_domain, node_id), tls_port)
                if edge_domain and tls_port
                else base,
                stream,
                tickets.issue(issuing.key, node_id, stream_id, issuing.now, issuing.lifetime),
            ),
            load,
        )
        for stream_id, node_id, base, tls_port, load in rows
        if off_mesh(base, mesh) is None
    ]

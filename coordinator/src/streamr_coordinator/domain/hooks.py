"""What SRS's hooks mean for us. SRS waits for the answer before it lets a publisher or viewer in.

- The origin's `on_publish`/`on_unpublish` open and close a *broadcast*. A second publisher that
  SRS will refuse (the same SRS process already has one) changes nothing.
- Each hook is one statement committed by itself, or (an edge's play, which locks the node) one
  short transaction: a round trip saved is latency every publisher and viewer waits less.
- A friend's edge opens a viewer session only with a ticket from `/api/v1/play` for that node and
  stream, unused, unexpired, while the stream is live, below the node's declared capacity.
- The origin's `on_play` for a connection that carries a ticket is that node's edge *pulling* the
  stream (SRS passes the first viewer's query on to the origin); any other is an origin viewer.
  An HLS viewer of the origin is one session per stream and address, however many SRS sessions
  its playlist fetches open; only the newest of them closes it.

A stream SRS may serve is not deleted, enabled by its owner and not disabled by an admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs

from ..db import DriverPool
from ..security import keyed_hash
from . import tickets

APP = "live"
HLS_SUFFIX = ".m3u8"
# SRS names the stream with the extension of the URL played: `name.m3u8` for HLS, and an edge
# pulling for an HTTP-FLV viewer may ask the origin for `name.flv` (SRS issue #4215).
SUFFIXES = (HLS_SUFFIX, ".flv")


@dataclass(frozen=True)
class Event:
    """The fields of an SRS hook that we act on."""

    stream: str
    server_id: str = ""
    service_id: str = ""
    client_id: str = ""
    ip: str = ""
    param: str = ""

    @property
    def name(self) -> str:
        return stream_name(self.stream)

    @property
    def is_hls(self) -> bool:
        return self.stream.endswith(HLS_SUFFIX)

    def columns(self) -> dict[str, str]:
        return {
            "name": self.name,
            "server_id": self.server_id[:64],
            "service_id": self.service_id[:64],
            "client_id": self.client_id[:64],
            "client_ip": self.ip[:45],
        }


def stream_name(stream: str) -> str:
    """The stream a hook is about, without the extension SRS may have kept."""
    for suffix in SUFFIXES:
        if stream.endswith(suffix):
            return stream.removesuffix(suffix)
    return stream


def stream_key(param: str) -> str | None:
    """SRS passes the publisher's query string with its `?`: `?key=sk_...`."""
    values = parse_qs(param.removeprefix("?")).get("key")
    return values[0] if values else None


# One statement: another SRS process (the origin restarted) ends what the old one was
# broadcasting (`restarted`, which `started` reads so that it runs first), then the broadcast
# starts unless this process has one already.
_PUBLISH = """
WITH stream AS (
    SELECT id FROM streams WHERE name = %(name)s AND key_hash = %(key_hash)s
    AND deleted_at IS NULL AND enabled AND NOT moderated
), restarted AS (
    UPDATE broadcasts SET ended_at = now()
    WHERE ended_at IS NULL AND service_id <> %(service_id)s
      AND stream_id IN (SELECT id FROM stream)
    RETURNING stream_id
), started AS (
    INSERT INTO broadcasts (stream_id, server_id, service_id, client_id)
    SELECT id, %(server_id)s, %(service_id)s, %(client_id)s FROM stream
    WHERE (SELECT count(*) FROM restarted) >= 0
    ON CONFLICT DO NOTHING
    RETURNING stream_id
), marked AS (
    UPDATE streams SET is_live = true, live_since = now()
    WHERE id IN (SELECT stream_id FROM started)
)
SELECT id FROM stream
"""
_UNPUBLISH = """
WITH stream AS (
    UPDATE streams SET is_live = false, live_since = NULL
    WHERE name = %(name)s AND deleted_at IS NULL RETURNING id
)
UPDATE broadcasts SET ended_at = now()
WHERE ended_at IS NULL AND stream_id IN (SELECT id FROM stream)
"""
_NODE_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('node-sessions:' || %(node)s, 0))"
_EDGE_PLAY = """
WITH stream AS (
    SELECT id, is_live FROM streams WHERE name = %(name)s
    AND deleted_at IS NULL AND enabled AND NOT moderated
), used AS (
    SELECT node_id, client_id FROM viewer_sessions WHERE ticket = %(nonce)s
), verdict AS (
    SELECT s.id AS stream_id, CASE
        WHEN s.id IS NULL THEN 'no such stream, or it is disabled'
        WHEN s.id <> %(ticket_stream)s THEN 'the ticket was issued for another stream'
        WHEN EXISTS (SELECT 1 FROM used WHERE node_id = %(node_id)s AND client_id = %(client_id)s)
            THEN 'again'
        WHEN EXISTS (SELECT 1 FROM used)
            THEN 'the ticket was used already: get a new one from /api/v1/play/<stream>'
        WHEN NOT s.is_live THEN 'the stream is not live at the origin'
        WHEN (SELECT count(*) FROM viewer_sessions WHERE node_id = %(node_id)s AND ended_at IS NULL)
            >= (SELECT capacity_viewers FROM nodes WHERE id = %(node_id)s)
            THEN 'this node is at its declared capacity'
    END AS problem
    FROM (SELECT 1) AS one LEFT JOIN stream s ON true
), opened AS (
    INSERT INTO viewer_sessions
        (stream_id, node_id, server_id, service_id, client_id, client_ip, ticket)
    SELECT stream_id, %(node_id)s, %(server_id)s, %(service_id)s, %(client_id)s, %(client_ip)s,
        %(nonce)s
    FROM verdict WHERE problem IS NULL
    ON CONFLICT DO NOTHING
)
SELECT problem FROM verdict
"""
_PULL = """
WITH stream AS (SELECT id FROM streams WHERE name = %(name)s
    AND deleted_at IS NULL AND enabled AND NOT moderated AND id = %(ticket_stream)s),
opened AS (
    INSERT INTO edge_pulls (stream_id, node_id, server_id, service_id, client_id)
    SELECT s.id, n.id, %(server_id)s, %(service_id)s, %(client_id)s
    FROM stream s JOIN nodes n ON n.id = %(node_id)s
    ON CONFLICT DO NOTHING
)
SELECT id FROM stream
"""
_ORIGIN_PLAY = """
WITH stream AS (SELECT id FROM streams WHERE name = %(name)s
    AND deleted_at IS NULL AND enabled AND NOT moderated),
opened AS (
    INSERT INTO viewer_sessions (stream_id, server_id, service_id, client_id, client_ip)
    SELECT id, %(server_id)s, %(service_id)s, %(client_id)s, %(client_ip)s FROM stream
    ON CONFLICT DO NOTHING
)
SELECT id FROM stream
"""
_ORIGIN_HLS_PLAY = """
WITH stream AS (SELECT id FROM streams WHERE name = %(name)s
    AND deleted_at IS NULL AND enabled AND NOT moderated),
opened AS (
    INSERT INTO viewer_sessions (stream_id, server_id, service_id, client_id, client_ip, hls)
    SELECT id, %(server_id)s, %(service_id)s, %(client_id)s, %(client_ip)s, true FROM stream
    ON CONFLICT (stream_id, client_ip) WHERE hls AND node_id IS NULL AND ended_at IS NULL
    DO UPDATE SET client_id = EXCLUDED.client_id, service_id = EXCLUDED.service_id
)
SELECT id FROM stream
"""
_EDGE_STOP = """
UPDATE viewer_sessions SET ended_at = now()
WHERE stream_id IN (SELECT id FROM streams WHERE name = %(name)s)
  AND node_id = %(node_id)s AND client_id = %(client_id)s AND ended_at IS NULL
"""
_ORIGIN_STOP = """
WITH stream AS (SELECT id FROM streams WHERE name = %(name)s),
pull AS (
    UPDATE edge_pulls SET ended_at = now()
    WHERE stream_id IN (SELECT id FROM stream) AND client_id = %(client_id)s AND ended_at IS NULL
)
UPDATE viewer_sessions SET ended_at = now()
WHERE stream_id IN (SELECT id FROM stream)
  AND node_id IS NULL AND client_id = %(client_id)s AND ended_at IS NULL
"""


async def publish(pool: DriverPool, pepper: str, app: str, event: Event) -> str | None:
    """Start a broadcast if the key is *this* stream's and it is enabled; else why not."""
    key = stream_key(event.param)
    if app != APP:
        return f"unknown app {app!r}; publish to /{APP}/<stream name>"
    if not key:
        return "no stream key: publish to /live/<stream name>?key=<stream key>"
    values = {**event.columns(), "key_hash": keyed_hash(pepper, key)}
    async with pool.connection() as connection:
        if await (await connection.execute(_PUBLISH, values)).fetchone() is None:
            return "stream key is not valid for this stream, or the stream is disabled"
    return None


async def unpublish(pool: DriverPool, event: Event) -> None:
    async with pool.connection() as connection:
        await connection.execute(_UNPUBLISH, {"name": event.name})


async def edge_play(
    pool: DriverPool, ticket_key: bytes, node_id: int, event: Event, now: datetime
) -> str | None:
    """Open a creditable viewer session on the caller's node; else why not (SRS refuses)."""
    ticket = tickets.read(ticket_key, tickets.from_param(event.param) or "")
    refusal = tickets.refusal(ticket, node_id, now)
    if refusal or ticket is None:
        return refusal
    values = {
        **event.columns(),
        "node_id": node_id,
        "nonce": ticket.nonce,
        "ticket_stream": ticket.stream_id,
    }
    async with pool.connection() as connection, connection.transaction():
        await connection.execute(_NODE_LOCK, {"node": str(node_id)})
        verdict = await (await connection.execute(_EDGE_PLAY, values)).fetchone()
    if verdict is None:
        raise RuntimeError("the edge play's verdict is one row, always: got none")
    problem = verdict[0]
    return None if problem in (None, "again") else problem


async def origin_play(pool: DriverPool, ticket_key: bytes, event: Event) -> str | None:
    """An edge's pull (the connection carries a ticket we signed) or an origin viewer."""
    ticket = tickets.read(ticket_key, tickets.from_param(event.param) or "")
    async with pool.connection() as connection:
        if ticket is not None:
            values = {
                **event.columns(),
                "node_id": ticket.node_id,
                "ticket_stream": ticket.stream_id,
            }
            if await (await connection.execute(_PULL, values)).fetchone() is not None:
                return None
        statement = _ORIGIN_HLS_PLAY if event.is_hls else _ORIGIN_PLAY
        if await (await connection.execute(statement, event.columns())).fetchone() is None:
            return "no such stream, or it is disabled"
    return None


async def stop(pool: DriverPool, node_id: int | None, event: Event) -> None:
    values = {"name": event.name, "client_id": event.client_id[:64], "node_id": node_id}
    async with pool.connection() as connection:
        await connection.execute(_EDGE_STOP if node_id else _ORIGIN_STOP, values)

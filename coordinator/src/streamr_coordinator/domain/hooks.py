"""What SRS's hooks mean for us. Each is one SQL statement: SRS waits for the answer before it
lets a publisher or viewer in, so no hook does more than one round trip to PostgreSQL."""

from __future__ import annotations

from urllib.parse import parse_qs

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..security import keyed_hash

APP = "live"
HLS_SUFFIX = ".m3u8"

_PUBLISH = text(
    "UPDATE streams SET is_live = true, live_since = now() "
    "WHERE name = :name AND key_hash = :key_hash AND enabled RETURNING id"
)
_UNPUBLISH = text("UPDATE streams SET is_live = false, live_since = NULL WHERE name = :name")
_PLAY = text(
    "WITH stream AS (SELECT id FROM streams WHERE name = :name AND enabled), "
    "opened AS ("
    " INSERT INTO viewer_sessions (stream_id, node_id, server_id, client_id, client_ip)"
    " SELECT id, :node_id, :server_id, :client_id, :client_ip FROM stream"
    " ON CONFLICT (stream_id, coalesce(node_id, 0), client_id) WHERE ended_at IS NULL"
    " DO NOTHING) "
    "SELECT id FROM stream"
)
_STOP = text(
    "UPDATE viewer_sessions SET ended_at = now() "
    "WHERE stream_id = (SELECT id FROM streams WHERE name = :name) "
    "AND coalesce(node_id, 0) = :node_key AND client_id = :client_id AND ended_at IS NULL"
)


def stream_name(stream: str) -> str:
    """HLS plays name the playlist (`name.m3u8`); everything else names the stream."""
    return stream.removesuffix(HLS_SUFFIX)


def stream_key(param: str) -> str | None:
    """SRS passes the publisher's query string with its `?`: `?key=sk_...`."""
    values = parse_qs(param.removeprefix("?")).get("key")
    return values[0] if values else None


async def publish(
    engine: AsyncEngine, pepper: str, app: str, stream: str, param: str
) -> str | None:
    """Mark the stream live if the key is *this* stream's and it is enabled; else why not."""
    key = stream_key(param)
    if app != APP:
        return f"unknown app {app!r}; publish to /{APP}/<stream name>"
    if not key:
        return "no stream key: publish to /live/<stream name>?key=<stream key>"
    async with engine.begin() as connection:
        found = await connection.execute(
            _PUBLISH, {"name": stream, "key_hash": keyed_hash(pepper, key)}
        )
        if found.first() is None:
            return "stream key is not valid for this stream, or the stream is disabled"
    return None


async def unpublish(engine: AsyncEngine, stream: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(_UNPUBLISH, {"name": stream})


async def play(
    engine: AsyncEngine,
    *,
    stream: str,
    node_id: int | None,
    server_id: str,
    client_id: str,
    client_ip: str,
) -> str | None:
    """Open a viewer session on the serving server (origin when `node_id` is None)."""
    async with engine.begin() as connection:
        found = await connection.execute(
            _PLAY,
            {
                "name": stream_name(stream),
                "node_id": node_id,
                "server_id": server_id[:64],
                "client_id": client_id[:64],
                "client_ip": client_ip[:45],
            },
        )
        if found.first() is None:
            return "no such stream, or it is disabled"
    return None


async def stop(engine: AsyncEngine, *, stream: str, node_id: int | None, client_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            _STOP,
            {"name": stream_name(stream), "node_key": node_id or 0, "client_id": client_id[:64]},
        )

"""Redis access. Redis holds only what can be rebuilt (presence, token cache, rate counters):
every call here degrades to "no answer" when Redis is down, and callers fall back to PostgreSQL
or to a per-process counter. After a failure Redis is left alone for a few seconds, so an outage
costs one timeout, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5.0
LOCAL_COUNTERS_MAX = 10_000

# Token cache entries are "user:role:node:expires". Presence is refreshed only for an entry that
# is a live node token, so a forged token can never mark a node online. One call serves a batch of
# heartbeats: per key, the entry ('' when the cache can't vouch) and whether the node just came
# online (1: it had no presence) or not (0).
_HEARTBEAT_LUA = """
local answers = {}
for _, key in ipairs(KEYS) do
    local entry = redis.call('GET', key)
    local node, expires
    if entry then node, expires = string.match(entry, '^%d+:%a+:(%d+):([%d%.]+)$') end
    if node and tonumber(expires) > tonumber(ARGV[1]) then
        local presence = 'node:online:' .. node
        local arrived = redis.call('EXISTS', presence) == 0
        redis.call('SET', presence, '1', 'EX', ARGV[2])
        answers[#answers + 1] = entry
        answers[#answers + 1] = arrived and 1 or 0
    else
        answers[#answers + 1] = ''
        answers[#answers + 1] = 0
    end
end
return answers
"""
HeartbeatAnswer = tuple[str, bool] | None


def presence_key(node_id: int) -> str:
    return f"node:online:{node_id}"


class Cache:
    def __init__(self, url: str | None) -> None:
        self._client = (
            aioredis.from_url(
                url,
                socket_connect_timeout=0.25,
                socket_timeout=0.25,
                health_check_interval=30,
                decode_responses=True,
            )
            if url
            else None
        )
        self._down_until = 0.0
        self._heartbeat_script = (
            self._client.register_script(_HEARTBEAT_LUA) if self._client is not None else None
        )
        self._local_counts: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
        self._local_beats: dict[int, float] = {}  # node → its last beat here, while Redis is away
        self._heartbeats: list[tuple[str, asyncio.Future[HeartbeatAnswer]]] = []
        self._heartbeat_sends: set[asyncio.Task[None]] = set()

    @property
    def configured(self) -> bool:
        return self._client is not None

    def _available(self) -> aioredis.Redis | None:
        if self._client is None or time.monotonic() < self._down_until:
            return None
        return self._client

    def _failed(self, error: Exception) -> None:
        log.warning("redis unavailable, falling back: %s", error)
        self._down_until = time.monotonic() + RETRY_AFTER_SECONDS

    async def ping(self) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            await client.ping()
        except (RedisError, OSError) as error:
            self._failed(error)
            return False
        self._down_until = 0.0
        return True

    async def get(self, key: str) -> str | None:
        client = self._available()
        if client is None:
            return None
        try:
            return await client.get(key)
        except (RedisError, OSError) as error:
            self._failed(error)
            return None

    async def set(self, key: str, value: str, ttl_seconds: int) -> None:
        client = self._available()
        if client is None:
            return
        try:
            await client.set(key, value, ex=ttl_seconds)
        except (RedisError, OSError) as error:
            self._failed(error)

    async def delete(self, *keys: str) -> bool:
        """True when the keys are gone from Redis (or there is no Redis to hold them)."""
        if self._client is None or not keys:
            return True
        try:
            await self._client.delete(*keys)
        except (RedisError, OSError) as error:
            self._failed(error)
            return False
        return True

    async def exists(self, keys: list[str]) -> list[bool] | None:
        client = self._available()
        if client is None or not keys:
            return None
        try:
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.exists(key)
                return [bool(found) for found in await pipe.execute()]
        except (RedisError, OSError) as error:
            self._failed(error)
            return None

    async def node_heartbeat(self, token_key: str, online_seconds: int) -> HeartbeatAnswer:
        """If `token_key` caches a live node token, refresh that node's presence.

        Returns (cached token entry, whether the node just came online) or None when the cache
        can't vouch for the token (not cached, not a node token, expired, or no Redis): then ask
        PostgreSQL.

        Heartbeats that arrive together (in one turn of the event loop) share one Redis round
        trip: under load that is most of what a heartbeat would otherwise cost.
        """
        if self._available() is None:
            return None
        answer: asyncio.Future[HeartbeatAnswer] = asyncio.get_running_loop().create_future()
        self._heartbeats.append((token_key, answer))
        if len(self._heartbeats) == 1:  # the first of a batch sends it, after the others join
            self._heartbeat_sends.add(
                task := asyncio.create_task(self._send_heartbeats(online_seconds))
            )
            task.add_done_callback(self._heartbeat_sends.discard)
        return await answer

    async def _send_heartbeats(self, online_seconds: int) -> None:
        batch, self._heartbeats = self._heartbeats, []
        client = self._available()
        answers: list[HeartbeatAnswer] = [None] * len(batch)
        try:
            if client is not None:
                flat = await self._heartbeat_script(
                    keys=[key for key, _ in batch],
                    args=[time.time(), online_seconds],
                    client=client,
                )
                answers = [
                    (entry, bool(arrived)) if entry else None
                    for entry, arrived in zip(flat[::2], flat[1::2], strict=True)
                ]
        except (RedisError, OSError) as error:
            self._failed(error)
        finally:
            for (_, waiting), answer in zip(batch, answers, strict=True):
                if not waiting.done():
                    waiting.set_result(answer)

    async def mark_present(self, node_id: int, online_seconds: int) -> bool:
        """Refresh a node's presence; True when it just came online (it had none). Without Redis
        this process's own memory of beats decides, so an outage costs one write-through per
        node and process, not one per heartbeat."""
        client = self._available()
        if client is not None:
            try:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.exists(presence_key(node_id))
                    pipe.set(presence_key(node_id), "1", ex=online_seconds)
                    present, _ = await pipe.execute()
                return not present
            except (RedisError, OSError) as error:
                self._failed(error)
        now = time.monotonic()
        if len(self._local_beats) > LOCAL_COUNTERS_MAX:
            self._local_beats.clear()
        previous = self._local_beats.get(node_id)
        self._local_beats[node_id] = now
        return previous is None or now - previous > online_seconds

    async def hit(self, key: str, window_seconds: int) -> int:
        """Count one event in the current fixed window; returns the count so far."""
        window = int(time.time()) // window_seconds
        window_key = f"{key}:{window}"
        client = self._available()
        if client is not None:
            try:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.incr(window_key)
                    pipe.expire(window_key, window_seconds * 2)
                    count, _ = await pipe.execute()
                return int(count)
            except (RedisError, OSError) as error:
                self._failed(error)
        # Per-process fallback: still limits, per instance, while Redis is away.
        if len(self._local_counts) > LOCAL_COUNTERS_MAX:
            self._local_counts.clear()
        seen_window, count = self._local_counts[key]
        count = count + 1 if seen_window == window else 1
        self._local_counts[key] = (window, count)
        return count

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

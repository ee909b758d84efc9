"""Redis access. Redis holds only what can be rebuilt (presence, token cache, rate counters):
every call here degrades to "no answer" when Redis is down, and callers fall back to PostgreSQL
or to a per-process counter. After a failure Redis is left alone for a few seconds, so an outage
costs one timeout, not one per request.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5.0
LOCAL_COUNTERS_MAX = 10_000


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
        self._local_counts: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))

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

    async def mark_present(self, node_id: int, online_seconds: int) -> bool | None:
        """Refresh a node's presence; True when it had some (it was online), False when it just
        came online, None when Redis cannot say."""
        client = self._available()
        if client is None:
            return None
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.exists(presence_key(node_id))
                pipe.set(presence_key(node_id), "1", ex=online_seconds)
                present, _ = await pipe.execute()
        except (RedisError, OSError) as error:
            self._failed(error)
            return None
        return bool(present)

    async def refresh_presence(self, beats: dict[int, datetime], online_seconds: int) -> None:
        """Presence for each node until `online_seconds` after its beat (one pipeline); beats
        already older than that are left out (their presence has lapsed anyway)."""
        client = self._available()
        now = time.time()
        lasting = {
            node_id: seen.timestamp() + online_seconds
            for node_id, seen in beats.items()
            if seen.timestamp() + online_seconds > now + 1
        }
        if client is None or not lasting:
            return
        try:
            async with client.pipeline(transaction=False) as pipe:
                for node_id, until in lasting.items():
                    pipe.set(presence_key(node_id), "1", pxat=int(until * 1000))
                await pipe.execute()
        except (RedisError, OSError) as error:
            self._failed(error)

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

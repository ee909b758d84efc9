"""Revocation stays immediate although token lookups are cached in Redis.

Revoking deletes the token's cache entry, but that can fail (Redis paused or down), and a lookup
that read PostgreSQL just before the revocation may write its entry just after. So each process
also keeps the tokens revoked recently: the revoking process adds them at once, every process
reads `token_revocations` every POLL_SECONDS, and a cached lookup counts only while this process
has read them lately and the token is not among them. Otherwise PostgreSQL decides (and while it
is unreachable, the caller gets a 503, never a revoked token's access).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import text

from ..db import log_failure

if TYPE_CHECKING:
    from ..context import AppContext
    from ..settings import Settings

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
# A cached lookup counts only if this process read the revocations this recently.
STALE_AFTER_SECONDS = 5.0
# Revocations older than the longest cache entry's life plus this can have no entry left (entries
# are written at most this long after the lookup began).
MARGIN_SECONDS = 60
# Rows older than a day are of no use to anybody; removed every PRUNE_EVERY polls.
PRUNE_EVERY = 3600

_RECENT = text(
    "SELECT token_hash FROM token_revocations "
    "WHERE revoked_at > now() - make_interval(secs => :window)"
)
_PRUNE = text("DELETE FROM token_revocations WHERE revoked_at < now() - interval '1 day'")


class RevocationWatch:
    """The recently revoked token hashes this process knows of, and whether that is current."""

    def __init__(self) -> None:
        self._polled: frozenset[bytes] = frozenset()
        self._local: dict[bytes, float] = {}  # revoked here: hash → when it may be forgotten
        self._synced_at = float("-inf")

    def revoked_here(self, hashes: Iterable[bytes], keep_seconds: float, now: float) -> None:
        """Tokens this process just revoked: refused at once, before any poll."""
        self._local.update(dict.fromkeys(hashes, now + keep_seconds))

    def synced(self, hashes: Iterable[bytes], now: float) -> None:
        self._polled = frozenset(hashes)
        self._synced_at = now
        self._local = {hash_: until for hash_, until in self._local.items() if until > now}

    def vouches_for(self, token_hash: bytes, now: float) -> bool:
        """Whether a cached lookup of this token may be believed."""
        return (
            now - self._synced_at <= STALE_AFTER_SECONDS
            and token_hash not in self._polled
            and token_hash not in self._local
        )


def window_seconds(settings: Settings) -> int:
    """How far back revocations matter: while a cache entry made before one may still live."""
    return max(settings.token_cache_seconds, settings.node_token_cache_seconds) + MARGIN_SECONDS


async def run_revocation_watch(ctx: AppContext) -> None:
    """Read the recent revocations every POLL_SECONDS (one indexed query), forever. A failure is
    logged once when it starts (no stack trace when the database is just unreachable)."""
    window = window_seconds(ctx.settings)
    polls = 0
    failing = False
    while True:
        try:
            async with ctx.soft_engine.begin() as connection:
                rows = await connection.execute(_RECENT, {"window": window})
                ctx.revocations.synced((row[0] for row in rows), time.monotonic())
                if polls % PRUNE_EVERY == 0:
                    await connection.execute(_PRUNE)
            polls += 1
            if failing:
                log.info("revocations read again")
            failing = False
        except Exception as error:  # the next poll retries; until then the cache is not believed
            if not failing:
                log_failure(log, "revocations not read", error)
            failing = True
        await asyncio.sleep(POLL_SECONDS)

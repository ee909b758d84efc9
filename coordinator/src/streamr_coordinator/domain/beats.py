"""What this process remembers of the nodes beating at it, so a steady heartbeat asks neither
PostgreSQL nor Redis anything.

- Node tokens it has authenticated (`domain.tokens.authenticate` asks here first). An entry
  lives at most the node-token cache time and never past the token's expiry, and counts only
  while the revocation watch vouches for the token (read within the last few seconds, not
  revoked: `domain.revocations`), exactly like a Redis cache entry: so a revoked token is refused
  at once by the revoking process and within a poll of the revocations by every other, and
  while PostgreSQL is unreachable (the watch cannot read) nothing remembered is believed.
- When each node last beat here: a node that beat here within the online window is known to be
  online, and its beat just waits for the `last_seen` flush, which also refreshes its Redis
  presence (`domain.last_seen`). Only a node new to this process (or back after the online
  window) costs a presence check, and a write-through when it has just come online.

Both are bounded: entries go when they lapse, and past `MAX_ENTRIES` the lapsed ones are dropped
(all of them if none have lapsed: forgetting costs one lookup each, never a wrong answer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .tokens import Principal

MAX_ENTRIES = 200_000
Key = TypeVar("Key")
Value = TypeVar("Value")


def _make_room(entries: dict[Key, Value], lapsed: Callable[[Value], bool]) -> None:
    """Once `entries` is at the bound, drop the lapsed ones (all, if none has lapsed)."""
    if len(entries) < MAX_ENTRIES:
        return
    for key in [key for key, value in entries.items() if lapsed(value)]:
        del entries[key]
    if len(entries) >= MAX_ENTRIES:
        entries.clear()


class BeatMemory:
    """Remembered node tokens (hash → who, and until when in seconds since the epoch) and the
    last beat here of each node (node id → monotonic seconds)."""

    def __init__(self) -> None:
        self._tokens: dict[bytes, tuple[Principal, float]] = {}
        self._beats: dict[int, float] = {}

    def remember(self, principal: Principal, now: float, for_seconds: float) -> None:
        """Remember a node token for `for_seconds`, never past its expiry."""
        until = min(now + for_seconds, principal.expires_at.timestamp())
        if until > now:
            _make_room(self._tokens, lambda entry: entry[1] <= now)
            self._tokens[principal.token_hash] = (principal, until)

    def recall(self, token_hash: bytes, now: float) -> Principal | None:
        """Who holds this token, if remembered and not lapsed. The caller asks the revocation
        watch first."""
        remembered = self._tokens.get(token_hash)
        if remembered is None:
            return None
        principal, until = remembered
        if until <= now:
            del self._tokens[token_hash]
            return None
        return principal

    def forget(self, token_hashes: list[bytes]) -> None:
        for token_hash in token_hashes:
            self._tokens.pop(token_hash, None)

    def beat(self, node_id: int, now: float, online_seconds: float) -> bool:
        """Note a beat here; True when the node beat here within the online window before it
        (known online: no presence check needed)."""
        previous = self._beats.get(node_id)
        _make_room(self._beats, lambda last: now - last > online_seconds)
        self._beats[node_id] = now
        return previous is not None and now - previous <= online_seconds

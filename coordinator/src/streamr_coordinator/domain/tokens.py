"""Bearer tokens: issued, looked up (cache first, PostgreSQL is the truth) and revoked."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..context import AppContext
from ..models import ApiToken, TokenRevocation, User
from ..security import NODE_TOKEN_PREFIX, SESSION_TOKEN_PREFIX, keyed_hash, new_secret
from .revocations import window_seconds

# The friend's short-lived token for the node kit: it can register a node, nothing else.
NODE_SETUP_SCOPE = "node-setup"


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: str
    node_id: int | None
    token_hash: bytes
    # When the token expires: no cache or memory of it lives longer.
    expires_at: datetime
    scope: str | None = None  # None: everything the role may do


def cache_key(token_hash: bytes) -> str:
    return f"tok:{token_hash.hex()}"


def from_cache_entry(entry: str, token_hash: bytes, now: datetime) -> Principal | None:
    """A cached lookup ("user:role:node:expires"), if it has not expired."""
    user_id, role, node_id, expires = entry.split(":")
    if float(expires) <= now.timestamp():
        return None
    return Principal(
        int(user_id),
        role,
        int(node_id) if node_id else None,
        token_hash,
        datetime.fromtimestamp(float(expires), UTC),
    )


async def issue(
    ctx: AppContext,
    session: AsyncSession,
    user_id: int,
    node_id: int | None,
    lifetime: timedelta,
    scope: str | None = None,
) -> tuple[str, datetime]:
    """Create a token; the caller commits. Returns the token, shown once, and its expiry."""
    token = new_secret(NODE_TOKEN_PREFIX if node_id else SESSION_TOKEN_PREFIX)
    expires_at = datetime.now(UTC) + lifetime
    session.add(
        ApiToken(
            token_hash=keyed_hash(ctx.pepper, token),
            user_id=user_id,
            node_id=node_id,
            expires_at=expires_at,
            scope=scope,
        )
    )
    return token, expires_at


def cache_trusted(ctx: AppContext, token_hash: bytes) -> bool:
    """Whether a cached lookup of this token may be believed (not revoked lately: see
    `domain.revocations`); if not, ask PostgreSQL."""
    return ctx.revocations.vouches_for(token_hash, time.monotonic())


async def authenticate(ctx: AppContext, token: str) -> Principal | None:
    """Who holds `token` (None: nobody, or it expired or was revoked). A node token this process
    looked up lately is remembered (`domain.beats`), then Redis's cache, then PostgreSQL; the
    first two only while the revocation watch vouches for the token."""
    token_hash = keyed_hash(ctx.pepper, token)
    now = datetime.now(UTC)
    if cache_trusted(ctx, token_hash):
        if remembered := ctx.beats.recall(token_hash, now.timestamp()):
            return remembered
        cached = await ctx.cache.get(cache_key(token_hash))
        if cached and (principal := from_cache_entry(cached, token_hash, now)):
            _remember(ctx, principal, now)
            return principal
    async with ctx.sessions() as session:
        row = (
            await session.execute(
                select(User.id, User.role, ApiToken.node_id, ApiToken.expires_at, ApiToken.scope)
                .join(User, User.id == ApiToken.user_id)
                .where(
                    ApiToken.token_hash == token_hash,
                    ApiToken.revoked_at.is_(None),
                    ApiToken.expires_at > now,
                )
            )
        ).one_or_none()
    if row is None:
        return None
    user_id, role, node_id, expires_at, scope = row
    principal = Principal(user_id, role, node_id, token_hash, expires_at, scope)
    settings = ctx.settings
    cache_for = settings.node_token_cache_seconds if node_id else settings.token_cache_seconds
    ttl = min(cache_for, int((expires_at - now).total_seconds()))
    # A scoped token is used a few times at most: it is not cached (the entry has no scope).
    if ttl > 0 and scope is None:
        value = f"{user_id}:{role}:{node_id or ''}:{expires_at.timestamp()}"
        await ctx.cache.set(cache_key(token_hash), value, ttl)
        _remember(ctx, principal, now)
    return principal


def _remember(ctx: AppContext, principal: Principal, now: datetime) -> None:
    """Node tokens are remembered in the process (what heartbeats and reports present); people's
    tokens are not (a sign-in is used from one browser, now and then)."""
    if principal.node_id is not None and principal.scope is None:
        ctx.beats.remember(principal, now.timestamp(), ctx.settings.node_token_cache_seconds)


async def revoke(ctx: AppContext, session: AsyncSession, *conditions) -> None:
    """Revoke every live token matching `conditions`, and record that for every instance's
    revocation watch; the cache forgets them after the commit (if Redis answers)."""
    hashes = (
        await session.scalars(
            update(ApiToken)
            .where(ApiToken.revoked_at.is_(None), *conditions)
            .values(revoked_at=datetime.now(UTC))
            .returning(ApiToken.token_hash)
        )
    ).all()
    if hashes:
        await session.execute(insert(TokenRevocation), [{"token_hash": h} for h in hashes])
    await session.commit()
    keep = window_seconds(ctx.settings)
    ctx.revocations.revoked_here(hashes, keep, time.monotonic())
    ctx.beats.forget(hashes)
    await ctx.cache.delete(*(cache_key(token_hash) for token_hash in hashes))

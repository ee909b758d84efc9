"""Viewer invites: a streamer's link that lets people without an account join the mesh as
`tag:viewer`, so they can play from friends' edges (the ACL lets viewers reach nothing else).

Opening an invite claims one of its uses in one statement (so parallel openings never exceed
`max_uses`), then mints a single-use, ephemeral, short-lived key; if Headscale fails, the use is
given back. A key never outlives its invite. Revoking stops further openings and removes the
machines that joined with the invite's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..context import AppContext
from ..mesh import MeshError, PreAuthKey
from ..models import Invite, InviteKey, Stream
from ..security import keyed_hash, new_secret
from .mesh import VIEWER_TAG, MeshNotConfigured, remove_machines

INVITE_CODE_PREFIX = "inv_"
OPEN, EXPIRED, REVOKED, USED_UP = "open", "expired", "revoked", "used up"


class InviteRefused(Exception):
    """The invite cannot be opened: unknown (404) or no longer valid (410), said plainly."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def state(invite: Invite, now: datetime) -> str:
    """Whether an invite can be opened at `now`, or the first reason it cannot."""
    if invite.revoked_at is not None:
        return REVOKED
    if invite.expires_at <= now:
        return EXPIRED
    if invite.uses >= invite.max_uses:
        return USED_UP
    return OPEN


def key_expiry(now: datetime, ttl: timedelta, invite_expires_at: datetime) -> datetime:
    """A viewer key is short-lived, and never outlives the invite that gave it."""
    return min(now + ttl, invite_expires_at)


@dataclass(frozen=True)
class Opened:
    key: PreAuthKey
    login_server: str
    streams: list[str]  # the watch pages the invite is for


# One statement: of parallel openings, at most `max_uses` get a row back.
_CLAIM = text("""
UPDATE invites SET uses = uses + 1
WHERE code_hash = :code_hash AND revoked_at IS NULL AND expires_at > :now AND uses < max_uses
RETURNING id, owner_id, stream_id, expires_at
""")
_RELEASE = text("UPDATE invites SET uses = uses - 1 WHERE id = :id AND uses > 0")


async def streams_of(session: AsyncSession, owner_id: int, stream_id: int | None) -> list[str]:
    """The names of the streams an invite is for (the owner's current ones)."""
    query = select(Stream.name).where(Stream.owner_id == owner_id, Stream.deleted_at.is_(None))
    if stream_id is not None:
        query = query.where(Stream.id == stream_id)
    return list(await session.scalars(query.order_by(Stream.name)))


async def create(
    session: AsyncSession,
    pepper: str,
    owner_id: int,
    stream_id: int | None,
    expires_at: datetime,
    max_uses: int,
) -> tuple[Invite, str]:
    """A new invite of `owner_id` (for one of their streams, or all of them) and its code, which
    is shown once; the caller commits. InviteRefused(404) for a stream that is not theirs."""
    if stream_id is not None:
        owned = await session.scalar(
            select(Stream.id).where(
                Stream.id == stream_id, Stream.owner_id == owner_id, Stream.deleted_at.is_(None)
            )
        )
        if owned is None:
            raise InviteRefused(404, f"no stream {stream_id} of yours")
    code = new_secret(INVITE_CODE_PREFIX)
    invite = Invite(
        owner_id=owner_id,
        stream_id=stream_id,
        code_hash=keyed_hash(pepper, code),
        max_uses=max_uses,
        expires_at=expires_at,
    )
    session.add(invite)
    await session.flush()
    return invite, code


async def owned(session: AsyncSession, invite_id: int, owner_id: int) -> Invite | None:
    invite = await session.get(Invite, invite_id)
    return invite if invite is not None and invite.owner_id == owner_id else None


async def listing(session: AsyncSession, owner_id: int) -> list[tuple[Invite, str | None]]:
    """The owner's invites, newest first, with the stream each is for (None: all streams)."""
    rows = await session.execute(
        select(Invite, Stream.name)
        .outerjoin(Stream, Stream.id == Invite.stream_id)
        .where(Invite.owner_id == owner_id)
        .order_by(Invite.id.desc())
    )
    return [(invite, name) for invite, name in rows]


async def find(session: AsyncSession, pepper: str, code: str) -> Invite | None:
    return await session.scalar(select(Invite).where(Invite.code_hash == keyed_hash(pepper, code)))


async def open_invite(ctx: AppContext, session: AsyncSession, code: str, now: datetime) -> Opened:
    """One use of the invite `code`: a fresh viewer key and where to log in with it."""
    if ctx.mesh is None:
        raise MeshNotConfigured("no mesh configured")
    code_hash = keyed_hash(ctx.pepper, code)
    claimed = (await session.execute(_CLAIM, {"code_hash": code_hash, "now": now})).first()
    await session.commit()
    if claimed is None:
        invite = await find(session, ctx.pepper, code)
        if invite is None:
            raise InviteRefused(404, "no such invite: check the link (it is case-sensitive)")
        reason = state(invite, now)
        if reason == OPEN:  # its last use was given back between our two statements
            raise InviteRefused(409, "this invite was busy; try again")
        raise InviteRefused(410, f"this invite is {reason}: ask the streamer for a new one")
    invite_id, owner_id, stream_id, invite_expires_at = claimed
    expiration = key_expiry(
        now, timedelta(minutes=ctx.settings.viewer_key_ttl_minutes), invite_expires_at
    )
    try:
        key = await ctx.mesh.create_preauth_key(
            tags=[VIEWER_TAG], expiration=expiration, ephemeral=True
        )
    except MeshError:
        await session.execute(_RELEASE, {"id": invite_id})
        await session.commit()
        raise
    session.add(InviteKey(invite_id=invite_id, mesh_key_id=key.id, expires_at=key.expiration))
    await session.commit()
    return Opened(key, ctx.mesh.login_server_url, await streams_of(session, owner_id, stream_id))


async def revoke(ctx: AppContext, session: AsyncSession, invite: Invite, now: datetime) -> int:
    """Stop the invite at once (committed first, whatever the mesh does), then remove the mesh
    machines that joined with its keys; how many were removed. A mesh failure propagates after
    the revocation stands, and the keys stay recorded so that revoking again removes them."""
    if invite.revoked_at is None:
        await session.execute(update(Invite).where(Invite.id == invite.id).values(revoked_at=now))
        await session.commit()
    key_ids = await session.scalars(
        select(InviteKey.mesh_key_id).where(InviteKey.invite_id == invite.id)
    )
    removed = await remove_machines(ctx, *key_ids)
    await session.execute(delete(InviteKey).where(InviteKey.invite_id == invite.id))
    await session.commit()
    return removed

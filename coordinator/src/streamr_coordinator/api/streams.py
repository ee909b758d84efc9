"""Streams: the streamer's own CRUD and key rotation, the admin's view, the public live list."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from ..context import AppContext
from ..domain.payouts import period_containing
from ..domain.tokens import Principal
from ..models import Role, Stream
from ..schemas import ErrorOut, PublicStreamOut, StreamIn, StreamOut, StreamUpdate, StreamWithKey
from ..security import STREAM_KEY_PREFIX, keyed_hash, new_secret
from .deps import ERRORS, NOT_FOUND, Admin, Ctx, RowId, Session, Streamer, StreamerOrAdmin

router = APIRouter(prefix="/api/v1", tags=["streams"])
CONFLICT = {409: {"model": ErrorOut, "description": "stream name taken"}}


def stream_out(stream: Stream, ctx: AppContext) -> StreamOut:
    fields = {name: getattr(stream, name) for name in StreamOut.model_fields if name != "currency"}
    return StreamOut(**fields, currency=ctx.settings.payout_unit)


def _with_key(stream: Stream, key: str, ctx: AppContext) -> StreamWithKey:
    return StreamWithKey(**stream_out(stream, ctx).model_dump(), stream_key=key)


async def owned_stream(session: Session, stream_id: int, principal: Principal) -> Stream:
    """The stream if the caller owns it (admins may act on any); 404 otherwise, so stream ids
    of other users are not confirmed to exist."""
    stream = await session.get(Stream, stream_id)
    if (
        stream is None
        or stream.deleted_at is not None
        or (principal.role != Role.ADMIN and stream.owner_id != principal.user_id)
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no stream {stream_id} of yours")
    return stream


@router.post(
    "/streams",
    status_code=status.HTTP_201_CREATED,
    response_model=StreamWithKey,
    responses={**ERRORS, **CONFLICT},
)
async def create_stream(body: StreamIn, principal: Streamer, ctx: Ctx, session: Session):
    """Create a stream; its key is in this response and nowhere else until rotated."""
    key = new_secret(STREAM_KEY_PREFIX)
    stream = Stream(
        owner_id=principal.user_id,
        name=body.name,
        title=body.title,
        bitrate_kbps=body.bitrate_kbps,
        payout_pool_minor=body.payout_pool_minor,
        key_hash=keyed_hash(ctx.pepper, key),
    )
    session.add(stream)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"stream name {body.name!r} is taken"
        ) from None
    await session.refresh(stream)
    return _with_key(stream, key, ctx)


@router.get("/streams", response_model=list[StreamOut], responses=ERRORS)
async def my_streams(principal: Streamer, ctx: Ctx, session: Session):
    return [
        stream_out(stream, ctx)
        for stream in await session.scalars(
            select(Stream)
            .where(Stream.owner_id == principal.user_id, Stream.deleted_at.is_(None))
            .order_by(Stream.id)
        )
    ]


@router.get("/streams/live", response_model=list[PublicStreamOut])
async def live_streams(session: Session):
    """Public: what is on now. No owner, no keys."""
    rows = await session.execute(
        select(Stream.name, Stream.title, Stream.live_since)
        .where(Stream.is_live, Stream.enabled, Stream.deleted_at.is_(None))
        .order_by(Stream.live_since.desc())
    )
    return [PublicStreamOut(name=n, title=t, live_since=since) for n, t, since in rows]


@router.get("/streams/{stream_id}", response_model=StreamOut, responses={**ERRORS, **NOT_FOUND})
async def get_stream(stream_id: RowId, principal: StreamerOrAdmin, ctx: Ctx, session: Session):
    return stream_out(await owned_stream(session, stream_id, principal), ctx)


# Ends the stream's broadcast (disabled, moderated or deleted: nothing of it is credited after).
_END_BROADCAST = text(
    "UPDATE broadcasts SET ended_at = now() WHERE stream_id = :id AND ended_at IS NULL"
)
# A deleted stream serves nobody any more: its open sessions and pulls end too.
_END_SESSIONS = text("""
WITH pulls AS (UPDATE edge_pulls SET ended_at = now() WHERE stream_id = :id AND ended_at IS NULL)
UPDATE viewer_sessions SET ended_at = now() WHERE stream_id = :id AND ended_at IS NULL
""")
_SCHEDULE_POOL = text("""
INSERT INTO stream_pools (stream_id, effective_from, pool_minor) VALUES (:id, :start, :pool)
ON CONFLICT (stream_id, effective_from) DO UPDATE SET pool_minor = EXCLUDED.pool_minor
""")
MODERATED = {403: {"model": ErrorOut, "description": "an admin disabled this stream"}}


def enabling_refusal(stream: Stream, enabled: bool | None, principal: Principal) -> str | None:
    """Only an admin lifts an admin's disable (moderation); the owner's switch cannot."""
    if enabled and stream.moderated and principal.role != Role.ADMIN:
        return f"an admin disabled stream {stream.name!r}; only an admin can enable it again"
    return None


@router.patch(
    "/streams/{stream_id}",
    response_model=StreamOut,
    responses={**ERRORS, **NOT_FOUND, **MODERATED},
)
async def update_stream(
    stream_id: RowId, body: StreamUpdate, principal: StreamerOrAdmin, ctx: Ctx, session: Session
):
    """Change title, bitrate or pool, or enable/disable. An admin's disable is moderation: only an
    admin enables the stream again. A new pool applies from the next payout period."""
    stream = await owned_stream(session, stream_id, principal)
    refusal = enabling_refusal(stream, body.enabled, principal)
    if refusal:
        raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
    now = datetime.now(UTC)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    pool = changes.pop("payout_pool_minor", None)
    for field, value in changes.items():
        setattr(stream, field, value)
    if body.enabled is not None and principal.role == Role.ADMIN:
        stream.moderated = not body.enabled
    if body.enabled is False:
        stream.is_live = False
        stream.live_since = None
        await session.execute(_END_BROADCAST, {"id": stream.id})
    if pool is not None and pool != stream.payout_pool_minor:
        _, next_period = period_containing(now, ctx.settings.payout_period_seconds)
        await session.execute(_SCHEDULE_POOL, {"id": stream.id, "start": next_period, "pool": pool})
        stream.payout_pool_minor = pool
        stream.payout_pool_from = next_period
    stream.updated_at = now
    await session.commit()
    await session.refresh(stream)
    return stream_out(stream, ctx)


@router.post(
    "/streams/{stream_id}/rotate-key",
    response_model=StreamWithKey,
    responses={**ERRORS, **NOT_FOUND},
)
async def rotate_key(stream_id: RowId, principal: Streamer, ctx: Ctx, session: Session):
    """A new key; the old one stops working for the next publish at once."""
    stream = await owned_stream(session, stream_id, principal)
    key = new_secret(STREAM_KEY_PREFIX)
    stream.key_hash = keyed_hash(ctx.pepper, key)
    stream.updated_at = datetime.now(UTC)
    await session.commit()
    await session.refresh(stream)
    return _with_key(stream, key, ctx)


@router.delete(
    "/streams/{stream_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, **NOT_FOUND},
)
async def delete_stream(stream_id: RowId, principal: StreamerOrAdmin, session: Session) -> None:
    """The stream is gone for everyone, and its name is free for a new, different stream; what it
    earned friends stays payable (it is only marked deleted)."""
    stream = await owned_stream(session, stream_id, principal)
    now = datetime.now(UTC)
    stream.deleted_at = now
    stream.enabled = False
    stream.is_live = False
    stream.live_since = None
    stream.updated_at = now
    await session.execute(_END_BROADCAST, {"id": stream.id})
    await session.execute(_END_SESSIONS, {"id": stream.id})
    await session.commit()


@router.get("/admin/streams", response_model=list[StreamOut], responses=ERRORS)
async def all_streams(_: Admin, ctx: Ctx, session: Session):
    return [
        stream_out(stream, ctx)
        for stream in await session.scalars(
            select(Stream).where(Stream.deleted_at.is_(None)).order_by(Stream.id)
        )
    ]

"""Streams: the streamer's own CRUD and key rotation, the admin's view, the public live list."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..domain.tokens import Principal
from ..models import Role, Stream
from ..schemas import ErrorOut, PublicStreamOut, StreamIn, StreamOut, StreamUpdate, StreamWithKey
from ..security import STREAM_KEY_PREFIX, keyed_hash, new_secret
from .deps import ERRORS, NOT_FOUND, Admin, Ctx, Session, Streamer, StreamerOrAdmin

router = APIRouter(prefix="/api/v1", tags=["streams"])
CONFLICT = {409: {"model": ErrorOut, "description": "stream name taken"}}


def _with_key(stream: Stream, key: str) -> StreamWithKey:
    return StreamWithKey(**StreamOut.model_validate(stream).model_dump(), stream_key=key)


async def owned_stream(session: Session, stream_id: int, principal: Principal) -> Stream:
    """The stream if the caller owns it (admins may act on any); 404 otherwise, so stream ids
    of other users are not confirmed to exist."""
    stream = await session.get(Stream, stream_id)
    if stream is None or (principal.role != Role.ADMIN and stream.owner_id != principal.user_id):
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
    return _with_key(stream, key)


@router.get("/streams", response_model=list[StreamOut], responses=ERRORS)
async def my_streams(principal: Streamer, session: Session):
    return list(
        await session.scalars(
            select(Stream).where(Stream.owner_id == principal.user_id).order_by(Stream.id)
        )
    )


@router.get("/streams/live", response_model=list[PublicStreamOut])
async def live_streams(session: Session):
    """Public: what is on now. No owner, no keys."""
    rows = await session.execute(
        select(Stream.name, Stream.title, Stream.live_since)
        .where(Stream.is_live, Stream.enabled)
        .order_by(Stream.live_since.desc())
    )
    return [PublicStreamOut(name=n, title=t, live_since=since) for n, t, since in rows]


@router.get("/streams/{stream_id}", response_model=StreamOut, responses={**ERRORS, **NOT_FOUND})
async def get_stream(stream_id: int, principal: StreamerOrAdmin, session: Session):
    return await owned_stream(session, stream_id, principal)


@router.patch("/streams/{stream_id}", response_model=StreamOut, responses={**ERRORS, **NOT_FOUND})
async def update_stream(
    stream_id: int, body: StreamUpdate, principal: StreamerOrAdmin, session: Session
):
    """Change title, bitrate, pool, or enable/disable (admins can disable any stream)."""
    stream = await owned_stream(session, stream_id, principal)
    for field, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(stream, field, value)
    if body.enabled is False:
        stream.is_live = False
    stream.updated_at = datetime.now(UTC)
    await session.commit()
    await session.refresh(stream)
    return stream


@router.post(
    "/streams/{stream_id}/rotate-key",
    response_model=StreamWithKey,
    responses={**ERRORS, **NOT_FOUND},
)
async def rotate_key(stream_id: int, principal: Streamer, ctx: Ctx, session: Session):
    """A new key; the old one stops working for the next publish at once."""
    stream = await owned_stream(session, stream_id, principal)
    key = new_secret(STREAM_KEY_PREFIX)
    stream.key_hash = keyed_hash(ctx.pepper, key)
    stream.updated_at = datetime.now(UTC)
    await session.commit()
    await session.refresh(stream)
    return _with_key(stream, key)


@router.delete(
    "/streams/{stream_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, **NOT_FOUND},
)
async def delete_stream(stream_id: int, principal: StreamerOrAdmin, session: Session) -> None:
    stream = await owned_stream(session, stream_id, principal)
    await session.delete(stream)
    await session.commit()


@router.get("/admin/streams", response_model=list[StreamOut], responses=ERRORS)
async def all_streams(_: Admin, session: Session):
    return list(await session.scalars(select(Stream).order_by(Stream.id)))

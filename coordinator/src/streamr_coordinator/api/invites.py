"""Invites: a streamer creates, lists and revokes them; anyone holding one opens it for a viewer
mesh key. The code travels only in request bodies and the link's query string, which the access
log never writes; the key only in response bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from ..domain import invites
from ..models import Invite
from ..schemas import ErrorOut
from .deps import ERRORS, NOT_FOUND, Ctx, RateLimited, Session, Streamer

router = APIRouter(prefix="/api/v1", tags=["invites"])
MAX_HOURS = 30 * 24


class InviteIn(BaseModel):
    stream_id: int | None = Field(
        default=None, description="one of your streams; omit for all of them"
    )
    expires_in_hours: int = Field(default=24, ge=1, le=MAX_HOURS)
    max_uses: int = Field(default=10, ge=1, le=1000, description="how many viewers may join")


class InviteOut(BaseModel):
    id: int
    stream_id: int | None
    stream_name: str | None = Field(description="None: the invite is for all your streams")
    max_uses: int
    uses: int
    expires_at: datetime
    revoked_at: datetime | None
    created_at: datetime
    state: str = Field(description="open, expired, revoked or used up")


class InviteCreatedOut(InviteOut):
    code: str = Field(description="shown once: only its hash is stored")
    link: str = Field(description="the page to send viewers to")


class InviteOpenIn(BaseModel):
    code: str = Field(min_length=8, max_length=100)


class WatchPage(BaseModel):
    stream: str
    url: str


class ViewerKeyOut(BaseModel):
    login_server: str
    preauth_key: str = Field(description="single use; join with it before expires_at")
    expires_at: datetime
    ephemeral: bool = Field(description="the machine leaves the mesh by itself once offline")
    tags: list[str]
    command: str = Field(description="the command for Linux, macOS and Windows")
    watch: list[WatchPage]


class RevokedOut(InviteOut):
    machines_removed: int = Field(description="viewer machines that had joined with its keys")


def invite_link(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/invite?code={code}"


def join_command(login_server: str, key: str) -> str:
    return f"tailscale up --login-server {login_server} --auth-key {key}"


def invite_out(invite: Invite, stream_name: str | None, now: datetime) -> InviteOut:
    return InviteOut(
        id=invite.id,
        stream_id=invite.stream_id,
        stream_name=stream_name,
        max_uses=invite.max_uses,
        uses=invite.uses,
        expires_at=invite.expires_at,
        revoked_at=invite.revoked_at,
        created_at=invite.created_at,
        state=invites.state(invite, now),
    )


GONE = {
    404: {"model": ErrorOut, "description": "no such invite"},
    410: {"model": ErrorOut, "description": "expired, revoked or used up"},
    503: {"model": ErrorOut, "description": "no mesh, or the mesh is unavailable"},
}


@router.post(
    "/invites",
    status_code=status.HTTP_201_CREATED,
    response_model=InviteCreatedOut,
    responses={**ERRORS, **NOT_FOUND},
)
async def create_invite(
    body: InviteIn, request: Request, principal: Streamer, ctx: Ctx, session: Session
):
    """An invite link for one of your streams (or all of them); the code is in this response
    only."""
    now = datetime.now(UTC)
    invite, code = await invites.create(
        session,
        ctx.pepper,
        principal.user_id,
        body.stream_id,
        now + timedelta(hours=body.expires_in_hours),
        body.max_uses,
    )
    await session.commit()
    await session.refresh(invite)
    names = await invites.streams_of(session, principal.user_id, invite.stream_id)
    out = invite_out(invite, names[0] if invite.stream_id else None, now)
    link = invite_link(str(request.base_url), code)
    return InviteCreatedOut(**out.model_dump(), code=code, link=link)


@router.get("/invites", response_model=list[InviteOut], responses=ERRORS)
async def my_invites(principal: Streamer, session: Session):
    now = datetime.now(UTC)
    return [
        invite_out(invite, name, now)
        for invite, name in await invites.listing(session, principal.user_id)
    ]


@router.delete("/invites/{invite_id}", response_model=RevokedOut, responses={**ERRORS, **NOT_FOUND})
async def revoke_invite(invite_id: int, principal: Streamer, ctx: Ctx, session: Session):
    """Nobody can open it any more, and the viewers who joined with it leave the mesh. If the
    mesh fails, the invite is revoked all the same (503 says so); revoke again to remove them."""
    invite = await invites.owned(session, invite_id, principal.user_id)
    if invite is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no invite {invite_id} of yours")
    now = datetime.now(UTC)
    removed = await invites.revoke(ctx, session, invite, now)
    await session.refresh(invite)
    names = await invites.streams_of(session, principal.user_id, invite.stream_id)
    out = invite_out(invite, names[0] if invite.stream_id and names else None, now)
    return RevokedOut(**out.model_dump(), machines_removed=removed)


@router.post(
    "/invites/open",
    response_model=ViewerKeyOut,
    responses=GONE,
    dependencies=[RateLimited],
)
async def open_invite(body: InviteOpenIn, request: Request, ctx: Ctx, session: Session):
    """Public (no account): one use of an invite, for a single-use, ephemeral `tag:viewer` key
    that joins one device to the mesh within `STREAMR_VIEWER_KEY_TTL_MINUTES`."""
    opened = await invites.open_invite(ctx, session, body.code, datetime.now(UTC))
    return viewer_key_out(opened, str(request.base_url))


def viewer_key_out(opened: invites.Opened, base_url: str) -> ViewerKeyOut:
    return ViewerKeyOut(
        login_server=opened.login_server,
        preauth_key=opened.key.key,
        expires_at=opened.key.expiration,
        ephemeral=opened.key.ephemeral,
        tags=list(opened.key.tags),
        command=join_command(opened.login_server, opened.key.key),
        watch=[
            WatchPage(stream=name, url=f"{base_url.rstrip('/')}/watch/{name}")
            for name in opened.streams
        ],
    )

"""Invite pages: the streamer creates and revokes invites on their page; a viewer opens the link
(`/invite?code=…`: the access log writes paths, never query strings), presses one button (a POST,
so no key ever sits in a URL) and gets a mesh key with the steps for their device."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, Response

from ..api.deps import Ctx, RateLimited, Session
from ..api.invites import MAX_HOURS, invite_link, viewer_key_out
from ..domain import invites
from ..domain.mesh import mesh_problem
from ..mesh import MeshError
from ..models import Role
from .pages import Viewer, _streamer_page, form_page, problem, render
from .session import FormError, read_form

router = APIRouter(include_in_schema=False)
# The invite page's URL holds the code: never send it on as a referrer.
_NO_REFERRER = {"Referrer-Policy": "no-referrer"}


def _page_with(response: HTMLResponse) -> HTMLResponse:
    response.headers.update(_NO_REFERRER)
    return response


@router.get("/invite")
async def invite_page(code: str, ctx: Ctx, session: Session) -> HTMLResponse:
    """What the invite is for and whether it still works; the key comes from the button."""
    now = datetime.now(UTC)
    invite = await invites.find(session, ctx.pepper, code)
    if invite is None:
        return _page_with(render("invite.html", status.HTTP_404_NOT_FOUND, invite=None))
    streams = await invites.streams_of(session, invite.owner_id, invite.stream_id)
    return _page_with(
        render(
            "invite.html",
            invite=invite,
            state=invites.state(invite, now),
            streams=streams,
            code=code,
            mesh=ctx.mesh is not None,
        )
    )


@router.post("/invite", dependencies=[RateLimited])
async def open_invite(request: Request, ctx: Ctx, session: Session) -> HTMLResponse:
    try:
        form = await read_form(request)
    except FormError as error:
        return _page_with(render("invite_key.html", 400, error=str(error)))
    try:
        opened = await invites.open_invite(ctx, session, form.get("code", ""), datetime.now(UTC))
    except invites.InviteRefused as refused:
        return _page_with(render("invite_key.html", refused.status, error=refused.detail))
    except MeshError as error:
        code, detail = mesh_problem(error)
        return _page_with(render("invite_key.html", code, error=detail))
    return _page_with(render("invite_key.html", key=viewer_key_out(opened, str(request.base_url))))


@router.post("/streamer/invites")
async def create_invite(request: Request, ctx: Ctx, session: Session, viewer: Viewer) -> Response:
    """A new invite; its link is shown once, on this response."""
    checked = await form_page(request, ctx, session, viewer, Role.STREAMER)
    if isinstance(checked, Response):
        return checked
    form, page = checked
    try:
        stream_id = int(form["stream"]) if form.get("stream", "all") != "all" else None
        hours = int(form.get("hours", "24"))
        max_uses = int(form.get("max_uses", "10"))
    except ValueError:
        return problem(400, "Stream, hours and uses must be numbers.", page)
    if not (1 <= hours <= MAX_HOURS and 1 <= max_uses <= 1000):
        return problem(
            400, f"An invite lasts 1 to {MAX_HOURS} hours and allows 1 to 1000 uses.", page
        )
    now = datetime.now(UTC)
    try:
        _, code = await invites.create(
            session,
            ctx.pepper,
            page.principal.user_id,
            stream_id,
            now + timedelta(hours=hours),
            max_uses,
        )
    except invites.InviteRefused as refused:
        return problem(refused.status, refused.detail + ".", page)
    await session.commit()
    link = invite_link(str(request.base_url), code)
    return await _streamer_page(request, ctx, session, page, new_invite=link)


@router.post("/streamer/invites/{invite_id}/revoke")
async def revoke_invite(
    invite_id: int, request: Request, ctx: Ctx, session: Session, viewer: Viewer
) -> Response:
    checked = await form_page(request, ctx, session, viewer, Role.STREAMER)
    if isinstance(checked, Response):
        return checked
    _, page = checked
    invite = await invites.owned(session, invite_id, page.principal.user_id)
    if invite is None:
        return problem(status.HTTP_404_NOT_FOUND, f"You have no invite {invite_id}.", page)
    try:
        removed = await invites.revoke(ctx, session, invite, datetime.now(UTC))
    except MeshError as error:
        _, detail = mesh_problem(error)
        message = f"Invite {invite_id} is revoked; its viewers could not be removed yet: {detail}"
        return await _streamer_page(request, ctx, session, page, error=message, code=503)
    return await _streamer_page(
        request,
        ctx,
        session,
        page,
        notice=f"Invite {invite_id} revoked; {removed} viewer device(s) removed from the mesh.",
    )

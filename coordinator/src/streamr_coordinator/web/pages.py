"""The dashboard pages: sign-in, operator overview, streamer page, friend page.

Server-rendered with Jinja2 (autoescaped); charts are inline SVG; forms work without JavaScript.
Authentication is the session cookie (a normal session token); every POST checks a CSRF token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select

from ..api.deps import Ctx, RateLimited, RowId, Session
from ..domain import invites as invite_domain
from ..domain import tokens
from ..domain.tokens import Principal
from ..models import ApiToken, Role, User
from ..security import STREAM_KEY_PREFIX, keyed_hash, new_secret, verify_password
from . import data
from .assets import packaged_file
from .charts import bar_chart, hourly_split_chart
from .formatting import money, size, when
from .session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGNIN_CSRF_COOKIE,
    FormError,
    csrf_matches,
    csrf_token,
    is_https,
    new_signin_csrf,
    read_form,
)

router = APIRouter(include_in_schema=False)

_templates = Environment(
    loader=PackageLoader("streamr_coordinator.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_STATIC = files("streamr_coordinator.web") / "static"
HOME = {
    Role.ADMIN.value: "/operator",
    Role.STREAMER.value: "/streamer",
    Role.FRIEND.value: "/friend",
}
SETUP_TOKEN_HOURS = 24
# Inline SVG is markup, so the pages need nothing but their own script and stylesheet.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


_templates.filters.update(money=money, size=size, when=when)


def rtmp_url(origin_publish_url: str | None, request_host: str) -> str:
    """Where OBS publishes: the configured origin, or this site's host (a local run, where SRS
    runs beside the coordinator)."""
    return origin_publish_url or f"rtmp://{request_host}/live"


def setup_command(coordinator: str, token: str | None) -> str:
    """The node kit's command (node/setup.sh reads the token from the environment, never from
    its arguments, so it stays out of the process list)."""
    return (
        f"STREAMR_FRIEND_TOKEN={token or '<setup token>'} sudo -E ./node/setup.sh "
        f"--coordinator {coordinator} --name my-node"
    )


def render(name: str, status_code: int = 200, **context) -> HTMLResponse:
    html = _templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status.HTTP_303_SEE_OTHER, headers=SECURITY_HEADERS)


async def signed_in(request: Request, ctx: Ctx) -> Principal | None:
    """The person whose session cookie this is (node and node-setup tokens never open pages)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    principal = await tokens.authenticate(ctx, token)
    if principal is None or principal.node_id is not None or principal.scope is not None:
        return None
    return principal


Viewer = Annotated[Principal | None, Depends(signed_in)]


class Page:
    """What every signed-in page needs (its header included): who, their name, their home
    page, and the form token of their session."""

    def __init__(self, principal: Principal, username: str, csrf: str) -> None:
        self.principal = principal
        self.username = username
        self.csrf = csrf
        self.home = HOME[principal.role]


async def _signed_in_page(ctx: Ctx, session: Session, viewer: Principal) -> Page:
    username = await session.scalar(select(User.username).where(User.id == viewer.user_id))
    return Page(viewer, username or "", csrf_token(ctx.pepper, viewer.token_hash))


async def _page(
    ctx: Ctx, session: Session, viewer: Principal | None, role: Role
) -> Page | Response:
    if viewer is None:
        return redirect("/signin")
    page = await _signed_in_page(ctx, session, viewer)
    if viewer.role != role.value:
        return problem(
            status.HTTP_403_FORBIDDEN,
            f"This page is for the {role.value} role; you are signed in as {viewer.role}.",
            page,
        )
    return page


def problem(code: int, message: str, page: Page) -> HTMLResponse:
    """An error as a page a person can act on, under the same header as their other pages (the
    API's errors stay JSON)."""
    return render("error.html", code, page=page, message=message)


async def _checked_form(
    request: Request, ctx: Ctx, session: Session, viewer: Principal | None
) -> dict[str, str] | Response:
    """The posted form of a signed-in session after its CSRF token checked out, or the page
    that says why not (signed out: back to the sign-in page)."""
    if viewer is None:
        return redirect("/signin")
    try:
        form = await read_form(request)
    except FormError as error:
        return problem(
            status.HTTP_400_BAD_REQUEST, str(error), await _signed_in_page(ctx, session, viewer)
        )
    if not csrf_matches(csrf_token(ctx.pepper, viewer.token_hash), form.get(CSRF_FIELD)):
        return problem(
            status.HTTP_403_FORBIDDEN,
            "This form is not from your current session (missing or wrong CSRF token). "
            "Reload the page and try again.",
            await _signed_in_page(ctx, session, viewer),
        )
    return form


async def form_page(
    request: Request, ctx: Ctx, session: Session, viewer: Principal | None, role: Role
) -> tuple[dict[str, str], Page] | Response:
    """A POSTed form of `role`'s page with its CSRF token checked, and that page's context; or
    the response that says why not."""
    form = await _checked_form(request, ctx, session, viewer)
    if isinstance(form, Response):
        return form
    page = await _page(ctx, session, viewer, role)
    if isinstance(page, Response):
        return page
    return form, page


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The dashboards' own stylesheet and script."""
    return packaged_file(_STATIC, name)


@router.get("/")
async def home(viewer: Viewer) -> Response:
    return redirect(HOME[viewer.role] if viewer else "/signin")


@router.get("/signin")
async def signin_page(request: Request, ctx: Ctx, viewer: Viewer) -> Response:
    if viewer is not None:
        return redirect(HOME[viewer.role])
    return _signin_form(is_https(request, ctx))


def _signin_form(
    secure: bool, error: str | None = None, username: str = "", code: int = 200
) -> Response:
    token = new_signin_csrf()
    response = render("signin.html", code, csrf=token, error=error, username=username)
    response.set_cookie(
        SIGNIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict", secure=secure
    )
    return response


@router.post("/signin", dependencies=[RateLimited])
async def signin(request: Request, ctx: Ctx, session: Session) -> Response:
    secure = is_https(request, ctx)
    try:
        form = await read_form(request)
    except FormError as error:
        return _signin_form(secure, str(error), code=status.HTTP_400_BAD_REQUEST)
    expected = request.cookies.get(SIGNIN_CSRF_COOKIE)
    if not expected or not csrf_matches(expected, form.get(CSRF_FIELD)):
        return _signin_form(secure, "The form expired; please sign in again.", code=403)
    username = form.get("username", "")
    user = await session.scalar(select(User).where(User.username == username))
    if not verify_password(user.password_hash if user else None, form.get("password", "")) or (
        user is None
    ):
        return _signin_form(secure, "Wrong username or password.", username, code=401)
    lifetime = timedelta(hours=ctx.settings.session_token_ttl_hours)
    token, _ = await tokens.issue(ctx, session, user.id, None, lifetime)
    await session.commit()
    response = redirect(HOME[user.role])
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    response.delete_cookie(SIGNIN_CSRF_COOKIE)
    return response


@router.post("/signout")
async def signout(request: Request, ctx: Ctx, session: Session, viewer: Viewer) -> Response:
    form = await _checked_form(request, ctx, session, viewer)
    if isinstance(form, Response):
        return form
    assert viewer is not None  # _checked_form sent anonymous callers to sign in
    await tokens.revoke(ctx, session, ApiToken.token_hash == viewer.token_hash)
    response = redirect("/signin")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/operator")
async def operator(request: Request, ctx: Ctx, session: Session, viewer: Viewer) -> Response:
    page = await _page(ctx, session, viewer, Role.ADMIN)
    if isinstance(page, Response):
        return page
    nodes = await data.node_rows(ctx, session)
    periods = await data.payout_periods(session)
    unit = ctx.settings.payout_unit
    return render(
        "operator.html",
        page=page,
        unit=unit,
        live=await data.streams(session, live_only=True),
        nodes=[row for row in nodes if row.node.online],
        health=data.mesh_health(nodes, ctx.mesh is not None),
        savings=await data.shares(session),
        hourly_chart=hourly_split_chart(
            [
                (start.strftime("%H:00"), edge, origin)
                for start, edge, origin in await data.hourly_viewer_time(session)
            ],
            "Viewer time per hour over the last 24 hours: friends' edges (green, below) and the "
            "origin (grey, above)",
        ),
        payouts=periods,
        payout_chart=bar_chart(
            [(p.period_start.strftime("%H:%M"), p.total_minor) for p in periods],
            partial(money, unit=unit),
            "Total paid to friends per payout period, oldest first",
            label_every=max(1, len(periods) // 8),
        ),
    )


@router.get("/streamer")
async def streamer(request: Request, ctx: Ctx, session: Session, viewer: Viewer) -> Response:
    page = await _page(ctx, session, viewer, Role.STREAMER)
    if isinstance(page, Response):
        return page
    return await _streamer_page(request, ctx, session, page)


async def _streamer_page(
    request: Request,
    ctx: Ctx,
    session: Session,
    page: Page,
    new_key: tuple[str, str] | None = None,
    confirm: int | None = None,
    error: str | None = None,
    code: int = 200,
    new_invite: str | None = None,
    notice: str | None = None,
) -> Response:
    owner_id = page.principal.user_id
    now = datetime.now(UTC)
    return render(
        "streamer.html",
        code,
        page=page,
        unit=ctx.settings.payout_unit,
        streams=await data.streams(session, owner_id=owner_id),
        rtmp=rtmp_url(ctx.settings.origin_publish_url, request.url.hostname or "localhost"),
        relays=await data.relays(session, owner_id),
        savings=await data.shares(session, owner_id=owner_id),
        friends_value=await data.friends_value(session, owner_id),
        egress_usd_per_gb=ctx.settings.origin_egress_usd_per_gb,
        new_key=new_key,
        confirm=confirm,
        error=error,
        invites=[
            (invite, stream_name, invite_domain.state(invite, now))
            for invite, stream_name in await invite_domain.listing(session, owner_id)
        ],
        new_invite=new_invite,
        notice=notice,
    )


@router.post("/streamer/streams/{stream_id}/rotate-key")
async def rotate_key(
    stream_id: RowId, request: Request, ctx: Ctx, session: Session, viewer: Viewer
) -> Response:
    """Rotating needs the confirmation box ticked; the new key is shown once, on this response."""
    checked = await form_page(request, ctx, session, viewer, Role.STREAMER)
    if isinstance(checked, Response):
        return checked
    form, page = checked
    stream = await data.owned_stream(session, stream_id, page.principal.user_id)
    if stream is None:
        return problem(status.HTTP_404_NOT_FOUND, f"You have no stream {stream_id}.", page)
    if form.get("confirm") != "yes":
        return await _streamer_page(
            request,
            ctx,
            session,
            page,
            confirm=stream.id,
            error=f"Tick the box to confirm: the current key of {stream.name} stops working.",
            code=status.HTTP_400_BAD_REQUEST,
        )
    key = new_secret(STREAM_KEY_PREFIX)
    stream.key_hash = keyed_hash(ctx.pepper, key)
    stream.updated_at = datetime.now(UTC)
    name = stream.name
    await session.commit()
    return await _streamer_page(request, ctx, session, page, new_key=(name, key))


@router.get("/friend")
async def friend(request: Request, ctx: Ctx, session: Session, viewer: Viewer) -> Response:
    page = await _page(ctx, session, viewer, Role.FRIEND)
    if isinstance(page, Response):
        return page
    return await _friend_page(request, ctx, session, page)


async def _friend_page(
    request: Request, ctx: Ctx, session: Session, page: Page, setup_token: str | None = None
) -> Response:
    friend_id = page.principal.user_id
    periods = await data.payout_periods(session, user_id=friend_id)
    balance, history = await data.earnings(session, friend_id)
    coordinator = str(request.base_url).rstrip("/")
    unit = ctx.settings.payout_unit
    return render(
        "friend.html",
        page=page,
        unit=unit,
        nodes=await data.node_rows(ctx, session, owner_id=friend_id),
        balance=balance,
        history=history,
        earnings_chart=bar_chart(
            [(p.period_start.strftime("%H:%M"), p.total_minor) for p in periods],
            partial(money, unit=unit),
            "Your earnings per payout period, oldest first",
            label_every=max(1, len(periods) // 8),
        ),
        setup_command=setup_command(coordinator, setup_token),
        setup_token=setup_token,
        setup_hours=SETUP_TOKEN_HOURS,
    )


@router.post("/friend/setup-token")
async def setup_token(request: Request, ctx: Ctx, session: Session, viewer: Viewer) -> Response:
    """A short-lived token for the node kit, shown once inside the setup command: it can register
    a node (`POST /api/v1/nodes`) and nothing else."""
    checked = await form_page(request, ctx, session, viewer, Role.FRIEND)
    if isinstance(checked, Response):
        return checked
    _, page = checked
    token, _ = await tokens.issue(
        ctx,
        session,
        page.principal.user_id,
        None,
        timedelta(hours=SETUP_TOKEN_HOURS),
        scope=tokens.NODE_SETUP_SCOPE,
    )
    await session.commit()
    return await _friend_page(request, ctx, session, page, setup_token=token)

"""Request dependencies: the app context, a database session, who is calling, from where."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from ipaddress import ip_address
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from ..context import AppContext
from ..domain import tokens
from ..domain.tokens import Principal, authenticate
from ..models import Role
from ..schemas import INT64_MAX, ErrorOut

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="a session token or, for nodes, a node token")


# OpenAPI's word that a route takes a bearer credential it reads itself (`bearer_credential`).
BEARER_SECURITY = {"security": [{"HTTPBearer": []}]}


def app_context(request: Request) -> AppContext:
    return request.app.state.ctx


def bearer_credential(request: Request) -> str:
    """The `Authorization: Bearer` credential, "" without one. For the hottest routes (hooks,
    heartbeats), which read it themselves: each FastAPI dependency costs a resolution per
    request, a fifth of a hook's CPU."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


async def get_ctx(request: Request) -> AppContext:
    """Async on purpose: a plain `def` dependency would run in the thread pool on every request."""
    return app_context(request)


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def get_session(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    session = ctx.sessions()
    try:
        yield session
    finally:
        try:
            await session.close()
        except DBAPIError as error:
            # PostgreSQL went away after the handler had answered: the closing rollback cannot
            # run, and the answer (perhaps already sent) stands. Drop the dead connection rather
            # than raise once the response has started.
            log.warning("database connection lost closing a request's session: %s", error.orig)
            await session.invalidate()


Session = Annotated[AsyncSession, Depends(get_session)]
# A row id in a path: a PostgreSQL bigint from 1, so a larger number is refused (422), not sent.
RowId = Annotated[int, Path(ge=1, le=INT64_MAX)]


def client_ip(request: Request, ctx: AppContext) -> str:
    """The caller's address: `X-Forwarded-For` is believed only when the peer is a trusted proxy,
    and then only up to the first hop that is not one."""
    peer = request.client.host if request.client else "0.0.0.0"  # noqa: S104 - not a bind
    networks = ctx.settings.proxy_networks
    if not networks:
        return peer

    def trusted(address: str) -> bool:
        try:
            parsed = ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in networks)

    if not trusted(peer):
        return peer
    forwarded = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",")]
    for hop in reversed([hop for hop in forwarded if hop]):
        if not trusted(hop):
            try:
                return str(ip_address(hop))
            except ValueError:
                return peer
    return peer


async def _principal(
    ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await authenticate(ctx, credentials.credentials)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid, expired or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def require_user(*roles: Role, scope: str | None = None):
    """A person's session token with one of `roles` (any role when none are named); a scoped
    token (the friend's node-setup token) only where its `scope` is named."""

    async def dependency(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if principal.node_id is not None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "node tokens cannot use this endpoint")
        if principal.scope is not None and principal.scope != scope:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"a {principal.scope} token can register a node (POST /api/v1/nodes), nothing else",
            )
        if roles and principal.role not in roles:
            allowed = ", ".join(role.value for role in roles)
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"requires role: {allowed}")
        return principal

    return dependency


async def require_node(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    """A node's own token (what the node kit holds), not a person's."""
    if principal.node_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "requires a node token")
    return principal


NodeCaller = Annotated[Principal, Depends(require_node)]
AnyUser = Annotated[Principal, Depends(require_user())]
Admin = Annotated[Principal, Depends(require_user(Role.ADMIN))]
Streamer = Annotated[Principal, Depends(require_user(Role.STREAMER))]
Friend = Annotated[Principal, Depends(require_user(Role.FRIEND))]
# A friend's session token, or its node-setup token (what node/setup.sh is given).
FriendSettingUp = Annotated[
    Principal, Depends(require_user(Role.FRIEND, scope=tokens.NODE_SETUP_SCOPE))
]
StreamerOrAdmin = Annotated[Principal, Depends(require_user(Role.STREAMER, Role.ADMIN))]
FriendOrAdmin = Annotated[Principal, Depends(require_user(Role.FRIEND, Role.ADMIN))]


async def rate_limited(request: Request, ctx: Ctx) -> None:
    """Per client address and route: login and registration are what attackers hammer."""
    key = f"rl:{request.scope['route'].path}:{client_ip(request, ctx)}"
    if await ctx.cache.hit(key, 60) > ctx.settings.auth_rate_limit_per_minute:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many attempts from this address; try again in a minute",
            headers={"Retry-After": "60"},
        )


RateLimited = Depends(rate_limited)

ERRORS: dict[int | str, dict] = {
    401: {"model": ErrorOut, "description": "missing, invalid, expired or revoked token"},
    403: {"model": ErrorOut, "description": "authenticated, but not allowed"},
}
NOT_FOUND: dict[int | str, dict] = {404: {"model": ErrorOut, "description": "no such thing"}}

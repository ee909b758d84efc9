"""Friend nodes: registration (with the node's own token and a mesh key), listing, heartbeats,
removal (from the mesh and DNS too); the origin's mesh key. Where a node's edge plays from is in
edges.py."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..cache import presence_key
from ..context import AppContext
from ..domain import mesh, nodes, tokens
from ..mesh import PreAuthKey
from ..models import ApiToken, Node, Role
from ..schemas import (
    ErrorOut,
    HeartbeatOut,
    MeshJoinOut,
    NodeIn,
    NodeOut,
    NodeTokenOut,
    NodeWithToken,
)
from .deps import (
    BEARER_SECURITY,
    ERRORS,
    NOT_FOUND,
    Admin,
    Ctx,
    Friend,
    FriendOrAdmin,
    FriendSettingUp,
    NodeCaller,
    RowId,
    Session,
    app_context,
    bearer_credential,
)
from .edges import forget_edge

router = APIRouter(prefix="/api/v1", tags=["nodes"])
# The heartbeat alone, so the app can match it before every other route (see app.py).
heartbeat_router = APIRouter(prefix="/api/v1", tags=["nodes"])
# How long a node's previous token keeps working after it asked for a new one.
OLD_TOKEN_GRACE = timedelta(hours=1)
CONFLICT = {409: {"model": ErrorOut, "description": "you already have a node of that name"}}


@heartbeat_router.post(
    "/node/heartbeat",
    response_model=HeartbeatOut,
    responses=ERRORS,
    openapi_extra=BEARER_SECURITY,
)
async def heartbeat(request: Request) -> JSONResponse:
    """Called by the node itself (node token) every `next_heartbeat_seconds`.

    No dependencies at all (each costs FastAPI a resolution per request, more than the rest of
    this route): the bearer token and the context are read here. This is the hottest route: a
    steady beat is answered from the process's memory (`domain.beats`), with no round trip.
    """
    ctx = app_context(request)
    token = bearer_credential(request)
    principal = await nodes.heartbeat(ctx, token) if token else None
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid, expired or revoked token" if token else "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if principal.node_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "requires a node token")
    return JSONResponse({"online": True, "next_heartbeat_seconds": ctx.settings.heartbeat_seconds})


@router.post(
    "/nodes",
    status_code=status.HTTP_201_CREATED,
    response_model=NodeWithToken,
    responses={**ERRORS, **CONFLICT},
)
async def register_node(body: NodeIn, principal: FriendSettingUp, ctx: Ctx, session: Session):
    """Register a node (with a friend's session or node-setup token); the node token in the
    response is shown only now."""
    node = Node(owner_id=principal.user_id, name=body.name, capacity_viewers=body.capacity_viewers)
    session.add(node)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"node {body.name!r} exists") from None
    lifetime = timedelta(days=ctx.settings.node_token_ttl_days)
    token, expires_at = await tokens.issue(ctx, session, principal.user_id, node.id, lifetime)
    # Last before the commit: if the mesh fails, the node is rolled back and nothing is left over.
    key = await mesh.issue_key(ctx, mesh.FRIEND_TAG)
    node.mesh_key_id = key.id if key else None
    await session.commit()
    await session.refresh(node)
    (described,) = await nodes.describe(ctx, [node])
    return NodeWithToken(
        **described.model_dump(),
        node_token=token,
        token_expires_at=expires_at,
        mesh=_join(ctx, key),
    )


def _join(ctx: AppContext, key: PreAuthKey | None) -> MeshJoinOut | None:
    if key is None or ctx.mesh is None:
        return None
    return MeshJoinOut(
        login_server=ctx.mesh.login_server_url, preauth_key=key.key, expires_at=key.expiration
    )


@router.get("/nodes", response_model=list[NodeOut], responses=ERRORS)
async def my_nodes(principal: Friend, ctx: Ctx, session: Session):
    owned = await session.scalars(
        select(Node).where(Node.owner_id == principal.user_id).order_by(Node.id)
    )
    return await nodes.describe(ctx, list(owned))


@router.get("/admin/nodes", response_model=list[NodeOut], responses=ERRORS)
async def all_nodes(_: Admin, ctx: Ctx, session: Session):
    return await nodes.describe(ctx, list(await session.scalars(select(Node).order_by(Node.id))))


@router.delete(
    "/nodes/{node_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**ERRORS, **NOT_FOUND}
)
async def delete_node(node_id: RowId, principal: FriendOrAdmin, ctx: Ctx, session: Session) -> None:
    node = await session.get(Node, node_id)
    if node is None or (principal.role != Role.ADMIN and node.owner_id != principal.user_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no node {node_id} of yours")
    await _remove(ctx, session, node)


async def _remove(ctx: AppContext, session: Session, node: Node) -> None:
    # The mesh first: if Headscale is unavailable the node stays, and deleting again retries.
    await mesh.remove_machines(ctx, node.mesh_key_id)
    await forget_edge(ctx, node)
    node_id = node.id
    await tokens.revoke(ctx, session, ApiToken.node_id == node_id)
    await session.delete(node)
    await session.commit()
    await ctx.cache.delete(presence_key(node_id))


@router.delete(
    "/node",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS,
    openapi_extra=BEARER_SECURITY,
)
async def leave(caller: NodeCaller, ctx: Ctx, session: Session) -> None:
    """A node removes itself (the kit's teardown): its mesh machine, its tokens, its record."""
    await _remove(ctx, session, await session.get(Node, caller.node_id))


@router.post(
    "/node/token",
    response_model=NodeTokenOut,
    responses=ERRORS,
    openapi_extra=BEARER_SECURITY,
)
async def renew_token(caller: NodeCaller, ctx: Ctx, session: Session):
    """A fresh node token; the one used for this call keeps working one more hour, so a lost
    answer does not lock the node out."""
    lifetime = timedelta(days=ctx.settings.node_token_ttl_days)
    token, expires_at = await tokens.issue(ctx, session, caller.user_id, caller.node_id, lifetime)
    await session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == caller.token_hash)
        .values(expires_at=func.least(ApiToken.expires_at, func.now() + OLD_TOKEN_GRACE))
    )
    await session.commit()
    ctx.beats.forget([caller.token_hash])
    await ctx.cache.delete(tokens.cache_key(caller.token_hash))
    return NodeTokenOut(node_token=token, token_expires_at=expires_at)


@router.post(
    "/mesh/origin-key",
    response_model=MeshJoinOut,
    responses={401: {"model": ErrorOut, "description": "missing or wrong hook secret"}},
)
async def origin_mesh_key(
    ctx: Ctx, x_hook_secret: Annotated[str | None, Header(description="the SRS hook secret")] = None
):
    """A single-use `tag:origin` key for the SRS origin host, which asks at boot with the hook
    secret it already holds (so no long-lived mesh key is stored anywhere)."""
    expected = ctx.settings.hook_secret.get_secret_value()
    if not x_hook_secret or not hmac.compare_digest(x_hook_secret, expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-Hook-Secret")
    key = await mesh.issue_key(ctx, mesh.ORIGIN_TAG)
    join = _join(ctx, key)
    if join is None:
        raise mesh.MeshNotConfigured("no Headscale configured")
    return join

"""Friend nodes: registration (with the node's own token), listing, heartbeats, removal."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..cache import presence_key
from ..domain import nodes, tokens
from ..models import ApiToken, Node, Role
from ..schemas import ErrorOut, HeartbeatOut, NodeIn, NodeOut, NodeWithToken
from .deps import ERRORS, NOT_FOUND, Admin, Ctx, Friend, FriendOrAdmin, Session

router = APIRouter(prefix="/api/v1", tags=["nodes"])
CONFLICT = {409: {"model": ErrorOut, "description": "you already have a node of that name"}}


@router.post(
    "/nodes",
    status_code=status.HTTP_201_CREATED,
    response_model=NodeWithToken,
    responses={**ERRORS, **CONFLICT},
)
async def register_node(body: NodeIn, principal: Friend, ctx: Ctx, session: Session):
    """Register a node; the node token in the response is shown only now."""
    node = Node(owner_id=principal.user_id, name=body.name, capacity_viewers=body.capacity_viewers)
    session.add(node)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"node {body.name!r} exists") from None
    lifetime = timedelta(days=ctx.settings.node_token_ttl_days)
    token, expires_at = await tokens.issue(ctx, session, principal.user_id, node.id, lifetime)
    await session.commit()
    await session.refresh(node)
    (described,) = await nodes.describe(ctx, [node])
    return NodeWithToken(**described.model_dump(), node_token=token, token_expires_at=expires_at)


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
async def delete_node(node_id: int, principal: FriendOrAdmin, ctx: Ctx, session: Session) -> None:
    node = await session.get(Node, node_id)
    if node is None or (principal.role != Role.ADMIN and node.owner_id != principal.user_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no node {node_id} of yours")
    await tokens.revoke(ctx, session, ApiToken.node_id == node_id)
    await session.delete(node)
    await session.commit()
    await ctx.cache.delete(presence_key(node_id))


@router.post(
    "/node/heartbeat",
    response_model=HeartbeatOut,
    responses=ERRORS,
    openapi_extra={"security": [{"HTTPBearer": []}]},
)
async def heartbeat(request: Request, ctx: Ctx) -> JSONResponse:
    """Called by the node itself (node token) every `next_heartbeat_seconds`.

    Reads the bearer token itself rather than through the auth dependencies: this is the hottest
    route, and authentication and the presence refresh share one Redis round trip.
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    principal = await nodes.heartbeat(ctx, token) if scheme.lower() == "bearer" and token else None
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid, expired or revoked token" if token else "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if principal.node_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "requires a node token")
    return JSONResponse(
        {"online": True, "next_heartbeat_seconds": ctx.settings.node_online_seconds // 3}
    )

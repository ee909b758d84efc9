"""Where viewers play from a node's edge: its mesh address, its public edge name (whose A record
the coordinator keeps), and the ACME DNS-01 challenges that get the node a certificate for that
name (see domain/edge_names.py). All of it is asked by the node itself, with its node token."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import update

from ..context import AppContext
from ..domain import edge_names, routing
from ..edge_dns import EdgeRecords
from ..models import Node
from ..schemas import ChallengeIn, EdgeIn, ErrorOut
from .deps import ERRORS, Ctx, NodeCaller, RowId, Session

router = APIRouter(prefix="/api/v1", tags=["nodes"])
ROUTE53 = {
    502: {"model": ErrorOut, "description": "Route 53 refused the change"},
    503: {"model": ErrorOut, "description": "Route 53 unavailable: nothing was changed"},
}
NO_EDGE_DOMAIN = {409: {"model": ErrorOut, "description": "no STREAMR_EDGE_DOMAIN configured"}}
NODE_AUTH = {"security": [{"HTTPBearer": []}]}


def _own_node(caller: NodeCaller, node_id: int) -> None:
    if caller.node_id != node_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this token belongs to another node, not node {node_id}"
        )


@router.put(
    "/nodes/{node_id}/edge",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, **ROUTE53},
    openapi_extra=NODE_AUTH,
)
async def set_edge(
    node_id: RowId, body: EdgeIn, caller: NodeCaller, ctx: Ctx, session: Session
) -> None:
    """The node says where viewers can play from it: its address on the mesh (an IP address in
    `STREAMR_MESH_PREFIXES`) and SRS HTTP port, and the port where it serves HTTPS for its edge
    name, if it does. With an edge domain, its name's A record is set to that mesh address
    first: if Route 53 fails, nothing is stored and the node asks again."""
    _own_node(caller, node_id)
    problem = routing.off_mesh(body.play_base_url, ctx.settings.mesh_networks)
    if problem is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"play_base_url: {problem}")
    address = edge_names.mesh_ipv4(body.play_base_url)
    if ctx.edge_records is not None:
        if address is None and body.tls_port is not None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "play_base_url: an edge serving HTTPS needs an IPv4 mesh address (its edge name "
                "is an A record)",
            )
        if address is not None:
            await ctx.edge_records.change(
                edge_names.address_change("UPSERT", _name(ctx, node_id), address)
            )
    await session.execute(
        update(Node)
        .where(Node.id == node_id)
        .values(play_base_url=body.play_base_url, tls_port=body.tls_port)
    )
    await session.commit()


@router.put(
    "/nodes/{node_id}/acme-challenge",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, **ROUTE53, **NO_EDGE_DOMAIN},
    openapi_extra=NODE_AUTH,
)
async def set_challenge(node_id: RowId, body: ChallengeIn, caller: NodeCaller, ctx: Ctx) -> None:
    """Publish an ACME DNS-01 value as TXT `_acme-challenge.<edge name>` (replacing any
    previous one); answered once Route 53 accepted the change (the ACME client then waits for
    it to be visible, as it does with any DNS provider)."""
    _own_node(caller, node_id)
    await _records(ctx).change(
        edge_names.challenge_change("UPSERT", _name(ctx, node_id), body.value)
    )


@router.delete(
    "/nodes/{node_id}/acme-challenge",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, **ROUTE53, **NO_EDGE_DOMAIN},
    openapi_extra=NODE_AUTH,
)
async def clear_challenge(node_id: RowId, body: ChallengeIn, caller: NodeCaller, ctx: Ctx) -> None:
    """Remove that challenge value once the ACME server has seen it (done already if it is not
    there: a repeated call succeeds)."""
    _own_node(caller, node_id)
    await _records(ctx).change(
        edge_names.challenge_change("DELETE", _name(ctx, node_id), body.value)
    )


async def forget_edge(ctx: AppContext, node: Node) -> None:
    """Remove a departing node's A record (before its row, so a failure leaves it to retry)."""
    address = edge_names.mesh_ipv4(node.play_base_url) if node.play_base_url else None
    if ctx.edge_records is not None and address is not None:
        await ctx.edge_records.change(
            edge_names.address_change("DELETE", _name(ctx, node.id), address)
        )


def _records(ctx: AppContext) -> EdgeRecords:
    if ctx.edge_records is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "no edge names here: the coordinator has no STREAMR_EDGE_DOMAIN (and "
            "STREAMR_EDGE_ZONE_ID) configured, so there is no name to prove",
        )
    return ctx.edge_records


def _name(ctx: AppContext, node_id: int) -> str:
    return edge_names.edge_name(ctx.settings.edge_domain or "", node_id)

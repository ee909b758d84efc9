"""Where a viewer should play a stream from: public, like the list of live streams."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from ..domain import routing, tickets
from ..schemas import NAME_PATTERN, EdgeChoice, ErrorOut, PlayOut, PlayUrls
from .deps import Ctx

router = APIRouter(prefix="/api/v1", tags=["viewers"])


@router.get(
    "/play/{stream}",
    response_model=PlayOut,
    responses={404: {"model": ErrorOut, "description": "no such live stream"}},
)
async def play(stream: Annotated[str, Path(pattern=NAME_PATTERN)], ctx: Ctx):
    """Friends' edges with room for one more viewer, least loaded first, and the origin as the
    fallback. Open viewer sessions (from the edges' hooks) are the load. Each edge URL carries a
    ticket for that node, valid for `STREAMR_PLAY_TICKET_SECONDS`: play it within that time."""
    issuing = routing.Tickets(
        tickets.signing_key(ctx.pepper),
        datetime.now(UTC),
        timedelta(seconds=ctx.settings.play_ticket_seconds),
    )
    edges = await routing.edges_for(
        ctx.engine,
        stream,
        ctx.settings.node_online_seconds,
        ctx.settings.play_edges,
        issuing,
        ctx.settings.mesh_networks,
        ctx.settings.edge_domain,
    )
    if edges is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live stream {stream!r}")
    origin = ctx.settings.origin_play_url
    return PlayOut(
        stream=stream,
        edges=[EdgeChoice(node_id=e.node_id, flv_url=e.flv_url, load=e.load) for e in edges],
        origin=PlayUrls(
            flv_url=routing.flv_url(origin, stream), hls_url=routing.hls_url(origin, stream)
        )
        if origin
        else None,
    )

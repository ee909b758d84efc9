"""Public viewer pages: the list of live streams and `/watch/<stream>`, which plays a stream from
a friend's edge (HTTP-FLV through mpegts.js) or the origin (HLS), choosing in the browser
(static/watch.js) from what `/api/v1/play` offers. The player libraries are served from the
package (static/vendor/, copied from pinned npm packages: coordinator/player/README.md)."""

from __future__ import annotations

import re
from importlib.resources import files

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from ..api.deps import Ctx, Session
from ..domain import routing
from ..models import Stream
from ..schemas import NAME_PATTERN
from . import data
from .assets import packaged_file
from .pages import SECURITY_HEADERS, render

router = APIRouter(include_in_schema=False)
_VENDOR = files("streamr_coordinator.web") / "static" / "vendor"
_PLAYERS = {"mpegts.js", "hls.light.min.js"}
# Edges are other hosts (mesh addresses) and the origin is another host: the player fetches
# and plays media from them (MSE plays through blob: URLs; native HLS plays the origin's URL).
WATCH_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self' http: https:; media-src 'self' blob: http: https:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
# How long the page waits for an edge to answer before it counts as unreachable (a viewer who is
# not on the mesh), and how long the picture may stand still before it switches source.
PROBE_MILLISECONDS = 1500
STALL_MILLISECONDS = 6000


@router.get("/static/vendor/{name}")
async def player_library(name: str) -> Response:
    if name not in _PLAYERS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no static file {name!r}")
    return packaged_file(_VENDOR, name)


@router.get("/watch")
async def live_list(session: Session) -> HTMLResponse:
    """What is live now, each with its watch page (public, like `/api/v1/streams/live`)."""
    return render("live.html", live=await data.streams(session, live_only=True))


@router.get("/watch/{stream}")
async def watch(stream: str, ctx: Ctx, session: Session) -> HTMLResponse:
    found = None
    if re.match(NAME_PATTERN, stream):
        query = select(Stream.name, Stream.title).where(
            Stream.name == stream, Stream.deleted_at.is_(None)
        )
        found = (await session.execute(query)).first()
    if found is None:
        return render("watch_missing.html", status.HTTP_404_NOT_FOUND, stream=stream)
    origin = ctx.settings.origin_play_url
    response = render(
        "watch.html",
        stream=found.name,
        title=found.title,
        origin_hls=routing.hls_url(origin, found.name) if origin else None,
        probe_ms=PROBE_MILLISECONDS,
        stall_ms=STALL_MILLISECONDS,
    )
    response.headers.update(WATCH_HEADERS)
    return response

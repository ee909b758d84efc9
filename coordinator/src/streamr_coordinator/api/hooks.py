"""SRS HTTP hooks. SRS allows only on HTTP 200 with `{"code": 0}`; any other answer denies.

Every hook carries `Authorization: Bearer <credential>`: the origin's shared hook secret, or a
friend edge's node token, so a friend never holds the secret and can only report plays on its own
node. SRS logs each hook's URL (and the ALB logs request lines), so a credential in the URL would
land in logs: the host's hook relay (`srs/hook_relay.py`) adds the header, and a URL that still
carries `secret` or `node_token` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from ..context import AppContext
from ..domain import hooks, liveness, tickets
from ..domain.tokens import authenticate
from ..schemas import HookAnswer, free_text
from ..security import same_secret
from .deps import BEARER_SECURITY, app_context, bearer_credential

router = APIRouter(prefix="/hooks/srs", tags=["srs hooks"])

# The query parameters that carried credentials before the relay: refused, never read.
CREDENTIAL_PARAMETERS = ("secret", "node_token")

DENIED = {
    401: {"model": HookAnswer, "description": "missing or wrong hook secret / node token"},
    403: {"model": HookAnswer, "description": "denied: SRS refuses the client"},
}


class HookDenied(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail


def allow() -> JSONResponse:
    return JSONResponse({"code": 0})


def deny(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": status, "detail": detail}, status_code=status, headers=headers)


class SrsEvent(BaseModel):
    """The fields SRS sends with every hook (SRS 6 and 7); extra fields are accepted."""

    model_config = ConfigDict(extra="allow")
    action: str = free_text(max_length=32)
    server_id: str = free_text(default="", max_length=200)
    service_id: str = free_text(default="", max_length=200)
    client_id: str = free_text(default="", max_length=200)
    ip: str = free_text(default="", max_length=64)
    vhost: str = free_text(default="", max_length=200)
    app: str = free_text(default="", max_length=200)
    stream: str = free_text(default="", max_length=200)
    param: str = free_text(default="", max_length=2000)

    def event(self) -> hooks.Event:
        return hooks.Event(
            stream=self.stream,
            server_id=self.server_id,
            service_id=self.service_id,
            client_id=self.client_id,
            ip=self.ip,
            param=self.param,
        )


class SrsHeartbeat(BaseModel):
    """SRS's `heartbeat` POST: `server` (its server_id) and `service` (new at every start)."""

    model_config = ConfigDict(extra="allow")
    server: str = free_text(min_length=1, max_length=64)
    service: str = free_text(min_length=1, max_length=64)


@dataclass(frozen=True)
class HookCaller:
    node_id: int | None  # None: the origin

    @property
    def is_origin(self) -> bool:
        return self.node_id is None


async def hook_caller(ctx: AppContext, request: Request) -> HookCaller:
    """Who is calling, from the `Authorization: Bearer` header (read without dependencies:
    `bearer_credential`)."""
    in_url = [name for name in CREDENTIAL_PARAMETERS if name in request.query_params]
    if in_url:
        raise HookDenied(
            401,
            f"{in_url[0]} in the URL is refused (URLs are logged): send it as "
            "Authorization: Bearer, as srs/hook_relay.py does",
        )
    credential = bearer_credential(request)
    if not credential:
        raise HookDenied(
            401, "missing Authorization: Bearer (the hook secret or the edge's node token)"
        )
    if same_secret(ctx.settings.hook_secret.get_secret_value(), credential):
        return HookCaller(node_id=None)
    principal = await authenticate(ctx, credential)
    if principal is not None and principal.node_id is not None:
        return HookCaller(node_id=principal.node_id)
    raise HookDenied(401, "wrong hook secret, or an invalid, expired or revoked node token")


def _origin_only(caller: HookCaller, action: str) -> None:
    if not caller.is_origin:
        raise HookDenied(403, f"{action} is accepted from the origin only")


@router.post(
    "/on_publish", response_model=HookAnswer, responses=DENIED, openapi_extra=BEARER_SECURITY
)
async def on_publish(event: SrsEvent, request: Request):
    """Allow a publisher only with the key of this very stream, for an enabled stream."""
    ctx = app_context(request)
    caller = await hook_caller(ctx, request)
    _origin_only(caller, "on_publish")
    refusal = await hooks.publish(ctx.hook_connections, ctx.pepper, event.app, event.event())
    return deny(403, refusal) if refusal else allow()


@router.post(
    "/on_unpublish", response_model=HookAnswer, responses=DENIED, openapi_extra=BEARER_SECURITY
)
async def on_unpublish(event: SrsEvent, request: Request):
    ctx = app_context(request)
    caller = await hook_caller(ctx, request)
    _origin_only(caller, "on_unpublish")
    await hooks.unpublish(ctx.hook_connections, event.event())
    return allow()


@router.post("/on_play", response_model=HookAnswer, responses=DENIED, openapi_extra=BEARER_SECURITY)
async def on_play(event: SrsEvent, request: Request):
    """An edge: a viewer with a ticket for this node. The origin: an edge pulling the stream (its
    first viewer's ticket in `param`) or a viewer of the origin itself."""
    ctx = app_context(request)
    caller = await hook_caller(ctx, request)
    key = tickets.signing_key(ctx.pepper)
    if caller.is_origin:
        refusal = await hooks.origin_play(ctx.hook_connections, key, event.event())
    else:
        assert caller.node_id is not None
        refusal = await hooks.edge_play(
            ctx.hook_connections, key, caller.node_id, event.event(), datetime.now(UTC)
        )
    return deny(403, refusal) if refusal else allow()


@router.post("/on_stop", response_model=HookAnswer, responses=DENIED, openapi_extra=BEARER_SECURITY)
async def on_stop(event: SrsEvent, request: Request):
    ctx = app_context(request)
    caller = await hook_caller(ctx, request)
    await hooks.stop(ctx.hook_connections, caller.node_id, event.event())
    return allow()


@router.post(
    "/heartbeat", response_model=HookAnswer, responses=DENIED, openapi_extra=BEARER_SECURITY
)
async def heartbeat(beat: SrsHeartbeat, request: Request):
    """The origin's SRS is alive. When its process falls silent, the sweep ends its broadcasts,
    its viewers' sessions and the edges' pulls from it (see `domain.liveness`)."""
    ctx = app_context(request)
    caller = await hook_caller(ctx, request)
    _origin_only(caller, "heartbeat")
    await liveness.origin_alive(ctx.soft_engine, beat.server, beat.service)
    return allow()


@router.post(
    "/on_connect", response_model=HookAnswer, responses=DENIED, openapi_extra=BEARER_SECURITY
)
async def on_connect(event: SrsEvent, request: Request):
    """RTMP connections are allowed to our app only; publish/play decide the rest."""
    await hook_caller(app_context(request), request)
    if event.app != hooks.APP:
        return deny(403, f"unknown app {event.app!r}")
    return allow()


@router.post(
    "/on_close", response_model=HookAnswer, responses=DENIED, openapi_extra=BEARER_SECURITY
)
@router.post("/on_hls", response_model=HookAnswer, responses=DENIED, openapi_extra=BEARER_SECURITY)
@router.post("/on_dvr", response_model=HookAnswer, responses=DENIED, openapi_extra=BEARER_SECURITY)
async def acknowledge(event: SrsEvent, request: Request):
    """Events we take note of without acting on: SRS only logs a failure of these."""
    await hook_caller(app_context(request), request)
    return allow()


@router.get(
    "/on_hls_notify/{segment:path}",
    response_model=HookAnswer,
    responses=DENIED,
    openapi_extra=BEARER_SECURITY,
)
async def on_hls_notify(segment: str, request: Request):
    """SRS ignores the answer to this GET; we accept it so a configured notify is not an error."""
    await hook_caller(app_context(request), request)
    return allow()

"""The FastAPI application: routers, error bodies, and the per-process context."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from .api import auth, edges, hooks, invites, nodes, ops, payouts, play, streams
from .cache import Cache
from .context import AppContext
from .db import (
    RETRY_AFTER_SECONDS,
    DriverPool,
    database_unavailable,
    make_engine,
    make_sessionmaker,
    unavailable_reason,
)
from .domain.invites import InviteRefused
from .domain.last_seen import flush_at_shutdown, run_last_seen_flush
from .domain.liveness import run_sweeper
from .domain.mesh import mesh_problem
from .domain.payouts import run_scheduler
from .domain.revocations import run_revocation_watch
from .edge_dns import EdgeDnsError, EdgeRecords
from .limits import BodyLimitMiddleware
from .mesh import HeadscaleClient, MeshError
from .observability import ObservabilityMiddleware
from .schemas import TEXT_PATTERN
from .settings import Settings
from .web import invites as web_invites
from .web import pages as web
from .web import watch as web_watch
from .web.docs import add_docs

log = logging.getLogger(__name__)
UNAVAILABLE = "the database is unavailable; try again shortly"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()  # type: ignore[call-arg]  # from the environment

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        soft_engine = make_engine(settings, durable=False)
        autocommit_engine = make_engine(settings, autocommit=True)
        hook_connections = DriverPool(settings)
        cache = Cache(settings.redis_url.get_secret_value() if settings.redis_url else None)
        mesh = (
            HeadscaleClient(settings.headscale_url, settings.current_headscale_api_key)
            if settings.headscale_url
            else None
        )
        edge_records = EdgeRecords(settings.edge_zone_id) if settings.edge_zone_id else None
        ctx = AppContext(
            settings,
            engine,
            soft_engine,
            hook_connections,
            autocommit_engine,
            make_sessionmaker(engine),
            cache,
            mesh,
            edge_records,
        )
        app.state.ctx = ctx
        background = [
            asyncio.create_task(loop(ctx))
            for loop, every in (
                (run_scheduler, settings.payout_check_seconds),
                (run_sweeper, settings.sweep_seconds),
                (
                    run_revocation_watch,
                    settings.token_cache_seconds or settings.node_token_cache_seconds,
                ),
                (run_last_seen_flush, settings.last_seen_flush_seconds),
            )
            if every
        ]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await flush_at_shutdown(ctx)
            if mesh is not None:
                await mesh.aclose()
            await cache.close()
            await soft_engine.dispose()
            await hook_connections.close()
            await autocommit_engine.dispose()
            await engine.dispose()

    app = FastAPI(
        title="StreamrP2P coordinator",
        version="0.1.0",
        description="Accounts, streams and stream keys, SRS hooks, friend nodes, contribution "
        "reports and payouts.",
        lifespan=lifespan,
        # Swagger UI from the package, not a CDN (see web/docs.py); no ReDoc.
        docs_url=None,
        redoc_url=None,
        # We have our own metrics and logs; FastAPI's OpenTelemetry hooks would look up the
        # tracer provider on every request for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Routes are matched in order, at a cost per route tried: the hot paths (node heartbeats,
    # SRS hooks) come first.
    app.include_router(nodes.heartbeat_router)
    for module in (
        hooks,
        nodes,
        edges,
        ops,
        auth,
        streams,
        play,
        invites,
        payouts,
        web,
        web_watch,
        web_invites,
    ):
        app.include_router(module.router)
    add_docs(app)
    app.openapi = lambda: document_errors(app)  # type: ignore[method-assign]
    app.add_middleware(ObservabilityMiddleware)
    # Outermost of ours: an oversized body is refused before it is logged, read or parsed.
    app.add_middleware(BodyLimitMiddleware)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if isinstance(error.__cause__, UnicodeDecodeError):
            # FastAPI's 400 for a body that is not even text: invalid input like any other.
            return JSONResponse(
                {"detail": "request body is not valid JSON: it is not UTF-8 text"},
                status_code=422,
            )
        return JSONResponse(
            {"detail": str(error.detail)}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_input(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [describe_problem(problem, error.body) for problem in error.errors()]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(MeshError)
    async def mesh_failed(_: Request, error: MeshError) -> JSONResponse:
        status, detail = mesh_problem(error)
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(EdgeDnsError)
    async def edge_dns_failed(_: Request, error: EdgeDnsError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    @app.exception_handler(InviteRefused)
    async def invite_refused(_: Request, error: InviteRefused) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def database_failed(request: Request, error: Exception) -> JSONResponse:
        """PostgreSQL unreachable: 503 with Retry-After and one log line, no stack trace; a
        hook denies (SRS fails closed). Anything else from the database is a bug: a 500."""
        if not database_unavailable(error):
            raise error
        log.warning("database unavailable: %s", unavailable_reason(error))
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if request.url.path.startswith(hooks.router.prefix):
            return hooks.deny(503, UNAVAILABLE, headers=retry)
        return JSONResponse({"detail": UNAVAILABLE}, status_code=503, headers=retry)

    @app.exception_handler(hooks.HookDenied)
    async def hook_denied(_: Request, error: hooks.HookDenied) -> JSONResponse:
        return hooks.deny(error.status, error.detail)

    return app


def describe_problem(problem: Mapping[str, Any], body: Any) -> str:
    """One validation problem in plain words: where it is (`body.name`) and what is wrong; for
    a body that is not JSON at all, the parser's complaint at its line and column."""
    if problem["type"] == "json_invalid":
        position = problem["loc"][-1]
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
        reason = problem.get("ctx", {}).get("error", "malformed")
        return f"request body is not valid JSON: {reason} at line {line} column {column}"
    if problem["type"] == "missing" and tuple(problem["loc"]) == ("body",):
        return "request body is missing: send a JSON object"
    where = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "string_pattern_mismatch" and problem["ctx"]["pattern"] == TEXT_PATTERN:
        return f"{where}: must not contain a NUL character"
    return f"{where}: {problem['msg']}"


def document_errors(app: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI document with the error answers as they are sent: each 422 as what
    `invalid_input` sends (`ErrorOut`, one plain `detail`, not FastAPI's list of error objects),
    413 wherever a body is read (limits.py), 503 with Retry-After while the database is away
    (hooks answer it in their own shape)."""
    if app.openapi_schema is None:
        document = FastAPI.openapi(app)
        error = {"$ref": "#/components/schemas/ErrorOut"}
        for path, operations in document["paths"].items():
            for operation in operations.values():
                responses = operation["responses"]
                invalid = responses.get("422")
                if invalid is not None:
                    invalid["description"] = "invalid input, named in plain words"
                    invalid["content"]["application/json"]["schema"] = error
                if "requestBody" in operation:
                    responses["413"] = {
                        "description": "request body over this route's limit",
                        "content": {"application/json": {"schema": error}},
                    }
                hook = path.startswith(hooks.router.prefix)
                retry_after = {
                    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
                }
                unavailable = responses.setdefault(
                    "503",
                    {
                        "description": "unavailable for now (the database; for mesh calls, "
                        "Headscale): try again after `Retry-After` seconds"
                        + (" (SRS denies)" if hook else ""),
                        "headers": retry_after,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/HookAnswer"}
                                if hook
                                else error
                            }
                        },
                    },
                )
                if path != "/ready":
                    # A route's own 503 (e.g. the mesh is away) can also be the database's.
                    unavailable.setdefault("headers", retry_after)
        for unused in ("HTTPValidationError", "ValidationError"):
            document["components"]["schemas"].pop(unused)
    return app.openapi_schema

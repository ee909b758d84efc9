"""The FastAPI application: routers, error bodies, and the per-process context."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .api import auth, hooks, invites, nodes, ops, payouts, play, streams
from .cache import Cache
from .context import AppContext
from .db import make_engine, make_sessionmaker
from .domain.invites import InviteRefused
from .domain.liveness import run_sweeper
from .domain.mesh import mesh_problem
from .domain.payouts import run_scheduler
from .limits import BodyLimitMiddleware
from .mesh import HeadscaleClient, MeshError
from .observability import ObservabilityMiddleware
from .settings import Settings
from .web import invites as web_invites
from .web import pages as web
from .web import watch as web_watch
from .web.docs import add_docs


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()  # type: ignore[call-arg]  # from the environment

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        soft_engine = make_engine(settings, durable=False)
        cache = Cache(settings.redis_url.get_secret_value() if settings.redis_url else None)
        mesh = (
            HeadscaleClient(settings.headscale_url, settings.current_headscale_api_key)
            if settings.headscale_url
            else None
        )
        ctx = AppContext(settings, engine, soft_engine, make_sessionmaker(engine), cache, mesh)
        app.state.ctx = ctx
        background = [
            asyncio.create_task(loop(ctx))
            for loop, every in (
                (run_scheduler, settings.payout_check_seconds),
                (run_sweeper, settings.sweep_seconds),
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
            if mesh is not None:
                await mesh.aclose()
            await cache.close()
            await soft_engine.dispose()
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
    app.openapi = lambda: document_plain_errors(app)  # type: ignore[method-assign]
    app.add_middleware(ObservabilityMiddleware)
    # Outermost of ours: an oversized body is refused before it is logged, read or parsed.
    app.add_middleware(BodyLimitMiddleware)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
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

    @app.exception_handler(InviteRefused)
    async def invite_refused(_: Request, error: InviteRefused) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

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
    return f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"


def document_plain_errors(app: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI document with each 422 answer documented as what `invalid_input`
    sends (`ErrorOut`, one plain `detail`), not FastAPI's list of error objects."""
    if app.openapi_schema is None:
        document = FastAPI.openapi(app)
        for operations in document["paths"].values():
            for operation in operations.values():
                invalid = operation["responses"].get("422")
                if invalid is not None:
                    invalid["description"] = "invalid input, named in plain words"
                    invalid["content"]["application/json"]["schema"] = {
                        "$ref": "#/components/schemas/ErrorOut"
                    }
        for unused in ("HTTPValidationError", "ValidationError"):
            document["components"]["schemas"].pop(unused)
    return app.openapi_schema

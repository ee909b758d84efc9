"""Liveness, readiness and metrics (public, cheap, free of anything secret), and the platform's
activity for the ops Lambda's idle pause (its own token, good for nothing else)."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from ..domain.activity import activity
from ..schemas import ActivityOut, Health
from .deps import ERRORS, Admin, Ctx, Session

_ops_bearer = HTTPBearer(auto_error=False, description="the ops token (STREAMR_OPS_TOKEN)")

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, response_model_exclude_none=True)
async def health() -> Health:
    """The process answers (the ALB and the container HEALTHCHECK use this)."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": Health}})
async def ready(ctx: Ctx):
    """PostgreSQL reachable → ready. Redis down only degrades: nothing depends on it alone."""
    try:
        async with ctx.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # any failure to reach the database means not ready
        database = "failed"
    if not ctx.cache.configured:
        redis = "not configured"
    else:
        redis = "ok" if await ctx.cache.ping() else "failed"
    if database == "failed":
        body = Health(status="failed", database=database, redis=redis)
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok" if redis != "failed" else "degraded", database=database, redis=redis)


@router.get("/metrics", response_class=Response, responses=ERRORS)
async def metrics(_: Admin) -> Response:
    """Prometheus text format, for operators (admin token): route names and counts only."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _ops_caller(
    ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_ops_bearer)]
) -> None:
    """Only the ops token; no session or node token opens this, and the ops token opens nothing
    else. Without STREAMR_OPS_TOKEN the endpoint is closed."""
    expected = ctx.settings.ops_token
    if expected is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "no ops token is configured")
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong ops token",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.get(
    "/api/v1/ops/activity",
    response_model=ActivityOut,
    responses=ERRORS,
    dependencies=[Depends(_ops_caller)],
)
async def platform_activity(ctx: Ctx, session: Session) -> ActivityOut:
    """Live streams, connected viewers and the last activity (ops token)."""
    live, viewers, last = await activity(session, datetime.now(UTC), ctx.started_at)
    return ActivityOut(live_streams=live, viewers=viewers, last_activity=last)

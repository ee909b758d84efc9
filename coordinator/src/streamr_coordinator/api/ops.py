"""Liveness, readiness and metrics: public, cheap, and free of anything secret."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from ..schemas import Health
from .deps import ERRORS, Admin, Ctx

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

"""Contribution reports from nodes, and what everyone may see of the payouts they lead to."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ..domain import reports
from ..models import FULL_TRUST
from ..schemas import (
    EarningOut,
    EarningsOut,
    NodeTrustOut,
    PayoutPeriodOut,
    ReportBatchIn,
    ReportBatchOut,
    StreamPayoutOut,
)
from .deps import ERRORS, NOT_FOUND, Admin, Ctx, Friend, NodeCaller, RowId, Session, StreamerOrAdmin
from .streams import owned_stream

router = APIRouter(prefix="/api/v1", tags=["payouts"])


@router.post("/nodes/{node_id}/reports", response_model=ReportBatchOut, responses=ERRORS)
async def report_contribution(node_id: RowId, body: ReportBatchIn, caller: NodeCaller, ctx: Ctx):
    """A node reports what it served. Safe to retry: an interval already received comes back as
    `duplicate` and is never counted twice."""
    if caller.node_id != node_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this token belongs to another node, not node {node_id}"
        )
    outcomes, trust = await reports.ingest(ctx, node_id, body.reports, datetime.now(UTC))
    # Built as plain JSON (the shape is ReportBatchOut): validating a thousand result models on
    # the way out would cost more than the database does.
    return JSONResponse(
        {
            "results": [
                {
                    "stream": item.stream,
                    "interval_start": item.interval_start.isoformat(),
                    "status": outcome.status,
                    "reason": outcome.reason,
                    "verified_bytes": outcome.verified_bytes,
                }
                for item, outcome in zip(body.reports, outcomes, strict=True)
            ],
            "trust": trust / FULL_TRUST,
        }
    )


_HISTORY = text("""
SELECT e.period_start, p.period_end, e.stream_id, s.name, e.node_id, n.name, e.verified_bytes,
    e.trust_bp, e.amount_minor
FROM ledger_entries e
JOIN payout_periods p USING (period_start)
LEFT JOIN streams s ON s.id = e.stream_id
LEFT JOIN nodes n ON n.id = e.node_id
WHERE e.user_id = :user_id
ORDER BY e.period_start DESC, e.stream_id, e.node_id
LIMIT :limit
""")


@router.get("/earnings", response_model=EarningsOut, responses=ERRORS)
async def my_earnings(
    principal: Friend,
    ctx: Ctx,
    session: Session,
    limit: int = Query(default=100, ge=1, le=1000, description="history entries, newest first"),
):
    """A friend's balance, each node's trust, and the latest ledger entries."""
    balance = await session.scalar(
        text("SELECT coalesce(sum(amount_minor), 0) FROM ledger_entries WHERE user_id = :user_id"),
        {"user_id": principal.user_id},
    )
    nodes = await session.execute(
        text("SELECT id, name, trust_bp FROM nodes WHERE owner_id = :user_id ORDER BY id"),
        {"user_id": principal.user_id},
    )
    history = await session.execute(_HISTORY, {"user_id": principal.user_id, "limit": limit})
    return EarningsOut(
        currency=ctx.settings.payout_unit,
        balance_minor=balance,
        nodes=[NodeTrustOut(id=i, name=name, trust=bp / FULL_TRUST) for i, name, bp in nodes],
        history=[
            EarningOut(
                period_start=row[0],
                period_end=row[1],
                stream_id=row[2],
                stream_name=row[3],
                node_id=row[4],
                node_name=row[5],
                verified_bytes=row[6],
                trust=row[7] / FULL_TRUST,
                amount_minor=row[8],
            )
            for row in history
        ],
    )


_STREAM_PAYOUTS = text("""
SELECT e.period_start, p.period_end, e.node_id, n.name, e.verified_bytes, e.amount_minor
FROM ledger_entries e
JOIN payout_periods p USING (period_start)
LEFT JOIN nodes n ON n.id = e.node_id
WHERE e.stream_id = :stream_id
ORDER BY e.period_start DESC, e.amount_minor DESC, e.node_id
LIMIT :limit
""")


@router.get(
    "/streams/{stream_id}/payouts",
    response_model=list[StreamPayoutOut],
    responses={**ERRORS, **NOT_FOUND},
)
async def stream_payouts(
    stream_id: RowId,
    principal: StreamerOrAdmin,
    ctx: Ctx,
    session: Session,
    limit: int = Query(default=200, ge=1, le=5000),
):
    """What each node delivered (verified bytes) and was paid for this stream, newest first."""
    await owned_stream(session, stream_id, principal)
    rows = await session.execute(_STREAM_PAYOUTS, {"stream_id": stream_id, "limit": limit})
    return [
        StreamPayoutOut(
            period_start=start,
            period_end=end,
            node_id=node_id,
            node_name=node_name,
            verified_bytes=verified,
            amount_minor=amount,
            currency=ctx.settings.payout_unit,
        )
        for start, end, node_id, node_name, verified, amount in rows
    ]


_PERIODS = text("""
SELECT p.period_start, p.period_end, p.computed_at, count(DISTINCT e.stream_id), count(e.node_id),
    coalesce(sum(e.amount_minor), 0)
FROM payout_periods p LEFT JOIN ledger_entries e USING (period_start)
GROUP BY p.period_start
ORDER BY p.period_start DESC
LIMIT :limit
""")


@router.get("/admin/payout-periods", response_model=list[PayoutPeriodOut], responses=ERRORS)
async def payout_periods(
    _: Admin, ctx: Ctx, session: Session, limit: int = Query(default=168, ge=1, le=10_000)
):
    """Every paid period with its totals, newest first (a week of hourly periods by default)."""
    rows = await session.execute(_PERIODS, {"limit": limit})
    return [
        PayoutPeriodOut(
            period_start=start,
            period_end=end,
            computed_at=computed,
            streams_paid=streams,
            entries=entries,
            total_minor=total,
            currency=ctx.settings.payout_unit,
        )
        for start, end, computed, streams, entries, total in rows
    ]

"""Contribution reports: what a node says it served, checked against what its viewers could have
watched, stored once per (node, stream, interval start), and folded into the node's trust.

The rules that need no database run here first; the rest — the stream, duplicates, overlaps, the
viewer sessions that bound the claim, the insert and the trust update — is one call per batch of
a SQL function (`ingest_reports`, migration 0011), in autocommit, under two advisory locks: the
node's own (so two batches from one node cannot both claim an overlapping interval) and the
payout lock in shared mode (so a payout cycle, which takes it exclusively, never closes a period
while a report for it is still being written).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import text

from ..context import AppContext
from ..schemas import ReportIn

# Node clocks drift; an interval may end this far in our future and still count as past.
CLOCK_SKEW = timedelta(seconds=5)
PAYOUT_LOCK = 0x50415953  # "PAYS": shared by report ingest, exclusive for a payout cycle

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str | None = None
    verified_bytes: int | None = None


def precheck(items: list[ReportIn], now: datetime, min_seconds: int, max_seconds: int):
    """Outcomes for the items that fail without asking the database (None: still to be judged)."""
    outcomes: list[Outcome | None] = []
    seen: dict[str, list[tuple[datetime, datetime]]] = {}
    for item in items:
        seconds = (item.interval_end - item.interval_start).total_seconds()
        earlier = seen.setdefault(item.stream, [])
        if seconds <= 0:
            outcome = Outcome("rejected", "interval_end must be after interval_start")
        elif seconds < min_seconds:
            outcome = Outcome(
                "rejected", f"interval is {seconds:g} s; a report covers at least {min_seconds} s"
            )
        elif seconds > max_seconds:
            outcome = Outcome(
                "rejected", f"interval is {seconds:g} s; a report covers at most {max_seconds} s"
            )
        elif item.interval_end > now + CLOCK_SKEW:
            outcome = Outcome("rejected", "interval ends in the future")
        elif item.bytes_served < 0:
            outcome = Outcome("rejected", "bytes_served must not be negative")
        elif item.viewers < 0:
            outcome = Outcome("rejected", "viewers must not be negative")
        elif any(start == item.interval_start for start, _ in earlier):
            outcome = Outcome("duplicate", "repeated in this batch")
        elif any(start < item.interval_end and item.interval_start < end for start, end in earlier):
            outcome = Outcome("rejected", "overlaps another report in this batch")
        else:
            outcome = None
            earlier.append((item.interval_start, item.interval_end))
        outcomes.append(outcome)
    return outcomes


# The batch's locks, judgement, insert and trust update: one call of the function of migration
# 0011 (`ingest_reports`, where the statement is explained), in autocommit: one round trip.
_INGEST = text(
    "SELECT * FROM ingest_reports(:node_id, :positions, :streams, :starts, :ends, :bytes, "
    ":viewers, :max_seconds, :tolerance_percent, :smoothing, :payout_lock)"
)
_TRUST = text("SELECT trust_bp FROM nodes WHERE id = :id")


async def ingest(
    ctx: AppContext, node_id: int, items: list[ReportIn], now: datetime
) -> tuple[list[Outcome], int]:
    """Judge and store a batch; returns an outcome per item (in order) and the node's trust."""
    settings = ctx.settings
    outcomes = precheck(items, now, settings.report_min_seconds, settings.report_max_seconds)
    pending = [position for position, outcome in enumerate(outcomes) if outcome is None]
    async with ctx.autocommit_engine.connect() as connection:
        if not pending:
            trust = await connection.scalar(_TRUST, {"id": node_id})
            return _complete(outcomes), trust
        result = await connection.execute(
            _INGEST,
            {
                "node_id": node_id,
                "positions": pending,
                "streams": [items[p].stream for p in pending],
                "starts": [items[p].interval_start for p in pending],
                "ends": [items[p].interval_end for p in pending],
                "bytes": [items[p].bytes_served for p in pending],
                "viewers": [items[p].viewers for p in pending],
                "max_seconds": settings.report_max_seconds,
                "tolerance_percent": settings.verification_tolerance_percent,
                "smoothing": settings.trust_smoothing_percent,
                "payout_lock": PAYOUT_LOCK,
            },
        )
        rows = result.all()
        trust = rows[0][4]
        for position, problem, verified, stored, _ in rows:
            if stored:
                outcomes[position] = Outcome("accepted", verified_bytes=verified)
            elif problem is None or problem == "duplicate":
                outcomes[position] = Outcome("duplicate", "already received")
            else:
                outcomes[position] = Outcome("rejected", problem)
    return _complete(outcomes), trust


def _complete(outcomes: list[Outcome | None]) -> list[Outcome]:
    missing = [position for position, outcome in enumerate(outcomes) if outcome is None]
    if missing:
        raise RuntimeError(f"no outcome for report items {missing}")
    return [outcome for outcome in outcomes if outcome is not None]

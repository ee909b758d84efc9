"""Contribution reports: what a node says it served, checked against what its viewers could have
watched, stored once per (node, stream, interval start), and folded into the node's trust.

The rules that need no database run here first; the rest — the stream, duplicates, overlaps, the
viewer sessions that bound the claim, the insert and the trust update — is one SQL statement per
batch, under two advisory locks: the node's own (so two batches from one node cannot both claim
an overlapping interval) and the payout lock in shared mode (so a payout cycle, which takes it
exclusively, never closes a period while a report for it is still being written).
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


_LOCKS = text(
    "SELECT pg_advisory_xact_lock_shared(:payout_lock), "
    "pg_advisory_xact_lock(hashtextextended('node-reports:' || :node_id, 0))"
)

# One statement for the batch. `checked` resolves each item: the stream that had this name during
# the interval (a deleted stream's name may belong to a newer stream now), duplicates, overlaps, and
# how many viewer-seconds this node served of the stream inside the interval that count: the parts
# of its ticketed sessions during which the stream was being broadcast at the origin *and* the
# node's edge was pulling it from the origin, at most the node's capacity for the whole interval.
# `inserted` stores the ones that pass; `trust` moves the node's trust toward this batch's honesty
# (verified / reported bytes) by `smoothing` percent, rounding the step away from zero so that
# honest nodes reach full trust.
_INGEST = text("""
WITH input AS (
    SELECT * FROM unnest(
        CAST(:positions AS integer[]), CAST(:streams AS text[]),
        CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]),
        CAST(:bytes AS bigint[]), CAST(:viewers AS integer[])
    ) AS t(position, stream_name, interval_start, interval_end, bytes_served, viewers)
), node AS (
    SELECT capacity_viewers FROM nodes WHERE id = :node_id
), resolved AS (
    SELECT i.*, s.id AS stream_id, s.bitrate_kbps
    FROM input i LEFT JOIN LATERAL (
        SELECT id, bitrate_kbps FROM streams
        WHERE name = i.stream_name AND (deleted_at IS NULL OR deleted_at > i.interval_start)
        ORDER BY created_at <= i.interval_start DESC, created_at DESC
        LIMIT 1
    ) s ON true
), relaying AS (
    SELECT r.*, (
        SELECT coalesce(range_agg(tstzrange(p.started_at, coalesce(p.ended_at, 'infinity'))),
            '{}'::tstzmultirange)
        FROM edge_pulls p
        WHERE p.node_id = :node_id AND p.stream_id = r.stream_id
          AND p.started_at < r.interval_end
          AND (p.ended_at IS NULL OR p.ended_at > r.interval_start)
    ) * (
        SELECT coalesce(range_agg(tstzrange(b.started_at, coalesce(b.ended_at, 'infinity'))),
            '{}'::tstzmultirange)
        FROM broadcasts b
        WHERE b.stream_id = r.stream_id AND b.started_at < r.interval_end
          AND (b.ended_at IS NULL OR b.ended_at > r.interval_start)
    ) AS served
    FROM resolved r
), checked AS (
    SELECT r.*,
        EXISTS (
            SELECT 1 FROM contribution_reports c
            WHERE c.node_id = :node_id AND c.stream_id = r.stream_id
              AND c.interval_start = r.interval_start
        ) AS duplicate,
        EXISTS (
            SELECT 1 FROM contribution_reports c
            WHERE c.node_id = :node_id AND c.stream_id = r.stream_id
              AND c.interval_start > r.interval_start - make_interval(secs => :max_seconds)
              AND c.interval_start < r.interval_end AND c.interval_end > r.interval_start
        ) AS overlaps,
        least(
            (
                SELECT coalesce(sum(range_seconds(r.served * tstzmultirange(tstzrange(
                    greatest(v.started_at, r.interval_start),
                    least(coalesce(v.ended_at, statement_timestamp()), r.interval_end))))), 0)
                FROM viewer_sessions v
                WHERE v.node_id = :node_id AND v.stream_id = r.stream_id
                  AND v.started_at < least(r.interval_end, statement_timestamp())
                  AND (v.ended_at IS NULL OR v.ended_at > r.interval_start)
            ),
            (SELECT capacity_viewers FROM node)
                * extract(epoch FROM r.interval_end - r.interval_start)
        ) AS viewer_seconds
    FROM relaying r
), judged AS (
    SELECT c.*,
        least(c.bytes_served, floor(
            c.viewer_seconds * c.bitrate_kbps * 125 * (100 + :tolerance_percent) / 100
        ))::bigint AS verified_bytes,
        CASE
            WHEN c.stream_id IS NULL THEN 'unknown stream'
            WHEN c.duplicate THEN 'duplicate'
            WHEN c.overlaps THEN 'overlaps an earlier report of this node for this stream'
            WHEN c.viewer_seconds <= 0 THEN
                'this node served no viewer of this stream in the interval (a session opened '
                'with a ticket, while the stream was live and the node pulled it from the origin)'
        END AS problem
    FROM checked c
), inserted AS (
    INSERT INTO contribution_reports
        (node_id, stream_id, interval_start, interval_end, bytes_served, verified_bytes, viewers)
    SELECT :node_id, stream_id, interval_start, interval_end, bytes_served, verified_bytes, viewers
    FROM judged WHERE problem IS NULL
    ON CONFLICT DO NOTHING
    RETURNING stream_id, interval_start
), honesty AS (
    SELECT sum(j.bytes_served) AS reported, sum(j.verified_bytes) AS verified
    FROM judged j JOIN inserted USING (stream_id, interval_start)
), trust AS (
    UPDATE nodes SET trust_bp = nodes.trust_bp + CASE
        WHEN target.bp >= nodes.trust_bp
            THEN div((target.bp - nodes.trust_bp) * :smoothing + 99, 100)
            ELSE -div((nodes.trust_bp - target.bp) * :smoothing + 99, 100)
    END
    FROM (SELECT div(verified * 10000, reported) AS bp FROM honesty WHERE reported > 0) AS target
    WHERE nodes.id = :node_id
    RETURNING nodes.trust_bp
)
SELECT j.position, j.problem, j.verified_bytes, inserted.stream_id IS NOT NULL AS stored,
    coalesce((SELECT trust_bp FROM trust), (SELECT trust_bp FROM nodes WHERE id = :node_id))
FROM judged j LEFT JOIN inserted USING (stream_id, interval_start)
""")


async def ingest(
    ctx: AppContext, node_id: int, items: list[ReportIn], now: datetime
) -> tuple[list[Outcome], int]:
    """Judge and store a batch; returns an outcome per item (in order) and the node's trust."""
    settings = ctx.settings
    outcomes = precheck(items, now, settings.report_min_seconds, settings.report_max_seconds)
    pending = [position for position, outcome in enumerate(outcomes) if outcome is None]
    async with ctx.engine.begin() as connection:
        if not pending:
            trust = await connection.scalar(
                text("SELECT trust_bp FROM nodes WHERE id = :id"), {"id": node_id}
            )
            return _complete(outcomes), trust
        await connection.execute(_LOCKS, {"payout_lock": PAYOUT_LOCK, "node_id": str(node_id)})
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

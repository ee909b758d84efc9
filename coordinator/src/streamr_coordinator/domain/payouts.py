"""The payout cycle: each stream's pool split across the nodes that relayed it, per period.

The pool that pays a period is the one in force when the period opened (`stream_pools`): a
streamer's change applies from the next period, so the terms of work under way never change.
A deleted stream is only marked deleted, so its accepted contributions are paid like any other.

A period holds the reports *received* in it. Their verified bytes are summed per (period, stream,
node) as they are stored (`payout_totals`, kept by triggers in the same transaction), so paying a
period reads one row per contributing (stream, node), however many reports there were. Paying it
is one SQL statement that inserts the period's row, a `payout_recipients` row per paid user
(what holds the user and the period for the ledger) and every ledger entry of every stream
together; the period's primary key makes a second run (another instance, a retry) insert nothing.
The cycle takes the payout lock exclusively, which waits for report batches still being written
(they hold it shared), so no report lands in a period after it was paid.

Shares: weight = verified bytes * trust. Each node gets floor(pool * weight / total weight);
what the floors leave of the pool goes one unit each to the largest remainders (ties: lower node
id), so a stream's entries sum to its pool exactly. All arithmetic is on integers (numeric in SQL).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..context import AppContext
from ..db import log_failure
from .reports import PAYOUT_LOCK

log = logging.getLogger("streamr.payouts")

# At most this many periods are paid per check, so a long outage is caught up in steps.
MAX_PERIODS_PER_CHECK = 48

# The period's shares (`shares`: stream, node, owner, verified bytes, trust, amount), as common
# table expressions the cycle's statement starts with; `bench.payouts` runs them alone, for the
# cost of the computation without the writes.
# `payout_totals` holds one row per (stream, node) for the period: the totals are grouped by the
# period length the cycle pays (`set_payout_period_seconds` regroups what is unpaid when it
# changes), so they are read as they are, without grouping again; were a (stream, node) there
# twice, the ledger's primary key would refuse the period rather than pay it twice.
SHARES = """
pool AS (
    SELECT DISTINCT ON (stream_id) stream_id, pool_minor
    FROM stream_pools
    WHERE effective_from <= :period_start
    ORDER BY stream_id, effective_from DESC
), weighted AS (
    SELECT t.stream_id, t.node_id, n.owner_id, t.verified_bytes, n.trust_bp,
        pool.pool_minor::numeric AS pool, t.verified_bytes::numeric * n.trust_bp AS weight
    FROM payout_totals t
    JOIN nodes n ON n.id = t.node_id
    JOIN pool ON pool.stream_id = t.stream_id
    WHERE t.period_start >= :period_start AND t.period_start < :period_end
      AND t.verified_bytes > 0 AND n.trust_bp > 0 AND pool.pool_minor > 0
), floored AS (
    -- One division per entry (not div and mod): the remainder is what the floor leaves. The
    -- floor is at most the pool (weight <= total), so it is a bigint and sums as one.
    SELECT q.*, q.scaled - q.base * q.total AS remainder
    FROM (
        SELECT w.*, w.pool * w.weight AS scaled, sum(w.weight) OVER per_stream AS total,
            div(w.pool * w.weight, sum(w.weight) OVER per_stream)::bigint AS base
        FROM weighted w
        WINDOW per_stream AS (PARTITION BY w.stream_id)
    ) q
), shares AS (
    -- Only what the inserts use: this is materialized (read twice), its numerics are not.
    SELECT f.stream_id, f.node_id, f.owner_id, f.verified_bytes, f.trust_bp,
        (f.base + CASE WHEN row_number() OVER (PARTITION BY f.stream_id
                                                ORDER BY f.remainder DESC, f.node_id)
            <= f.pool - sum(f.base) OVER (PARTITION BY f.stream_id) THEN 1 ELSE 0 END)::bigint
            AS amount_minor
    FROM floored f
)"""
_PAY_PERIOD = text(
    f"""
WITH period AS (
    INSERT INTO payout_periods (period_start, period_end) VALUES (:period_start, :period_end)
    ON CONFLICT DO NOTHING
    RETURNING period_start
), {SHARES}, recipients AS (
    INSERT INTO payout_recipients (period_start, user_id)
    SELECT DISTINCT p.period_start, r.owner_id FROM shares r CROSS JOIN period p
), entries AS (
    INSERT INTO ledger_entries
        (period_start, stream_id, node_id, user_id, verified_bytes, trust_bp, amount_minor)
    SELECT p.period_start, r.stream_id, r.node_id, r.owner_id, r.verified_bytes, r.trust_bp,
        r.amount_minor
    FROM shares r CROSS JOIN period p
    -- In primary-key order: each key lands after the last one (the index's rightmost page).
    ORDER BY r.stream_id, r.node_id
    RETURNING amount_minor
)
SELECT (SELECT count(*) FROM period), count(*), coalesce(sum(amount_minor), 0) FROM entries
"""  # noqa: S608 - constant text
)


@dataclass(frozen=True)
class PeriodResult:
    period_start: datetime
    period_end: datetime
    paid_now: bool  # False: it had been paid already (by another instance or an earlier run)
    entries: int
    total_minor: int


def period_containing(moment: datetime, period_seconds: int) -> tuple[datetime, datetime]:
    """The aligned period [start, end) that holds `moment` (periods divide a UTC day)."""
    epoch = moment.timestamp()
    start = datetime.fromtimestamp(epoch - epoch % period_seconds, UTC)
    return start, start + timedelta(seconds=period_seconds)


async def pay_period(
    connection: AsyncConnection, period_start: datetime, period_end: datetime
) -> PeriodResult:
    """Pay one period in the connection's transaction (the caller commits)."""
    await connection.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": PAYOUT_LOCK})
    result = await connection.execute(
        _PAY_PERIOD, {"period_start": period_start, "period_end": period_end}
    )
    inserted, entries, total = result.one()
    return PeriodResult(period_start, period_end, bool(inserted), entries, int(total))


def due_periods(
    last_paid_end: datetime | None,
    first_report: datetime | None,
    now: datetime,
    period_seconds: int,
    grace: timedelta,
    limit: int = MAX_PERIODS_PER_CHECK,
) -> list[tuple[datetime, datetime]]:
    """The periods to pay at `now`: from the end of the last paid one (or the period of the first
    report ever) up to the last one that ended at least `grace` ago. Pure: time is a parameter."""
    if last_paid_end is not None:
        start = last_paid_end
    elif first_report is not None:
        start, _ = period_containing(first_report, period_seconds)
    else:
        return []
    periods = []
    while len(periods) < limit:
        end = period_containing(start, period_seconds)[0] + timedelta(seconds=period_seconds)
        if end + grace > now:
            break
        periods.append((start, end))
        start = end
    return periods


async def adopt_period_length(engine: AsyncEngine, period_seconds: int) -> None:
    """Make the database's period length (what the totals are grouped by) the configured one;
    a change regroups the unpaid totals. Refused with a clear error if it would split a period."""
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT set_payout_period_seconds(:seconds, :lock)"),
                {"seconds": period_seconds, "lock": PAYOUT_LOCK},
            )
    except IntegrityError as error:
        raise PeriodLengthRefused(
            f"STREAMR_PAYOUT_PERIOD_SECONDS={period_seconds} cannot take effect now: "
            f"{error.orig}; change it when the last paid period ends on a boundary of the new "
            "length (or keep the current one)"
        ) from None


class PeriodLengthRefused(RuntimeError):
    pass


async def pay_due_periods(ctx: AppContext, now: datetime | None = None) -> list[PeriodResult]:
    """Pay every due period, each in its own transaction. Every instance may call this at the same
    time: the database lets one of them pay each period and the others find it paid."""
    await adopt_period_length(ctx.engine, ctx.settings.payout_period_seconds)
    async with ctx.engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT (SELECT max(period_end) FROM payout_periods), "
                    "(SELECT min(period_start) FROM payout_totals), now()"
                )
            )
        ).one()
        await connection.rollback()
    last_paid_end, first_report, database_now = row
    periods = due_periods(
        last_paid_end,
        first_report,
        now or database_now,
        ctx.settings.payout_period_seconds,
        timedelta(seconds=ctx.settings.payout_grace_seconds),
    )
    results = []
    for period_start, period_end in periods:
        async with ctx.engine.begin() as connection:
            results.append(await pay_period(connection, period_start, period_end))
    return results


async def run_scheduler(ctx: AppContext) -> None:
    """Every instance runs this; see `pay_due_periods` for why that is safe."""
    interval = ctx.settings.payout_check_seconds
    while True:
        try:
            for result in await pay_due_periods(ctx):
                if result.paid_now:
                    log.info(
                        "paid period",
                        extra={
                            "period_start": result.period_start.isoformat(),
                            "entries": result.entries,
                            "total_minor": result.total_minor,
                        },
                    )
        except Exception as error:  # the next check retries; a failed period was rolled back whole
            log_failure(log, "payout check failed", error)
        await asyncio.sleep(interval)

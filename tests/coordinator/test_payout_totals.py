"""The running payout totals: whatever happens to the reports (batches with duplicates, reports
moved to another period, deleted with their node), `payout_totals` equals the same sums
recomputed from the raw reports, and the payout cycle pays from it."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.exc import DBAPIError
from streamr_coordinator.domain import payouts

from .support import Coordinator
from .test_payouts import _entries
from .test_reports import BYTES_PER_SECOND, Relay

HOUR = timedelta(hours=1)
EPOCH = datetime(2021, 3, 1, tzinfo=UTC)
_names = itertools.count()

RECOMPUTED = """
SELECT payout_period_start(received_at, (SELECT period_seconds FROM payout_schedule)),
    stream_id, node_id, sum(verified_bytes)::bigint, count(*)::integer
FROM contribution_reports GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
KEPT = (
    "SELECT period_start, stream_id, node_id, verified_bytes, reports FROM payout_totals "
    "ORDER BY 1, 2, 3"
)


def _assert_totals_match(sql) -> None:
    assert sql(KEPT) == sql(RECOMPUTED)


@pytest.fixture
def world(sql):
    """Two streams and three nodes to hang generated reports on."""
    sql(
        "INSERT INTO users (id, username, password_hash, role) VALUES "
        "(1, 'f', 'x', 'friend'), (2, 's', 'x', 'streamer')"
    )
    streams = [
        sql(
            "INSERT INTO streams (owner_id, name, key_hash) VALUES (2, :n, :k) RETURNING id",
            n=f"t{next(_names)}",
            k=os.urandom(32),
        )[0][0]
        for _ in range(2)
    ]
    nodes = [_node(sql) for _ in range(3)]
    return sql, streams, nodes


# A report: (stream index, node index, interval slot, verified bytes, minutes after EPOCH received).
report = st.tuples(
    st.integers(0, 1),
    st.integers(0, 2),
    st.integers(0, 5),
    st.integers(0, 10**12),
    st.integers(0, 180),
)
operation = st.one_of(
    st.tuples(st.just("batch"), st.lists(report, min_size=1, max_size=8)),
    st.tuples(st.just("move"), st.integers(0, 2), st.integers(-120, 120)),
    st.tuples(st.just("shrink"), st.integers(0, 1)),
    st.tuples(st.just("forget"), st.integers(0, 5)),
    st.tuples(st.just("delete node"), st.integers(0, 2)),
)


def _apply(sql, streams: list[int], nodes: list[int], step) -> None:
    kind = step[0]
    if kind == "batch":
        # One statement per batch, duplicates (same node, stream, slot) skipped as ingest does.
        batch = step[1]
        sql(
            "INSERT INTO contribution_reports (node_id, stream_id, interval_start, interval_end, "
            "bytes_served, verified_bytes, viewers, received_at) "
            "SELECT node, stream, slot, slot + interval '10 s', verified, verified, 1, received "
            "FROM unnest(CAST(:nodes AS bigint[]), CAST(:streams AS bigint[]), "
            "CAST(:slots AS timestamptz[]), CAST(:verified AS bigint[]), "
            "CAST(:received AS timestamptz[])) AS t(node, stream, slot, verified, received) "
            "ON CONFLICT DO NOTHING",
            nodes=[nodes[n] for _, n, _, _, _ in batch],
            streams=[streams[s] for s, _, _, _, _ in batch],
            slots=[EPOCH + timedelta(seconds=10 * slot) for _, _, slot, _, _ in batch],
            verified=[verified for _, _, _, verified, _ in batch],
            received=[EPOCH + timedelta(minutes=minutes) for *_, minutes in batch],
        )
    elif kind == "move":  # received_at changes: reports change period
        sql(
            "UPDATE contribution_reports SET received_at = received_at + make_interval(mins => :m) "
            "WHERE node_id = :node",
            m=step[2],
            node=nodes[step[1]],
        )
    elif kind == "shrink":
        sql(
            "UPDATE contribution_reports SET verified_bytes = verified_bytes / 2 "
            "WHERE stream_id = :stream",
            stream=streams[step[1]],
        )
    elif kind == "forget":
        sql(
            "DELETE FROM contribution_reports WHERE interval_start = :start",
            start=EPOCH + timedelta(seconds=10 * step[1]),
        )
    else:  # deleting a node deletes its reports (ON DELETE CASCADE); another takes its place
        sql("DELETE FROM nodes WHERE id = :node", node=nodes[step[1]])
        nodes[step[1]] = _node(sql)


def _node(sql) -> int:
    return sql(
        "INSERT INTO nodes (owner_id, name, capacity_viewers) VALUES (1, :n, 5) RETURNING id",
        n=f"m{next(_names)}",
    )[0][0]


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(operation, min_size=1, max_size=8))
def test_totals_always_equal_a_recomputation_from_the_raw_reports(world, steps) -> None:
    sql, streams, nodes = world
    sql("DELETE FROM contribution_reports")
    for step in steps:
        _apply(sql, streams, nodes, step)
        _assert_totals_match(sql)


def test_truncating_the_reports_empties_the_totals(world) -> None:
    sql, streams, nodes = world
    _apply(sql, streams, nodes, ("batch", [(0, 0, 0, 1000, 5), (1, 2, 1, 7, 70)]))
    assert sql("SELECT count(*) FROM payout_totals")[0][0] == 2
    sql("TRUNCATE contribution_reports")
    _assert_totals_match(sql)
    assert sql("SELECT count(*) FROM payout_totals")[0][0] == 0


def test_reports_accepted_through_the_api_count_once_in_the_totals(api, sql) -> None:
    relay = Relay(api, sql)
    relay.viewers(1)
    relay.send(relay.item(0), relay.item(10))
    relay.send(relay.item(10), relay.item(20))  # a retry: one duplicate, one new
    ((verified, reports),) = sql(
        "SELECT verified_bytes, reports FROM payout_totals WHERE node_id = :node",
        node=relay.node["id"],
    )
    assert (verified, reports) == (3 * 10 * BYTES_PER_SECOND, 3)
    _assert_totals_match(sql)


def test_a_rejected_batch_leaves_the_totals_as_they_were(api, sql) -> None:
    relay = Relay(api, sql)  # no viewers: nothing it reports can be verified
    relay.send(relay.item(0))
    assert sql("SELECT count(*) FROM payout_totals")[0][0] == 0


def test_a_new_period_length_regroups_what_is_unpaid_and_cannot_split_a_period(
    world, coordinator: Coordinator
) -> None:
    sql, streams, nodes = world
    start = EPOCH
    for minutes in (10, 40, 70, 100):
        _apply(sql, streams, nodes, ("batch", [(0, 0, minutes // 10, 1000, minutes)]))
    coordinator.pay_period(start)  # the first hour, at the default length
    assert _entries(sql, start) == {}  # stream pool is 0: paid, nothing to share

    # Half-hour periods split nothing paid (paid until 01:00): the rest is regrouped.
    coordinator.run(payouts.adopt_period_length(coordinator.ctx.engine, 1800))
    kept = sql(KEPT)
    assert [(row[0], row[3], row[4]) for row in kept] == [
        (start, 2000, 2),  # paid already, left as it was
        (start + HOUR, 1000, 1),
        (start + HOUR + HOUR / 2, 1000, 1),
    ]

    async def pay_half_hour():  # [01:00, 01:30), as the scheduler now pays it
        async with coordinator.ctx.engine.begin() as connection:
            return await payouts.pay_period(connection, start + HOUR, start + HOUR + HOUR / 2)

    assert coordinator.run(pay_half_hour()).paid_now
    with pytest.raises(payouts.PeriodLengthRefused, match="STREAMR_PAYOUT_PERIOD_SECONDS=3600"):
        coordinator.run(payouts.adopt_period_length(coordinator.ctx.engine, 3600))
    assert sql("SELECT period_seconds FROM payout_schedule")[0][0] == 1800


def test_the_schedule_refuses_a_length_that_does_not_divide_a_day(sql) -> None:
    with pytest.raises(DBAPIError, match="divides_a_day"):
        sql("UPDATE payout_schedule SET period_seconds = 7000")

"""The payout cycle on real PostgreSQL: exact integer shares, one set of entries per period however
many instances run it, and what friends, streamers and admins may see of it."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from streamr_coordinator.app import create_app
from streamr_coordinator.domain import payouts
from streamr_coordinator.settings import Settings

from .support import Api, Coordinator, instance_context
from .test_reports import BYTES_PER_SECOND, Relay

HOUR = timedelta(hours=1)
_periods = itertools.count(1)


def _current_period() -> tuple[datetime, datetime]:
    return payouts.period_containing(datetime.now(UTC), 3600)


def _entries(sql, period_start: datetime) -> dict[int, int]:
    rows = sql(
        "SELECT node_id, amount_minor FROM ledger_entries WHERE period_start = :start",
        start=period_start,
    )
    return dict(rows)


# ---- the whole path: hooks → reports → a paid period → what each role sees -------------------


@pytest.fixture
def paid_world(api: Api, sql, coordinator: Coordinator):
    streamer = api.account("streamer")
    stream = api.stream(streamer, "evening", bitrate_kbps=4000, payout_pool_minor=1000)
    alice, bob = Relay(api, sql, stream=stream), Relay(api, sql, stream=stream)
    alice.viewers(3)
    bob.viewers(1)
    alice.send(alice.item(0, bytes_served=3 * 10 * BYTES_PER_SECOND))
    bob.send(bob.item(0, bytes_served=10 * BYTES_PER_SECOND))
    start, end = _current_period()
    results = coordinator.run(
        payouts.pay_due_periods(coordinator.ctx, now=end + timedelta(seconds=31))
    )
    return streamer, stream, alice, bob, start, results


def test_a_period_pays_the_pool_by_verified_bytes(paid_world, sql) -> None:
    _, _, alice, bob, start, results = paid_world
    assert [(r.period_start, r.paid_now, r.entries, r.total_minor) for r in results] == [
        (start, True, 2, 1000)
    ]
    assert _entries(sql, start) == {alice.node["id"]: 750, bob.node["id"]: 250}


def test_each_role_sees_its_own_part_of_the_payouts(paid_world, api: Api) -> None:
    streamer, stream, alice, bob, start, _ = paid_world
    earnings = api.client.get("/api/v1/earnings", headers=alice.friend.auth).json()
    assert earnings["balance_minor"] == 750
    assert earnings["nodes"] == [{"id": alice.node["id"], "name": alice.node["name"], "trust": 1.0}]
    (entry,) = earnings["history"]
    assert (entry["stream_name"], entry["amount_minor"], entry["verified_bytes"]) == (
        "evening",
        750,
        30 * BYTES_PER_SECOND,
    )
    assert datetime.fromisoformat(entry["period_start"]) == start

    by_node = api.client.get(f"/api/v1/streams/{stream['id']}/payouts", headers=streamer.auth)
    assert {(p["node_name"], p["amount_minor"]) for p in by_node.json()} == {
        (alice.node["name"], 750),
        (bob.node["name"], 250),
    }
    stranger = api.account("streamer")
    hidden = api.client.get(f"/api/v1/streams/{stream['id']}/payouts", headers=stranger.auth)
    assert hidden.status_code == 404

    admin = api.account("admin")
    (period,) = api.client.get("/api/v1/admin/payout-periods", headers=admin.auth).json()
    assert (period["streams_paid"], period["entries"], period["total_minor"]) == (1, 2, 1000)


def test_a_node_claiming_ten_times_what_its_viewers_could_watch_is_paid_at_most_the_bound(
    api: Api, sql, coordinator: Coordinator
) -> None:
    stream = api.stream(api.account("streamer"), "capped", payout_pool_minor=10_000)
    honest, greedy = Relay(api, sql, stream=stream), Relay(api, sql, stream=stream)
    could_watch = 10 * BYTES_PER_SECOND  # one viewer each, ten seconds
    for relay, claim in ((honest, could_watch), (greedy, 10 * could_watch)):
        relay.viewers(1)
        relay.send(relay.item(0, bytes_served=claim))
    start, _ = _current_period()
    coordinator.pay_period(start)
    rows = sql(
        "SELECT node_id, verified_bytes, amount_minor FROM ledger_entries WHERE period_start = :s",
        s=start,
    )
    paid = {node: (verified, amount) for node, verified, amount in rows}
    bound = int(could_watch * 1.10)
    assert paid[greedy.node["id"]][0] == bound
    # Paid for at most the bound at full trust; its lowered trust makes it less than that.
    assert paid[greedy.node["id"]][1] <= 10_000 * bound // (bound + could_watch)
    assert paid[greedy.node["id"]][1] < paid[honest.node["id"]][1]
    assert sum(amount for _, amount in paid.values()) == 10_000


def test_paying_a_period_again_is_a_no_op(paid_world, coordinator: Coordinator, sql) -> None:
    _, _, _, _, start, _ = paid_world
    before = _entries(sql, start)
    again = coordinator.pay_period(start)
    assert (again.paid_now, again.entries) == (False, 0)
    assert _entries(sql, start) == before


def test_two_instances_paying_the_same_period_at_once_write_one_set(
    api: Api, sql, settings: Settings
) -> None:
    stream = api.stream(api.account("streamer"), "race", payout_pool_minor=999)
    relays = [Relay(api, sql, stream=stream) for _ in range(3)]
    for relay in relays:
        relay.viewers(1)
        relay.send(relay.item(0))
    start, end = _current_period()

    async def two_instances_at_once():
        instances = [instance_context(settings), instance_context(settings)]
        try:
            return await asyncio.gather(
                *(payouts.pay_due_periods(ctx, now=end + HOUR) for ctx in instances)
            )
        finally:
            for ctx in instances:
                await ctx.engine.dispose()

    results = asyncio.run(two_instances_at_once())
    paid = [result for batch in results for result in batch if result.paid_now]
    assert len(paid) == 1
    assert sum(_entries(sql, start).values()) == 999
    assert sql("SELECT count(*) FROM ledger_entries")[0][0] == 3


def test_a_stream_without_verified_contribution_pays_nothing(
    api: Api, sql, coordinator: Coordinator
) -> None:
    api.stream(api.account("streamer"), "quiet", payout_pool_minor=5000)
    relay = Relay(api, sql)  # relays another stream, reports zero bytes
    relay.viewers(1)
    relay.send(relay.item(0, bytes_served=0))
    start, _ = _current_period()
    result = coordinator.pay_period(start)
    assert (result.paid_now, result.entries, result.total_minor) == (True, 0, 0)


def test_the_ledger_is_append_only(paid_world, sql) -> None:
    for statement in (
        "UPDATE ledger_entries SET amount_minor = amount_minor + 1",
        "DELETE FROM ledger_entries",
        "DELETE FROM payout_periods",
        "DELETE FROM payout_recipients",
        "UPDATE payout_recipients SET user_id = user_id",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            sql(statement)


def test_a_paid_user_is_never_deleted(paid_world, sql) -> None:
    _, _, alice, _, _, _ = paid_world
    with pytest.raises(DBAPIError, match="fk_payout_recipients_user_id_users"):
        sql("DELETE FROM users WHERE id = :id", id=alice.friend.id)
    unpaid = sql(
        "INSERT INTO users (username, password_hash, role) VALUES ('u', 'x', 'friend') RETURNING id"
    )
    assert sql("DELETE FROM users WHERE id = :id", id=unpaid[0][0]) == 1


def test_a_ledger_entry_needs_its_recipient_row(paid_world, sql) -> None:
    _, stream, alice, bob, start, _ = paid_world
    stranger = sql(
        "INSERT INTO users (username, password_hash, role) VALUES ('s', 'x', 'friend') RETURNING id"
    )[0][0]
    entry = (
        "INSERT INTO ledger_entries (period_start, stream_id, node_id, user_id, verified_bytes, "
        "trust_bp, amount_minor) VALUES (:start, :stream, :node, :user, 1, 1, 1)"
    )
    for period, user in ((start, stranger), (start - HOUR, alice.friend.id)):
        with pytest.raises(DBAPIError, match="ledger_entries_recipient"):
            sql(entry, start=period, stream=stream["id"], node=-1, user=user)
    sql(entry, start=start, stream=stream["id"], node=-1, user=bob.friend.id)


ORPHANS = (
    "SELECT count(*) FROM ledger_entries e WHERE NOT EXISTS "
    "(SELECT FROM users u WHERE u.id = e.user_id)"
)


@pytest.mark.parametrize("isolation", ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"])
@pytest.mark.parametrize("first", ["payer", "deleter"])
def test_a_user_deleted_while_being_paid_never_leaves_an_entry_without_its_user(
    database_url: str, sql, isolation: str, first: str
) -> None:
    """Two connections race: one pays a user (recipient row and ledger entry, as the cycle
    does), the other deletes that user. The second to act waits for the first; whichever
    commits, the other fails, and no entry is left whose user is gone."""
    start = datetime(2026, 11, 25, 10, tzinfo=UTC)
    sql("INSERT INTO users (id, username, password_hash, role) VALUES (7, 'f', 'x', 'friend')")
    sql(
        "INSERT INTO payout_periods (period_start, period_end) VALUES (:s, :s + interval '1 h')",
        s=start,
    )
    engine = create_engine(database_url, isolation_level=isolation.replace(" ", "_"))

    def pay(connection) -> None:
        connection.execute(
            text("INSERT INTO payout_recipients (period_start, user_id) VALUES (:s, 7)"),
            {"s": start},
        )
        connection.execute(
            text(
                "INSERT INTO ledger_entries (period_start, stream_id, node_id, user_id, "
                "verified_bytes, trust_bp, amount_minor) VALUES (:s, 1, 1, 7, 1, 1, 1)"
            ),
            {"s": start},
        )

    def delete(connection) -> None:
        connection.execute(text("DELETE FROM users WHERE id = 7"))

    actions = {"payer": pay, "deleter": delete}
    second = "deleter" if first == "payer" else "payer"
    outcome: dict[str, BaseException | None] = {}

    def act_second() -> None:
        try:
            with engine.begin() as connection:
                actions[second](connection)
            outcome[second] = None
        except DBAPIError as error:
            outcome[second] = error

    try:
        with engine.begin() as connection:
            connection.execute(text("SELECT 1"))  # the snapshot of a repeatable read starts here
            actions[first](connection)
            waiter = threading.Thread(target=act_second)
            waiter.start()
            deadline = time.monotonic() + 10
            while not sql(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ):
                assert time.monotonic() < deadline, "the second connection never waited"
                time.sleep(0.02)
        waiter.join(timeout=10)
    finally:
        engine.dispose()
    assert isinstance(outcome[second], DBAPIError)
    assert sql(ORPHANS) == [(0,)]
    paid = sql("SELECT count(*) FROM ledger_entries")[0][0]
    user_left = sql("SELECT count(*) FROM users WHERE id = 7")[0][0]
    assert (paid, user_left) == ((1, 1) if first == "payer" else (0, 0))


def test_due_periods_start_after_the_last_paid_one_and_wait_for_the_grace() -> None:
    t = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    grace = timedelta(seconds=30)
    assert payouts.due_periods(None, None, t, 3600, grace) == []
    assert payouts.due_periods(None, t + timedelta(minutes=5), t + HOUR, 3600, grace) == []
    assert payouts.due_periods(None, t + timedelta(minutes=5), t + HOUR + grace, 3600, grace) == [
        (t, t + HOUR)
    ]
    assert payouts.due_periods(t, None, t + 3 * HOUR, 3600, grace) == [
        (t, t + HOUR),
        (t + HOUR, t + 2 * HOUR),
    ]
    assert len(payouts.due_periods(t, None, t + 1000 * HOUR, 3600, grace)) == 48


# ---- properties of the shares, checked on the SQL statement itself --------------------------


@pytest.fixture
def ledger_db(sql):
    """A friend and a streamer to hang generated nodes and streams on."""
    sql(
        "INSERT INTO users (id, username, password_hash, role) VALUES "
        "(1, 'f', 'x', 'friend'), (2, 's', 'x', 'streamer')"
    )
    return sql


def _seed(sql, start: datetime, pool: int, contributions: list[tuple[int, int]], order) -> list:
    """One stream with `pool`, one node per (verified bytes, trust_bp); reports inserted in
    `order`. Returns the node ids in the order of `contributions`."""
    (stream_id,) = sql(
        "INSERT INTO streams (owner_id, name, key_hash, payout_pool_minor) "
        "VALUES (2, :name, :key, :pool) RETURNING id",
        name=f"p{next(_periods)}",
        key=os.urandom(32),
        pool=pool,
    )[0]
    node_ids = [
        sql(
            "INSERT INTO nodes (owner_id, name, capacity_viewers, trust_bp) "
            "VALUES (1, :name, 10, :trust) RETURNING id",
            name=f"n{next(_periods)}",
            trust=trust,
        )[0][0]
        for _, trust in contributions
    ]
    for position in order:
        verified, _ = contributions[position]
        sql(
            "INSERT INTO contribution_reports (node_id, stream_id, interval_start, interval_end, "
            "bytes_served, verified_bytes, viewers, received_at) "
            "VALUES (:node, :stream, :start, :start + interval '10 s', :bytes, :bytes, 1, :start)",
            node=node_ids[position],
            stream=stream_id,
            start=start,
            bytes=verified,
        )
    return node_ids


def _expected(pool: int, weights: list[int], node_ids: list[int]) -> dict[int, int]:
    """Largest remainder, in exact fractions: the oracle the SQL must match."""
    paid = [(w, n) for w, n in zip(weights, node_ids, strict=True) if w > 0]
    total = sum(w for w, _ in paid)
    if not paid or pool == 0:
        return {}
    quotas = {n: Fraction(pool * w, total) for w, n in paid}
    shares = {n: int(q) for n, q in quotas.items()}
    by_remainder = sorted(quotas, key=lambda n: (-(quotas[n] - shares[n]), n))
    for n in by_remainder[: pool - sum(shares.values())]:
        shares[n] += 1
    return shares


contributions = st.lists(
    st.tuples(st.integers(0, 10**13), st.integers(0, 10_000)), min_size=1, max_size=12
)
pools = st.integers(0, 10**12)
quick = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@quick
@given(pool=pools, contributions=contributions, seed=st.randoms(use_true_random=False))
def test_shares_are_exact_whole_and_independent_of_row_order(
    ledger_db, coordinator: Coordinator, pool, contributions, seed
) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC) + next(_periods) * HOUR
    order = list(range(len(contributions)))
    seed.shuffle(order)
    node_ids = _seed(ledger_db, start, pool, contributions, order)
    # The shares computed alone (what `bench.payouts` measures as the computation's floor).
    computed = ledger_db(
        f"WITH {payouts.SHARES} SELECT node_id, amount_minor FROM shares",  # noqa: S608 - constant
        period_start=start,
        period_end=start + HOUR,
    )
    result = coordinator.pay_period(start)
    amounts = _entries(ledger_db, start)
    weights = [v * t for v, t in contributions]
    expected = _expected(pool, weights, node_ids)

    assert amounts == expected  # exact, and only nodes with weight have entries
    assert dict(computed) == amounts
    assert all(amount >= 0 for amount in amounts.values())  # never negative
    assert sum(amounts.values()) == (pool if expected else 0)  # conservation
    assert result.total_minor == sum(amounts.values())
    again = coordinator.pay_period(start)  # idempotent
    assert (again.paid_now, _entries(ledger_db, start)) == (False, amounts)


@quick
@given(
    pool=pools,
    contributions=contributions,
    which=st.integers(0, 11),
    more=st.integers(1, 10**12),
)
def test_more_verified_bytes_never_earn_less(
    ledger_db, coordinator: Coordinator, pool, contributions, which, more
) -> None:
    which %= len(contributions)
    richer = list(contributions)
    richer[which] = (contributions[which][0] + more, contributions[which][1])
    earned = []
    for variant in (contributions, richer):
        start = datetime(2020, 1, 1, tzinfo=UTC) + next(_periods) * HOUR
        node_ids = _seed(ledger_db, start, pool, variant, range(len(variant)))
        coordinator.pay_period(start)
        earned.append(_entries(ledger_db, start).get(node_ids[which], 0))
    assert earned[1] >= earned[0]


def test_every_instance_runs_the_scheduler_and_each_period_is_paid_once(
    api: Api, sql, settings: Settings
) -> None:
    stream = api.stream(api.account("streamer"), "sched", payout_pool_minor=300)
    relay = Relay(api, sql, stream=stream)
    relay.viewers(1)
    relay.send(relay.item(0))
    # Early in an hour four hours ago: its period and the two after it have ended, with the grace,
    # whatever the minute the test runs at (a plain "3 hours ago" fails in an hour's first 30 s).
    sql(
        "UPDATE contribution_reports "
        "SET received_at = date_trunc('hour', now()) - interval '4 hours' + interval '1 minute'"
    )
    scheduled = settings.model_copy(update={"payout_check_seconds": 1})
    with TestClient(create_app(scheduled)), TestClient(create_app(scheduled)):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sql("SELECT count(*) FROM payout_periods")[0][0] < 3:
            time.sleep(0.2)
    periods = sql("SELECT count(*) FROM payout_periods")[0][0]
    assert periods >= 3  # the report's period and the ones after it, up to the last finished
    assert sql("SELECT count(*), sum(amount_minor) FROM ledger_entries")[0] == (1, 300)

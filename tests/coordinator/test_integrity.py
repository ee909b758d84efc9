"""Contribution integrity: only routed viewers of a live stream, served while the node's edge pulled
it from the origin and within the node's capacity, earn credit; and what was accepted stays payable
whatever the streamer does to the pool or the stream afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from streamr_coordinator.domain import payouts, tickets
from streamr_coordinator.settings import Settings

from .conftest import PEPPER
from .support import Api, srs_event
from .test_payouts import HOUR, Coordinator
from .test_reports import BYTES_PER_SECOND, Relay, backdate

POOL = 1000


@pytest.fixture
def coordinator(settings: Settings) -> Iterator[Coordinator]:
    instance = Coordinator(settings)
    yield instance
    instance.close()


def _current_period() -> datetime:
    return payouts.period_containing(datetime.now(UTC), 3600)[0]


def _paid(sql, period_start: datetime) -> dict[int, int]:
    rows = sql(
        "SELECT node_id, amount_minor FROM ledger_entries WHERE period_start = :start",
        start=period_start,
    )
    return dict(rows)


def _honest_world(api: Api, sql, stream: dict) -> Relay:
    """An honest friend: one routed viewer for the last hour, reporting ten seconds of it."""
    honest = Relay(api, sql, stream=stream)
    honest.viewers(1)
    (result,) = honest.send(honest.item(0))["results"]
    assert (result["status"], result["verified_bytes"]) == ("accepted", 10 * BYTES_PER_SECOND)
    return honest


# ---- ghost viewers ----------------------------------------------------------------------------


def test_ghost_viewers_on_a_stream_that_is_not_live_earn_nothing_and_take_nothing(
    api: Api, sql, coordinator: Coordinator
) -> None:
    """The attack from issue 19: a friend's node of capacity 1 reports 20 invented viewers for a
    stream that is not live, then reports their bytes. Its hook calls carry its own valid node
    token; it tries no ticket, forged tickets, another node's ticket and a re-used one."""
    streamer = api.account("streamer")
    stream = api.stream(streamer, "big-show", bitrate_kbps=4000, payout_pool_minor=POOL)
    attacker = api.node(api.account("friend"), "ghost-box", capacity=1)
    api.edge_online(attacker)
    edge = {"node_token": attacker["node_token"]}

    # Not live: nowhere to be routed, so no ticket exists; invented viewers are refused.
    assert api.client.get("/api/v1/play/big-show").status_code == 404
    forged = tickets.issue(
        b"not the coordinator's key",
        attacker["id"],
        stream["id"],
        datetime.now(UTC),
        timedelta(minutes=5),
    )
    for number in range(20):
        param = "" if number % 2 else f"?ticket={forged}"
        event = srs_event("on_play", "big-show", param, client_id=f"ghost-{number}")
        answer = api.hook("on_play", event, **edge)
        assert answer.status_code == 403, answer.text
    assert sql("SELECT count(*) FROM viewer_sessions")[0][0] == 0

    # The stream goes live and an honest friend serves a routed viewer.
    honest = _honest_world(api, sql, stream)

    # Now live: a ticket for the honest node does not open a session on the attacker's, and the
    # attacker's own ticket (it may ask /api/v1/play like anyone) opens one session, once.
    theirs = api.ticket("big-show", honest.node["id"])
    stolen = srs_event("on_play", "big-show", f"?ticket={theirs}", client_id="ghost-x")
    assert api.hook("on_play", stolen, **edge).json()["detail"] == (
        "the ticket was issued for another node"
    )
    own = api.ticket("big-show", attacker["id"])
    answers = [
        api.hook(
            "on_play", srs_event("on_play", "big-show", f"?ticket={own}", client_id=f"g{n}"), **edge
        )
        for n in range(20)
    ]
    assert [a.status_code for a in answers] == [200] + [403] * 19
    assert answers[1].json()["detail"].startswith("the ticket was used already")
    # Full at its declared capacity (one viewer), it is offered to no one, and a ticket it had
    # collected earlier opens nothing more.
    offered = api.client.get("/api/v1/play/big-show").json()["edges"]
    assert attacker["id"] not in [e["node_id"] for e in offered]
    minted = tickets.issue(
        tickets.signing_key(PEPPER),
        attacker["id"],
        stream["id"],
        datetime.now(UTC),
        timedelta(minutes=1),
    )  # as if it had collected a second ticket before the first viewer arrived
    full = api.hook("on_play", srs_event("on_play", "big-show", f"?ticket={minted}", "g99"), **edge)
    assert full.json()["detail"] == "this node is at its declared capacity"

    # The attacker's edge never pulled the stream from the origin, so even its one session is not
    # credited: its report of 20 viewers' bytes is rejected.
    backdate(sql, attacker["id"], 60)
    start = honest.base
    claim = {
        "stream": "big-show",
        "interval_start": start.isoformat(),
        "interval_end": (start + timedelta(seconds=10)).isoformat(),
        "bytes_served": 20 * 10 * BYTES_PER_SECOND,
        "viewers": 20,
    }
    (result,) = api.report(attacker, claim).json()["results"]
    assert result["status"] == "rejected"
    assert result["reason"].startswith("this node served no viewer of this stream")

    period = _current_period()
    coordinator.pay_period(period)
    assert _paid(sql, period) == {honest.node["id"]: POOL}  # as if the attacker were absent


def test_an_edge_that_really_pulls_is_credited_at_most_its_capacity_while_the_stream_is_live(
    api: Api, sql
) -> None:
    """What the rules allow a dishonest friend: as many ticketed sessions as its declared capacity,
    only while the stream is live and its edge pulls it from the origin."""
    stream = api.stream(api.account("streamer"), "pulled", payout_pool_minor=POOL)
    relay = Relay(api, sql, stream=stream)
    sql("UPDATE nodes SET capacity_viewers = 1 WHERE id = :id", id=relay.node["id"])
    relay.viewers(1)
    for number in range(5):  # more "viewers" on the same node: refused at capacity
        ticket = tickets.issue(
            tickets.signing_key(PEPPER),
            relay.node["id"],
            stream["id"],
            datetime.now(UTC),
            timedelta(minutes=1),
        )
        event = srs_event("on_play", "pulled", f"?ticket={ticket}", client_id=f"extra{number}")
        answer = api.hook("on_play", event, node_token=relay.node["node_token"])
        assert answer.status_code == 403
    ten_viewers = relay.item(0, bytes_served=10 * 10 * BYTES_PER_SECOND)
    (result,) = relay.send(ten_viewers)["results"]
    assert result["verified_bytes"] == int(10 * BYTES_PER_SECOND * 1.10)  # one viewer's worth

    # The broadcast ended 30 minutes into the series: nothing after that is credited.
    sql(
        "UPDATE broadcasts SET ended_at = :end WHERE stream_id = :s",
        end=relay.base + timedelta(minutes=30),
        s=stream["id"],
    )
    (result,) = relay.send(relay.item(40 * 60))["results"]
    assert result["status"] == "rejected"

    # The edge stopped pulling 5 minutes into the series (the origin's on_stop for its pull).
    sql(
        "UPDATE edge_pulls SET ended_at = :end WHERE node_id = :n",
        end=relay.base + timedelta(minutes=5),
        n=relay.node["id"],
    )
    straddling = relay.item(60, seconds=300)  # 4 of its 5 minutes while pulling
    (result,) = relay.send(straddling)["results"]
    assert result["verified_bytes"] == int(4 * 60 * BYTES_PER_SECOND * 1.10)


def test_an_expired_ticket_opens_nothing(api: Api, sql) -> None:
    stream = api.stream(api.account("streamer"), "later")
    api.publish(stream)
    node = api.node(api.account("friend"), "late-box")
    api.edge_online(node)
    old = tickets.issue(
        tickets.signing_key(PEPPER),
        node["id"],
        stream["id"],
        datetime.now(UTC) - timedelta(minutes=5),
        timedelta(seconds=60),
    )
    event = srs_event("on_play", "later", f"?ticket={old}", client_id="late")
    answer = api.hook("on_play", event, node_token=node["node_token"])
    assert answer.status_code == 403
    assert answer.json()["detail"].startswith("the ticket has expired")


def test_a_ticket_for_a_deleted_stream_does_not_open_its_successor(api: Api, sql) -> None:
    streamer = api.account("streamer")
    first = api.stream(streamer, "reborn")
    api.publish(first)
    node = api.node(api.account("friend"), "reborn-box")
    api.edge_online(node)
    ticket = api.ticket("reborn", node["id"])
    assert (
        api.client.delete(f"/api/v1/streams/{first['id']}", headers=streamer.auth).status_code
        == 204
    )
    second = api.stream(streamer, "reborn")
    api.publish(second)
    event = srs_event("on_play", "reborn", f"?ticket={ticket}", client_id="old-ticket")
    answer = api.hook("on_play", event, node_token=node["node_token"])
    assert answer.json()["detail"] == "the ticket was issued for another stream"


# ---- payout terms -----------------------------------------------------------------------------


def test_a_pool_change_applies_from_the_next_period(
    api: Api, sql, coordinator: Coordinator
) -> None:
    streamer = api.account("streamer")
    stream = api.stream(streamer, "dodger", payout_pool_minor=POOL)
    honest = _honest_world(api, sql, stream)
    period = _current_period()

    changed = api.client.patch(
        f"/api/v1/streams/{stream['id']}", json={"payout_pool_minor": 0}, headers=streamer.auth
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["payout_pool_minor"], changed.json()["currency"]) == (0, "credits")
    assert datetime.fromisoformat(changed.json()["payout_pool_from"]) == period + HOUR

    # A report received in the next period is paid from the next period's pool (now 0) ...
    honest.send(honest.item(10))
    sql(
        "UPDATE contribution_reports SET received_at = :next WHERE interval_start = :start",
        next=period + HOUR + timedelta(minutes=1),
        start=honest.base + timedelta(seconds=10),
    )
    coordinator.pay_period(period)
    coordinator.pay_period(period + HOUR)
    # ... and the period under way when the pool was changed pays the pool it opened with.
    assert _paid(sql, period) == {honest.node["id"]: POOL}
    assert _paid(sql, period + HOUR) == {}

    # Raising it again also waits for the next period.
    raised = api.client.patch(
        f"/api/v1/streams/{stream['id']}", json={"payout_pool_minor": 5000}, headers=streamer.auth
    )
    assert raised.json()["payout_pool_minor"] == 5000
    pools = sql(
        "SELECT pool_minor FROM stream_pools WHERE stream_id = :s ORDER BY effective_from",
        s=stream["id"],
    )
    assert pools == [(POOL,), (5000,)]  # one change per period: the latest wins


def test_deleting_a_stream_keeps_what_it_earned_friends_payable_and_frees_its_name(
    api: Api, sql, coordinator: Coordinator
) -> None:
    streamer = api.account("streamer")
    stream = api.stream(streamer, "vanishing", payout_pool_minor=POOL)
    sql(
        "UPDATE streams SET created_at = now() - interval '2 hours' WHERE id = :id",
        id=stream["id"],
    )
    honest = _honest_world(api, sql, stream)

    deleted = api.client.delete(f"/api/v1/streams/{stream['id']}", headers=streamer.auth)
    assert deleted.status_code == 204
    assert (
        api.client.get(f"/api/v1/streams/{stream['id']}", headers=streamer.auth).status_code == 404
    )
    assert api.client.get("/api/v1/streams", headers=streamer.auth).json() == []
    assert sql("SELECT count(*) FROM viewer_sessions WHERE ended_at IS NULL")[0][0] == 0

    # The name is free again, for a different stream with its own key and its own pool.
    again = api.stream(streamer, "vanishing", payout_pool_minor=7)
    assert again["id"] != stream["id"]

    # A report of the old stream's time sent after the deletion still belongs to the old stream.
    (late,) = honest.send(honest.item(20))["results"]
    assert late["status"] == "accepted"
    assert sql(
        "SELECT DISTINCT stream_id FROM contribution_reports WHERE node_id = :n",
        n=honest.node["id"],
    ) == [(stream["id"],)]

    period = _current_period()
    coordinator.pay_period(period)
    assert _paid(sql, period) == {honest.node["id"]: POOL}
    earnings = api.client.get("/api/v1/earnings", headers=honest.friend.auth).json()
    assert (earnings["balance_minor"], earnings["currency"]) == (POOL, "credits")
    assert [(e["stream_id"], e["stream_name"]) for e in earnings["history"]] == [
        (stream["id"], "vanishing")
    ]


def test_a_reused_name_is_a_different_stream(api: Api, sql, coordinator: Coordinator) -> None:
    streamer = api.account("streamer")
    old = api.stream(streamer, "encore", payout_pool_minor=POOL)
    api.client.delete(f"/api/v1/streams/{old['id']}", headers=streamer.auth)
    new = api.stream(streamer, "encore", payout_pool_minor=300)
    relay = Relay(api, sql, stream=new)
    relay.viewers(1)
    assert relay.send(relay.item(0))["results"][0]["status"] == "accepted"
    assert sql("SELECT DISTINCT stream_id FROM contribution_reports") == [(new["id"],)]
    # The old stream's key publishes nothing; the new one is live.
    publish_old = api.hook(
        "on_publish", srs_event("on_publish", "encore", f"?key={old['stream_key']}")
    )
    assert publish_old.status_code == 403
    assert sql("SELECT id, is_live FROM streams WHERE name = 'encore' ORDER BY id") == [
        (old["id"], False),
        (new["id"], True),
    ]
    period = _current_period()
    coordinator.pay_period(period)
    assert _paid(sql, period) == {relay.node["id"]: 300}


def test_only_an_admin_lifts_an_admins_disable(api: Api, sql, coordinator: Coordinator) -> None:
    streamer, admin = api.account("streamer"), api.account("admin")
    stream = api.stream(streamer, "moderated", payout_pool_minor=POOL)
    honest = _honest_world(api, sql, stream)
    url = f"/api/v1/streams/{stream['id']}"

    disabled = api.client.patch(url, json={"enabled": False}, headers=admin.auth)
    assert (disabled.json()["enabled"], disabled.json()["moderated"]) == (False, True)
    assert sql("SELECT is_live FROM streams WHERE id = :id", id=stream["id"]) == [(False,)]

    lifted = api.client.patch(url, json={"enabled": True}, headers=streamer.auth)
    assert lifted.status_code == 403
    assert lifted.json()["detail"] == (
        "an admin disabled stream 'moderated'; only an admin can enable it again"
    )
    # The owner may still edit the rest, and disabling it too changes nothing for moderation.
    retitled = api.client.patch(
        url, json={"title": "sorry", "enabled": False}, headers=streamer.auth
    )
    assert (retitled.status_code, retitled.json()["moderated"]) == (200, True)
    publish = srs_event("on_publish", "moderated", f"?key={stream['stream_key']}")
    assert api.hook("on_publish", publish).status_code == 403

    restored = api.client.patch(url, json={"enabled": True}, headers=admin.auth)
    assert (restored.json()["enabled"], restored.json()["moderated"]) == (True, False)
    assert api.hook("on_publish", publish).json() == {"code": 0}
    # An owner's own disable is the owner's to lift.
    assert api.client.patch(url, json={"enabled": False}, headers=streamer.auth).status_code == 200
    assert api.client.patch(url, json={"enabled": True}, headers=streamer.auth).status_code == 200

    # What was accepted before the moderation is paid.
    period = _current_period()
    coordinator.pay_period(period)
    assert _paid(sql, period) == {honest.node["id"]: POOL}

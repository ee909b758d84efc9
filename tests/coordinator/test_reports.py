"""Contribution reports: idempotent per (node, stream, interval start), judged per item, bounded by
what the node's viewers could have watched, and folded into the node's trust."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .support import Account, Api

BITRATE_KBPS = 4000
BYTES_PER_SECOND = BITRATE_KBPS * 125  # what one viewer of the stream can consume
TOLERANCE = 1.10  # the default 10 %
_numbers = itertools.count()


class Relay:
    """A friend's node relaying one live stream to routed viewers whose sessions (and the
    broadcast, and the edge's pull from the origin) started an hour ago."""

    def __init__(self, api: Api, sql, friend: Account | None = None, stream: dict | None = None):
        self.api = api
        self.sql = sql
        self.friend = friend or api.account("friend")
        number = next(_numbers)
        self.stream = stream or api.stream(
            api.account("streamer"), f"show{number}", bitrate_kbps=BITRATE_KBPS
        )
        api.publish(self.stream)  # a second publish of a live stream changes nothing
        self.node = api.node(self.friend, f"box{number}")
        api.edge_online(self.node)
        self.base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=50)

    def viewers(self, count: int, started_minutes_ago: int = 60) -> None:
        for number in range(count):
            client_id = f"v{self.node['id']}-{number}"
            response = self.api.watch(self.node, self.stream["name"], client_id)
            assert response.json() == {"code": 0}, response.text
        backdate(self.sql, self.node["id"], started_minutes_ago)

    def item(self, offset_s: int, seconds: int = 10, bytes_served: int | None = None, **extra):
        start = self.base + timedelta(seconds=offset_s)
        return {
            "stream": self.stream["name"],
            "interval_start": start.isoformat(),
            "interval_end": (start + timedelta(seconds=seconds)).isoformat(),
            "bytes_served": BYTES_PER_SECOND * seconds if bytes_served is None else bytes_served,
            "viewers": 1,
            **extra,
        }

    def send(self, *items: dict[str, Any]) -> dict[str, Any]:
        response = self.api.report(self.node, *items)
        assert response.status_code == 200, response.text
        return response.json()

    def stored(self) -> list[tuple]:
        return self.sql(
            "SELECT interval_start, bytes_served, verified_bytes FROM contribution_reports "
            "WHERE node_id = :node ORDER BY interval_start",
            node=self.node["id"],
        )


def backdate(sql, node_id: int, minutes: int) -> None:
    """As if the node's viewers, its pulls and its streams' broadcasts began `minutes` ago."""
    sql(
        "UPDATE viewer_sessions SET started_at = now() - make_interval(mins => :minutes) "
        "WHERE node_id = :node",
        minutes=minutes,
        node=node_id,
    )
    sql(
        "UPDATE edge_pulls SET started_at = now() - make_interval(mins => :minutes) "
        "WHERE node_id = :node",
        minutes=minutes,
        node=node_id,
    )
    sql(
        "UPDATE broadcasts SET started_at = least(started_at, now() - make_interval(mins => :m)) "
        "WHERE stream_id IN (SELECT stream_id FROM edge_pulls WHERE node_id = :node)",
        m=minutes,
        node=node_id,
    )


@pytest.fixture
def relay(api: Api, sql) -> Relay:
    relay = Relay(api, sql)
    relay.viewers(1)
    return relay


def test_an_honest_report_is_accepted_in_full_and_a_retry_is_a_duplicate(relay: Relay) -> None:
    first = relay.send(relay.item(0), relay.item(10))
    assert [r["status"] for r in first["results"]] == ["accepted", "accepted"]
    assert [r["verified_bytes"] for r in first["results"]] == [BYTES_PER_SECOND * 10] * 2
    assert first["trust"] == 1.0

    retry = relay.send(relay.item(10), relay.item(20))
    assert [(r["status"], r["reason"]) for r in retry["results"]] == [
        ("duplicate", "already received"),
        ("accepted", None),
    ]
    assert len(relay.stored()) == 3


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"seconds": 0}, "interval_end must be after interval_start"),
        ({"seconds": 301}, "interval is 301 s; a report covers at most 300 s"),
        ({"offset_s": 3600}, "interval ends in the future"),
        ({"bytes_served": -1}, "bytes_served must not be negative"),
        ({"viewers": -2}, "viewers must not be negative"),
        ({"stream": "no-such-stream"}, "unknown stream"),
    ],
)
def test_bad_items_are_rejected_with_a_reason_and_the_rest_still_count(
    relay: Relay, changes: dict[str, Any], reason: str
) -> None:
    offset = changes.pop("offset_s", 100)
    bad = relay.item(offset, **changes)
    result = relay.send(relay.item(0), bad)
    assert [(r["status"], r["reason"]) for r in result["results"]] == [
        ("accepted", None),
        ("rejected", reason),
    ]
    assert len(relay.stored()) == 1


def test_too_short_intervals_are_rejected(api: Api, sql, settings) -> None:
    relay = Relay(api, sql)
    relay.viewers(1)
    item = relay.item(0, seconds=1)
    item["interval_end"] = (
        datetime.fromisoformat(item["interval_start"]) + timedelta(milliseconds=500)
    ).isoformat()
    (result,) = relay.send(item)["results"]
    assert (result["status"], result["reason"]) == (
        "rejected",
        "interval is 0.5 s; a report covers at least 1 s",
    )


def test_overlapping_intervals_never_count_twice(relay: Relay) -> None:
    relay.send(relay.item(0, seconds=20))
    later = relay.send(relay.item(10), relay.item(40), relay.item(45), relay.item(40))
    assert [(r["status"], r["reason"]) for r in later["results"]] == [
        ("rejected", "overlaps an earlier report of this node for this stream"),
        ("accepted", None),
        ("rejected", "overlaps another report in this batch"),
        ("duplicate", "repeated in this batch"),
    ]
    assert len(relay.stored()) == 2


def test_a_stream_the_node_does_not_relay_is_rejected(api: Api, sql) -> None:
    relay = Relay(api, sql)  # no viewer ever played from this node
    (result,) = relay.send(relay.item(0))["results"]
    assert result["status"] == "rejected"
    assert result["reason"].startswith("this node served no viewer of this stream")


def test_a_session_that_ended_bounds_what_may_be_claimed_after_it(relay: Relay) -> None:
    relay.sql(
        "UPDATE viewer_sessions SET ended_at = started_at + interval '15 minutes' "
        "WHERE node_id = :node",
        node=relay.node["id"],
    )
    # The session ran from base-10min to base+5min: 300 s of it fall into [base, base+600s].
    during, after = relay.send(relay.item(0, seconds=300, bytes_served=10**12), relay.item(400))[
        "results"
    ]
    assert during["verified_bytes"] == int(300 * BYTES_PER_SECOND * TOLERANCE)
    assert after["status"] == "rejected"


def test_another_nodes_token_or_a_persons_token_cannot_report(api: Api, relay: Relay) -> None:
    other = Relay(api, relay.sql)
    response = api.report(other.node, relay.item(0), node_id=relay.node["id"])
    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"this token belongs to another node, not node {relay.node['id']}"
    )
    as_person = api.client.post(
        f"/api/v1/nodes/{relay.node['id']}/reports",
        json={"reports": [relay.item(0)]},
        headers=relay.friend.auth,
    )
    assert as_person.status_code == 403
    assert relay.stored() == []


def test_over_claiming_is_capped_at_the_bound_and_lowers_trust_until_honesty_restores_it(
    api: Api, sql
) -> None:
    relay = Relay(api, sql)
    relay.viewers(2)
    could_watch = 2 * 10 * BYTES_PER_SECOND  # two viewers, ten seconds
    bound = int(could_watch * TOLERANCE)
    claimed = relay.send(relay.item(0, bytes_served=10 * could_watch))
    assert claimed["results"][0]["verified_bytes"] == bound
    assert claimed["trust"] < 1.0
    lowered = claimed["trust"]
    again = relay.send(relay.item(10, bytes_served=10 * could_watch))
    assert again["trust"] < lowered

    trust, honest_batches = again["trust"], 0
    while trust < 1.0 and honest_batches < 60:
        trust_after = relay.send(relay.item(20 + 10 * honest_batches, bytes_served=could_watch))[
            "trust"
        ]
        assert trust_after > trust
        trust, honest_batches = trust_after, honest_batches + 1
    assert trust == 1.0, f"trust {trust} after {honest_batches} honest batches"
    friend_view = api.client.get("/api/v1/nodes", headers=relay.friend.auth).json()
    assert friend_view[0]["trust"] == 1.0


def test_a_batch_larger_than_the_limit_is_refused_whole(relay: Relay) -> None:
    items = [relay.item(10 * number) for number in range(1001)]
    response = relay.api.report(relay.node, *items)
    assert response.status_code == 422
    assert "reports" in response.json()["detail"]
    assert relay.stored() == []

"""Live state converges on reality: a crashed origin's streams go offline and what it served closes;
a node gone offline has its sessions closed; one HLS viewer is one session; a publisher SRS refuses
changes nothing. The sweep is run here at the times the tests choose."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from streamr_coordinator.domain import liveness
from streamr_coordinator.settings import Settings
from streamr_coordinator.web import data

from .support import Api, srs_event
from .test_payouts import Coordinator

SILENCE = 30  # the default STREAMR_ORIGIN_SILENCE_SECONDS
ONLINE = 90  # the default STREAMR_NODE_ONLINE_SECONDS


@pytest.fixture
def sweeper(settings: Settings) -> Iterator[Coordinator]:
    instance = Coordinator(settings)
    yield instance
    instance.close()


def _sweep(sweeper: Coordinator, now: datetime, origin_alive: bool = False) -> liveness.Swept:
    """Sweep as at `now`; `origin_alive`: as if the origin had kept beating until then."""
    limits = liveness.cutoffs(now, SILENCE, ONLINE)
    if origin_alive:
        limits = liveness.Cutoffs(origin=now - timedelta(days=1), node=limits.node)
    return sweeper.run(liveness.sweep(sweeper.ctx.engine, limits))


def _database_now(sql) -> datetime:
    return sql("SELECT now()")[0][0]


def _beat(api: Api, service: str = "s1") -> None:
    beat = {"device_id": "origin", "ip": "10.0.0.5", "server": "srs-origin", "service": service}
    assert api.hook("heartbeat", beat).json() == {"code": 0}


@pytest.fixture
def live_show(api: Api, sql):
    """A live stream with an origin viewer, and a friend's edge pulling it for a routed viewer."""
    stream = api.stream(api.account("streamer"), "night-show")
    _beat(api)
    api.publish(stream)
    assert (
        api.hook("on_play", srs_event("on_play", "night-show", client_id="o1")).status_code == 200
    )
    node = api.node(api.account("friend"), "night-box")
    api.edge_online(node)
    assert api.watch(node, "night-show", "e1").json() == {"code": 0}
    _beat(api)  # the origin and the node are alive after all of that started
    sql("UPDATE nodes SET last_seen = now()")
    return stream, node


def test_the_cutoffs_follow_the_settings() -> None:
    now = datetime.fromisoformat("2026-11-30T12:00:00+00:00")
    assert liveness.cutoffs(now, 30, 90) == liveness.Cutoffs(
        origin=now - timedelta(seconds=30), node=now - timedelta(seconds=90)
    )


def test_a_crashed_origins_streams_go_offline_within_the_bound(
    api: Api, sql, sweeper: Coordinator, live_show
) -> None:
    _, node = live_show
    ((beat,),) = sql("SELECT last_seen FROM origin_heartbeats")
    now = _database_now(sql)
    # Still within the silence bound: nothing changes.
    assert _sweep(sweeper, now + timedelta(seconds=SILENCE - 5)) == liveness.Swept(0, 0, 0)
    assert sql("SELECT is_live FROM streams") == [(True,)]

    swept = _sweep(sweeper, now + timedelta(seconds=SILENCE + 1))
    assert swept == liveness.Swept(streams_ended=1, sessions_closed=1, pulls_closed=1)
    assert sql("SELECT is_live, live_since FROM streams") == [(False, None)]
    assert sql("SELECT ended_at FROM broadcasts") == [(beat,)]
    assert sql("SELECT ended_at FROM edge_pulls") == [(beat,)]
    # The origin's viewer closed at the last heartbeat; the edge's own viewer is the edge's.
    assert sql("SELECT node_id, ended_at FROM viewer_sessions ORDER BY id") == [
        (None, beat),
        (node["id"], None),
    ]
    assert api.client.get("/api/v1/play/night-show").status_code == 404
    assert _sweep(sweeper, now + timedelta(seconds=SILENCE + 10)) == liveness.Swept(0, 0, 0)


def test_a_restarted_origin_ends_the_old_broadcast_and_starts_a_new_one(
    api: Api, sql, live_show
) -> None:
    stream, _ = live_show
    ((first_since,),) = sql("SELECT live_since FROM streams")
    republish = srs_event("on_publish", "night-show", f"?key={stream['stream_key']}")
    republish["service_id"] = "s2"  # a new SRS process
    assert api.hook("on_publish", republish).json() == {"code": 0}
    rows = sql("SELECT service_id, ended_at IS NULL FROM broadcasts ORDER BY id")
    assert rows == [("s1", False), ("s2", True)]
    ((since,),) = sql("SELECT live_since FROM streams")
    assert since > first_since


def test_a_refused_second_publisher_changes_nothing(api: Api, sql, live_show) -> None:
    stream, _ = live_show
    before = sql("SELECT is_live, live_since FROM streams")
    second = srs_event(
        "on_publish", "night-show", f"?key={stream['stream_key']}", client_id="second"
    )
    # SRS asks, then refuses the stream as busy (and sends no on_unpublish for it).
    assert api.hook("on_publish", second).json() == {"code": 0}
    assert sql("SELECT is_live, live_since FROM streams") == before
    assert sql("SELECT client_id, ended_at IS NULL FROM broadcasts") == [("c1", True)]
    wrong = srs_event("on_publish", "night-show", "?key=sk_wrong", client_id="third")
    assert api.hook("on_publish", wrong).status_code == 403
    assert sql("SELECT is_live, live_since FROM streams") == before


def test_a_node_gone_offline_has_its_sessions_and_pulls_closed(
    api: Api, sql, sweeper: Coordinator, live_show
) -> None:
    _, node = live_show
    ((seen,),) = sql("SELECT last_seen FROM nodes WHERE id = :id", id=node["id"])
    now = _database_now(sql)
    assert (
        _sweep(sweeper, now + timedelta(seconds=ONLINE - 5), origin_alive=True).sessions_closed == 0
    )
    swept = _sweep(sweeper, seen + timedelta(seconds=ONLINE + 1), origin_alive=True)
    assert (swept.sessions_closed, swept.pulls_closed) == (1, 1)
    closed = sql("SELECT ended_at FROM viewer_sessions WHERE node_id = :id", id=node["id"])
    assert closed == [(seen,)]
    assert sql("SELECT ended_at FROM edge_pulls") == [(seen,)]


def test_one_hls_viewer_is_one_session_closed_by_its_newest_srs_session(
    api: Api, sql, live_show
) -> None:
    """SRS opens a session for every bare .m3u8 fetch and stops each ~2 x hls_window after its
    last request; one viewer (stream and address) stays one session, closed by the newest."""
    for ctx in ("h1", "h2", "h3"):
        event = srs_event("on_play", "night-show.m3u8", client_id=ctx)
        assert api.hook("on_play", event).json() == {"code": 0}
    other = srs_event("on_play", "night-show.m3u8", client_id="k1")
    other["ip"] = "198.51.100.20"
    api.hook("on_play", other)
    hls = "SELECT client_ip, client_id, ended_at IS NULL FROM viewer_sessions WHERE hls ORDER BY id"
    assert sql(hls) == [("203.0.113.7", "h3", True), ("198.51.100.20", "k1", True)]
    for ctx in ("h1", "h2"):  # the older SRS sessions time out: the viewer is still watching
        api.hook("on_stop", srs_event("on_stop", "night-show.m3u8", client_id=ctx))
    assert sql(hls)[0] == ("203.0.113.7", "h3", True)
    api.hook("on_stop", srs_event("on_stop", "night-show.m3u8", client_id="h3"))
    assert sql(hls)[0] == ("203.0.113.7", "h3", False)


def test_dashboards_count_no_session_of_a_node_that_went_offline(
    api: Api, sql, sweeper: Coordinator, live_show
) -> None:
    """The operator's "via friends" and "origin bandwidth saved" stop growing once the node is
    gone: its sessions end at its last heartbeat (here: before they began, so they count 0)."""
    _, node = live_show
    sql("UPDATE nodes SET last_seen = now() - interval '10 minutes' WHERE id = :id", id=node["id"])
    _sweep(sweeper, _database_now(sql))

    async def figures():
        async with sweeper.ctx.sessions() as session:
            return await data.shares(session)

    for saving in sweeper.run(figures()):
        assert (saving.share.edge_seconds, saving.bytes_saved) == (0.0, 0)
    assert api.client.get("/api/v1/play/night-show").json()["edges"] == []

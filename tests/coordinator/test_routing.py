"""Viewer routing and the node's own endpoints (edge address, token renewal, leaving)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from streamr_coordinator.app import create_app
from streamr_coordinator.settings import Settings

from .conftest import HOOK_SECRET
from .support import Api, srs_event

ORIGIN = "http://203.0.113.10:8080"


@pytest.fixture
def routed(settings: Settings) -> Iterator[Api]:
    configured = settings.model_copy(update={"origin_play_url": ORIGIN})
    with TestClient(create_app(configured)) as client:
        yield Api(client, hook_secret=HOOK_SECRET, bootstrap_token=settings.admin_bootstrap_token)


def _bearer(node: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {node['node_token']}"}


def _edge(api: Api, friend, name: str, capacity: int, viewers: int, *, online=True, url=True):
    node = api.node(friend, name, capacity=capacity)
    if url:
        response = api.client.put(
            f"/api/v1/nodes/{node['id']}/edge",
            json={"play_base_url": f"http://100.64.0.{node['id']}:8080"},
            headers=_bearer(node),
        )
        assert response.status_code == 204, response.text
    if online:
        assert api.client.post("/api/v1/node/heartbeat", headers=_bearer(node)).status_code == 200
    for number in range(viewers):
        assert api.watch(node, "show", f"{name}-{number}").json() == {"code": 0}
    return node


@pytest.fixture
def live(routed: Api) -> dict:
    stream = routed.stream(routed.account("streamer"), "show")
    published = routed.hook(
        "on_publish", srs_event("on_publish", "show", f"?key={stream['stream_key']}")
    )
    assert published.json() == {"code": 0}
    return stream


def test_a_stream_that_is_not_live_has_nowhere_to_play(routed: Api) -> None:
    routed.stream(routed.account("streamer"), "quiet")
    for name in ("quiet", "unknown"):
        assert routed.client.get(f"/api/v1/play/{name}").status_code == 404
    not_a_name = routed.client.get("/api/v1/play/Not_A-Name!")
    assert not_a_name.status_code == 422
    assert not_a_name.json()["detail"].startswith("path.stream: String should match pattern")


def test_without_edges_viewers_go_to_the_origin(routed: Api, live) -> None:
    answer = routed.client.get("/api/v1/play/show").json()
    assert answer == {
        "stream": "show",
        "edges": [],
        "origin": {"flv_url": f"{ORIGIN}/live/show.flv", "hls_url": f"{ORIGIN}/live/show.m3u8"},
    }


def test_edges_with_room_come_least_loaded_first_and_load_follows_sessions(
    routed: Api, live
) -> None:
    friend = routed.account("friend")
    half = _edge(routed, friend, "half", capacity=2, viewers=1)
    empty = _edge(routed, friend, "empty", capacity=10, viewers=0)
    _edge(routed, friend, "full", capacity=1, viewers=1)
    _edge(routed, friend, "offline", capacity=10, viewers=0, online=False)
    _edge(routed, friend, "unreachable", capacity=10, viewers=0, url=False)

    edges = routed.client.get("/api/v1/play/show").json()["edges"]
    assert [(e["node_id"], e["load"]) for e in edges] == [(empty["id"], 0.0), (half["id"], 0.5)]
    base, _, query = edges[0]["flv_url"].partition("?")
    assert base == f"http://100.64.0.{empty['id']}:8080/live/show.flv"
    assert query.startswith("ticket=t1.")

    for number in range(6):  # the empty edge fills up past the half one
        assert routed.watch(empty, "show", f"more-{number}").json() == {"code": 0}
    edges = routed.client.get("/api/v1/play/show").json()["edges"]
    assert [e["node_id"] for e in edges] == [half["id"], empty["id"]]

    stop = srs_event("on_stop", "show", client_id="half-0")
    routed.hook("on_stop", stop, node_token=half["node_token"])
    edges = routed.client.get("/api/v1/play/show").json()["edges"]
    assert (edges[0]["node_id"], edges[0]["load"]) == (half["id"], 0.0)


def test_a_node_sets_only_its_own_edge_address(api: Api) -> None:
    friend = api.account("friend")
    mine, other = api.node(friend, "mine"), api.node(friend, "other")
    response = api.client.put(
        f"/api/v1/nodes/{other['id']}/edge",
        json={"play_base_url": "http://100.64.0.1:8080"},
        headers=_bearer(mine),
    )
    assert response.status_code == 403
    bad = api.client.put(
        f"/api/v1/nodes/{mine['id']}/edge",
        json={"play_base_url": "ftp://x/y"},
        headers=_bearer(mine),
    )
    assert bad.status_code == 422
    assert "play_base_url" in bad.json()["detail"]


def test_a_play_url_off_the_mesh_is_refused(api: Api) -> None:
    """Viewers are sent only to an edge's address on the mesh (STREAMR_MESH_PREFIXES, by default
    Headscale's 100.64.0.0/10 and fd7a:115c:a1e0::/48)."""
    friend = api.account("friend")
    node = api.node(friend, "edge")
    for url, status in (
        ("http://100.64.0.9:8080", 204),
        ("http://100.127.255.254", 204),
        ("http://[fd7a:115c:a1e0::9]:8080", 204),
        ("http://203.0.113.5:8080", 422),  # a public address
        ("http://192.168.1.20:8080", 422),  # the friend's LAN
        ("http://127.0.0.1:8080", 422),
        ("http://100.128.0.1:8080", 422),  # just past the mesh's range
        ("http://[2001:db8::1]:8080", 422),
        ("http://evil.example.com:8080", 422),  # a name, not an address on the mesh
        ("http://user@100.64.0.9:8080", 422),
        ("http://100.64.0.9:http", 422),
    ):
        response = api.client.put(
            f"/api/v1/nodes/{node['id']}/edge", json={"play_base_url": url}, headers=_bearer(node)
        )
        assert response.status_code == status, (url, response.text)
        if status == 422:
            assert response.json()["detail"].startswith("play_base_url: "), response.text
            assert "100.64.0.0/10, fd7a:115c:a1e0::/48" in response.json()["detail"]


def test_play_never_hands_out_an_edge_off_the_mesh(routed: Api, live, sql) -> None:
    """Even a URL stored before the mesh's ranges changed (or written around the API) is never
    given to a viewer; the origin remains."""
    friend = routed.account("friend")
    on_mesh = _edge(routed, friend, "on-mesh", capacity=5, viewers=0)
    off_mesh = _edge(routed, friend, "off-mesh", capacity=5, viewers=0)
    sql(
        "UPDATE nodes SET play_base_url = 'http://203.0.113.66:8080' WHERE id = :id",
        id=off_mesh["id"],
    )
    answer = routed.client.get("/api/v1/play/show").json()
    assert [edge["node_id"] for edge in answer["edges"]] == [on_mesh["id"]]
    for edge in answer["edges"]:
        assert edge["flv_url"].startswith(f"http://100.64.0.{on_mesh['id']}:8080/"), edge
    assert answer["origin"]["flv_url"].startswith(ORIGIN)


def test_the_mesh_prefixes_come_from_the_settings(settings: Settings) -> None:
    local = settings.model_copy(update={"mesh_prefixes": ["127.0.0.0/8"]})
    with TestClient(create_app(local)) as client:
        api = Api(client, hook_secret=HOOK_SECRET, bootstrap_token=settings.admin_bootstrap_token)
        node = api.node(api.account("friend"), "loopback")
        for url, status in (("http://127.0.0.1:8080", 204), ("http://100.64.0.9:8080", 422)):
            response = client.put(
                f"/api/v1/nodes/{node['id']}/edge",
                json={"play_base_url": url},
                headers=_bearer(node),
            )
            assert response.status_code == status, (url, response.text)


def test_a_renewed_token_works_and_the_old_one_only_for_an_hour(api: Api, sql) -> None:
    node = api.node(api.account("friend"), "renewing")
    renewed = api.client.post("/api/v1/node/token", headers=_bearer(node))
    assert renewed.status_code == 200
    fresh = {"node_token": renewed.json()["node_token"]}
    assert api.client.post("/api/v1/node/heartbeat", headers=_bearer(fresh)).status_code == 200
    assert api.client.post("/api/v1/node/heartbeat", headers=_bearer(node)).status_code == 200
    ((old_left,),) = sql(
        "SELECT min(expires_at) - now() <= interval '1 hour' FROM api_tokens WHERE node_id = :n",
        n=node["id"],
    )
    assert old_left is True


def test_a_node_can_leave_by_itself(api: Api) -> None:
    friend = api.account("friend")
    node = api.node(friend, "leaving")
    assert api.client.delete("/api/v1/node", headers=_bearer(node)).status_code == 204
    assert api.client.get("/api/v1/nodes", headers=friend.auth).json() == []
    assert api.client.post("/api/v1/node/heartbeat", headers=_bearer(node)).status_code == 401

"""Friend nodes: registration with a node token, heartbeats, online status from presence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .support import Api


def test_node_registration_heartbeat_and_online_status(api: Api, sql) -> None:
    friend = api.account("friend")
    node = api.node(friend, "garage-box", capacity=25)
    assert node["node_token"].startswith("stn_")
    assert (node["online"], node["trust"], node["capacity_viewers"]) == (False, 1.0, 25)

    node_auth = {"Authorization": f"Bearer {node['node_token']}"}
    beat = api.client.post("/api/v1/node/heartbeat", headers=node_auth)
    assert beat.status_code == 200
    assert beat.json() == {"online": True, "next_heartbeat_seconds": 30}
    mine = api.client.get("/api/v1/nodes", headers=friend.auth).json()
    assert [(n["name"], n["online"]) for n in mine] == [("garage-box", True)]
    assert "node_token" not in str(mine)
    # The durable copy: last_seen in PostgreSQL.
    (last_seen,) = sql("SELECT last_seen FROM nodes")[0]
    assert datetime.now(UTC) - last_seen < timedelta(seconds=10)


def test_online_status_comes_from_postgres_when_presence_is_gone(
    api: Api, sql, redis_server
) -> None:
    friend = api.account("friend")
    node = api.node(friend, "box")
    api.client.post(
        "/api/v1/node/heartbeat", headers={"Authorization": f"Bearer {node['node_token']}"}
    )
    redis_server.stop()
    assert api.client.get("/api/v1/nodes", headers=friend.auth).json()[0]["online"] is True
    sql("UPDATE nodes SET last_seen = now() - interval '10 minutes'")
    assert api.client.get("/api/v1/nodes", headers=friend.auth).json()[0]["online"] is False


def test_friends_see_their_own_nodes_admins_see_all(api: Api) -> None:
    alice, bob, admin = api.account("friend"), api.account("friend"), api.account("admin")
    api.node(alice, "a1")
    api.node(bob, "b1")
    assert [n["name"] for n in api.client.get("/api/v1/nodes", headers=alice.auth).json()] == ["a1"]
    everyone = api.client.get("/api/v1/admin/nodes", headers=admin.auth).json()
    assert sorted(n["name"] for n in everyone) == ["a1", "b1"]


def test_duplicate_node_name_and_bad_capacity_are_refused(api: Api) -> None:
    friend = api.account("friend")
    api.node(friend, "twin")
    again = api.client.post(
        "/api/v1/nodes", json={"name": "twin", "capacity_viewers": 5}, headers=friend.auth
    )
    assert again.status_code == 409
    bad = api.client.post(
        "/api/v1/nodes", json={"name": "zero", "capacity_viewers": 0}, headers=friend.auth
    )
    assert bad.status_code == 422 and "capacity_viewers" in bad.json()["detail"]


def test_deleting_a_node_kills_its_token(api: Api) -> None:
    friend = api.account("friend")
    node = api.node(friend, "short-lived")
    node_auth = {"Authorization": f"Bearer {node['node_token']}"}
    assert api.client.post("/api/v1/node/heartbeat", headers=node_auth).status_code == 200
    assert api.client.delete(f"/api/v1/nodes/{node['id']}", headers=friend.auth).status_code == 204
    assert api.client.post("/api/v1/node/heartbeat", headers=node_auth).status_code == 401

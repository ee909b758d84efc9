"""Friend nodes: registration with a node token, heartbeats, online status from presence."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from streamr_coordinator.app import create_app
from streamr_coordinator.context import AppContext
from streamr_coordinator.domain.revocations import POLL_SECONDS
from streamr_coordinator.security import keyed_hash
from streamr_coordinator.settings import Settings

from .conftest import PEPPER
from .support import PASSWORD, Account, Api


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


def test_a_remembered_node_token_is_refused_within_a_read_of_the_revocations(
    api: Api, settings: Settings
) -> None:
    """Another instance remembers the node token from its beats (`domain.beats`: they ask
    neither PostgreSQL nor Redis); once the node is deleted at the first instance, the other
    refuses its beats within its next read of the revocations, though it still remembers the
    token, and from then on."""
    friend = api.account("friend")
    node = api.node(friend, "remembered")
    node_auth = {"Authorization": f"Bearer {node['node_token']}"}
    token_hash = keyed_hash(PEPPER, node["node_token"])
    with TestClient(create_app(settings)) as other:
        ctx: AppContext = other.app.state.ctx
        assert other.post("/api/v1/node/heartbeat", headers=node_auth).status_code == 200
        assert ctx.beats.recall(token_hash, time.time()) is not None
        deleted = api.client.delete(f"/api/v1/nodes/{node['id']}", headers=friend.auth)
        assert deleted.status_code == 204
        revoked_at = time.monotonic()
        assert api.client.post("/api/v1/node/heartbeat", headers=node_auth).status_code == 401
        while (beat := other.post("/api/v1/node/heartbeat", headers=node_auth)).status_code == 200:
            assert time.monotonic() - revoked_at < POLL_SECONDS + 1, "still beating"
            time.sleep(0.02)
        assert beat.status_code == 401, beat.text
        assert ctx.beats.recall(token_hash, time.time()) is not None  # refused all the same
        for _ in range(10):
            assert other.post("/api/v1/node/heartbeat", headers=node_auth).status_code == 401


SETUP_COMMAND_TOKEN = re.compile(r"STREAMR_FRIEND_TOKEN=(stu_[\w-]{43}) ")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _setup_token(api: Api, friend: Account) -> str:
    """What a friend gets from the friend page's "setup token" button (signed in with a form;
    the client keeps the session cookie until it is cleared)."""
    browser = api.client
    form = browser.get("/signin")
    signed_in = browser.post(
        "/signin",
        data={
            "csrf_token": CSRF.search(form.text).group(1),
            "username": friend.username,
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert signed_in.status_code == 303, signed_in.text
    page = browser.get("/friend")
    answer = browser.post("/friend/setup-token", data={"csrf_token": CSRF.search(page.text)[1]})
    assert answer.status_code == 200, answer.text
    return SETUP_COMMAND_TOKEN.search(answer.text).group(1)


def test_the_setup_token_registers_a_node_and_does_nothing_else(api: Api) -> None:
    friend = api.account("friend")
    setup = {"Authorization": f"Bearer {_setup_token(api, friend)}"}
    registered = api.client.post(
        "/api/v1/nodes", json={"name": "new-box", "capacity_viewers": 5}, headers=setup
    )
    assert registered.status_code == 201, registered.text
    node = registered.json()
    for method, path in (
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/nodes"),
        ("GET", "/api/v1/earnings"),
        ("DELETE", f"/api/v1/nodes/{node['id']}"),
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/node/heartbeat"),
        ("POST", "/api/v1/node/token"),
    ):
        refused = api.client.request(method, path, headers=setup)
        assert refused.status_code == 403, (method, path, refused.text)
    # Nor does it open the friend's pages as a session cookie.
    api.client.cookies.clear()
    api.client.cookies.set("streamr_session", setup["Authorization"].removeprefix("Bearer "))
    page = api.client.get("/friend", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/signin")
    # The node's own token, from the registration, works as before.
    beat = api.client.post(
        "/api/v1/node/heartbeat", headers={"Authorization": f"Bearer {node['node_token']}"}
    )
    assert beat.status_code == 200

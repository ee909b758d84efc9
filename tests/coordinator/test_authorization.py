"""The authorization matrix: every route by every kind of caller → the expected status, and no
response ever carries another user's stream key or token."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from streamr_coordinator.app import create_app

from .support import PASSWORD, Account, Api, hook_auth, srs_event

CALLERS = ("anonymous", "owner", "other_streamer", "friend", "admin", "node")
_names = itertools.count()

# Per route: who owns the path's resource ("streamer" or "friend"), the expected status per
# caller, and a body. Statuses: 401 no/invalid credentials, 403 wrong kind of caller,
# 404 someone else's resource (not confirmed to exist).
PUBLIC = dict.fromkeys(CALLERS, 200)
ADMIN_ONLY = {
    "anonymous": 401,
    "owner": 403,
    "other_streamer": 403,
    "friend": 403,
    "admin": 200,
    "node": 403,
}
ANY_PERSON = {
    "anonymous": 401,
    "owner": 200,
    "other_streamer": 200,
    "friend": 200,
    "admin": 200,
    "node": 403,
}
STREAM_OWNER = {
    "anonymous": 401,
    "owner": 200,
    "other_streamer": 404,
    "friend": 403,
    "admin": 200,
    "node": 403,
}
STREAMERS = {
    "anonymous": 401,
    "owner": 200,
    "other_streamer": 200,
    "friend": 403,
    "admin": 403,
    "node": 403,
}
FRIENDS = {
    "anonymous": 401,
    "owner": 200,
    "other_streamer": 403,
    "friend": 200,
    "admin": 403,
    "node": 403,
}
NO_HOOK_SECRET = dict.fromkeys(CALLERS, 401)
NODE_ONLY = {
    "anonymous": 401,
    "owner": 403,
    "other_streamer": 403,
    "friend": 403,
    "admin": 403,
    "node": 200,
}


def _with(base: dict[str, int], **changes: int) -> dict[str, int]:
    return {**base, **changes}


MATRIX: dict[tuple[str, str], tuple[str, dict[str, int]]] = {
    ("GET", "/health"): ("streamer", PUBLIC),
    ("GET", "/ready"): ("streamer", PUBLIC),
    ("GET", "/metrics"): ("streamer", ADMIN_ONLY),
    # Closed to every caller without STREAMR_OPS_TOKEN; with it, only that token (test_activity).
    ("GET", "/api/v1/ops/activity"): ("streamer", dict.fromkeys(CALLERS, 403)),
    ("GET", "/openapi.json"): ("streamer", PUBLIC),
    ("GET", "/docs"): ("streamer", PUBLIC),
    ("GET", "/docs/assets/{name}"): ("streamer", PUBLIC),
    ("POST", "/api/v1/auth/register"): ("streamer", dict.fromkeys(CALLERS, 201)),
    ("POST", "/api/v1/auth/bootstrap-admin"): ("streamer", dict.fromkeys(CALLERS, 403)),
    ("POST", "/api/v1/auth/login"): ("streamer", PUBLIC),
    ("POST", "/api/v1/auth/logout"): (
        "streamer",
        _with(ANY_PERSON, owner=204, other_streamer=204, friend=204, admin=204),
    ),
    ("GET", "/api/v1/auth/me"): ("streamer", ANY_PERSON),
    ("GET", "/api/v1/admin/users"): ("streamer", ADMIN_ONLY),
    ("POST", "/api/v1/admin/users/{user_id}/revoke-tokens"): (
        "streamer",
        _with(ADMIN_ONLY, admin=204),
    ),
    ("POST", "/api/v1/streams"): ("streamer", _with(STREAMERS, owner=201, other_streamer=201)),
    ("GET", "/api/v1/streams"): ("streamer", STREAMERS),
    ("GET", "/api/v1/streams/live"): ("streamer", PUBLIC),
    ("GET", "/api/v1/streams/{stream_id}"): ("streamer", STREAM_OWNER),
    ("PATCH", "/api/v1/streams/{stream_id}"): ("streamer", STREAM_OWNER),
    ("POST", "/api/v1/streams/{stream_id}/rotate-key"): (
        "streamer",
        _with(STREAM_OWNER, admin=403),
    ),
    ("DELETE", "/api/v1/streams/{stream_id}"): (
        "streamer",
        _with(STREAM_OWNER, owner=204, admin=204),
    ),
    ("GET", "/api/v1/admin/streams"): ("streamer", ADMIN_ONLY),
    ("POST", "/api/v1/nodes"): ("friend", _with(FRIENDS, owner=201, friend=201)),
    ("GET", "/api/v1/nodes"): ("friend", FRIENDS),
    ("GET", "/api/v1/admin/nodes"): ("friend", ADMIN_ONLY),
    ("DELETE", "/api/v1/nodes/{node_id}"): (
        "friend",
        _with(FRIENDS, owner=204, friend=404, admin=204),
    ),
    ("POST", "/api/v1/node/heartbeat"): ("friend", NODE_ONLY),
    ("POST", "/api/v1/nodes/{node_id}/reports"): ("friend", NODE_ONLY),
    ("GET", "/api/v1/earnings"): ("friend", FRIENDS),
    ("DELETE", "/api/v1/node"): ("friend", _with(NODE_ONLY, node=204)),
    ("POST", "/api/v1/node/token"): ("friend", NODE_ONLY),
    ("PUT", "/api/v1/nodes/{node_id}/edge"): ("friend", _with(NODE_ONLY, node=204)),
    # Its own node passes; this coordinator has no edge domain, so there is no name to prove.
    ("PUT", "/api/v1/nodes/{node_id}/acme-challenge"): ("friend", _with(NODE_ONLY, node=409)),
    ("DELETE", "/api/v1/nodes/{node_id}/acme-challenge"): ("friend", _with(NODE_ONLY, node=409)),
    ("GET", "/api/v1/play/{stream}"): ("streamer", dict.fromkeys(CALLERS, 404)),  # not live
    ("POST", "/api/v1/invites"): ("streamer", _with(STREAMERS, owner=201, other_streamer=201)),
    ("GET", "/api/v1/invites"): ("streamer", STREAMERS),
    ("DELETE", "/api/v1/invites/{invite_id}"): ("streamer", _with(STREAM_OWNER, admin=403)),
    # Public (an invite's code is the credential); these tests run without a mesh, so no key.
    ("POST", "/api/v1/invites/open"): ("streamer", dict.fromkeys(CALLERS, 503)),
    ("POST", "/api/v1/mesh/origin-key"): ("streamer", NO_HOOK_SECRET),
    ("GET", "/api/v1/streams/{stream_id}/payouts"): ("streamer", STREAM_OWNER),
    ("GET", "/api/v1/admin/payout-periods"): ("streamer", ADMIN_ONLY),
    # A node token is an edge's hook credential (through its relay): origin-only hooks refuse it,
    # on_play refuses a viewer without a ticket, the rest acknowledge. Session tokens are refused.
    **{
        ("POST", f"/hooks/srs/{action}"): ("streamer", _with(NO_HOOK_SECRET, node=node))
        for action, node in (
            ("on_publish", 403),
            ("on_unpublish", 403),
            ("on_play", 403),
            ("on_stop", 200),
            ("on_connect", 200),
            ("on_close", 200),
            ("on_hls", 200),
            ("on_dvr", 200),
            ("heartbeat", 403),
        )
    },
    ("GET", "/hooks/srs/on_hls_notify/{segment}"): ("streamer", _with(NO_HOOK_SECRET, node=200)),
}


@dataclass
class World:
    api: Api
    owner_streamer: Account
    other_streamer: Account
    owner_friend: Account
    other_friend: Account
    admin: Account
    secrets: dict[str, str] = field(default_factory=dict)  # secret -> whose it is

    def fresh_stream(self) -> dict:
        stream = self.api.stream(self.owner_streamer, f"s{next(_names)}")
        self.secrets[stream["stream_key"]] = self.owner_streamer.username
        return stream

    def fresh_node(self) -> dict:
        node = self.api.node(self.owner_friend, f"n{next(_names)}")
        self.secrets[node["node_token"]] = self.owner_friend.username
        return node

    def fresh_invite(self) -> dict:
        response = self.api.client.post(
            "/api/v1/invites", json={}, headers=self.owner_streamer.auth
        )
        assert response.status_code == 201, response.text
        invite = response.json()
        self.secrets[invite["code"]] = self.owner_streamer.username
        return invite

    def fresh_login(self, account: Account) -> Account:
        """A new session token per call, so logout in one cell doesn't affect the next."""
        fresh = Account(
            account.id, account.username, account.role, self.api.login(account.username)
        )
        self.secrets[fresh.token] = account.username
        return fresh


def _world(api: Api) -> World:
    accounts = [api.account(role) for role in ("streamer", "streamer", "friend", "friend", "admin")]
    world = World(api, *accounts)
    for account in accounts:
        world.secrets[account.token] = account.username
    return world


def _request(world: World, method: str, path: str, owner_role: str, caller: str):
    """Send the route's request as `caller`; returns (response, caller's username or None)."""
    node = world.fresh_node()
    stream = world.fresh_stream()
    owner = world.owner_streamer if owner_role == "streamer" else world.owner_friend
    people = {
        "owner": owner,
        "other_streamer": world.other_streamer,
        # On a node route "a friend" is one who does not own the node.
        "friend": world.other_friend if owner_role == "friend" else world.owner_friend,
        "admin": world.admin,
    }
    headers: dict[str, str] = {}
    username = None
    if caller in people:
        account = people[caller]
        if path == "/api/v1/auth/logout":
            account = world.fresh_login(account)
        headers = account.auth
        username = account.username
    elif caller == "node":
        headers = {"Authorization": f"Bearer {node['node_token']}"}
        username = world.owner_friend.username
    victim = world.api.account("friend").id if "{user_id}" in path else None
    invite = world.fresh_invite() if "/invites/" in path else None
    url = path.format(
        stream=stream["name"],
        stream_id=stream["id"],
        node_id=node["id"],
        user_id=victim,
        segment="srs/live/s/s-1.ts",
        name="swagger-ui.css",
        invite_id=invite["id"] if invite else None,
    )
    body = None
    if path == "/api/v1/auth/register":
        body = {"username": f"new{next(_names)}", "password": PASSWORD, "role": "friend"}
    elif path in ("/api/v1/auth/login", "/api/v1/auth/bootstrap-admin"):
        body = {"username": world.owner_streamer.username, "password": PASSWORD}
    elif path == "/api/v1/streams" and method == "POST":
        body = {"name": f"new{next(_names)}"}
    elif path == "/api/v1/nodes" and method == "POST":
        body = {"name": f"new{next(_names)}", "capacity_viewers": 3}
    elif path.endswith("/reports"):
        start = datetime.now(UTC) - timedelta(minutes=5)
        body = {
            "reports": [
                {
                    "stream": stream["name"],
                    "interval_start": start.isoformat(),
                    "interval_end": (start + timedelta(seconds=10)).isoformat(),
                    "bytes_served": 1000,
                    "viewers": 1,
                }
            ]
        }
    elif path == "/api/v1/invites" and method == "POST":
        body = {}
    elif path == "/api/v1/invites/open":
        body = {"code": invite["code"]}
    elif path.endswith("/edge"):
        body = {"play_base_url": "http://100.64.0.9:8080"}
    elif path.endswith("/acme-challenge"):
        body = {"value": "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"}
    elif method == "PATCH":
        body = {"title": "changed"}
    elif path == "/hooks/srs/heartbeat":
        body = {"server": "srs-origin", "service": "s1"}
    elif path.startswith("/hooks/srs/on_") and method == "POST":
        body = srs_event(path.rsplit("/", 1)[1], stream["name"], f"?key={stream['stream_key']}")
    response = world.api.client.request(method, url, json=body, headers=headers)
    return response, username


def _routes(app) -> set[tuple[str, str]]:
    """Every route: the documented ones from the OpenAPI document, plus the docs pages."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    for route in app.routes:
        if hasattr(route, "path"):
            found.update((method, route.path) for method in route.methods if method != "HEAD")
    return found


def test_matrix_covers_every_route(settings) -> None:
    app = create_app(settings)
    assert _routes(app) == set(MATRIX), "add new routes to MATRIX with their expected statuses"


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX), ids=lambda v: str(v))
def test_route_answers_each_caller_as_expected(api: Api, method: str, path: str) -> None:
    owner_role, expected = MATRIX[(method, path)]
    world = _world(api)
    got = {}
    for caller in CALLERS:
        response, username = _request(world, method, path, owner_role, caller)
        got[caller] = response.status_code
        for secret, whose in world.secrets.items():
            if whose != username:
                assert secret not in response.text, f"{caller} saw {whose}'s secret at {path}"
    assert got == expected


def test_revoked_and_made_up_tokens_are_refused(client: TestClient, api: Api) -> None:
    streamer = api.account("streamer")
    api.client.post("/api/v1/auth/logout", headers=streamer.auth)
    for token in (streamer.token, "stu_made-up", ""):
        response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX), ids=lambda v: str(v))
def test_every_route_works_with_redis_down(api: Api, redis_server, method: str, path: str) -> None:
    """Redis is never the only copy of anything: with it stopped, every caller still gets the
    same answer (hooks given their secret, so they do real work)."""
    owner_role, expected = MATRIX[(method, path)]
    world = _world(api)
    redis_server.stop()
    got = {}
    for caller in ("owner", "admin", "node"):
        if path.startswith("/hooks/"):
            response = _hook_with_secret(world, method, path)
            assert response.status_code == 200, response.text
            continue
        response, _ = _request(world, method, path, owner_role, caller)
        got[caller] = response.status_code
    if not path.startswith("/hooks/"):
        assert got == {caller: expected[caller] for caller in got}


def _hook_with_secret(world: World, method: str, path: str):
    stream = world.fresh_stream()
    headers = hook_auth(world.api.hook_secret)
    if method == "GET":
        return world.api.client.get(path.format(segment="srs/live/s/s-1.ts"), headers=headers)
    action = path.rsplit("/", 1)[1]
    body = srs_event(action, stream["name"], f"?key={stream['stream_key']}")
    if action == "heartbeat":
        body = {"server": "srs-origin", "service": "s1"}
    return world.api.client.post(path, json=body, headers=headers)

"""Accounts and tokens: hashed at rest, stable across restarts and replicas, revocable."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
from argon2 import extract_parameters, profiles
from fastapi.testclient import TestClient
from streamr_coordinator import cache as cache_module
from streamr_coordinator import security
from streamr_coordinator.app import create_app

from .conftest import PRODUCTION_PASSWORDS
from .support import PASSWORD, Api


def test_passwords_and_tokens_are_stored_only_as_hashes(api: Api, sql) -> None:
    friend = api.account("friend")
    (stored_password,) = sql("SELECT password_hash FROM users WHERE id = :id", id=friend.id)[0]
    assert stored_password.startswith("$argon2id$")
    assert PASSWORD not in stored_password
    hashes = [row[0] for row in sql("SELECT token_hash FROM api_tokens")]
    assert len(hashes) == 1 and len(hashes[0]) == 32
    assert friend.token.encode() not in hashes[0]


def test_passwords_are_hashed_at_argon2s_recommended_cost(
    api: Api, sql, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coordinator's own hasher (the other tests use a cheap one): argon2id at RFC 9106's
    low-memory profile, 64 MiB, 3 passes, 4 lanes, and a login verifies against it."""
    monkeypatch.setattr(security, "_passwords", PRODUCTION_PASSWORDS)
    friend = api.account("friend")
    (stored_password,) = sql("SELECT password_hash FROM users WHERE id = :id", id=friend.id)[0]
    assert extract_parameters(stored_password) == profiles.RFC_9106_LOW_MEMORY
    assert api.login(friend.username)


def test_token_works_on_a_restarted_instance_and_on_a_replica(api: Api, settings) -> None:
    streamer = api.account("streamer")
    for _ in range(2):  # a restart, then a second replica, each a new process-level app
        with TestClient(create_app(settings)) as other:
            me = other.get("/api/v1/auth/me", headers=streamer.auth)
            assert me.status_code == 200
            assert me.json()["username"] == streamer.username


def test_logout_revokes_the_token_everywhere_at_once(api: Api, settings) -> None:
    streamer = api.account("streamer")
    assert api.client.get("/api/v1/auth/me", headers=streamer.auth).status_code == 200  # cached
    with TestClient(create_app(settings)) as replica:
        assert replica.get("/api/v1/auth/me", headers=streamer.auth).status_code == 200
        assert api.client.post("/api/v1/auth/logout", headers=streamer.auth).status_code == 204
        assert replica.get("/api/v1/auth/me", headers=streamer.auth).status_code == 401
    assert api.client.get("/api/v1/auth/me", headers=streamer.auth).status_code == 401


def test_admin_revokes_a_users_tokens(api: Api) -> None:
    admin, friend = api.account("admin"), api.account("friend")
    node = api.node(friend, "edge-1")
    node_auth = {"Authorization": f"Bearer {node['node_token']}"}
    assert api.client.post("/api/v1/node/heartbeat", headers=node_auth).status_code == 200
    revoked = api.client.post(f"/api/v1/admin/users/{friend.id}/revoke-tokens", headers=admin.auth)
    assert revoked.status_code == 204
    assert api.client.get("/api/v1/auth/me", headers=friend.auth).status_code == 401
    assert api.client.post("/api/v1/node/heartbeat", headers=node_auth).status_code == 401


def test_wrong_password_and_unknown_user_look_the_same(api: Api) -> None:
    friend = api.account("friend")
    wrong = api.client.post(
        "/api/v1/auth/login", json={"username": friend.username, "password": "x" * 12}
    )
    unknown = api.client.post(
        "/api/v1/auth/login", json={"username": "nobody-here", "password": "x" * 12}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "wrong username or password"}


def test_registration_cannot_make_admins_and_names_are_unique(api: Api) -> None:
    body = {"username": "mallory", "password": PASSWORD, "role": "admin"}
    response = api.client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422
    assert "role" in response.json()["detail"]
    api.client.post("/api/v1/auth/register", json={**body, "role": "friend"})
    again = api.client.post("/api/v1/auth/register", json={**body, "role": "streamer"})
    assert again.status_code == 409
    assert again.json() == {"detail": "username already taken"}


def test_first_admin_needs_the_bootstrap_secret_and_only_once(api: Api) -> None:
    body = {"username": "operator", "password": PASSWORD}
    url = "/api/v1/auth/bootstrap-admin"
    assert api.client.post(url, json=body).status_code == 403
    assert api.client.post(url, json=body, headers={"X-Bootstrap-Token": "nope"}).status_code == 403
    headers = {"X-Bootstrap-Token": api.bootstrap_token}
    assert api.client.post(url, json=body, headers=headers).status_code == 201
    second = api.client.post(url, json={**body, "username": "operator2"}, headers=headers)
    assert second.status_code == 409


def test_login_is_rate_limited_per_client_address(settings, monkeypatch) -> None:
    # The limiter counts per fixed minute; a wall clock pinned inside one minute keeps a
    # minute boundary (seen in CI) from resetting the count between the three clients below.
    pinned = SimpleNamespace(time=lambda: 1_800_000_030.0, monotonic=time.monotonic)
    monkeypatch.setattr(cache_module, "time", pinned)
    limited = settings.model_copy(update={"auth_rate_limit_per_minute": 3})
    body = {"username": "someone", "password": "x" * 12}
    with TestClient(create_app(limited)) as client:
        statuses = [client.post("/api/v1/auth/login", json=body).status_code for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
    # Behind the ALB (a trusted proxy) the limit follows the real client address, and a
    # forwarded header from an untrusted peer is ignored.
    with TestClient(create_app(limited), client=("10.0.0.9", 5000)) as behind_alb:
        real_client = {"X-Forwarded-For": "198.51.100.20, 10.0.1.5"}
        answers = [
            behind_alb.post("/api/v1/auth/login", json=body, headers=real_client).status_code
            for _ in range(4)
        ]
        assert answers == [401, 401, 401, 429]
    with TestClient(create_app(limited)) as direct:
        spoofed = {"X-Forwarded-For": "198.51.100.99"}
        assert direct.post("/api/v1/auth/login", json=body, headers=spoofed).status_code == 429


def test_invalid_input_names_the_field(api: Api) -> None:
    response = api.client.post(
        "/api/v1/auth/register", json={"username": "A!", "password": "short", "role": "friend"}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "body.username" in detail and "body.password" in detail


def _login_with(api: Api, body: str) -> tuple[int, dict]:
    response = api.client.post(
        "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    return response.status_code, response.json()


def test_malformed_json_is_named_with_its_line_and_column(api: Api) -> None:
    assert _login_with(api, '{"username": "carol" "password": "x"}') == (
        422,
        {"detail": "request body is not valid JSON: Expecting ',' delimiter at line 1 column 22"},
    )
    for body in ('{\n  "username": "carol",\n  "password": "x",\n}', "{", "[1, 2", "nul"):
        with pytest.raises(json.JSONDecodeError) as parsed:
            json.loads(body)
        where = f"at line {parsed.value.lineno} column {parsed.value.colno}"  # Python's own count
        detail = f"request body is not valid JSON: {parsed.value.msg} {where}"
        assert _login_with(api, body) == (422, {"detail": detail}), body
    assert _login_with(api, "") == (422, {"detail": "request body is missing: send a JSON object"})

"""Bad input is refused with a 422 naming it, never a 500: text PostgreSQL cannot hold (NUL,
invalid Unicode), numbers beyond what it holds, bodies that are not even text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .support import Api, srs_event

INT64_MAX = 2**63 - 1
TOO_BIG = [INT64_MAX + 1, 10**30, 0, -1]


def _refused(response, *words: str) -> None:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    for word in words:
        assert word in detail, detail


def _send(api: Api, path: str, body: dict[str, Any], method: str = "POST", **options):
    """JSON with `\\u` escapes (what json.dumps writes), so a lone surrogate can be sent."""
    headers = {"Content-Type": "application/json", **options.pop("headers", {})}
    content = json.dumps(body)
    return api.client.request(method, path, content=content, headers=headers, **options)


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800"])
def test_text_the_database_cannot_hold_is_refused_with_422(api: Api, bad: str) -> None:
    streamer = api.account("streamer")
    named = "NUL" if "\x00" in bad else "unicode"
    created = _send(api, "/api/v1/streams", {"name": "bad", "title": bad}, headers=streamer.auth)
    _refused(created, "body.title", named)
    stream = api.stream(streamer, "fine-show")
    path = f"/api/v1/streams/{stream['id']}"
    _refused(_send(api, path, {"title": bad}, "PATCH", headers=streamer.auth), "body.title", named)
    hook = {"headers": {"Authorization": f"Bearer {api.hook_secret}"}}  # as the hook relay sends it
    for field in ("stream", "client_id", "app", "param", "vhost", "server_id"):
        event = {**srs_event("on_publish", "fine-show"), field: bad}
        _refused(_send(api, "/hooks/srs/on_publish", event, **hook), f"body.{field}", named)
    beat = _send(api, "/hooks/srs/heartbeat", {"server": bad, "service": "s1"}, **hook)
    _refused(beat, "body.server", named)
    node = api.node(api.account("friend"), "box")
    item = {
        "stream": bad,
        "interval_start": "2026-01-01T00:00:00Z",
        "interval_end": "2026-01-01T00:00:10Z",
        "bytes_served": 1,
        "viewers": 1,
    }
    report = _send(
        api,
        f"/api/v1/nodes/{node['id']}/reports",
        {"reports": [item]},
        headers={"Authorization": f"Bearer {node['node_token']}"},
    )
    _refused(report, "body.reports.0.stream", named)
    login = _send(api, "/api/v1/auth/login", {"username": bad, "password": "x" * 12})
    _refused(login, "body.username", named)
    register = {"username": "newcomer", "password": bad * 12, "role": "friend"}
    _refused(_send(api, "/api/v1/auth/register", register), "body.password", named)


def test_ids_beyond_the_databases_bigint_are_refused_with_422(api: Api) -> None:
    streamer, admin = api.account("streamer"), api.account("admin")
    node = api.node(api.account("friend"), "box")
    node_auth = {"Authorization": f"Bearer {node['node_token']}"}
    for number in TOO_BIG:
        for method, path, auth, body in (
            ("GET", f"/api/v1/streams/{number}", streamer.auth, None),
            ("PATCH", f"/api/v1/streams/{number}", streamer.auth, {"title": "x"}),
            ("DELETE", f"/api/v1/streams/{number}", streamer.auth, None),
            ("POST", f"/api/v1/streams/{number}/rotate-key", streamer.auth, None),
            ("GET", f"/api/v1/streams/{number}/payouts", admin.auth, None),
            ("DELETE", f"/api/v1/nodes/{number}", admin.auth, None),
            ("PUT", f"/api/v1/nodes/{number}/edge", node_auth, {"play_base_url": "http://x"}),
            ("POST", f"/api/v1/nodes/{number}/reports", node_auth, {"reports": []}),
            ("POST", f"/api/v1/admin/users/{number}/revoke-tokens", admin.auth, None),
        ):
            response = api.client.request(method, path, json=body, headers=auth)
            _refused(response, "path.")
    # The largest id the database holds is an id like any other: simply not found.
    largest = api.client.get(f"/api/v1/streams/{INT64_MAX}", headers=streamer.auth)
    assert largest.status_code == 404


def test_a_body_that_is_not_text_is_invalid_input(api: Api) -> None:
    response = api.client.post(
        "/api/v1/auth/login",
        content=b'{"username": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    _refused(response, "not UTF-8")


def test_a_nul_in_a_form_is_refused(api: Api) -> None:
    """The sign-in form reads the username: a NUL never reaches the database."""
    page = api.client.get("/signin")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = api.client.post(
        "/signin", data={"csrf_token": token, "username": "a\x00b", "password": "x" * 12}
    )
    assert response.status_code == 400, response.text
    assert "NUL" in response.text


def test_the_documented_422_is_what_is_sent(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            invalid = operation["responses"].get("422")
            if invalid is not None:
                schema = invalid["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path)
            unavailable = operation["responses"]["503"]
            assert "Retry-After" in unavailable.get("headers", {}) or path == "/ready"
    assert set(schemas["ErrorOut"]["properties"]) == {"detail"}
    sent = api.client.post("/api/v1/auth/login", content=json.dumps({"username": 1}))
    assert set(sent.json()) == {"detail"}

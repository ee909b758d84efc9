"""Every dashboard route by every kind of caller → the expected status. A new route fails the
coverage test until it is added here. Forms are sent with the caller's own valid CSRF token, so
what is tested is who may do what, not the form check (test_pages_http covers that)."""

from __future__ import annotations

import re

import httpx
import pytest
from streamr_coordinator.web import pages

from .conftest import PASSWORD, Seeded, csrf_of, signed_in

CALLERS = ("anonymous", "bearer", "admin", "streamer", "other_streamer", "friend")
USERS = {"admin": "opsadmin", "streamer": "alice", "other_streamer": "bob", "friend": "carol"}
SIGNED_OUT = {"anonymous": 303, "bearer": 303}  # to /signin: API tokens never open pages


def only(role: str, allowed: int = 200, refused: int = 403) -> dict[str, int]:
    return {
        **SIGNED_OUT,
        **{caller: allowed if caller == role else refused for caller in USERS},
        **({"other_streamer": allowed} if role == "streamer" else {}),
    }


MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/static/{name}"): dict.fromkeys(CALLERS, 200),
    ("GET", "/"): dict.fromkeys(CALLERS, 303),
    ("GET", "/signin"): {**dict.fromkeys(CALLERS, 303), "anonymous": 200, "bearer": 200},
    # Without the sign-in form's own cookie a posted sign-in is refused, whoever sends it.
    ("POST", "/signin"): dict.fromkeys(CALLERS, 403),
    ("POST", "/signout"): dict.fromkeys(CALLERS, 303),
    ("GET", "/operator"): only("admin"),
    ("GET", "/streamer"): only("streamer"),
    ("GET", "/friend"): only("friend"),
    # The stream is the streamer's: another streamer is told it does not exist.
    ("POST", "/streamer/streams/{stream_id}/rotate-key"): {
        **only("streamer"),
        "other_streamer": 404,
    },
    ("POST", "/friend/setup-token"): only("friend"),
}


def test_matrix_covers_every_dashboard_route() -> None:
    routes = {
        (method, route.path)
        for route in pages.router.routes
        for method in route.methods
        if method != "HEAD"
    }
    assert routes == set(MATRIX), "add new dashboard routes to MATRIX with their statuses"


def _client(coordinator: Seeded, caller: str) -> tuple[httpx.Client, str | None]:
    """A client as `caller`, and its CSRF token (from its own home page) when signed in."""
    if caller == "anonymous":
        return httpx.Client(base_url=coordinator.url, timeout=10), None
    if caller == "bearer":
        login = httpx.post(
            coordinator.url + "/api/v1/auth/login",
            json={"username": "alice", "password": PASSWORD},
        )
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        return httpx.Client(base_url=coordinator.url, timeout=10, headers=headers), None
    client, response = signed_in(coordinator, USERS[caller])
    return client, csrf_of(client.get(response.headers["location"]))


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX), ids=str)
def test_route_answers_each_caller_as_expected(coordinator: Seeded, method: str, path: str) -> None:
    stream = coordinator.streams["alice-quiet"]
    url = path.format(name="dashboard.css", stream_id=stream["id"])
    got = {}
    for caller in CALLERS:
        client, csrf = _client(coordinator, caller)
        if method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, data={"csrf_token": csrf or "none", "confirm": "yes"})
        got[caller] = response.status_code
        if response.status_code == 303 and caller in SIGNED_OUT:
            assert response.headers["location"] in ("/signin", "/operator", "/streamer", "/friend")
        if "rotate-key" in path and response.status_code == 200:
            # Keep the seeded key current for the tests that publish with it.
            stream["stream_key"] = re.search(r'id="new-key-value"[^>]*>([^<]+)<', response.text)[1]
    assert got == MATRIX[(method, path)]

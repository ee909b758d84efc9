"""Limits before work: a body over its route's limit is answered 413 before it is read, parsed or
authenticated; the largest legitimate bodies fit; signing in with any wrong password is a 401."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from streamr_coordinator.limits import BODY_LIMITS, DEFAULT_LIMIT, body_limit

from .support import Api

SIGN_IN_LIMIT = body_limit("/api/v1/auth/login")
REPORTS_LIMIT = body_limit("/api/v1/nodes/7/reports")


def chunks(total: int, size: int = 4096) -> Iterator[bytes]:
    """A body without Content-Length (chunked): its size is only known as it arrives."""
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def test_each_route_has_its_limit() -> None:
    assert body_limit("/hooks/srs/on_publish") == 16 * 1024
    assert SIGN_IN_LIMIT == body_limit("/signin") == 8 * 1024
    assert body_limit("/api/v1/streams") == DEFAULT_LIMIT
    assert max(limit for _, limit in BODY_LIMITS) == REPORTS_LIMIT


def test_a_declared_oversized_body_is_refused_before_anything_is_read(api: Api) -> None:
    # 256 MiB announced, nothing of it sent: the answer cannot have waited for the body.
    response = api.client.post(
        "/api/v1/auth/login",
        content=iter([b"{}"]),
        headers={"Content-Length": str(256 * 2**20), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"request body too large: at most {SIGN_IN_LIMIT} bytes on this route"
    }


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/auth/login", "application/json"),
        ("/hooks/srs/on_connect", "application/json"),
        ("/api/v1/streams", "application/json"),
        ("/signin", "application/x-www-form-urlencoded"),
    ],
)
def test_a_chunked_oversized_body_is_cut_off_at_the_limit(
    api: Api, path: str, content_type: str
) -> None:
    limit = body_limit(path)
    response = api.client.post(
        path, content=chunks(limit + 1), headers={"Content-Type": content_type}
    )
    assert response.status_code == 413
    assert str(limit) in response.json()["detail"]


def test_the_largest_report_batch_fits_and_is_judged_on_its_merits(api: Api) -> None:
    """1,000 reports (the schema's maximum) with the longest names and numbers are under the
    limit: without a token the answer is 401, not 413."""
    item = {
        "stream": "s" * 64,
        "interval_start": "2026-11-30T23:59:59.999999+00:00",
        "interval_end": "2026-12-01T00:04:59.999999+00:00",
        "bytes_served": 2**63 - 1,
        "viewers": 2**31 - 1,
    }
    body = json.dumps({"reports": [item] * 1000}, indent=1).encode()
    assert len(body) < REPORTS_LIMIT
    response = api.client.post(
        "/api/v1/nodes/1/reports", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("password", ["short", "x", "a-wrong-password-of-good-length"])
def test_a_wrong_password_of_any_length_is_a_401(api: Api, password: str) -> None:
    account = api.account("streamer")
    for username in (account.username, "No Such User!"):
        response = api.client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 401, response.text

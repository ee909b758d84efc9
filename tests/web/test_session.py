"""The session helpers on their own: HTTPS detection behind proxies, CSRF tokens, form reading."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from starlette.requests import Request
from streamr_coordinator.settings import Settings
from streamr_coordinator.web.session import (
    FormError,
    csrf_matches,
    csrf_token,
    is_https,
    read_form,
)

PEPPER = "session-pepper-0123456789abcdef0123456789"
CTX = SimpleNamespace(
    settings=Settings(
        database_url="postgresql+psycopg://u@db/streamr",
        token_pepper=PEPPER,
        hook_secret="h" * 40,
        trusted_proxies=["10.0.0.0/8"],
    )
)


def request(peer: str, headers: dict[str, str], scheme: str = "http", body: bytes = b""):
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": scheme,
        "path": "/",
        "query_string": b"",
        "server": ("coordinator", 8000),
        "client": (peer, 50000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


@pytest.mark.parametrize(
    ("peer", "headers", "scheme", "expected"),
    [
        ("203.0.113.5", {}, "https", True),  # TLS straight to us
        ("10.0.3.7", {"X-Forwarded-Proto": "https"}, "http", True),  # the ALB said so
        ("203.0.113.5", {"X-Forwarded-Proto": "https"}, "http", False),  # anyone else may lie
        ("10.0.3.7", {"X-Forwarded-Proto": "http"}, "http", False),
        ("10.0.3.7", {}, "http", False),
    ],
)
def test_https_is_believed_only_from_a_trusted_proxy(peer, headers, scheme, expected) -> None:
    assert is_https(request(peer, headers, scheme), CTX) is expected


def test_csrf_tokens_are_per_session_and_keyed() -> None:
    one, two = csrf_token(PEPPER, b"\x01" * 32), csrf_token(PEPPER, b"\x02" * 32)
    assert one != two and len(one) == 64
    assert csrf_token("another-pepper-0123456789abcdef01234", b"\x01" * 32) != one
    assert csrf_matches(one, one) and not csrf_matches(one, two) and not csrf_matches(one, None)


def test_forms_are_read_and_bad_bodies_named() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b"csrf_token=abc&confirm=yes&confirm=again&empty="
    read = asyncio.run(read_form(request("10.0.0.1", form, body=body)))
    assert read == {"csrf_token": "abc", "confirm": "again", "empty": ""}
    with pytest.raises(FormError, match=r"expected a form .* got 'application/json'"):
        asyncio.run(read_form(request("10.0.0.1", {"Content-Type": "application/json"})))
    with pytest.raises(FormError, match="not UTF-8"):
        asyncio.run(read_form(request("10.0.0.1", form, body=b"a=\xff")))

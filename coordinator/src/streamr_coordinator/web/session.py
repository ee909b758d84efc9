"""Browser sessions: the session token in an HttpOnly cookie, and CSRF tokens for every form.

A signed-in form carries an HMAC of the session's token hash (keyed with the pepper), so it is
bound to that session and needs no storage. The sign-in form, before any session exists, uses a
double-submit token: a random value in a cookie that must match the hidden field.
"""

from __future__ import annotations

import hmac
from ipaddress import ip_address
from urllib.parse import parse_qs

from fastapi import Request

from ..context import AppContext
from ..security import keyed_hash, new_secret

SESSION_COOKIE = "streamr_session"
SIGNIN_CSRF_COOKIE = "streamr_signin_csrf"
CSRF_FIELD = "csrf_token"


def csrf_token(pepper: str, token_hash: bytes) -> str:
    """The CSRF token of one session: derivable only with the pepper, different per session."""
    return keyed_hash(pepper, f"csrf:{token_hash.hex()}").hex()


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def new_signin_csrf() -> str:
    return new_secret("sc_")


def is_https(request: Request, ctx: AppContext) -> bool:
    """Whether the browser reached us over HTTPS: directly, or through a trusted proxy (the ALB
    terminates TLS and says so in X-Forwarded-Proto)."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else None
    if peer is None or request.headers.get("x-forwarded-proto", "").lower() != "https":
        return False
    try:
        address = ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in ctx.settings.proxy_networks)


class FormError(ValueError):
    """A form body we refuse to read; the message says why."""


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body as single values (the last of repeats)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError(
            f"expected a form (application/x-www-form-urlencoded), got {content_type!r}"
        )
    body = await request.body()  # its size is bounded by limits.BodyLimitMiddleware
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise FormError("form is not UTF-8") from None
    if any("\x00" in name + "".join(values) for name, values in fields.items()):
        raise FormError("form contains a NUL character")
    return {name: values[-1] for name, values in fields.items()}

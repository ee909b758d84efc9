"""Request body limits, enforced before a body is read, parsed or authenticated.

A body's size is judged from its `Content-Length` before anything is read, and counted as it
arrives otherwise (chunked uploads), so an anonymous caller cannot make the process hold a large
body in memory. Limits are per route: small for sign-in and SRS hooks (a hook body is well under
2 KiB), sized for the largest report batch a node may send.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
# Longest first match wins; the default covers every other JSON and form body.
BODY_LIMITS: tuple[tuple[re.Pattern[str], int], ...] = (
    # 1,000 reports (schemas.ReportBatchIn) of ~250 bytes each, with room for whitespace.
    (re.compile(r"^/api/v1/nodes/[^/]+/reports$"), 512 * KIB),
    (re.compile(r"^/hooks/"), 16 * KIB),
    (re.compile(r"^(/api/v1/auth/|/signin$)"), 8 * KIB),
)
DEFAULT_LIMIT = 64 * KIB


@lru_cache(maxsize=4096)  # the hot paths repeat; ids make the rest many, hence a bound
def body_limit(path: str) -> int:
    return next((limit for pattern, limit in BODY_LIMITS if pattern.match(path)), DEFAULT_LIMIT)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"request body too large: at most {limit} bytes on this route",
    )


class BodyLimitMiddleware:
    """Answer 413 for a body over the route's limit, before the route sees any of it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _answer_413(send, limit)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI lets an HTTPException raised while reading the body through, so
                    # the app's own error handler answers it.
                    raise _too_large(limit)
            return message

        await self.app(scope, counted, send)


async def _answer_413(send: Send, limit: int) -> None:
    detail = _too_large(limit).detail
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status.HTTP_413_CONTENT_TOO_LARGE,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

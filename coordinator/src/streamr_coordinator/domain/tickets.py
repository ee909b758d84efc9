"""Viewer tickets: the proof that a viewer on a friend's edge came through our routing.

`/api/v1/play` puts a ticket in each edge URL's query (`?ticket=...`); SRS hands the query to the
edge's `on_play` hook as `param`, and to the origin's `on_play` when that viewer makes the edge pull
the stream. A ticket names the node, the stream (by id, so a re-created stream of the same name is
another stream), when it expires, and a random nonce that opens at most one viewer session. It is
signed with a key derived from the token pepper, so only the coordinator can make one; checking
it needs no database. Pure functions: time is a parameter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs

VERSION = "t1"
_MAC_BYTES = 16


@dataclass(frozen=True)
class Ticket:
    node_id: int
    stream_id: int
    expires_at: int  # unix seconds
    nonce: str


def signing_key(pepper: str) -> bytes:
    """Its own key, so a ticket's MAC can never be mistaken for a token hash."""
    return hmac.new(pepper.encode(), b"streamr viewer tickets", hashlib.sha256).digest()


def _mac(key: bytes, body: str) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(key: bytes, node_id: int, stream_id: int, now: datetime, lifetime: timedelta) -> str:
    expires = int((now + lifetime).timestamp())
    body = f"{VERSION}.{node_id}.{stream_id}.{expires}.{secrets.token_urlsafe(12)}"
    return f"{body}.{_mac(key, body)}"


def from_param(param: str) -> str | None:
    """The ticket in an SRS hook's `param` (the query string with its `?`), if any."""
    values = parse_qs(param.removeprefix("?")).get("ticket")
    return values[0] if values else None


def read(key: bytes, ticket: str) -> Ticket | None:
    """The ticket's contents if the coordinator signed it (expired or not); None otherwise."""
    body, _, mac = ticket.rpartition(".")
    parts = body.split(".")
    if len(parts) != 5 or parts[0] != VERSION or not hmac.compare_digest(mac, _mac(key, body)):
        return None
    _, node, stream, expires, nonce = parts
    if not (node.isdigit() and stream.isdigit() and expires.isdigit()) or len(nonce) > 32:
        return None
    return Ticket(int(node), int(stream), int(expires), nonce)


def refusal(ticket: Ticket | None, node_id: int, now: datetime) -> str | None:
    """Why a viewer may not open a session on `node_id` with this ticket (None: it may; the
    stream and single use are checked with the session's insert)."""
    if ticket is None:
        return "no valid ticket: get this edge's URL from /api/v1/play/<stream>"
    if ticket.node_id != node_id:
        return "the ticket was issued for another node"
    if ticket.expires_at < now.timestamp():
        return "the ticket has expired: get a new one from /api/v1/play/<stream>"
    return None

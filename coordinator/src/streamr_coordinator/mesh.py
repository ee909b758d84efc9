"""Client for Headscale's REST API (v0.29, `/api/v1`): pre-auth keys for nodes, node removal.

The coordinator mints a tagged, single-use, short-lived pre-auth key when a friend registers a
node, and deletes the mesh node when the friend removes it. Headscale reports most failures as
HTTP 500 with a gRPC status body, "not found" included; this module turns them into `MeshError`
subclasses whose messages say what went wrong, so routes can answer with a clear error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

TAG = re.compile(r"^tag:[a-z0-9][a-z0-9-]*$")
_RETRYABLE_STATUS = frozenset({502, 503, 504})
_FRACTION = re.compile(r"\.(\d+)")


class MeshError(Exception):
    """The mesh (Headscale) could not do what the coordinator asked."""


class MeshAuthError(MeshError):
    """Headscale refused the API key (missing, wrong, expired or rotated away)."""


class MeshNotFound(MeshError):
    """The node, key or user does not exist in Headscale."""


class MeshRejected(MeshError):
    """Headscale understood the request and refused it (bad tag, invalid input)."""


class MeshUnavailable(MeshError):
    """Headscale did not answer usefully after every retry (timeouts, connection errors, 5xx)."""


@dataclass(frozen=True)
class PreAuthKey:
    id: int
    key: str
    tags: tuple[str, ...]
    expiration: datetime
    reusable: bool
    ephemeral: bool


@dataclass(frozen=True)
class MeshNode:
    id: int
    name: str
    ip_addresses: tuple[str, ...]
    tags: tuple[str, ...]
    online: bool
    last_seen: datetime | None
    preauth_key_id: int | None = None  # the key it joined with, if any


class HeadscaleClient:
    """Async Headscale API client; one per process, closed with `aclose()` or `async with`.

    `api_key` is the key, or a function giving the current one: Headscale keys are rotated
    monthly, and each request then carries the key as it is at that moment (None: not issued yet).

    `retries` is how many times a failed attempt is repeated. Key creation is repeated only when
    the request never reached Headscale or Headscale said it is unavailable (502/503/504), so a
    lost response never mints two keys; reads and deletes are also repeated after timeouts.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | Callable[[], str | None],
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError(f"base_url {base_url!r} must be an http(s) URL")
        if isinstance(api_key, str) and not api_key:
            raise ValueError("api_key is empty")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.login_server_url = base_url.rstrip("/")
        self._retries = retries
        self._backoff = backoff
        self._http = httpx.AsyncClient(
            base_url=self.login_server_url,
            headers={"Accept": "application/json"},
            auth=_CurrentKey(api_key if callable(api_key) else lambda: api_key),
            timeout=timeout,
        )

    async def __aenter__(self) -> HeadscaleClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_preauth_key(
        self,
        *,
        tags: Sequence[str],
        expiration: datetime,
        user_id: int | None = None,
        reusable: bool = False,
        ephemeral: bool = False,
    ) -> PreAuthKey:
        """A pre-auth key whose nodes join with `tags` (tagged nodes are owned by their tags).

        `expiration` is always sent: Headscale stores a missing one as already expired.
        `user_id` is optional since Headscale 0.28 (tag-only keys); sent as a string (uint64).
        """
        if not tags:
            raise ValueError("tags must name at least one tag (tag-only keys need a tag)")
        bad = [tag for tag in tags if not TAG.match(tag)]
        if bad:
            raise ValueError(f"tags {bad} must look like 'tag:<lowercase-name>'")
        if expiration.tzinfo is None:
            raise ValueError("expiration must be timezone-aware")
        body: dict[str, Any] = {
            "reusable": reusable,
            "ephemeral": ephemeral,
            "expiration": _format_time(expiration),
            "aclTags": list(tags),
        }
        if user_id is not None:
            body["user"] = str(user_id)
        response, _ = await self._send("POST", "/api/v1/preauthkey", json=body, idempotent=False)
        key = _json(response)["preAuthKey"]
        return PreAuthKey(
            id=int(key["id"]),
            key=key["key"],
            tags=tuple(key.get("aclTags") or ()),
            expiration=_parse_time(key["expiration"]),
            reusable=bool(key.get("reusable", False)),
            ephemeral=bool(key.get("ephemeral", False)),
        )

    async def list_nodes(self) -> list[MeshNode]:
        response, _ = await self._send("GET", "/api/v1/node", idempotent=True)
        return [_node(node) for node in _json(response).get("nodes") or ()]

    async def delete_node(self, node_id: int) -> None:
        """Remove a node from the mesh; MeshNotFound if Headscale never had it."""
        try:
            await self._send("DELETE", f"/api/v1/node/{int(node_id)}", idempotent=True)
        except _NotFoundAfterRetry:
            # An earlier attempt deleted it and its answer was lost: the node is gone, as asked.
            return

    async def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json: dict[str, Any] | None = None,
    ) -> tuple[httpx.Response, int]:
        last_problem = "no attempt made"
        for attempt in range(1, self._retries + 2):
            if attempt > 1:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 2))
            try:
                response = await self._http.request(method, path, json=json)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                last_problem = f"cannot connect ({type(error).__name__})"
                continue
            except httpx.TimeoutException as error:
                if not idempotent:
                    raise MeshUnavailable(
                        f"Headscale {method} {path} timed out ({type(error).__name__}); "
                        "not repeated because it may have taken effect"
                    ) from error
                last_problem = f"timed out ({type(error).__name__})"
                continue
            except httpx.TransportError as error:
                last_problem = f"transport error ({type(error).__name__})"
                continue
            if response.status_code in _RETRYABLE_STATUS:
                last_problem = f"HTTP {response.status_code}"
                continue
            _raise_for_status(method, path, response, retried=attempt > 1)
            return response, attempt
        raise MeshUnavailable(
            f"Headscale {method} {path} failed after {self._retries + 1} attempts: {last_problem}"
        )


class _CurrentKey(httpx.Auth):
    """Bearer authentication with the key as it is when the request is sent."""

    def __init__(self, current: Callable[[], str | None]) -> None:
        self._current = current

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = self._current()
        if not key:
            raise MeshUnavailable(
                "the coordinator has no Headscale API key yet (its host stores the key once "
                "Headscale has issued it)"
            )
        request.headers["Authorization"] = f"Bearer {key}"
        yield request


class _NotFoundAfterRetry(MeshNotFound):
    """Not found on a repeated attempt: the first attempt may have done the job."""


def _raise_for_status(method: str, path: str, response: httpx.Response, *, retried: bool) -> None:
    status = response.status_code
    if status < 400:
        return
    where = f"Headscale {method} {path}"
    if status == 401:
        raise MeshAuthError(f"{where}: API key rejected (401); check the coordinator's key")
    message = _status_message(response)
    if status == 404 or "not found" in message.lower():
        error_type = _NotFoundAfterRetry if retried else MeshNotFound
        raise error_type(f"{where}: not found ({message or status})")
    if status >= 500 and not message:
        raise MeshUnavailable(f"{where}: HTTP {status} without an error message")
    raise MeshRejected(f"{where}: refused with HTTP {status}: {message or response.text[:200]}")


def _status_message(response: httpx.Response) -> str:
    """The `message` of Headscale's gRPC status body (`{"code": 2, "message": ...}`), or ''."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as error:
        raise MeshUnavailable(f"Headscale answered {response.status_code} with non-JSON") from error
    if not isinstance(body, dict):
        raise MeshUnavailable(f"Headscale answered with a JSON {type(body).__name__}, not object")
    return body


def _node(node: dict[str, Any]) -> MeshNode:
    return MeshNode(
        id=int(node["id"]),
        name=node.get("givenName") or node.get("name", ""),
        ip_addresses=tuple(node.get("ipAddresses") or ()),
        tags=tuple(node.get("tags") or ()),
        online=bool(node.get("online", False)),
        last_seen=_parse_time(node["lastSeen"]) if node.get("lastSeen") else None,
        preauth_key_id=int(node["preAuthKey"]["id"]) if node.get("preAuthKey") else None,
    )


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    """RFC 3339 as Go writes it (up to nanoseconds, `Z`), to an aware datetime."""
    trimmed = _FRACTION.sub(lambda match: "." + match.group(1)[:6].ljust(6, "0"), text, count=1)
    return datetime.fromisoformat(trimmed.replace("Z", "+00:00"))

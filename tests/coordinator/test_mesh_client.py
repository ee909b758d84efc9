"""Contract tests for the Headscale client against a local fake derived from the swagger spec.

No Headscale binary exists here, so a real HTTP server on 127.0.0.1 plays Headscale: it routes by
the spec's paths and methods, checks every request (bearer auth, query parameter names, body field
names and types, uint64-as-string, date-time) against `headscale.swagger.json`, and answers with
bodies it also checks against the spec's response schemas. Any mismatch fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from streamr_coordinator.mesh import (
    HeadscaleClient,
    MeshAuthError,
    MeshNotFound,
    MeshRejected,
    MeshUnavailable,
)

from tests import reference

SPEC = json.loads((reference.HEADSCALE / "headscale.swagger.json").read_text())
API_KEY = "hskey-api-abcdefghijkl-0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_UINT64 = re.compile(r"^\d{1,20}$")


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SPEC["definitions"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def schema_problems(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Where `value` breaks the swagger (2.0) schema: unknown fields, wrong types or formats."""
    schema = _resolve(schema)
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "object" or "properties" in schema:
        if not isinstance(value, dict):
            return [f"{where}: expected object, got {type(value).__name__}"]
        problems = []
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                problems += schema_problems(item, properties[key], f"{where}.{key}")
            elif "additionalProperties" not in schema:
                problems.append(f"{where}.{key}: not in the spec")
        return problems
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected array, got {type(value).__name__}"]
        return [
            p
            for i, v in enumerate(value)
            for p in schema_problems(v, schema["items"], f"{where}[{i}]")
        ]
    if kind == "boolean" and not isinstance(value, bool):
        return [f"{where}: expected boolean, got {value!r}"]
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{where}: expected integer, got {value!r}"]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected string, got {value!r}"]
        if fmt == "uint64" and not _UINT64.match(value):
            return [f"{where}: expected uint64 as a decimal string, got {value!r}"]
        if fmt == "date-time":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return [f"{where}: expected RFC 3339 date-time, got {value!r}"]
    return []


def _operations() -> list[tuple[str, re.Pattern[str], dict[str, Any]]]:
    found = []
    for path, methods in SPEC["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")
        for method, operation in methods.items():
            found.append((method.upper(), pattern, operation))
    return found


OPERATIONS = _operations()


class FakeHeadscale:
    """State and scripted behaviour of the fake; the HTTP handler consults it per request."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.requests: list[tuple[str, str, Any]] = []
        # Per next request: (status or 0 for the real answer, body, delay, whether to act first).
        self.scripted: list[tuple[int, Any, float, bool]] = []
        self.nodes: dict[int, dict[str, Any]] = {}
        self.keys: list[dict[str, Any]] = []
        # The one API key it accepts; `api_key = ...` rotates it (the old one stops working).
        self.api_key = API_KEY
        self._lock = threading.Lock()

    def script(
        self, status: int, body: Any = None, delay: float = 0.0, times: int = 1, act: bool = False
    ) -> None:
        """Answer the next `times` requests with `status` (after doing the work if `act`)."""
        self.scripted.extend([(status, body, delay, act)] * times)

    def add_node(self, node_id: int, name: str, tags: list[str], ip: str) -> None:
        self.nodes[node_id] = {
            "id": str(node_id),
            "name": name,
            "givenName": name,
            "ipAddresses": [ip, "fd7a:115c:a1e0::" + str(node_id)],
            "tags": tags,
            "online": True,
            "lastSeen": "2026-11-25T11:59:58.123456789Z",
            "createdAt": "2026-11-25T10:00:00Z",
            "registerMethod": "REGISTER_METHOD_AUTH_KEY",
        }

    def handle(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> tuple[int, Any]:
        """Validate and answer one request; a scripted delay holds back the answer, not the work."""
        with self._lock:
            delay = self.scripted[0][2] if self.scripted else 0.0
            answer = self._handle(method, raw_path, headers, raw_body)
        time.sleep(delay)
        return answer

    def _handle(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        body = json.loads(raw_body) if raw_body else None
        self.requests.append((method, url.path, body))
        matches = [(op, p.match(url.path)) for m, p, op in OPERATIONS if m == method]
        matches = [(op, match) for op, match in matches if match]
        if not matches:
            self.violations.append(f"{method} {url.path}: no such operation in the spec")
            return 404, {"code": 5, "message": "Not Found"}
        operation, match = matches[0]
        parameters = {p["name"]: p for p in operation.get("parameters", [])}
        for name, value in parse_qsl(url.query):
            spec = parameters.get(name)
            if spec is None or spec["in"] != "query":
                self.violations.append(f"{method} {url.path}: query parameter {name} not in spec")
            else:
                self.violations += schema_problems(value, spec, f"query {name}")
        body_spec = next((p for p in parameters.values() if p["in"] == "body"), None)
        if body_spec is not None:
            if body is None:
                self.violations.append(f"{method} {url.path}: body required by the spec")
            else:
                self.violations += schema_problems(body, body_spec["schema"], "body")
        elif raw_body:
            self.violations.append(f"{method} {url.path}: body sent, spec takes none")
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, "Unauthorized"
        scripted_status, scripted_body, _, act = (
            self.scripted.pop(0) if self.scripted else (0, None, 0.0, False)
        )
        if scripted_status and not act:
            return scripted_status, scripted_body
        status, answer = self._answer(operation["operationId"], match.groupdict(), body)
        if scripted_status:
            return scripted_status, scripted_body
        if status == 200:
            response_schema = operation["responses"]["200"]["schema"]
            self.violations += schema_problems(answer, response_schema, "response")
        return status, answer

    def _answer(self, operation: str, path: dict[str, str], body: Any) -> tuple[int, Any]:
        if operation == "HeadscaleService_CreatePreAuthKey":
            if not body.get("expiration"):
                self.violations.append("preauthkey without expiration is born expired")
            key = {
                "id": str(len(self.keys) + 1),
                "key": f"hskey-auth-{len(self.keys) + 1:012d}-secretpart",
                "reusable": body.get("reusable", False),
                "ephemeral": body.get("ephemeral", False),
                "used": False,
                "expiration": body.get("expiration"),
                "createdAt": "2026-11-25T12:00:00Z",
                "aclTags": body.get("aclTags", []),
            }
            self.keys.append(key)
            return 200, {"preAuthKey": key}
        if operation == "HeadscaleService_ListNodes":
            return 200, {"nodes": list(self.nodes.values())}
        if operation == "HeadscaleService_DeleteNode":
            if self.nodes.pop(int(path["nodeId"]), None) is None:
                # What Headscale 0.29 really answers for an unknown node id.
                return 500, {"code": 2, "message": "node not found", "details": []}
            return 200, {}
        self.violations.append(f"the client called {operation}, which it has no business calling")
        return 501, {"code": 12, "message": "not implemented by the fake"}


def _handler(fake: FakeHeadscale) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, body = fake.handle(
                self.command, self.path, self.headers, self.rfile.read(length)
            )
            payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            kind = "text/plain" if isinstance(body, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(payload)  # the client may have given up (timeout tests)

        do_GET = do_POST = do_DELETE = do_PUT = _serve

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeHeadscale]:
    state = FakeHeadscale()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield state
    server.shutdown()
    server.server_close()
    assert state.violations == []


def client(fake: FakeHeadscale, **options: Any) -> HeadscaleClient:
    settings = {"timeout": 2.0, "retries": 2, "backoff": 0.01, **options}
    return HeadscaleClient(fake.url, API_KEY, **settings)  # type: ignore[attr-defined]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_create_preauth_key_sends_a_tagged_single_use_expiring_key(fake: FakeHeadscale) -> None:
    async def scenario() -> Any:
        async with client(fake) as mesh:
            # What a registering node is told: where to log in, and with which key.
            assert mesh.login_server_url == fake.url  # type: ignore[attr-defined]
            return await mesh.create_preauth_key(
                tags=["tag:friend"], expiration=NOW + timedelta(minutes=15)
            )

    key = run(scenario())
    method, path, body = fake.requests[-1]
    assert (method, path) == ("POST", "/api/v1/preauthkey")
    assert body == {
        "reusable": False,
        "ephemeral": False,
        "expiration": "2026-11-25T12:15:00Z",
        "aclTags": ["tag:friend"],
    }
    assert key.key.startswith("hskey-auth-")
    assert key.tags == ("tag:friend",)
    assert key.expiration == NOW + timedelta(minutes=15)
    assert (key.reusable, key.ephemeral) == (False, False)


def test_user_id_goes_out_as_a_uint64_string(fake: FakeHeadscale) -> None:
    async def scenario() -> None:
        async with client(fake) as mesh:
            await mesh.create_preauth_key(
                tags=["tag:origin"], expiration=NOW, user_id=3, reusable=True
            )

    run(scenario())
    assert fake.requests[-1][2]["user"] == "3"
    assert fake.requests[-1][2]["reusable"] is True


def test_expiration_in_another_zone_is_sent_in_utc(fake: FakeHeadscale) -> None:
    berlin = timezone(timedelta(hours=1))

    async def scenario() -> None:
        async with client(fake) as mesh:
            await mesh.create_preauth_key(
                tags=["tag:friend"], expiration=datetime(2026, 11, 25, 13, 5, tzinfo=berlin)
            )

    run(scenario())
    assert fake.requests[-1][2]["expiration"] == "2026-11-25T12:05:00Z"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tags": []}, "at least one tag"),
        ({"tags": ["friend"]}, "tag:<lowercase-name>"),
        ({"tags": ["tag:Friend"]}, "tag:<lowercase-name>"),
        ({"tags": ["tag:friend"], "expiration": datetime(2026, 11, 25)}, "timezone-aware"),
    ],
)
def test_bad_key_requests_are_refused_before_sending(
    fake: FakeHeadscale, options: dict, message: str
) -> None:
    async def scenario() -> None:
        async with client(fake) as mesh:
            await mesh.create_preauth_key(**{"expiration": NOW, **options})

    with pytest.raises(ValueError, match=re.escape(message)):
        run(scenario())
    assert fake.requests == []


def test_list_nodes_parses_spec_shaped_nodes(fake: FakeHeadscale) -> None:
    fake.add_node(7, "alice-relay", ["tag:friend"], "100.64.0.7")
    fake.add_node(1, "srs-origin", ["tag:origin"], "100.64.0.1")

    async def scenario() -> Any:
        async with client(fake) as mesh:
            return await mesh.list_nodes()

    nodes = {node.id: node for node in run(scenario())}
    assert set(nodes) == {1, 7}
    assert nodes[7].name == "alice-relay"
    assert nodes[7].tags == ("tag:friend",)
    assert nodes[7].ip_addresses[0] == "100.64.0.7"
    assert nodes[7].online is True
    assert nodes[7].last_seen == datetime(2026, 11, 25, 11, 59, 58, 123456, tzinfo=UTC)
    assert fake.requests[-1][:2] == ("GET", "/api/v1/node")


def test_delete_node_removes_it_from_the_mesh(fake: FakeHeadscale) -> None:
    fake.add_node(7, "alice-relay", ["tag:friend"], "100.64.0.7")

    async def scenario() -> None:
        async with client(fake) as mesh:
            await mesh.delete_node(7)
            assert await mesh.list_nodes() == []

    run(scenario())
    assert ("DELETE", "/api/v1/node/7", None) in fake.requests


def test_deleting_an_unknown_node_is_not_found(fake: FakeHeadscale) -> None:
    async def scenario() -> None:
        async with client(fake) as mesh:
            await mesh.delete_node(42)

    with pytest.raises(MeshNotFound, match="node not found"):
        run(scenario())


def test_delete_whose_answer_was_lost_counts_as_done(fake: FakeHeadscale) -> None:
    fake.add_node(7, "alice-relay", ["tag:friend"], "100.64.0.7")
    # First attempt: Headscale deletes the node, then the answer is lost as a 503.
    fake.script(503, {"code": 14, "message": "unavailable"}, act=True)

    async def scenario() -> None:
        async with client(fake) as mesh:
            await mesh.delete_node(7)

    run(scenario())
    assert [r[:2] for r in fake.requests] == [("DELETE", "/api/v1/node/7")] * 2


def test_wrong_api_key_is_an_auth_error(fake: FakeHeadscale) -> None:
    async def scenario() -> None:
        async with HeadscaleClient(fake.url, "hskey-api-wrong") as mesh:  # type: ignore[attr-defined]
            await mesh.list_nodes()

    with pytest.raises(MeshAuthError, match="401"):
        run(scenario())
    assert len(fake.requests) == 1  # never retried


def test_headscale_refusal_is_rejected_with_its_message(fake: FakeHeadscale) -> None:
    fake.script(500, {"code": 2, "message": "tag:unknown is not defined in tagOwners"})

    async def scenario() -> None:
        async with client(fake) as mesh:
            await mesh.create_preauth_key(tags=["tag:unknown"], expiration=NOW)

    with pytest.raises(MeshRejected, match="not defined in tagOwners"):
        run(scenario())
    assert len(fake.requests) == 1


def test_unavailable_is_retried_then_succeeds(fake: FakeHeadscale) -> None:
    fake.script(503, {"code": 14, "message": "unavailable"}, times=2)

    async def scenario() -> Any:
        async with client(fake, retries=2) as mesh:
            return await mesh.create_preauth_key(tags=["tag:friend"], expiration=NOW)

    assert run(scenario()).id == 1
    assert len(fake.requests) == 3
    assert len(fake.keys) == 1


def test_unavailable_after_every_retry(fake: FakeHeadscale) -> None:
    fake.script(502, {"code": 14, "message": "bad gateway"}, times=3)

    async def scenario() -> None:
        async with client(fake, retries=2) as mesh:
            await mesh.list_nodes()

    with pytest.raises(MeshUnavailable, match="after 3 attempts: HTTP 502"):
        run(scenario())


def test_read_timeouts_are_retried_for_reads(fake: FakeHeadscale) -> None:
    fake.script(0, delay=0.5)
    fake.add_node(7, "alice-relay", ["tag:friend"], "100.64.0.7")

    async def scenario() -> Any:
        async with client(fake, timeout=0.2, retries=1) as mesh:
            return await mesh.list_nodes()

    assert [node.id for node in run(scenario())] == [7]
    assert len(fake.requests) == 2


def test_key_creation_is_not_repeated_after_a_read_timeout(fake: FakeHeadscale) -> None:
    fake.script(0, delay=0.5)

    async def scenario() -> None:
        async with client(fake, timeout=0.2, retries=2) as mesh:
            await mesh.create_preauth_key(tags=["tag:friend"], expiration=NOW)

    with pytest.raises(MeshUnavailable, match="not repeated"):
        run(scenario())
    time.sleep(0.4)  # let the slow request finish inside the fake
    assert len(fake.requests) == 1


def test_unreachable_headscale_is_unavailable() -> None:
    async def scenario() -> None:
        async with HeadscaleClient(
            "http://127.0.0.1:9", API_KEY, timeout=0.5, retries=1, backoff=0.01
        ) as mesh:
            await mesh.create_preauth_key(tags=["tag:friend"], expiration=NOW)

    with pytest.raises(MeshUnavailable, match="cannot connect"):
        run(scenario())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("headscale.example.org", API_KEY), "http(s) URL"),
        (("https://headscale.example.org", ""), "api_key is empty"),
    ],
)
def test_bad_client_settings_are_named(arguments: tuple[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        HeadscaleClient(*arguments)


def test_the_fake_catches_requests_that_break_the_spec(fake: FakeHeadscale) -> None:
    """The contract check is not vacuous: wrong names, types and paths are all reported."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    url = fake.url  # type: ignore[attr-defined]
    httpx.post(f"{url}/api/v1/preauthkey", headers=headers, json={"user": 3, "tags": ["x"]})
    httpx.post(f"{url}/api/v1/preauthkey", headers=headers, json={"expiration": "tomorrow"})
    httpx.get(f"{url}/api/v1/node?userId=1", headers=headers)
    httpx.post(f"{url}/api/v1/preauthkeys", headers=headers, json={})
    found = list(fake.violations)
    fake.violations.clear()
    assert any("body.user: expected string, got 3" in v for v in found)
    assert any("body.tags: not in the spec" in v for v in found)
    assert any("preauthkey without expiration" in v for v in found)
    assert any("body.expiration: expected RFC 3339" in v for v in found)
    assert any("query parameter userId not in spec" in v for v in found)
    assert any("/api/v1/preauthkeys: no such operation" in v for v in found)

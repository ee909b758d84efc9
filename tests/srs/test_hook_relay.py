"""The hook relay as a process (plain python3) between a client standing in for SRS and a loopback
HTTP server standing in for the coordinator: what reaches the coordinator, what SRS gets back, what
the relay logs. The relay in front of the real coordinator: tests/node/test_end_to_end.py and the
real-SRS recordings (tests/srs/test_logs_hold_no_secret.py)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from scripts.record_srs import PLAIN_PYTHON, RELAY, HookRelay

SECRET = "relay-test-hook-secret-0123456789"
BODY = {"action": "on_publish", "stream": "show", "param": "?key=a-stream-key"}


class Upstream:
    """Answers each hook with the status and body a test sets; keeps what it was sent."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.status, self.answer = 200, b'{"code": 0}'
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                upstream.calls.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                self.send_response(upstream.status)
                self.send_header("Content-Length", str(len(upstream.answer)))
                self.end_headers()
                self.wfile.write(upstream.answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def credential(tmp_path: Path) -> Path:
    path = tmp_path / "hook-credential"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def relay(upstream: Upstream, credential: Path, tmp_path: Path) -> Iterator[HookRelay]:
    process = HookRelay(upstream.url + "/", credential, tmp_path / "relay.log")
    yield process
    process.stop()


def test_a_hook_reaches_the_coordinator_with_the_secret_in_a_header_only(
    relay: HookRelay, upstream: Upstream
) -> None:
    answer = httpx.post(f"{relay.url}/hooks/srs/on_publish", json=BODY)
    assert (answer.status_code, answer.json()) == (200, {"code": 0})
    (call,) = upstream.calls
    assert call["path"] == "/hooks/srs/on_publish"
    assert call["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert call["headers"]["Content-Type"] == "application/json"
    assert call["body"] == BODY
    log = relay.log()
    assert "on_publish -> 200 in" in log
    assert SECRET not in log and "a-stream-key" not in log


def test_a_denial_reaches_srs_as_the_coordinator_gave_it(
    relay: HookRelay, upstream: Upstream
) -> None:
    upstream.status, upstream.answer = 403, b'{"code": 403, "detail": "stream key is not valid"}'
    answer = httpx.post(f"{relay.url}/hooks/srs/on_publish", json=BODY)
    assert answer.status_code == 403
    assert answer.json() == {"code": 403, "detail": "stream key is not valid"}
    assert "on_publish -> 403 in" in relay.log()


def test_a_rotated_credential_is_used_without_a_restart(
    relay: HookRelay, upstream: Upstream, credential: Path
) -> None:
    credential.write_text("the-rotated-secret\n")
    httpx.post(f"{relay.url}/hooks/srs/on_stop", json=BODY)
    assert upstream.calls[-1]["headers"]["Authorization"] == "Bearer the-rotated-secret"


def test_a_node_token_is_read_from_node_json_at_each_call(
    upstream: Upstream, tmp_path: Path
) -> None:
    node_json = tmp_path / "node.json"
    node_json.write_text(json.dumps({"id": 7, "node_token": "stn_first"}))
    relay = HookRelay(upstream.url, node_json, tmp_path / "relay.log", key="node_token")
    try:
        httpx.post(f"{relay.url}/hooks/srs/on_play", json=BODY)
        node_json.write_text(json.dumps({"id": 7, "node_token": "stn_renewed"}))
        httpx.post(f"{relay.url}/hooks/srs/on_stop", json=BODY)
    finally:
        relay.stop()
    tokens = [call["headers"]["Authorization"] for call in upstream.calls]
    assert tokens == ["Bearer stn_first", "Bearer stn_renewed"]


def test_the_coordinator_out_of_reach_is_a_denial_for_srs(credential: Path, tmp_path: Path) -> None:
    gone = Upstream()
    gone.close()  # nothing listens there any more
    relay = HookRelay(gone.url, credential, tmp_path / "relay.log")
    try:
        answer = httpx.post(f"{relay.url}/hooks/srs/on_play", json=BODY)
    finally:
        relay.stop()
    assert answer.status_code == 502
    assert answer.json() == {"code": 502, "detail": "coordinator unreachable"}
    assert "coordinator unreachable: URLError" in relay.log()


def test_a_lost_credential_file_is_a_denial_for_srs(
    relay: HookRelay, upstream: Upstream, credential: Path
) -> None:
    credential.unlink()
    answer = httpx.post(f"{relay.url}/hooks/srs/on_play", json=BODY)
    assert (answer.status_code, answer.json()["detail"]) == (502, "the relay has no credential")
    assert upstream.calls == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/hooks/srs/on_play?secret=x", 404),  # no query passes the relay
        ("POST", "/api/v1/mesh/origin-key", 404),  # only hooks get the credential
        ("POST", "/hooks/srs/../api/v1/streams", 404),
        ("GET", "/hooks/srs/on_play", 405),
    ],
)
def test_only_hook_posts_are_forwarded(
    relay: HookRelay, upstream: Upstream, method: str, path: str, status: int
) -> None:
    answer = httpx.request(method, f"{relay.url}{path}", json=BODY)
    assert answer.status_code == status
    assert upstream.calls == []


def test_an_oversized_or_empty_body_is_refused(relay: HookRelay, upstream: Upstream) -> None:
    assert httpx.post(f"{relay.url}/hooks/srs/on_play", content=b"").status_code == 413
    big = httpx.post(f"{relay.url}/hooks/srs/on_play", content=b"x" * (64 * 1024 + 1))
    assert big.status_code == 413
    assert upstream.calls == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--listen", "0.0.0.0:1990"], "--listen '0.0.0.0:1990' must be an IPv4 loopback"),
        (["--listen", "127.0.0.1:http"], "must be an IPv4 loopback address and port"),
        (["--coordinator", "ftp://x"], "--coordinator 'ftp://x' must be an http(s) URL"),
        (["--credential-file", "/nonexistent/credential"], "No such file"),
        (["--credential-key", "node_token"], "must hold a JSON object with a 'node_token'"),
    ],
)
def test_bad_settings_stop_the_relay_with_a_reason(
    credential: Path, arguments: list[str], message: str
) -> None:
    defaults = {
        "--listen": "127.0.0.1:1990",
        "--coordinator": "http://127.0.0.1:9",
        "--credential-file": str(credential),
    }
    given = dict(zip(arguments[::2], arguments[1::2], strict=True))
    command = [PLAIN_PYTHON, str(RELAY)]
    for name, value in {**defaults, **given}.items():
        command += [name, value]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert SECRET not in result.stderr

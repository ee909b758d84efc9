"""Stand-ins the ops tests share: the SRS origin's RTMP port (replaying a real SRS recording),
GitHub's REST API for workflow dispatches and the coordinator's activity endpoint (real HTTP
servers)."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ops.idle import ACTIVITY_PATH
from ops.rtmp_probe import (
    COMMAND_AMF0,
    HANDSHAKE_SIZE,
    Readiness,
    amf_number,
    amf_object,
    amf_string,
    probe,
)

SRS_RECORDING = Path(__file__).resolve().parent.parent / "fixtures" / "srs" / "rtmp-connect"
RECORDED_HANDSHAKE = (SRS_RECORDING / "handshake.bin").read_bytes()
RECORDED_ANSWER = (SRS_RECORDING / "connect-answer.bin").read_bytes()
OPS_TOKEN = "ops-token-for-tests-0123456789abcdef"
# Wednesday 2026-11-25 13:00 in Amsterdam: inside the dev schedule's running window.
DAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Origin:
    """The SRS origin's RTMP port: a real loopback listener, closed until opened, that replays what
    real SRS 6 answered to the readiness probe (tests/fixtures/srs/rtmp-connect, recorded by
    scripts/record_rtmp_connect.py). `handshake` and `answer` replace those bytes for the failure
    cases; a `handshake` of None says nothing at all; `hang_up` closes after the answer. `heard`
    keeps what each client sent up to its connect."""

    def __init__(
        self,
        handshake: bytes | None = RECORDED_HANDSHAKE,
        answer: bytes = RECORDED_ANSWER,
        hang_up: bool = False,
    ) -> None:
        self.handshake, self.answer, self.hang_up = handshake, answer, hang_up
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener: socket.socket | None = None
        self.heard: list[bytes] = []

    def open(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._serve, args=(self.listener,), daemon=True).start()

    def readiness(self, host: str, timeout: float = 1.0) -> Readiness:
        return probe(host, self.port, timeout=timeout)

    def close(self) -> None:
        if self.listener is not None:
            self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._replay, args=(connection,), daemon=True).start()

    def _replay(self, connection: socket.socket) -> None:
        heard = b""
        with connection:
            connection.settimeout(5)
            try:
                heard += _read_exactly(connection, 1 + HANDSHAKE_SIZE)
                if self.handshake is not None:
                    connection.sendall(self.handshake)
                    if len(self.handshake) != 1 + 2 * HANDSHAKE_SIZE:
                        return  # not an RTMP server: it said its piece and hangs up
                    heard += _read_exactly(connection, HANDSHAKE_SIZE + 12)
                    length = int.from_bytes(heard[-8:-5], "big")  # the connect's chunk header
                    heard += _read_exactly(connection, length + (length - 1) // 128)
                    self.heard.append(heard)  # before the answer: the client has all it sent
                    connection.sendall(self.answer)
                while not self.hang_up and connection.recv(65536):
                    pass
            except OSError:
                pass


def command_answer(name: str, code: str) -> bytes:
    """An answer to the `connect` (transaction 1) as SRS shapes one: `name`, null, {level, code}."""
    body = amf_string(name) + amf_number(1.0) + b"\x05"
    body += amf_object({"level": "error" if name == "_error" else "status", "code": code})
    return (
        b"\x03" + bytes(3) + len(body).to_bytes(3, "big") + bytes([COMMAND_AMF0]) + bytes(4) + body
    )


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class GithubStandIn:
    """Plays GitHub's REST API for workflow dispatches: records each request, answers 204."""

    def __init__(self, answer: int = 204) -> None:
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                stand_in.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                self.send_response(answer)
                self.end_headers()
                if answer != 204:
                    self.wfile.write(b'{"message": "Bad credentials"}')

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Coordinator:
    """A stand-in for the coordinator's activity endpoint and `/ready`, answering what the test
    sets."""

    def __init__(self) -> None:
        self.body: Any = {"live_streams": 0, "viewers": 0, "last_activity": DAY.isoformat()}
        self.ready_status = 200
        self.requests: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/ready":
                    ok = owner.ready_status == 200
                    answer = json.dumps({"status": "ok" if ok else "failed"}).encode()
                    self.send_response(owner.ready_status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                owner.requests.append(self.headers.get("Authorization"))
                if self.path != ACTIVITY_PATH:
                    self.send_error(404)
                    return
                if self.headers.get("Authorization") != f"Bearer {OPS_TOKEN}":
                    self.send_error(401)
                    return
                payload = json.dumps(owner.body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def report(self, live: int = 0, viewers: int = 0, idle_minutes: float = 0, now=DAY) -> None:
        last = now - timedelta(minutes=idle_minutes)
        self.body = {"live_streams": live, "viewers": viewers, "last_activity": last.isoformat()}

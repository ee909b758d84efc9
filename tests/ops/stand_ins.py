"""Stand-ins the ops tests share: the SRS origin's RTMP port (a real TCP listener), GitHub's REST
API for workflow dispatches and the coordinator's activity endpoint (real HTTP servers)."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ops.idle import ACTIVITY_PATH
from ops.wake_handler import tcp_accepts

OPS_TOKEN = "ops-token-for-tests-0123456789abcdef"
# Wednesday 2026-11-25 13:00 in Amsterdam: inside the dev schedule's running window.
DAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Origin:
    """A real TCP listener standing in for the SRS origin's RTMP port, opened when asked."""

    def __init__(self) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener: socket.socket | None = None

    def open(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))

    def accepting(self, host: str) -> bool:
        return tcp_accepts(host, self.port, timeout=1.0)

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()


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
    """A stand-in for the coordinator's activity endpoint, answering what the test sets."""

    def __init__(self) -> None:
        self.body: Any = {"live_streams": 0, "viewers": 0, "last_activity": DAY.isoformat()}
        self.requests: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
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

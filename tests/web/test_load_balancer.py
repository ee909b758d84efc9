"""devenv/load_balancer.py behaves as the ALB's HTTPS listener does where the origin's media
depends on it: path patterns as AWS matches them, the client's Host kept, X-Forwarded-* added,
a response without an end passed on as it comes, 502 for a target that is not there."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from devenv import load_balancer, services
from srs.render import PLAY_PATHS


def matches(path: str) -> bool:
    return load_balancer.Rule(PLAY_PATHS, "http://127.0.0.1:1").matches(path)


@pytest.mark.parametrize(
    ("path", "forwarded"),
    [
        ("/live/show.m3u8", True),
        ("/live/show-12.ts", True),
        ("/live/show.flv", True),
        ("/live/a/b.ts", True),  # `*` crosses `/`, as on the ALB
        ("/LIVE/show.m3u8", False),  # case-sensitive
        ("/live/show.m3u8x", False),
        ("/live/", False),
        ("/watch/show", False),
        ("/api/v1/versions", False),
    ],
)
def test_path_patterns_match_as_the_alb_matches_them(path: str, forwarded: bool) -> None:
    assert matches(path) is forwarded
    assert load_balancer.path_pattern("/a?c").fullmatch("/abc")
    assert not load_balancer.path_pattern("/a?c").fullmatch("/abbc")
    assert load_balancer.path_pattern("/a.c").fullmatch("/abc") is None  # `.` is literal


class _Echo(BaseHTTPRequestHandler):
    """Answers with what it was sent; `/stream` sends a chunk, waits to be released, sends more."""

    protocol_version = "HTTP/1.1"
    released = threading.Event()
    waited: ClassVar[list[bool]] = []

    def do_GET(self) -> None:
        if self.path == "/live/stream.flv":
            self.send_response(200)
            self.send_header("Content-Type", "video/x-flv")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"first")
            self.wfile.flush()
            # Only once the client has the first chunk: a proxy that waits for the end would
            # keep it from the client, and this would time out instead.
            self.waited.append(self.released.wait(timeout=20))
            self.wfile.write(b"-second")
            return
        body = json.dumps(
            {
                "path": self.path,
                "host": self.headers["Host"],
                "forwarded_for": self.headers["X-Forwarded-For"],
                "proto": self.headers["X-Forwarded-Proto"],
                "port": self.headers["X-Forwarded-Port"],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@contextlib.contextmanager
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def front() -> Iterator[tuple[load_balancer.LoadBalancer, str, str]]:
    with echo() as media, echo() as default:
        rules = [load_balancer.Rule(PLAY_PATHS, media)]
        with load_balancer.running(rules, default) as balancer:
            yield balancer, media, default


def test_the_clients_host_is_kept_and_forwarded_headers_are_added(front) -> None:
    balancer, media, default = front
    headers = {"Host": "stream.example.org", "X-Forwarded-For": "198.51.100.23"}
    with httpx.Client(verify=False, headers=headers) as client:  # noqa: S501 - self-signed
        seen = client.get(f"{balancer.url}/live/show.m3u8?hls_ctx=abc").json()
        other = client.get(f"{balancer.url}/watch/show").json()
    port = balancer.url.rsplit(":", 1)[1]
    assert seen == {
        "path": "/live/show.m3u8?hls_ctx=abc",  # the query travels, the rule ignored it
        "host": "stream.example.org",
        "forwarded_for": "198.51.100.23, 127.0.0.1",  # appended, as the ALB does by default
        "proto": "https",
        "port": port,
    }
    assert other["path"] == "/watch/show"
    assert balancer.forwarded == [("/live/show.m3u8", media), ("/watch/show", default)]


def test_a_response_without_an_end_is_passed_on_as_it_comes(front) -> None:
    balancer, _, _ = front
    _Echo.released.clear()
    _Echo.waited.clear()
    with (
        httpx.Client(verify=False) as client,  # noqa: S501 - self-signed
        client.stream("GET", f"{balancer.url}/live/stream.flv") as response,
    ):
        chunks = response.iter_bytes()
        first = next(chunks)
        _Echo.released.set()
        rest = b"".join(chunks)
    assert first + rest == b"first-second"
    assert first.startswith(b"first")
    assert _Echo.waited == [True]  # the target was released by the client, not by its timeout


def test_a_target_that_is_not_there_is_a_bad_gateway() -> None:
    nobody = f"http://127.0.0.1:{services.free_port()}"
    with load_balancer.running([], nobody) as balancer:
        answer = httpx.get(f"{balancer.url}/anything", verify=False)  # noqa: S501
    assert answer.status_code == 502

"""Real media for the watch page's browser tests: recordings made with ffmpeg (H.264 + AAC, as OBS
sends), a friend's edge that serves HTTP-FLV at the pace of the recording's own timestamps and
lets a viewer in only as SRS would (its `on_play` hook with the ticket from the viewer's URL),
and an origin serving HLS. Both send CORS headers, as SRS does with `crossdomain on`."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

# The stream the watch tests play; the origin's HLS recording is named after it.
STREAM = "garden-cam"
FLV_HEADER_BYTES = 9 + 4  # the header and PreviousTagSize0
# A live edge sends what it holds at once (SRS's GOP cache), then keeps pace with the stream.
BURST_SECONDS = 1.0


def _ffmpeg(*arguments: str) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is missing: run `make system-deps`", False)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *arguments],
        check=True,
        timeout=300,
    )


def _test_signal(pattern: str, seconds: int) -> list[str]:
    """A moving picture and a tone, encoded like a streamer's OBS (H.264 + AAC, 1 s GOP)."""
    return [
        "-f", "lavfi", "-i", f"{pattern}=size=320x180:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
        "-c:a", "aac", "-b:a", "64k",
    ]  # fmt: skip


def flv_recording(directory: Path, seconds: int = 90) -> Path:
    path = directory / "edge.flv"
    _ffmpeg(*_test_signal("testsrc2", seconds), "-f", "flv", str(path))
    return path


def hls_recording(directory: Path, stream: str, seconds: int = 90) -> Path:
    """`<directory>/live/<stream>.m3u8` and its segments: a different picture from the edge's."""
    live = directory / "live"
    live.mkdir(parents=True)
    _ffmpeg(
        *_test_signal("smptebars", seconds),
        "-f", "hls", "-hls_time", "2", "-hls_list_size", "0",
        "-hls_segment_filename", str(live / f"{stream}-%d.ts"),
        str(live / f"{stream}.m3u8"),
    )  # fmt: skip
    return directory


@dataclass(frozen=True)
class Recordings:
    """What the edge and the origin serve: made once per session (ffmpeg takes seconds each),
    only read by the tests."""

    flv: bytes  # the edge's stream
    origin_root: Path  # the origin's `live/STREAM.m3u8` and segments


def flv_tags(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(timestamp in ms, the tag with its trailing PreviousTagSize) for each FLV tag."""
    position = FLV_HEADER_BYTES
    while position + 11 <= len(data):
        size = int.from_bytes(data[position + 1 : position + 4], "big")
        low = int.from_bytes(data[position + 4 : position + 7], "big")
        timestamp = low | data[position + 7] << 24
        end = position + 11 + size + 4
        yield timestamp, data[position:end]
        position = end


@dataclass
class Edge:
    """A friend's edge for one node: who asked for what, and how it behaves."""

    coordinator: str
    node_token: str
    recording: bytes
    # Stop sending (but keep the connection open) after this many seconds of video: a stall.
    stall_after: float | None = None
    tickets: list[str] = field(default_factory=list)
    probes: int = 0
    url: str = ""

    def allow(self, stream: str, param: str, client: str) -> bool:
        """What SRS does before it serves a viewer: ask the coordinator with the viewer's query."""
        body = {
            "server_id": "edge-under-test",
            "service_id": "e1",
            "action": "on_play",
            "client_id": client,
            "ip": "127.0.0.1",
            "vhost": "__defaultVhost__",
            "app": "live",
            "stream": stream,
            "param": param,
        }
        answer = httpx.post(
            f"{self.coordinator}/hooks/srs/on_play",
            json=body,
            headers={"Authorization": f"Bearer {self.node_token}"},
            timeout=5,
        )
        return answer.status_code == 200

    def serve_flv(self, write) -> None:
        started = time.monotonic()
        write(self.recording[:FLV_HEADER_BYTES])
        for timestamp, tag in flv_tags(self.recording):
            seconds = timestamp / 1000
            if self.stall_after is not None and seconds > self.stall_after:
                time.sleep(30)  # connection open, nothing arrives: what a stalled relay looks like
                return
            delay = started + seconds - BURST_SECONDS - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            write(tag)


def _cors_headers(handler: BaseHTTPRequestHandler) -> None:
    handler.send_header("Access-Control-Allow-Origin", "*")
    handler.send_header("Cache-Control", "no-store")


def _edge_handler(edge: Edge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/":
                edge.probes += 1
                self._plain(200, b"SRS edge")
                return
            if not (url.path.startswith("/live/") and url.path.endswith(".flv")):
                self._plain(404, b"not found")
                return
            stream = url.path.removeprefix("/live/").removesuffix(".flv")
            ticket = parse_qs(url.query).get("ticket", [""])[0]
            edge.tickets.append(ticket)
            if not edge.allow(stream, f"?{url.query}", f"viewer-{len(edge.tickets)}"):
                self._plain(403, b"the coordinator refused this viewer")
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/x-flv")
            _cors_headers(self)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                edge.serve_flv(self._write)

        def _write(self, chunk: bytes) -> None:
            self.wfile.write(chunk)
            self.wfile.flush()

        def _plain(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            _cors_headers(self)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


def _static_handler(root: Path, requests: list[str]) -> type[BaseHTTPRequestHandler]:
    types = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            requests.append(path)
            file = (root / path.lstrip("/")).resolve()
            if not file.is_relative_to(root) or not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", types.get(file.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(len(body)))
            _cors_headers(self)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def _running(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def running_edge(edge: Edge) -> Iterator[Edge]:
    with _running(_edge_handler(edge)) as url:
        edge.url = url
        yield edge


@contextlib.contextmanager
def running_origin(root: Path, requests: list[str]) -> Iterator[str]:
    with _running(_static_handler(root.resolve(), requests)) as url:
        yield url

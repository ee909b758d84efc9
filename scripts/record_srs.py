#!/usr/bin/env python3
"""Record what a real SRS origin and friend edge do, as fixtures the tests replay without SRS.

Starts an SRS origin (config from `srs/render.py`'s `render_origin`) and a friend edge (from
`render_edge`, pulling from the origin) on loopback, each with its hook relay (`srs/hook_relay.py`,
as the hosts run it), a small HTTP server behind the relays that records every hook call of both
and answers allow, publishes an ffmpeg test pattern by RTMP at a fixed bitrate and runs
the scenario's viewers against the edge (and the origin for HLS). Meanwhile it polls both servers'
`/api/v1/streams/`, `/api/v1/clients/` and `/api/v1/vhosts/` every second.

Written under `<out>/<scenario>/`: `hooks.jsonl` (every hook call: time, server, path with query,
body), `api.jsonl.gz` (every poll: time, server, endpoint, the whole answer), `viewers.json` (what
each viewer did and how many bytes it received), `origin.log.gz`, `edge.log.gz` (SRS's console
logs), `meta.json` (SRS version, ports, timeline). Times are seconds since the scenario started.

    python scripts/record_srs.py --srs /path/to/srs/trunk/objs/srs --out tests/fixtures/srs \
        [--scenario edge-viewers ...]

Needs the SRS binary (built from source, see tests/fixtures/srs/README.md) and ffmpeg.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srs.render import (
    API_PORT,
    HTTP_PORT,
    RTMP_PORT,
    EdgeSettings,
    OriginSettings,
    render_edge,
    render_origin,
)

STREAM = "show"
APP = "live"
RELAY = Path(__file__).resolve().parent.parent / "srs" / "hook_relay.py"
PLAIN_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
# Stand-ins for the credentials the hosts' relays hold.
RECORDED_HOOK_SECRET = "recorded-hook-secret"  # noqa: S105
RECORDED_NODE_TOKEN = "recorded-node-token"  # noqa: S105
ENDPOINTS = ("streams", "clients", "vhosts")
POLL_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Ports:
    rtmp: int
    http: int
    api: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())


def relisten(config: str, ports: Ports, origin_rtmp: int | None = None) -> str:
    """The rendered config on loopback ports of our choosing (two servers share one host here)."""
    rtmp = f"listen              {ports.rtmp};"
    config = re.sub(rf"^listen\s+{RTMP_PORT};", rtmp, config, count=1, flags=re.M)
    config = re.sub(
        rf"listen\s+(127\.0\.0\.1:)?{API_PORT};", f"listen          127.0.0.1:{ports.api};", config
    )
    config = re.sub(rf"listen\s+{HTTP_PORT};", f"listen          {ports.http};", config)
    if origin_rtmp is not None:
        config = re.sub(
            rf"origin\s+(\S+):{RTMP_PORT};", rf"origin          \1:{origin_rtmp};", config
        )
    return config


class HookRelay:
    """`srs/hook_relay.py` as the hosts run it (their own python3, never a virtualenv's), on a
    loopback port of our choosing; `url` is where SRS sends its hooks, `log_path` what it logged."""

    def __init__(
        self, coordinator: str, credential_file: Path, log_path: Path, key: str | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [PLAIN_PYTHON, str(RELAY), "--listen", f"127.0.0.1:{self.port}"]
        command += ["--coordinator", coordinator, "--credential-file", str(credential_file)]
        command += ["--credential-key", key] if key else []
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own relay
                command, stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin"}
            )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"hook relay did not start: {log_path.read_text()}"
                    ) from None
                time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def credential_file(directory: Path, name: str, credential: str) -> Path:
    path = directory / name
    path.write_text(credential + "\n")
    path.chmod(0o600)
    return path


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def now(self) -> float:
        return round(time.monotonic() - self.start, 3)


class HookRecorder:
    """Answers every hook with allow and keeps what it was sent; `/origin/...` and `/edge/...`
    tell the two servers apart (each server's coordinator URL carries its name)."""

    def __init__(self, clock: Clock) -> None:
        self.calls: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                server, _, path = self.path.lstrip("/").partition("/")
                recorder.calls.append(
                    {
                        "t": clock.now(),
                        "server": server,
                        "path": "/" + path,
                        "user_agent": self.headers.get("User-Agent"),
                        "body": json.loads(raw),
                    }
                )
                answer = b'{"code": 0}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Srs:
    def __init__(self, binary: Path, name: str, config: str, ports: Ports, work: Path) -> None:
        self.name = name
        self.ports = ports
        self.directory = work / name
        (self.directory / "objs" / "nginx" / "html").mkdir(parents=True)
        (self.directory / "srs.conf").write_text(config)
        self.log_path = self.directory / "console.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the SRS binary we were given
                [str(binary), "-c", "srs.conf"],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 15
        while True:
            try:
                self.api("summaries")
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log_path.read_text()[-2000:]
                    raise RuntimeError(f"{name} did not start: {tail}") from None
                time.sleep(0.2)

    def api(self, endpoint: str) -> dict:
        url = f"http://127.0.0.1:{self.ports.api}/api/v1/{endpoint}/?start=0&count=1000"
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.load(response)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


class Poller:
    def __init__(self, clock: Clock, servers: list[Srs]) -> None:
        self.clock = clock
        self.servers = servers
        self.polls: list[dict] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        next_poll = time.monotonic()
        while not self.stopping.is_set():
            for server in self.servers:
                for endpoint in ENDPOINTS:
                    t = self.clock.now()
                    try:
                        body = server.api(endpoint)
                    except OSError as error:
                        body = {"error": str(error)}
                    self.polls.append(
                        {"t": t, "server": server.name, "endpoint": endpoint, "body": body}
                    )
            next_poll += POLL_SECONDS
            self.stopping.wait(max(0.0, next_poll - time.monotonic()))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


@dataclass
class Viewer:
    """One viewer: what it played, when, for how long, and how many bytes it received."""

    name: str
    protocol: str  # "flv", "rtmp" or "hls"
    server: str  # "edge" or "origin"
    start: float
    seconds: float
    query: str = ""
    received_bytes: int = 0
    started_at: float = 0.0
    ended_at: float = 0.0
    error: str = ""
    url: str = field(default="")

    def run(self, clock: Clock, ports: dict[str, Ports]) -> None:
        port = ports[self.server]
        self.started_at = clock.now()
        try:
            if self.protocol == "flv":
                self.url = f"http://127.0.0.1:{port.http}/{APP}/{STREAM}.flv{self.query}"
                self._read_http(self.url)
            elif self.protocol == "rtmp":
                self.url = f"rtmp://127.0.0.1:{port.rtmp}/{APP}/{STREAM}{self.query}"
                self._ffmpeg(self.url)
            else:
                self.url = f"http://127.0.0.1:{port.http}/{APP}/{STREAM}.m3u8{self.query}"
                self._ffmpeg(self.url)
        except OSError as error:
            self.error = str(error)
        self.ended_at = clock.now()

    def _read_http(self, url: str) -> None:
        deadline = time.monotonic() + self.seconds
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own SRS
            while time.monotonic() < deadline:
                chunk = response.read1(65536)
                if not chunk:
                    break
                self.received_bytes += len(chunk)

    def _ffmpeg(self, url: str) -> None:
        """ffmpeg plays it into a pipe; we count what it passes on (the remuxed FLV, so close to
        but not exactly the bytes on the wire)."""
        command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", url]
        command += ["-c", "copy", "-f", "flv", "-"]
        process = subprocess.Popen(  # noqa: S603 - ffmpeg on our own URL
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        stop = threading.Timer(self.seconds, process.terminate)
        stop.start()
        assert process.stdout is not None
        while chunk := process.stdout.read(65536):
            self.received_bytes += len(chunk)
        stop.cancel()
        process.wait()
        if process.returncode not in (0, 255, -15):
            self.error = process.stderr.read().decode()[-500:] if process.stderr else ""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    publish_seconds: float
    viewers: tuple[Viewer, ...]
    tail_seconds: float = 6.0  # keep polling after the publisher stops


def scenarios() -> dict[str, Scenario]:
    return {
        s.name: s
        for s in (
            Scenario(
                "edge-viewers",
                "HTTP-FLV first viewer (with ?ticket=) on the edge, then RTMP, a 5-second HTTP-FLV "
                "viewer, a late HTTP-FLV viewer; HLS on the origin; all leave before the publisher",
                publish_seconds=40,
                viewers=(
                    Viewer("flv-first", "flv", "edge", start=4, seconds=22, query="?ticket=abc"),
                    Viewer("rtmp", "rtmp", "edge", start=8, seconds=12, query="?ticket=def"),
                    Viewer("flv-5s", "flv", "edge", start=11, seconds=5, query="?ticket=ghi"),
                    Viewer("flv-late", "flv", "edge", start=18, seconds=14),
                    Viewer("hls-origin", "hls", "origin", start=9, seconds=10),
                ),
            ),
            Scenario(
                "edge-short-sessions",
                "Short HTTP-FLV sessions alone on the edge: 5 s, then 3 s, then 8 s, gaps between "
                "(the edge stream appears and disappears each time)",
                publish_seconds=36,
                viewers=(
                    Viewer("flv-5s", "flv", "edge", start=4, seconds=5, query="?ticket=one"),
                    Viewer("flv-3s", "flv", "edge", start=14, seconds=3, query="?ticket=two"),
                    Viewer("flv-8s", "flv", "edge", start=22, seconds=8, query="?ticket=three"),
                ),
            ),
            Scenario(
                "edge-rtmp-first",
                "RTMP first viewer on the edge, then an HTTP-FLV one joins; both leave",
                publish_seconds=26,
                viewers=(
                    Viewer("rtmp-first", "rtmp", "edge", start=4, seconds=14, query="?ticket=r1"),
                    Viewer("flv-second", "flv", "edge", start=8, seconds=12, query="?ticket=f2"),
                ),
            ),
        )
    }


def publisher(ports: Ports, seconds: float, key: str = "recorded-stream-key") -> subprocess.Popen:
    """A test pattern at a fixed bitrate (CBR x264 256 kb/s + AAC 32 kb/s), in real time."""
    url = f"rtmp://127.0.0.1:{ports.rtmp}/{APP}/{STREAM}?key={key}"
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re"]
    command += ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"]
    command += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    command += ["-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune"]
    command += ["zerolatency", "-g", "30", "-b:v", "256k", "-maxrate", "256k", "-bufsize", "256k"]
    command += ["-x264-params", "nal-hrd=cbr", "-c:a", "aac", "-b:a", "32k", "-f", "flv", url]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603 - ffmpeg, our URL


def srs_version(binary: Path) -> str:
    command = [str(binary), "-v"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    return (result.stdout + result.stderr).strip()


def record(binary: Path, scenario: Scenario, out: Path, srs_source: str) -> None:
    clock = Clock()
    hooks = HookRecorder(clock)
    ports = {"origin": Ports.pick(), "edge": Ports.pick()}
    with tempfile.TemporaryDirectory(prefix="record-srs-") as work_dir:
        work = Path(work_dir)
        relays = {
            "origin": HookRelay(
                f"{hooks.url}/origin",
                credential_file(work, "hook-credential", RECORDED_HOOK_SECRET),
                work / "origin-relay.log",
            ),
            "edge": HookRelay(
                f"{hooks.url}/edge",
                credential_file(work, "node-credential", RECORDED_NODE_TOKEN),
                work / "edge-relay.log",
            ),
        }
        origin_config = relisten(
            render_origin(
                OriginSettings(
                    coordinator_url=f"{hooks.url}/origin",
                    server_id="origin",
                    hook_relay_port=relays["origin"].port,
                )
            ),
            ports["origin"],
        )
        edge_config = relisten(
            render_edge(
                EdgeSettings(
                    origin_host="127.0.0.1", server_id="edge", hook_relay_port=relays["edge"].port
                )
            ),
            ports["edge"],
            origin_rtmp=ports["origin"].rtmp,
        )
        origin = Srs(binary, "origin", origin_config, ports["origin"], work)
        edge = Srs(binary, "edge", edge_config, ports["edge"], work)
        poller = Poller(clock, [origin, edge])
        timeline: list[dict] = []
        try:
            time.sleep(1)
            timeline.append(
                {"t": clock.now(), "event": "publish", "seconds": scenario.publish_seconds}
            )
            publishing = publisher(ports["origin"], scenario.publish_seconds)
            threads = []
            for viewer in scenario.viewers:
                delay = max(0.0, viewer.start - clock.now())
                thread = threading.Timer(delay, viewer.run, (clock, ports))
                thread.start()
                threads.append(thread)
            for thread in threads:
                thread.join()
            publishing.wait(timeout=scenario.publish_seconds + 30)
            timeline.append({"t": clock.now(), "event": "publisher-exited"})
            time.sleep(scenario.tail_seconds)
        finally:
            poller.stop()
            edge.stop()
            origin.stop()
            for relay in relays.values():
                relay.stop()
            hooks.close()
        target = out / scenario.name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        with (target / "hooks.jsonl").open("w") as file:
            for call in hooks.calls:
                file.write(json.dumps(call, sort_keys=True) + "\n")
        with gzip.open(target / "api.jsonl.gz", "wt") as file:
            for poll in poller.polls:
                file.write(json.dumps(poll, sort_keys=True) + "\n")
        for server in (origin, edge):
            with gzip.open(target / f"{server.name}.log.gz", "wt") as file:
                file.write(server.log_path.read_text(errors="replace").replace(work_dir, "/work"))
        viewers = [
            {
                "name": v.name,
                "protocol": v.protocol,
                "server": v.server,
                "url": v.url,
                "planned_seconds": v.seconds,
                "started_at": v.started_at,
                "ended_at": v.ended_at,
                "received_bytes": v.received_bytes,
                "error": v.error,
            }
            for v in scenario.viewers
        ]
        (target / "viewers.json").write_text(json.dumps(viewers, indent=2) + "\n")
        meta = {
            "scenario": scenario.name,
            "description": scenario.description,
            "srs_version": srs_version(binary),
            "srs_source": srs_source,
            "stream": f"{APP}/{STREAM}",
            "poll_seconds": POLL_SECONDS,
            "ports": {name: vars(p) for name, p in ports.items()},
            "timeline": timeline,
            "origin_config": origin_config.replace(hooks.url, "http://hooks"),
            "edge_config": edge_config.replace(hooks.url, "http://hooks"),
        }
        (target / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--srs", required=True, type=Path, help="the SRS binary (objs/srs)")
    parser.add_argument(
        "--srs-source", default="", help="where the binary was built from, for meta.json"
    )
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/srs"))
    known = scenarios()
    parser.add_argument(
        "--scenario", action="append", choices=sorted(known), help="default: every scenario"
    )
    args = parser.parse_args(argv)
    if not args.srs.is_file():
        parser.error(f"--srs {args.srs} is not a file: build SRS first (see the fixtures README)")
    if shutil.which("ffmpeg") is None:
        parser.error("ffmpeg is not on PATH: apt-get install ffmpeg")
    for name in args.scenario or sorted(known):
        print(f"recording {name} ...", flush=True)
        record(args.srs.resolve(), known[name], args.out, args.srs_source)
    return 0


if __name__ == "__main__":
    sys.exit(main())

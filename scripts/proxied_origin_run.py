#!/usr/bin/env python3
"""The origin's HLS and HTTP-FLV behind a path-forwarding HTTPS proxy, as prod serves them through
the coordinator's ALB: a real SRS origin (config from `srs/render.py`) on loopback with an ffmpeg
publisher, and `devenv/load_balancer.py` (TLS, the client's Host kept, X-Forwarded-* added) in
front forwarding only `srs.render.PLAY_PATHS` to SRS's HTTP port, like the listener rule in
components/srs_origin.py. ffmpeg then plays the playlist, its segments and the FLV through the
proxy; the playlists are fetched once more with prod's Host header and a viewer's
X-Forwarded-For. Also records what SRS's HTTP port answers to the target group's health check.
Prints what it saw as JSON; exits 1 if anything did not play.

    .venv/bin/python scripts/proxied_origin_run.py --srs /path/to/srs/trunk/objs/srs
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

import httpx
from record_srs import (
    APP,
    RECORDED_HOOK_SECRET,
    STREAM,
    Clock,
    HookRecorder,
    HookRelay,
    Ports,
    Srs,
    credential_file,
    free_port,
    publisher,
    relisten,
    srs_version,
)

from components.srs_origin import HEALTH_CHECK_MATCHER, HEALTH_CHECK_PATH
from devenv import load_balancer
from srs.render import PLAY_PATHS, OriginSettings, render_origin

PUBLISH_SECONDS = 60
PLAY_SECONDS = 10
PROD_HOST = "stream.example.org"  # a Host header other than the one SRS listens on
VIEWER_ADDRESS = "198.51.100.23"  # what the ALB would put first in X-Forwarded-For


def played(url: str, seconds: int) -> dict:
    """ffmpeg decodes `url` for `seconds` of media: how many video frames and how far it got."""
    command = ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-rw_timeout"]
    command += ["10000000", "-i", url, "-t", str(seconds), "-f", "null", "-", "-progress", "pipe:1"]
    result = subprocess.run(  # noqa: S603 - ffmpeg on our own URL
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    progress = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if "=" in line
    )  # the last report wins
    return {
        "url": url,
        "exit": result.returncode,
        "frames": int(progress.get("frame", 0)),
        "media_seconds": round(int(progress.get("out_time_us", 0) or 0) / 1e6, 2),
        "errors": result.stderr.strip()[-500:],
    }


def health(port: int) -> dict:
    """What SRS's HTTP port answers to the target group's health check, and to `/`."""
    answers = {}
    for path in sorted({HEALTH_CHECK_PATH, "/"}):
        answer = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
        answers[path] = answer.status_code
    return {"matcher": HEALTH_CHECK_MATCHER, "answers": answers}


def playlists(url: str) -> dict:
    """The master and media playlists as a browser on prod's domain would get them."""
    headers = {"Host": PROD_HOST, "X-Forwarded-For": VIEWER_ADDRESS}
    with httpx.Client(verify=False, headers=headers, timeout=10) as client:  # noqa: S501 - ours
        master_url = f"{url}/{APP}/{STREAM}.m3u8"
        master = client.get(master_url)
        media_url = urljoin(master_url, _first_uri(master.text))
        media = client.get(media_url)
        segment_url = urljoin(media_url, _first_uri(media.text))
        first = client.get(segment_url)
    return {
        "master": {"status": master.status_code, "text": master.text},
        "media": {"status": media.status_code, "text": media.text},
        "segment": {
            "url": segment_url,
            "status": first.status_code,
            "bytes": len(first.content),
            "type": first.headers.get("content-type"),
        },
    }


def _first_uri(playlist: str) -> str:
    return next(line for line in playlist.splitlines() if line and not line.startswith("#"))


def run(binary: Path, work: Path) -> dict:
    clock = Clock()
    hooks = HookRecorder(clock)
    ports = Ports.pick()
    relay = HookRelay(
        f"{hooks.url}/origin",
        credential_file(work, "hook-credential", RECORDED_HOOK_SECRET),
        work / "origin-relay.log",
    )
    config = render_origin(
        OriginSettings(f"{hooks.url}/origin", server_id="origin", hook_relay_port=relay.port)
    )
    origin = Srs(binary, "origin", relisten(config, ports), ports, work)
    media = load_balancer.Rule(PLAY_PATHS, f"http://127.0.0.1:{ports.http}")
    nobody = f"http://127.0.0.1:{free_port()}"  # the coordinator's place: not needed here
    publishing = publisher(ports, PUBLISH_SECONDS)
    seen: dict = {"srs_version": srs_version(binary), "health_check": health(ports.http)}
    try:
        with load_balancer.running([media], nobody) as balancer:
            playlist = origin.directory / "objs" / "nginx" / "html" / APP / f"{STREAM}.m3u8"
            deadline = time.monotonic() + 30
            while not playlist.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(4)  # a few segments in the window
            seen["hls"] = played(f"{balancer.url}/{APP}/{STREAM}.m3u8", PLAY_SECONDS)
            seen["flv"] = played(f"{balancer.url}/{APP}/{STREAM}.flv", PLAY_SECONDS)
            seen["playlists"] = playlists(balancer.url)
            # SRS's own answer to the health check is not among the forwarded paths.
            elsewhere = httpx.get(f"{balancer.url}{HEALTH_CHECK_PATH}", verify=False)  # noqa: S501
            seen["not_forwarded"] = elsewhere.status_code
            seen["forwarded"] = sorted({path for path, target in balancer.forwarded})
    finally:
        publishing.terminate()
        publishing.wait(timeout=20)
        origin.stop()
        relay.stop()
        hooks.close()
    seen["on_play_ips"] = sorted(
        {call["body"]["ip"] for call in hooks.calls if call["body"].get("action") == "on_play"}
    )
    return seen


def succeeded(seen: dict) -> bool:
    enough = PLAY_SECONDS - 1
    return (
        seen["hls"]["media_seconds"] >= enough
        and seen["flv"]["media_seconds"] >= enough
        and seen["playlists"]["segment"]["status"] == 200
        and seen["not_forwarded"] == 502
        and seen["health_check"]["answers"][HEALTH_CHECK_PATH] == int(HEALTH_CHECK_MATCHER)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--srs", required=True, type=Path, help="the SRS binary (objs/srs)")
    parser.add_argument("--keep", type=Path, help="keep the logs in this folder")
    args = parser.parse_args(argv)
    if not args.srs.is_file():
        parser.error(f"--srs {args.srs} is not a file: build SRS first (tests/fixtures/srs)")
    with tempfile.TemporaryDirectory(prefix="proxied-origin-") as work_dir:
        try:
            seen = run(args.srs.resolve(), Path(work_dir))
        finally:
            if args.keep:
                shutil.copytree(work_dir, args.keep, dirs_exist_ok=True)
    print(json.dumps(seen, indent=2))
    return 0 if succeeded(seen) else 1


if __name__ == "__main__":
    sys.exit(main())

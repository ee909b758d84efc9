#!/usr/bin/env python3
"""The watch page against a real SRS: the coordinator (local PostgreSQL from devenv), a real SRS
origin and friend edge on loopback (configs from `srs/render.py`), an ffmpeg publisher, and Debian's
headless Chromium on `/watch/<stream>`. It records what the page says and how far the video got:
playing from the edge, then after the edge's SRS is stopped mid-play, then on a fresh load with the
edge gone. Prints the timeline as JSON; exits 1 if a phase never played.

    .venv/bin/python scripts/real_watch_run.py --srs /path/to/srs/trunk/objs/srs
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from real_edge_run import HOOK_SECRET, account, coordinator
from record_srs import (
    STREAM,
    HookRelay,
    Ports,
    Srs,
    credential_file,
    publisher,
    relisten,
    srs_version,
)
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from streamr_coordinator.migrate import upgrade_to_head

from devenv import services
from srs.render import EdgeSettings, OriginSettings, render_edge, render_origin

PUBLISH_SECONDS = 150


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def observe(driver: webdriver.Chrome, started: float, until, timeout: float) -> list[dict]:
    """What the page says and where the video is, every half second, until `until(state)`."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = driver.execute_script(
            "const s = document.getElementById('source'), v = document.getElementById('video');"
            "return {kind: s.dataset.kind, text: s.textContent, time: v.currentTime,"
            " width: v.videoWidth};"
        )
        state["at"] = round(time.monotonic() - started, 1)
        if not seen or (seen[-1]["kind"], seen[-1]["text"]) != (state["kind"], state["text"]):
            seen.append(state)
        if until(state):
            seen.append(state)
            return seen
        time.sleep(0.5)
    seen.append({"timeout": timeout})
    return seen


def run(binary: Path, work: Path) -> int:
    ports = {"origin": Ports.pick(), "edge": Ports.pick()}
    with services.postgres() as postgres:
        database_url = postgres.create_database("real_watch_run")
        upgrade_to_head(database_url)
        origin_url = f"http://127.0.0.1:{ports['origin'].http}"
        with coordinator(database_url, work, STREAMR_ORIGIN_PLAY_URL=origin_url) as api:
            return watch(api, str(api.base_url).rstrip("/"), binary, work, ports)


def watch(
    api: httpx.Client, coordinator_url: str, binary: Path, work: Path, ports: dict[str, Ports]
) -> int:
    streamer, friend = account(api, "streamer1", "streamer"), account(api, "friend1", "friend")
    created = api.post("/api/v1/streams", json={"name": STREAM}, headers=streamer)
    created.raise_for_status()
    node = api.post(
        "/api/v1/nodes", json={"name": "real-edge", "capacity_viewers": 10}, headers=friend
    ).json()
    # SRS reaches the coordinator through the hosts' loopback hook relays (the credential is a
    # header the relay adds, never in a URL SRS logs).
    relays = [
        HookRelay(
            coordinator_url,
            credential_file(work, "hook-credential", HOOK_SECRET),
            work / "origin-relay.log",
        ),
        HookRelay(
            coordinator_url,
            credential_file(work, "node-credential", node["node_token"]),
            work / "edge-relay.log",
        ),
    ]
    origin_config = render_origin(
        OriginSettings(coordinator_url, server_id="origin", hook_relay_port=relays[0].port)
    )
    edge_config = render_edge(
        EdgeSettings("127.0.0.1", server_id="real-edge", hook_relay_port=relays[1].port)
    )
    origin = Srs(binary, "origin", relisten(origin_config, ports["origin"]), ports["origin"], work)
    edge = Srs(
        binary,
        "edge",
        relisten(edge_config, ports["edge"], ports["origin"].rtmp),
        ports["edge"],
        work,
    )
    node_auth = {"Authorization": f"Bearer {node['node_token']}"}
    api.put(
        f"/api/v1/nodes/{node['id']}/edge",
        json={"play_base_url": f"http://127.0.0.1:{ports['edge'].http}"},
        headers=node_auth,
    ).raise_for_status()
    stop_beating = threading.Event()

    def heartbeat() -> None:  # what the node's reporter does
        while not stop_beating.is_set():
            api.post("/api/v1/node/heartbeat", headers=node_auth)
            stop_beating.wait(20)

    threading.Thread(target=heartbeat, daemon=True).start()
    publishing = publisher(ports["origin"], PUBLISH_SECONDS, created.json()["stream_key"])
    driver = chromium()
    page = f"{coordinator_url}/watch/{STREAM}"
    phases: dict[str, list[dict]] = {}
    try:
        time.sleep(8)  # the origin has HLS segments by now
        started = time.monotonic()
        driver.get(page)
        phases["edge"] = observe(
            driver, started, lambda s: s["kind"] == "edge" and s["time"] > 5, 60
        )
        edge.stop()
        started = time.monotonic()
        phases["edge_stopped_mid_play"] = observe(
            driver, started, lambda s: s["kind"] == "origin" and s["time"] > 3, 45
        )
        started = time.monotonic()
        driver.get(page)
        phases["fresh_load_edge_gone"] = observe(
            driver, started, lambda s: s["kind"] == "origin" and s["time"] > 1, 45
        )
        console = [entry["message"] for entry in driver.get_log("browser")]
    finally:
        driver.quit()
        stop_beating.set()
        publishing.terminate()
        publishing.wait(timeout=20)
        origin.stop()
        if edge.process.poll() is None:
            edge.stop()
        for relay in relays:
            relay.stop()
    print(
        json.dumps(
            {"srs_version": srs_version(binary), "phases": phases, "console": console[-20:]},
            indent=2,
        )
    )
    return 0 if all("timeout" not in seen[-1] for seen in phases.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--srs", required=True, type=Path, help="the SRS binary (objs/srs)")
    parser.add_argument("--keep", type=Path, help="keep the logs in this folder")
    args = parser.parse_args(argv)
    if not args.srs.is_file():
        parser.error(f"--srs {args.srs} is not a file: build SRS first (tests/fixtures/srs)")
    with tempfile.TemporaryDirectory(prefix="real-watch-") as work_dir:
        try:
            return run(args.srs.resolve(), Path(work_dir))
        finally:
            if args.keep:
                shutil.copytree(work_dir, args.keep, dirs_exist_ok=True)


if __name__ == "__main__":
    sys.exit(main())

"""`make run` (python -m devenv.run) really starts a usable coordinator with demo data, and is a
good neighbour: a second run never disturbs the first, and a killed run leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devenv.services import free_port

DEMO_PASSWORD = "demo-password-123"
# For every request but the readiness poll: `make run` hashes passwords at the production cost
# (Argon2id, 64 MiB), and on a loaded 2-core machine a sign-in alone has taken over httpx's
# default 5 s (a ReadTimeout in a fresh-clone run). Slowness is not what these tests are about.
TIMEOUT = 30


@pytest.fixture
def state() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are private to root, and PostgreSQL runs as `postgres`.
    folder = Path(tempfile.mkdtemp(prefix="streamr-run-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start(port: int, state: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devenv.run", "--port", str(port), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_ready(process: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "local coordinator did not become ready"
        time.sleep(0.2)


def stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    return process.communicate(timeout=60)[0]


def refused(port: int, state: Path) -> tuple[int, list[str]]:
    """Run a second `make run` to its end: its exit status and the lines it printed."""
    second = subprocess.run(
        [sys.executable, "-m", "devenv.run", "--port", str(port), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return second.returncode, (second.stdout + second.stderr).splitlines()


def signed_in(base: str, role: str) -> httpx.Client:
    login = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": f"demo-{role}", "password": DEMO_PASSWORD},
        timeout=TIMEOUT,
    )
    assert login.status_code == 200
    bearer = {"Authorization": f"Bearer {login.json()['token']}"}
    return httpx.Client(base_url=base, headers=bearer, timeout=TIMEOUT)


def demo_streams(base: str) -> list[str]:
    streams = signed_in(base, "streamer").get("/api/v1/streams")
    assert streams.status_code == 200
    return [stream["name"] for stream in streams.json()]


def shows_a_believable_demo(base: str) -> None:
    """What each role's first sign-in shows: a live stream watched on the origin and on a
    friend's edge, reports paid in past periods, a friend with a balance, a day of history."""
    admin, streamer, friend = (signed_in(base, role) for role in ("admin", "streamer", "friend"))
    live = httpx.get(f"{base}/api/v1/streams/live", timeout=TIMEOUT).json()
    assert [stream["name"] for stream in live] == ["demo-show"]
    deadline = time.monotonic() + 60  # the payout scheduler pays the past periods at start
    while not (periods := admin.get("/api/v1/admin/payout-periods").json()):
        assert time.monotonic() < deadline, "no payout period was paid"
        time.sleep(1)
    assert sum(period["total_minor"] for period in periods) > 0
    earnings = friend.get("/api/v1/earnings").json()
    assert earnings["balance_minor"] > 0
    assert {entry["node_name"] for entry in earnings["history"]} == {"attic-pi", "office-box"}
    shows = {stream["name"]: stream["id"] for stream in streamer.get("/api/v1/streams").json()}
    assert set(shows) == {"demo-show", "late-jam"}
    assert streamer.get(f"/api/v1/streams/{shows['demo-show']}/payouts").json()


def serves_everything(base: str) -> None:
    """The endpoints a person touches first all answer, database and cache included."""
    assert httpx.get(f"{base}/health", timeout=TIMEOUT).status_code == 200
    assert httpx.get(f"{base}/ready", timeout=TIMEOUT).status_code == 200
    assert httpx.get(f"{base}/signin", timeout=TIMEOUT).status_code == 200
    assert httpx.get(f"{base}/docs", timeout=TIMEOUT).status_code == 200
    assert "demo-show" in demo_streams(base)


def test_local_run_serves_demo_data_and_keeps_it_across_restarts(state: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    for attempt in range(2):
        process = start(port, state)
        try:
            wait_ready(process, base)
            serves_everything(base)
            shows_a_believable_demo(base)
        finally:
            output = stop(process)
        # The stream key is printed on the first run only (it is stored hashed).
        assert ("demo stream 'demo-show' key: sk_" in output) is (attempt == 0)
        assert f"sign in: {base}/signin" in output


def sign_in_is_rate_limited_whatever_x_forwarded_for_says(base: str) -> None:
    """A new X-Forwarded-For per attempt does not give the caller a new address. The limit (20 a
    minute) counts in fixed one-minute windows, so 41 attempts (under a minute) reach it even
    when a window ends among them (25 did not, once: the count started again at the minute)."""
    answers = []
    for attempt in range(41):
        answers.append(
            httpx.post(
                f"{base}/api/v1/auth/login",
                json={"username": "demo-admin", "password": "not-the-password"},
                headers={"X-Forwarded-For": f"203.0.113.{attempt}"},
                timeout=TIMEOUT,
            ).status_code
        )
        if answers[-1] == 429:
            break
    assert answers[-1] == 429, answers
    assert set(answers[:-1]) == {401}, answers


def test_a_second_run_says_so_in_one_line_and_leaves_the_first_alone(
    state: Path, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = start(port, state)
    try:
        wait_ready(first, base)
        # Same checkout (same state folder), even on another port: refused, naming the first.
        status, lines = refused(free_port(), state)
        assert status != 0
        assert len(lines) == 1, lines
        assert base in lines[0] and "already running" in lines[0]
        # Another checkout on the same port: refused before it starts anything.
        other = tmp_path / "other-checkout"
        other.mkdir()
        status, lines = refused(port, other)
        assert status != 0
        assert lines == [
            f"make run: port {port} on 127.0.0.1 is in use by another program; "
            f"choose another port, e.g. make run PORT={port + 1}"
        ]
        assert not (other / "postgres").exists()
        serves_everything(base)
        sign_in_is_rate_limited_whatever_x_forwarded_for_says(base)
    finally:
        stop(first)


def test_a_killed_run_is_recovered_by_the_next(state: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = start(port, state)
    wait_ready(first, base)
    os.kill(first.pid, signal.SIGKILL)  # no cleanup at all: its lock, PostgreSQL, Redis
    first.communicate(timeout=30)
    second = start(port, state)
    try:
        wait_ready(second, base)
        serves_everything(base)
    finally:
        stop(second)

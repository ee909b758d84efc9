"""`make run` (python -m devenv.run) really starts a usable coordinator with demo data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from devenv.services import free_port


def test_local_run_serves_demo_data_and_keeps_it_across_restarts() -> None:
    # Not pytest's tmp_path: its parents are private to root, and PostgreSQL runs as `postgres`.
    state = Path(tempfile.mkdtemp(prefix="streamr-run-"))
    state.chmod(0o755)
    port = free_port()
    for attempt in range(2):
        process = subprocess.Popen(
            [sys.executable, "-m", "devenv.run", "--port", str(port), "--state-dir", str(state)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "local coordinator did not become ready"
                time.sleep(0.2)
            login = httpx.post(
                f"{base}/api/v1/auth/login",
                json={"username": "demo-streamer", "password": "demo-password-123"},
            )
            assert login.status_code == 200
            streams = httpx.get(
                f"{base}/api/v1/streams",
                headers={"Authorization": f"Bearer {login.json()['token']}"},
            ).json()
            assert [stream["name"] for stream in streams] == ["demo-show"]
        finally:
            process.terminate()
            output = process.communicate(timeout=30)[0]
        # The stream key is printed on the first run only (it is stored hashed).
        assert ("demo stream 'demo-show' key: sk_" in output) is (attempt == 0)
    shutil.rmtree(state, ignore_errors=True)

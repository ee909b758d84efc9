"""`srs/hook_relay.py` run as the hosts run it: a plain python3 process on a loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

RELAY = Path(__file__).resolve().parents[2] / "srs" / "hook_relay.py"
# The relay runs on a host's own python3 (Amazon Linux, a Raspberry Pi): never the virtualenv's.
PLAIN_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HookRelayProcess:
    """One relay: `url` is where SRS (or a test standing in for it) sends its hooks."""

    def __init__(
        self, coordinator: str, credential_file: Path, log_path: Path, key: str | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [PLAIN_PYTHON, str(RELAY), "--listen", f"127.0.0.1:{self.port}"]
        command += ["--coordinator", coordinator, "--credential-file", str(credential_file)]
        if key:
            command += ["--credential-key", key]
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
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

"""scripts/install-system-deps.sh: shellcheck-clean, waits (bounded, saying so) while another apt or
dpkg holds the package manager's lock, and gives up with one clear line when it never comes free.

The lock is the real one (`/var/lib/dpkg/lock-frontend`, an fcntl lock as dpkg takes it); `apt-get`
and `dpkg-query` are stand-ins on PATH that record their calls and report every package missing.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-system-deps.sh"
DPKG_LOCK = Path("/var/lib/dpkg/lock-frontend")

# Only the lock tests need root; shellcheck runs for everyone.
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="holding dpkg's lock needs root (CI and `make test` run as root)"
)


def test_shellcheck_clean() -> None:
    subprocess.run([ROOT / ".venv" / "bin" / "shellcheck", SCRIPT], check=True)


@pytest.fixture
def stand_ins(tmp_path: Path) -> Path:
    """A PATH folder with `apt-get` and `dpkg-query` that log their calls to calls.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for name, status in (("apt-get", 0), ("dpkg-query", 1)):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit {status}\n')
        tool.chmod(0o755)
    return bin_dir


def run_script(bin_dir: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "APT_LOCK_TIMEOUT": str(timeout),
    }
    return subprocess.run(
        ["bash", SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def hold_lock(seconds: float, held: threading.Event) -> None:
    with DPKG_LOCK.open("a") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        held.set()
        time.sleep(seconds)


def calls(bin_dir: Path) -> list[str]:
    log = bin_dir.parent / "calls.log"
    return [line for line in log.read_text().splitlines() if line.startswith("apt-get")]


@needs_root
def test_waits_for_a_busy_package_manager_then_installs(stand_ins: Path) -> None:
    held = threading.Event()
    holder = threading.Thread(target=hold_lock, args=(4, held))
    holder.start()
    held.wait(5)
    started = time.monotonic()
    result = run_script(stand_ins, timeout=60)
    holder.join()
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 3  # it did wait for the holder
    assert result.stdout.count("waiting up to 60s for the package manager") == 1
    update, install = calls(stand_ins)
    assert update == "apt-get update -qq"
    assert install.startswith("apt-get install -y -qq --no-install-recommends")
    assert "-o DPkg::Lock::Timeout=60" in install


@needs_root
def test_gives_up_with_one_clear_line_when_the_lock_never_comes_free(stand_ins: Path) -> None:
    held = threading.Event()
    holder = threading.Thread(target=hold_lock, args=(8, held))
    holder.start()
    held.wait(5)
    result = run_script(stand_ins, timeout=2)
    holder.join()
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "install-system-deps: the package manager is still busy after 2s (another apt or dpkg "
        "holds its lock); try again when it is done, or set APT_LOCK_TIMEOUT"
    ]
    assert not (stand_ins.parent / "calls.log").exists() or calls(stand_ins) == []

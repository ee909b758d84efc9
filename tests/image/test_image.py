"""The coordinator image really builds and runs: `buildah bud` over the real Dockerfile, then the
container (entrypoint: migrate, then serve) against real PostgreSQL and Redis from `devenv/`.

Docker is used when its engine answers; otherwise buildah with chroot isolation on the host network
(no engine, no registry: the base is the debootstrap stand-in from scripts/build-base-image.sh).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devenv import services

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ROOT / "coordinator"
BASE_IMAGE = "localhost/streamr-python-base:bookworm"
IMAGE = "localhost/streamr-coordinator:test"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
START_TIMEOUT_S = 120


@dataclass(frozen=True)
class Running:
    base_url: str
    process: subprocess.Popen[str]
    postgres: services.Postgres
    database: str


def _docker_works() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def image() -> Iterator[dict[str, object]]:
    """Build the Dockerfile; yields the image's configuration (user, healthcheck, entrypoint)."""
    if _docker_works():
        pytest.fail("Docker is available: extend this test to build and run with Docker")
    assert shutil.which("buildah"), "buildah is missing: run scripts/install-system-deps.sh"
    subprocess.run([str(ROOT / "scripts" / "build-base-image.sh"), BASE_IMAGE], check=True)
    build = subprocess.run(
        [
            "buildah",
            "bud",
            "--isolation",
            "chroot",
            "--format",
            "docker",  # OCI images drop HEALTHCHECK
            "--layers=false",
            "--build-arg",
            f"BASE_IMAGE={BASE_IMAGE}",
            # The host's CA bundle, so pip reaches PyPI through whatever this machine trusts.
            "-v",
            f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
            "-t",
            IMAGE,
            str(CONTEXT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    inspected = subprocess.run(
        ["buildah", "inspect", "--type", "image", IMAGE],
        capture_output=True,
        text=True,
        check=True,
    )
    yield json.loads(inspected.stdout)["Docker"]["config"]
    subprocess.run(["buildah", "rmi", "--force", IMAGE], capture_output=True, check=False)


@pytest.fixture(scope="module")
def container(image: dict[str, object]) -> Iterator[str]:
    name = subprocess.run(
        ["buildah", "from", "--pull-never", IMAGE], capture_output=True, text=True, check=True
    ).stdout.strip()
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def running(container: str) -> Iterator[Running]:
    with services.postgres() as postgres, services.redis() as redis:
        database = "image_test"
        url = postgres.create_database(database)
        port = services.free_port()
        environment = {
            "STREAMR_DATABASE_URL": url,
            "STREAMR_REDIS_URL": redis.url,
            "STREAMR_TOKEN_PEPPER": "image-test-pepper-" + "p" * 32,
            "STREAMR_HOOK_SECRET": "image-test-hook-secret-" + "h" * 32,
            "STREAMR_PORT": str(port),
            "STREAMR_WEB_CONCURRENCY": "2",
        }
        env_args = [
            arg for key, value in environment.items() for arg in ("--env", f"{key}={value}")
        ]
        # The image's own entrypoint, as `docker run` would start it.
        process = subprocess.Popen(
            [
                "buildah",
                "run",
                "--isolation",
                "chroot",
                "--network",
                "host",
                *env_args,
                container,
                "--",
                "/usr/local/bin/streamr-entrypoint",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, so the test stops all of it
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_health(base_url, process)
            yield Running(base_url=base_url, process=process, postgres=postgres, database=database)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_for_health(base_url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the container exited with {process.returncode}:\n{output[-4000:]}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"/health did not answer within {START_TIMEOUT_S}s")


def _get(url: str) -> tuple[int, dict[str, object]]:
    response = httpx.get(url, timeout=5)
    return response.status_code, response.json()


def test_the_image_declares_a_non_root_user_a_healthcheck_and_the_entrypoint(
    image: dict[str, object],
) -> None:
    assert image["User"] == "10001:10001"
    assert image["Entrypoint"] == ["/usr/local/bin/streamr-entrypoint"]
    healthcheck = image["Healthcheck"]
    assert isinstance(healthcheck, dict)
    assert "/health" in " ".join(healthcheck["Test"])
    assert "8000/tcp" in image["ExposedPorts"]


def test_the_final_stage_has_no_build_tools_or_sources(container: str) -> None:
    listing = subprocess.run(
        [
            "buildah",
            "run",
            "--isolation",
            "chroot",
            container,
            "--",
            "sh",
            "-c",
            "ls /src 2>&1; /opt/venv/bin/python -m pip list --format=freeze 2>/dev/null",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "No such file or directory" in listing  # no /src
    packages = {_name(line) for line in listing.splitlines() if "==" in line}
    assert {"streamr-coordinator", "fastapi", "uvicorn", "alembic", "psycopg"} <= packages
    project = tomllib.loads((CONTEXT / "pyproject.toml").read_text())["project"]
    runtime = {_name(requirement) for requirement in project["dependencies"]}
    dev_only = {_name(r) for r in project["optional-dependencies"]["dev"]} - runtime
    assert dev_only, "the coordinator declares no dev-only dependencies to look for"
    assert not dev_only & packages
    assert {_name(requirement) for requirement in project["dependencies"]} <= packages


def _name(requirement: str) -> str:
    """The normalised (PEP 503) project name of `name[extra]==version` or a freeze line."""
    name = re.split(r"[\[=<>~!; ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def test_it_migrates_and_answers_health_and_ready(running: Running) -> None:
    assert _get(f"{running.base_url}/health") == (200, {"status": "ok"})
    status, ready = _get(f"{running.base_url}/ready")
    assert status == 200
    assert ready == {"status": "ok", "database": "ok", "redis": "ok"}


def test_the_entrypoint_migrated_the_database(running: Running) -> None:
    version = running.postgres.psql("SELECT version_num FROM alembic_version", running.database)
    assert version
    tables = running.postgres.psql(
        "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'",
        running.database,
    ).split(",")
    assert {"users", "streams", "nodes"} <= set(tables)


def test_the_server_runs_as_a_non_root_user(running: Running) -> None:
    uids = _server_uids(running.process.pid)
    assert uids, "no coordinator server process found under the container"
    assert 0 not in uids
    assert uids == {10001}


def _server_uids(root_pid: int) -> set[int]:
    """Real uids of the uvicorn processes started under `buildah run` (master and workers)."""
    uids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (proc / "status").read_text()
        except OSError:
            continue
        if "streamr-coordinator serve" not in cmdline and "multiprocessing" not in cmdline:
            continue
        if _session_id(proc) != root_pid:
            continue
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        uids.add(int(uid_line.split()[1]))
    return uids


def _session_id(proc: Path) -> int:
    # Field 6 of /proc/<pid>/stat is the session id; the container was started in its own session.
    stat = (proc / "stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[3])


def test_the_entrypoint_passes_shellcheck() -> None:
    shellcheck = ROOT / ".venv" / "bin" / "shellcheck"
    result = subprocess.run(
        [str(shellcheck), "--severity=style", str(CONTEXT / "entrypoint.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout

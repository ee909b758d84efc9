"""The coordinator image really builds and runs: the real Dockerfile is built, then the container
(entrypoint: migrate, then serve) runs on the host network against real PostgreSQL and Redis from
`devenv/`.

Docker is used when its engine answers. Otherwise (this machine, and CI without an engine) buildah
builds with chroot isolation over the debootstrap stand-in base from scripts/build-base-image.sh.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
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
IMAGE = "localhost/streamr-coordinator:test"
CONTAINER = "streamr-coordinator-image-test"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
ENTRYPOINT = "/usr/local/bin/streamr-entrypoint"
START_TIMEOUT_S = 120


def _docker_works() -> bool:
    docker = shutil.which("docker")
    return (
        docker is not None
        and subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0
    )


class Buildah:
    """No engine: `buildah bud`/`buildah run` with chroot isolation, processes visible here."""

    base_image = "localhost/streamr-python-base:bookworm"

    def __init__(self) -> None:
        assert shutil.which("buildah"), "buildah is missing: run scripts/install-system-deps.sh"
        self.container: str | None = None

    def build(self) -> dict[str, object]:
        subprocess.run([str(ROOT / "scripts" / "build-base-image.sh"), self.base_image], check=True)
        _check(
            [
                "buildah",
                "bud",
                "--isolation",
                "chroot",
                "--format",
                "docker",  # OCI images drop HEALTHCHECK
                "--layers=false",
                "--build-arg",
                f"BASE_IMAGE={self.base_image}",
                # The host's CA bundle, so pip reaches PyPI through whatever this machine trusts.
                "-v",
                f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
                "-t",
                IMAGE,
                str(CONTEXT),
            ]
        )
        self.container = _check(["buildah", "from", "--pull-never", IMAGE]).strip()
        inspected = _check(["buildah", "inspect", "--type", "image", IMAGE])
        return json.loads(inspected)["Docker"]["config"]

    def shell(self, script: str) -> str:
        return _check(
            ["buildah", "run", "--isolation", "chroot", self._name(), "--", "sh", "-c", script]
        )

    def start(self, environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        env_args = [
            arg for key, value in environment.items() for arg in ("--env", f"{key}={value}")
        ]
        return subprocess.Popen(
            ["buildah", "run", "--isolation", "chroot", "--network", "host", *env_args,
             self._name(), "--", ENTRYPOINT],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session: the test finds and stops exactly these
        )  # fmt: skip

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def server_uids(self, process: subprocess.Popen[bytes]) -> set[int]:
        """Real uids of the server processes (uvicorn master and workers) in that session."""
        uids = set()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                status = (proc / "status").read_text()
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if "streamr-coordinator serve" not in cmdline and "multiprocessing" not in cmdline:
                continue
            # Field 6 of /proc/<pid>/stat is the session id.
            if int(stat.rsplit(")", 1)[1].split()[3]) != process.pid:
                continue
            uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
            uids.add(int(uid_line.split()[1]))
        return uids

    def clean_up(self) -> None:
        if self.container:
            subprocess.run(["buildah", "rm", self.container], capture_output=True, check=False)
        subprocess.run(["buildah", "rmi", "--force", IMAGE], capture_output=True, check=False)

    def _name(self) -> str:
        assert self.container is not None, "build() first"
        return self.container


class Docker:
    """An engine: `docker build` over the official base image, `docker run --network host`."""

    def build(self) -> dict[str, object]:
        _check(["docker", "build", "-t", IMAGE, str(CONTEXT)])
        return json.loads(_check(["docker", "image", "inspect", IMAGE]))[0]["Config"]

    def shell(self, script: str) -> str:
        return _check(["docker", "run", "--rm", "--entrypoint", "sh", IMAGE, "-c", script])

    def start(self, environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        env_args = [
            arg for key, value in environment.items() for arg in ("--env", f"{key}={value}")
        ]
        return subprocess.Popen(
            ["docker", "run", "--rm", "--name", CONTAINER, "--network", "host", *env_args, IMAGE],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        subprocess.run(["docker", "stop", CONTAINER], capture_output=True, check=False)
        process.wait(timeout=30)

    def server_uids(self, _process: subprocess.Popen[bytes]) -> set[int]:
        listing = _check(["docker", "top", CONTAINER, "-eo", "uid,args"]).splitlines()[1:]
        return {
            int(line.split(None, 1)[0])
            for line in listing
            if "streamr-coordinator serve" in line or "multiprocessing" in line
        }

    def clean_up(self) -> None:
        subprocess.run(["docker", "rmi", "--force", IMAGE], capture_output=True, check=False)


Engine = Buildah | Docker


def _check(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        f"{' '.join(command[:3])} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


@dataclass(frozen=True)
class Running:
    base_url: str
    engine: Engine
    process: subprocess.Popen[bytes]
    postgres: services.Postgres
    database: str


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    chosen: Engine = Docker() if _docker_works() else Buildah()
    yield chosen
    chosen.clean_up()


@pytest.fixture(scope="module")
def image(engine: Engine) -> dict[str, object]:
    """The built image's configuration (user, healthcheck, entrypoint)."""
    return engine.build()


@pytest.fixture(scope="module")
def running(engine: Engine, image: dict[str, object]) -> Iterator[Running]:
    with (
        services.postgres() as postgres,
        services.redis() as redis,
        tempfile.TemporaryDirectory() as scratch,
    ):
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
        log = Path(scratch) / "container.log"
        # The image's own entrypoint, as `docker run` starts it.
        process = engine.start(environment, log)
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_health(base_url, process, log)
            yield Running(base_url, engine, process, postgres, database)
        finally:
            engine.stop(process)


def _wait_for_health(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace")[-4000:]
            pytest.fail(f"the container exited with {process.returncode}:\n{output}")
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
    assert image["Entrypoint"] == [ENTRYPOINT]
    healthcheck = image["Healthcheck"]
    assert isinstance(healthcheck, dict)
    assert "/health" in " ".join(healthcheck["Test"])
    assert "8000/tcp" in image["ExposedPorts"]


def test_the_final_stage_has_no_build_tools_or_sources(engine: Engine, image: object) -> None:
    listing = engine.shell(
        "ls /src 2>&1; /opt/venv/bin/python -m pip list --format=freeze 2>/dev/null"
    )
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


def test_the_api_docs_and_their_assets_are_in_the_image(running: Running) -> None:
    page = httpx.get(f"{running.base_url}/docs", timeout=5)
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text)
    assert len(assets) == 3, page.text
    for asset in assets:
        assert httpx.get(running.base_url + asset, timeout=5).status_code == 200, asset


def test_the_entrypoint_migrated_the_database(running: Running) -> None:
    version = running.postgres.psql("SELECT version_num FROM alembic_version", running.database)
    assert version
    tables = running.postgres.psql(
        "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'",
        running.database,
    ).split(",")
    assert {"users", "streams", "nodes"} <= set(tables)


def test_the_server_runs_as_a_non_root_user(running: Running) -> None:
    uids = running.engine.server_uids(running.process)
    assert uids, "no coordinator server process found in the container"
    assert uids == {10001}


def test_the_entrypoint_passes_shellcheck() -> None:
    shellcheck = ROOT / ".venv" / "bin" / "shellcheck"
    result = subprocess.run(
        [str(shellcheck), "--severity=style", str(CONTEXT / "entrypoint.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout

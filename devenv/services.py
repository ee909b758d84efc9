"""Start real PostgreSQL and Redis servers from the Debian packages, on loopback, for local use.

PostgreSQL refuses to run as root, so when we are root the cluster is created and run as the
`postgres` system user (via `runuser`). Both servers listen on a free 127.0.0.1 port and stop with
the context manager; a given `data_dir` is kept for the next `make run`. PostgreSQL is durable
unless asked not to be: tests run it with `durable=False` (no fsync), as nothing they store needs
to outlive the machine, except the tests about durability, which keep the default.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

POSTGRES_USER = "postgres"
DATABASE = "streamr"
# For a server whose data need not survive a crash of the machine (tests): commits do not wait
# for the disk. A restart of PostgreSQL alone still loses nothing (its shutdown writes everything
# out to the kernel); a power cut could.
NOT_DURABLE = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
_PR_SET_PDEATHSIG = 1  # prctl(2)


class ServiceError(RuntimeError):
    """A local server could not be started; the message says which and why."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin(tool: str) -> str:
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"), reverse=True)
    if not candidates:
        raise ServiceError(
            f"PostgreSQL's {tool} not found under /usr/lib/postgresql: "
            "run scripts/install-system-deps.sh (Debian package postgresql)"
        )
    return str(candidates[0])


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", POSTGRES_USER, "--", *command]
    return command


def _wait_for_port(port: int, what: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{what} exited with status {process.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ServiceError(f"{what} did not accept connections on port {port} within {timeout:.0f}s")


@dataclass
class Postgres:
    """A running PostgreSQL server; `url(...)` gives SQLAlchemy URLs for its databases."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None
    durable: bool = True

    def start(self) -> None:
        """Start the server (again, after `stop`: tests restart it) and wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            return
        self.process = _spawn_postgres(self.data_dir, self.port, self.durable)
        log_path = self.data_dir / "postgres.log"
        try:
            _wait_for_port(self.port, "PostgreSQL", self.process, timeout=30)
        except ServiceError as error:
            log_tail = log_path.read_text(errors="replace")[-2000:]
            raise ServiceError(f"{error}; its log ({log_path}) ends:\n{log_tail}") from None
        _wait_until_ready(self)

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as in a database restart or failover."""
        if self.process is None:
            return
        # pg_ctl waits until the server is really gone (signals to `runuser` may not be).
        subprocess.run(  # noqa: S603 - fixed argv
            _as_postgres(
                [
                    _postgres_bin("pg_ctl"),
                    "-D",
                    str(self.data_dir / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ]
            ),
            check=False,
            capture_output=True,
            timeout=60,
        )
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def url(self, database: str = DATABASE, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{POSTGRES_USER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(  # noqa: S603 - fixed argv, our own server
            [
                _postgres_bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                POSTGRES_USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the process that started it dies, so a
    killed `make run` or test session leaves no server behind."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_stale_postgres(data_dir: Path) -> bool:
    """Stop a server left running on `data_dir` by a run that was killed; True if there was one.

    Only for a data directory its caller owns exclusively (`make run` holds its lock first).
    """
    pgdata = data_dir / "data"
    if not (pgdata / "postmaster.pid").exists():
        return False
    status = subprocess.run(  # noqa: S603 - fixed argv
        _as_postgres([_postgres_bin("pg_ctl"), "-D", str(pgdata), "status"]),
        check=False,
        capture_output=True,
    )
    if status.returncode != 0:  # no server: PostgreSQL itself ignores a stale postmaster.pid
        return False
    subprocess.run(  # noqa: S603 - fixed argv
        _as_postgres([_postgres_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return True


@contextlib.contextmanager
def postgres(
    data_dir: Path | None = None, port: int | None = None, durable: bool = True
) -> Iterator[Postgres]:
    """Run PostgreSQL on 127.0.0.1 with trust auth for loopback only; stop it on exit.

    `durable=False` turns off what protects committed data against a crash of the machine
    (NOT_DURABLE): for tests, whose databases are thrown away.
    """
    owned_dir = data_dir is None
    base = Path(tempfile.mkdtemp(prefix="streamr-pg-")) if owned_dir else data_dir
    assert base is not None
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(base, POSTGRES_USER, POSTGRES_USER)
    pgdata = base / "data"
    if not (pgdata / "PG_VERSION").exists():
        initdb = subprocess.run(  # noqa: S603 - fixed argv
            _as_postgres(
                [
                    _postgres_bin("initdb"),
                    "-D",
                    str(pgdata),
                    "-U",
                    POSTGRES_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ]
            ),
            check=False,
            capture_output=True,
            text=True,
        )
        if initdb.returncode != 0:
            raise ServiceError(
                f"initdb in {pgdata} failed (the {POSTGRES_USER} user must be able to reach it): "
                f"{initdb.stderr.strip()}"
            )
    server = Postgres(port=port or free_port(), data_dir=base, process=None, durable=durable)
    try:
        server.start()
        if not server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"):  # noqa: S608 - a constant
            server.create_database(DATABASE)
        yield server
    finally:
        server.stop()
        if owned_dir:
            shutil.rmtree(base, ignore_errors=True)


def _spawn_postgres(base: Path, port: int, durable: bool) -> subprocess.Popen[bytes]:
    settings = [] if durable else [word for setting in NOT_DURABLE for word in ("-c", setting)]
    with (base / "postgres.log").open("ab") as log_file:
        return subprocess.Popen(  # noqa: S603 - fixed argv
            _as_postgres(
                [
                    _postgres_bin("postgres"),
                    "-D",
                    str(base / "data"),
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={base}",
                    "-c",
                    "max_connections=300",
                    "-c",
                    "shared_buffers=256MB",
                    "-c",
                    "log_min_messages=warning",
                    *settings,
                ]
            ),
            stdout=log_file,
            stderr=log_file,
            preexec_fn=_die_with_parent,
        )


def _wait_until_ready(server: Postgres) -> None:
    """The port opens before recovery ends; wait until queries are accepted."""
    deadline = time.monotonic() + 30
    while True:
        try:
            server.psql("SELECT 1")
            return
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise ServiceError("PostgreSQL accepted connections but not queries") from None
            time.sleep(0.1)


@dataclass
class Redis:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def start(self) -> None:
        """Start again on the same port (tests stop and restart Redis)."""
        if self.process.poll() is None:
            return
        self.process = _spawn_redis(self.port)
        _wait_for_port(self.port, "Redis", self.process, timeout=10)


def _spawn_redis(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise ServiceError("redis-server not found: run scripts/install-system-deps.sh")
    return subprocess.Popen(  # noqa: S603 - fixed argv
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )


@contextlib.contextmanager
def redis(port: int | None = None) -> Iterator[Redis]:
    """Run a Redis server with no persistence: what it holds can always be rebuilt."""
    port = port or free_port()
    server = Redis(port=port, process=_spawn_redis(port))
    try:
        _wait_for_port(port, "Redis", server.process, timeout=10)
        yield server
    finally:
        server.stop()

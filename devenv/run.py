"""`make run`: the coordinator on this machine, against local PostgreSQL and Redis, with demo data.

PostgreSQL's data lives in `.local/` (kept between runs); Redis starts empty, as it may in
production. Prints the demo accounts' credentials and the demo stream key, then serves until Ctrl-C.
One run per state folder (a lock in it says where that run serves); a run killed without cleaning
up leaves nothing that stops the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import os
import secrets
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from sqlalchemy import select
from streamr_coordinator.app import create_app
from streamr_coordinator.db import make_engine, make_sessionmaker
from streamr_coordinator.migrate import upgrade_to_head
from streamr_coordinator.models import User
from streamr_coordinator.observability import configure_logging
from streamr_coordinator.settings import Settings

from devenv import demo, services

ROOT = Path(__file__).resolve().parent.parent


def _local_secret(state: Path, name: str) -> str:
    """Secrets for the local run, made once and kept in .local/ so tokens survive restarts."""
    path = state / f"{name}.secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def _seed(settings: Settings) -> str | None:
    """The demo (devenv/demo.py) on the first run; the live stream's new key, or None."""
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            if await session.scalar(select(User).where(User.username == "demo-admin")):
                return None
            return await demo.seed(session, settings.token_pepper.get_secret_value())
    finally:
        await engine.dispose()


class RunRefused(Exception):
    """This run cannot start; the message is the one line the user sees."""


@contextlib.contextmanager
def exclusive_run(state: Path, url: str) -> Iterator[None]:
    """Hold the state folder's lock for the life of the run, with `url` written in it.

    The kernel drops the lock when the process dies however it dies, so a stale lock cannot
    exist; a second run finds it held and names the first run's URL instead of touching its data.
    """
    with (state / "run.lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            running = lock.read().strip() or "an unknown address"
            raise RunRefused(
                f"make run: already running from {state} on {running}; "
                "stop that one first (Ctrl-C), or use another checkout"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{url}\n")
        lock.flush()
        yield


def check_port_free(port: int) -> None:
    """Refuse before starting anything when the port is taken (by another checkout, say)."""
    with socket.socket() as probe:
        # As the server will: closed connections lingering in TIME_WAIT do not hold the port.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise RunRefused(
                f"make run: port {port} on 127.0.0.1 is in use by another program; "
                f"choose another port, e.g. make run PORT={port + 1}"
            ) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local")
    args = parser.parse_args()
    # uvicorn re-raises SIGTERM after its shutdown; make that unwind the `with` below, so
    # PostgreSQL and Redis stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    state = args.state_dir
    state.mkdir(exist_ok=True)
    base = f"http://127.0.0.1:{args.port}"
    try:
        with exclusive_run(state, base):
            check_port_free(args.port)
            serve(state, args.port)
    except (RunRefused, services.ServiceError) as error:
        sys.exit(str(error))


def serve(state: Path, port: int) -> None:
    """Start PostgreSQL and Redis, migrate, seed, and serve until stopped."""
    if services.stop_stale_postgres(state / "postgres"):
        print("make run: stopped PostgreSQL left running by an earlier run that was killed")
    with services.postgres(data_dir=state / "postgres") as pg, services.redis() as cache:
        settings = Settings(
            database_url=pg.url(),
            redis_url=cache.url,
            token_pepper=_local_secret(state, "token-pepper"),
            hook_secret=_local_secret(state, "hook-secret"),
            admin_bootstrap_token=_local_secret(state, "admin-bootstrap"),
        )
        upgrade_to_head(settings.sqlalchemy_url)
        key = asyncio.run(_seed(settings))
        base = f"http://127.0.0.1:{port}"
        print(f"\nStreamrP2P coordinator on {base}")
        print(f"  sign in: {base}/signin    API docs: {base}/docs")
        print(f"  demo accounts: demo-admin, demo-streamer, demo-friend; password {demo.PASSWORD}")
        if key:
            print(f"  demo stream 'demo-show' key: {key}  (shown once; rotate it in the API)")
        print(
            f"  SRS hooks: {base}/hooks/srs/<action> through srs/hook_relay.py "
            "(--credential-file .local/hook-secret.secret)"
        )
        print("  Ctrl-C stops the server, PostgreSQL and Redis.\n")
        configure_logging(os.environ.get("STREAMR_LOG_LEVEL", "INFO"))
        uvicorn.run(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            # As in production (`streamr-coordinator serve`): X-Forwarded-For is judged by the app
            # against STREAMR_TRUSTED_PROXIES (none here), never by uvicorn, which would trust any
            # header from loopback and so let a caller pick its own address for the rate limits.
            proxy_headers=False,
            log_config=None,
            access_log=False,
        )


if __name__ == "__main__":
    main()

"""`make run`: the coordinator on this machine, against local PostgreSQL and Redis, with demo data.

PostgreSQL's data lives in `.local/` (kept between runs); Redis starts empty, as it may in
production. Prints the demo accounts' credentials and the demo stream key, then serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
from pathlib import Path

import uvicorn
from sqlalchemy import select
from streamr_coordinator.app import create_app
from streamr_coordinator.db import make_engine, make_sessionmaker
from streamr_coordinator.migrate import upgrade_to_head
from streamr_coordinator.models import Node, Role, Stream, User
from streamr_coordinator.observability import configure_logging
from streamr_coordinator.security import STREAM_KEY_PREFIX, hash_password, keyed_hash, new_secret
from streamr_coordinator.settings import Settings

from devenv import services

ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - local demo accounts only


def _local_secret(state: Path, name: str) -> str:
    """Secrets for the local run, made once and kept in .local/ so tokens survive restarts."""
    path = state / f"{name}.secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def _seed(settings: Settings) -> str | None:
    """Demo admin, streamer (with a stream) and friend (with a node); the new stream key or None."""
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as session:
            if await session.scalar(select(User).where(User.username == "demo-admin")):
                return None
            users = {
                role: User(
                    username=f"demo-{role}",
                    password_hash=hash_password(DEMO_PASSWORD),
                    role=role.value,
                )
                for role in Role
            }
            session.add_all(users.values())
            await session.flush()
            key = new_secret(STREAM_KEY_PREFIX)
            session.add(
                Stream(
                    owner_id=users[Role.STREAMER].id,
                    name="demo-show",
                    title="Demo show",
                    key_hash=keyed_hash(settings.token_pepper.get_secret_value(), key),
                    payout_pool_minor=1000,
                )
            )
            session.add(Node(owner_id=users[Role.FRIEND].id, name="demo-node", capacity_viewers=20))
            await session.commit()
            return key
    finally:
        await engine.dispose()


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
        base = f"http://127.0.0.1:{args.port}"
        print(f"\nStreamrP2P coordinator on {base}  (API docs: {base}/docs)")
        print(f"  demo accounts: demo-admin, demo-streamer, demo-friend; password {DEMO_PASSWORD}")
        if key:
            print(f"  demo stream 'demo-show' key: {key}  (shown once; rotate it in the API)")
        print(f"  SRS hook URL: {base}/hooks/srs/on_publish?secret=<.local/hook-secret.secret>")
        print("  Ctrl-C stops the server, PostgreSQL and Redis.\n")
        configure_logging(os.environ.get("STREAMR_LOG_LEVEL", "INFO"))
        uvicorn.run(
            create_app(settings),
            host="127.0.0.1",
            port=args.port,
            log_config=None,
            access_log=False,
        )


if __name__ == "__main__":
    main()

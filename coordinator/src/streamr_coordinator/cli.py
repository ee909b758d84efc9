"""`streamr-coordinator migrate | serve | create-admin`: what the container entrypoint runs."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from typing import NoReturn

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from .settings import Settings


def _settings() -> Settings:
    try:
        return Settings()  # type: ignore[call-arg]  # from the environment
    except ValidationError as error:
        problems = "; ".join(
            f"STREAMR_{'_'.join(str(p) for p in e['loc']).upper() or '(settings)'}: {e['msg']}"
            for e in error.errors()
        )
        sys.exit(f"streamr-coordinator: configuration error: {problems}")


def _migrate(_: argparse.Namespace) -> None:
    from .migrate import upgrade_to_head

    upgrade_to_head(_settings().sqlalchemy_url)


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from .observability import configure_logging

    _settings()  # fail fast, with a clear message, before forking workers
    configure_logging(os.environ.get("STREAMR_LOG_LEVEL", "INFO"))
    uvicorn.run(
        "streamr_coordinator.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,  # X-Forwarded-For is judged by the app against trusted proxies
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=20,
    )


def _create_admin(args: argparse.Namespace) -> None:
    from sqlalchemy import select

    from .db import make_engine, make_sessionmaker
    from .models import Role, User
    from .security import hash_password

    password = os.environ.get("STREAMR_NEW_ADMIN_PASSWORD") or getpass.getpass("password: ")
    if len(password) < 10:
        sys.exit("password: at least 10 characters")

    async def create() -> None:
        engine = make_engine(_settings())
        async with make_sessionmaker(engine)() as session:
            if await session.scalar(select(User).where(User.username == args.username)):
                sys.exit(f"user {args.username!r} exists")
            session.add(
                User(username=args.username, password_hash=hash_password(password), role=Role.ADMIN)
            )
            await session.commit()
        await engine.dispose()

    asyncio.run(create())


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line naming the program, like every other error of this command."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> None:
    parser = _Parser(prog="streamr-coordinator")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "migrate", help="upgrade the database (safe from many instances)"
    ).set_defaults(run=_migrate)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default=os.environ.get("STREAMR_HOST", "0.0.0.0"))  # noqa: S104
    serve.add_argument("--port", type=int, default=int(os.environ.get("STREAMR_PORT", "8000")))
    serve.add_argument(
        "--workers", type=int, default=int(os.environ.get("STREAMR_WEB_CONCURRENCY", "1"))
    )
    serve.set_defaults(run=_serve)
    admin = commands.add_parser("create-admin", help="create an admin (password from stdin/env)")
    admin.add_argument("username")
    admin.set_defaults(run=_create_admin)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except OperationalError as error:
        # e.g. the database is not up yet: one line, so the entrypoint's log says why it stopped.
        reason = str(error.orig or error).strip().splitlines()[0]
        sys.exit(f"streamr-coordinator {args.command}: cannot reach the database: {reason}")


if __name__ == "__main__":
    main()

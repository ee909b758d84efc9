"""The async engine and session factory; one per process, created by the app's lifespan."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from .settings import Settings


def make_engine(settings: Settings, *, durable: bool = True) -> AsyncEngine:
    """A pool of connections. `durable=False` commits asynchronously (no WAL flush wait): for
    state that is soft or re-reported anyway (live flags, viewer sessions, last_seen), where a
    database crash may lose the last fraction of a second but never corrupts anything.

    No pre-ping: it would cost a round trip per checkout; a connection that died is discarded
    on its first error instead (`pool_recycle` keeps them fresh).
    """
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_recycle=1800,
        connect_args={} if durable else {"options": "-c synchronous_commit=off"},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)

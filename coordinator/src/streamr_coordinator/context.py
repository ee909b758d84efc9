"""What every request handler needs, built once per process by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from .cache import Cache
from .db import DriverPool, make_sessionmaker
from .domain.beats import BeatMemory
from .domain.last_seen import LastSeenBuffer
from .domain.revocations import RevocationWatch
from .edge_dns import EdgeRecords
from .mesh import HeadscaleClient
from .settings import Settings


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    engine: AsyncEngine
    # Async-commit pool for soft state off the hooks (last_seen, revocations): see db.make_engine.
    soft_engine: AsyncEngine
    # The SRS hooks' own connections (soft state too, autocommit): see db.DriverPool.
    hook_connections: DriverPool
    # Durable, every statement its own transaction: report ingest (one function call a batch).
    autocommit_engine: AsyncEngine
    sessions: async_sessionmaker
    cache: Cache
    mesh: HeadscaleClient | None = None  # None: no Headscale configured
    edge_records: EdgeRecords | None = None  # None: no edge domain configured
    # What this process knows of recent revocations (see domain/revocations.py).
    revocations: RevocationWatch = field(default_factory=RevocationWatch)
    # Node tokens and beats this process remembers (domain/beats.py).
    beats: BeatMemory = field(default_factory=BeatMemory)
    # Heartbeats this process has not written to `nodes.last_seen` yet (domain/last_seen.py).
    last_seen: LastSeenBuffer = field(default_factory=LastSeenBuffer)
    # When this process started: a platform just woken counts as active from here (idle pause).
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def single_engine(cls, settings: Settings, engine: AsyncEngine) -> AppContext:
        """A context whose engines are all `engine`, for domain code run outside the app (scripts,
        tests); the hooks' connections open only if a hook runs."""
        return cls(
            settings,
            engine,
            engine,
            DriverPool(settings),
            engine,
            make_sessionmaker(engine),
            Cache(None),
        )

    @property
    def pepper(self) -> str:
        return self.settings.token_pepper.get_secret_value()

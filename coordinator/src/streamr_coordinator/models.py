"""The tables. PostgreSQL is the only copy of everything; Redis only caches and counts."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

FULL_TRUST = 10_000  # trust is in basis points: 10 000 = 100 %


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Role(enum.StrEnum):
    ADMIN = "admin"
    STREAMER = "streamer"
    FRIEND = "friend"


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'streamer', 'friend')", name="role"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = _now()


class ApiToken(Base):
    """An opaque bearer token, stored only as a keyed hash; a node token also names its node, and
    a scoped token (`scope`) can do only that one thing (see `api.deps.require_user`)."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint("scope IN ('node-setup')", name="scope"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scope: Mapped[str | None] = mapped_column(String(32))


class TokenRevocation(Base):
    """A token revoked recently. Every instance reads these every second and will not take a
    cached lookup of one as valid (see `domain.revocations`); it outlives the token's own row,
    which deleting a node removes."""

    __tablename__ = "token_revocations"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class Stream(Base):
    """A stream. Deleting one only marks it (`deleted_at`): its accepted contributions stay payable,
    and its name is free again for a new, different stream."""

    __tablename__ = "streams"
    __table_args__ = (
        CheckConstraint("bitrate_kbps > 0", name="bitrate_positive"),
        CheckConstraint("payout_pool_minor >= 0", name="pool_not_negative"),
        Index(
            "uq_streams_name_current",
            "name",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_streams_name", "name"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200), server_default="")
    enabled: Mapped[bool] = mapped_column(server_default=text("true"))
    # An admin disabled it: only an admin lifts this (the owner's `enabled` cannot).
    moderated: Mapped[bool] = mapped_column(server_default=text("false"))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    bitrate_kbps: Mapped[int] = mapped_column(Integer, server_default=text("4000"))
    # The pool as last set, per payout period, in minor units; in force from `payout_pool_from`
    # (NULL: since the stream was created). `stream_pools` holds the history the payouts use.
    payout_pool_minor: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    payout_pool_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_live: Mapped[bool] = mapped_column(server_default=text("false"))
    live_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StreamPool(Base):
    """Which pool pays a stream's periods: the row in force when a period opens pays it. A trigger
    writes the first row (from -infinity) when a stream is created; a change starts at the next
    period boundary, so a period's terms never change once it has begun."""

    __tablename__ = "stream_pools"
    __table_args__ = (CheckConstraint("pool_minor >= 0", name="pool_not_negative"),)

    stream_id: Mapped[int] = mapped_column(
        ForeignKey("streams.id", ondelete="CASCADE"), primary_key=True
    )
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    pool_minor: Mapped[int] = mapped_column(BigInteger)


class Broadcast(Base):
    """One publish of a stream at the origin (`on_publish` .. `on_unpublish`, or until the origin
    went silent). Credit for relaying counts only inside these."""

    __tablename__ = "broadcasts"
    __table_args__ = (
        Index(
            "uq_broadcasts_open",
            "stream_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_broadcasts_stream_started", "stream_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"))
    server_id: Mapped[str] = mapped_column(String(64))
    service_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = _now()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EdgePull(Base):
    """A friend's edge pulling a stream from the origin (the origin's `on_play`/`on_stop` for a
    connection whose `param` carries a ticket issued for that node). Credit counts only inside."""

    __tablename__ = "edge_pulls"
    __table_args__ = (
        Index(
            "uq_edge_pulls_open",
            "stream_id",
            "client_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_edge_pulls_node_window", "node_id", "stream_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    server_id: Mapped[str] = mapped_column(String(64))
    service_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = _now()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OriginHeartbeat(Base):
    """The SRS origin's own heartbeat, per SRS process (`service_id` is new at every start): when
    a process falls silent, what it was serving is over."""

    __tablename__ = "origin_heartbeats"

    server_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen: Mapped[datetime] = _now()
    last_seen: Mapped[datetime] = _now()


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_nodes_owner_name"),
        CheckConstraint("capacity_viewers > 0", name="capacity_positive"),
        CheckConstraint(f"trust_bp BETWEEN 0 AND {FULL_TRUST}", name="trust_range"),
        CheckConstraint("tls_port BETWEEN 1 AND 65535", name="tls_port_range"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    capacity_viewers: Mapped[int] = mapped_column(Integer)
    trust_bp: Mapped[int] = mapped_column(Integer, server_default=text(str(FULL_TRUST)))
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The Headscale pre-auth key it was given: how its mesh node is found when it is removed.
    mesh_key_id: Mapped[int | None] = mapped_column(BigInteger)
    # Where viewers play from this edge (its mesh address), as the node itself reported it.
    play_base_url: Mapped[str | None] = mapped_column(String(200))
    # The port where it serves HTTPS for its edge name (domain/edge_names.py), if it does.
    tls_port: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _now()


class ViewerSession(Base):
    """One viewer connection as SRS reported it (`on_play` .. `on_stop`), per serving server.

    `node_id` NULL means the origin served it. A session still open has `ended_at` NULL; the
    partial unique index makes a repeated `on_play` for the same connection a no-op. An edge's
    session carries the nonce of the ticket it was opened with (one session per ticket). An HLS
    viewer of the origin is one session per stream and address (`hls`), whatever SRS's sessions.
    """

    __tablename__ = "viewer_sessions"
    __table_args__ = (
        Index(
            "uq_viewer_sessions_open",
            "stream_id",
            text("coalesce(node_id, 0)"),
            "client_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_viewer_sessions_node_window", "node_id", "stream_id", "started_at"),
        Index(
            "uq_viewer_sessions_ticket",
            "ticket",
            unique=True,
            postgresql_where=text("ticket IS NOT NULL"),
        ),
        Index(
            "uq_viewer_sessions_open_hls",
            "stream_id",
            "client_ip",
            unique=True,
            postgresql_where=text("hls AND node_id IS NULL AND ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"))
    node_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    server_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str] = mapped_column(String(45))
    service_id: Mapped[str] = mapped_column(String(64), server_default="")
    ticket: Mapped[str | None] = mapped_column(String(32))
    hls: Mapped[bool] = mapped_column(server_default=text("false"))
    started_at: Mapped[datetime] = _now()
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ContributionReport(Base):
    """What a node says it served of one stream in one interval, and how much of it we believe.

    Unique per (node, stream, interval start): a retried report is a duplicate, never a second
    count. `received_at` (set by the database when the report is accepted) decides the payout
    period, so a report delayed by an outage is paid in a later period rather than lost.
    """

    __tablename__ = "contribution_reports"
    __table_args__ = (
        UniqueConstraint(
            "node_id", "stream_id", "interval_start", name="uq_contribution_reports_interval"
        ),
        CheckConstraint("interval_end > interval_start", name="interval_ordered"),
        CheckConstraint(
            "bytes_served >= 0 AND verified_bytes BETWEEN 0 AND bytes_served", name="bytes_bounded"
        ),
        CheckConstraint("viewers >= 0", name="viewers_not_negative"),
        Index("ix_contribution_reports_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    stream_id: Mapped[int] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"))
    interval_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    interval_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    bytes_served: Mapped[int] = mapped_column(BigInteger)
    verified_bytes: Mapped[int] = mapped_column(BigInteger)
    viewers: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.statement_timestamp()
    )


class PayoutSchedule(Base):
    """The payout period length (one row), in the database because the triggers that keep
    `payout_totals` group by it; the coordinator sets it from its settings at start."""

    __tablename__ = "payout_schedule"
    __table_args__ = (
        CheckConstraint("id", name="one_row"),
        CheckConstraint(
            "period_seconds BETWEEN 60 AND 86400 AND 86400 % period_seconds = 0",
            name="divides_a_day",
        ),
    )

    id: Mapped[bool] = mapped_column(primary_key=True, server_default=text("true"))
    period_seconds: Mapped[int] = mapped_column(Integer)


class PayoutTotal(Base):
    """Verified bytes per (period, stream, node) of the reports received in that period, kept by
    statement triggers on `contribution_reports` in the transaction that changes them, so the
    payout cycle reads one row per contributing (stream, node) instead of every report.

    Plain ids, no foreign keys: a node's deletion removes its reports, and their trigger its totals.
    """

    __tablename__ = "payout_totals"
    __table_args__ = (CheckConstraint("verified_bytes >= 0 AND reports >= 0", name="not_negative"),)

    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    stream_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    node_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    verified_bytes: Mapped[int] = mapped_column(BigInteger)
    reports: Mapped[int] = mapped_column(Integer)


class PayoutPeriod(Base):
    """A paid period. Its primary key is what makes a period pay once: the cycle inserts this row
    and the ledger entries in one statement, and a second runner finds the row and does nothing."""

    __tablename__ = "payout_periods"
    __table_args__ = (CheckConstraint("period_end > period_start", name="period_ordered"),)

    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), unique=True)
    computed_at: Mapped[datetime] = _now()


class PayoutRecipient(Base):
    """A user paid in a period: what holds the user (no deletion while paid) and the period for
    the ledger, one row per (period, user) instead of one foreign key check per entry. Append-only
    like the ledger; a statement trigger refuses a ledger entry without its recipient row."""

    __tablename__ = "payout_recipients"

    # User first: the primary key is also what a user's deletion looks them up by.
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True
    )
    period_start: Mapped[datetime] = mapped_column(
        ForeignKey("payout_periods.period_start", ondelete="RESTRICT"), primary_key=True
    )


class LedgerEntry(Base):
    """A credit to a node's owner for relaying a stream in a period. Append-only (a trigger refuses
    UPDATE and DELETE); balances and histories are sums over these rows.

    Stream and node ids are kept as plain values, not foreign keys, so deleting a node or a stream
    never rewrites what was paid. The user and the period are held through `payout_recipients`.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        Index("ix_ledger_entries_user_period", "user_id", "period_start"),
        Index("ix_ledger_entries_stream_period", "stream_id", "period_start"),
    )

    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    stream_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    node_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    verified_bytes: Mapped[int] = mapped_column(BigInteger)
    trust_bp: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()


class Invite(Base):
    """A streamer's invitation to watch through friends' edges: each opening mints one
    single-use `tag:viewer` mesh key. The code is stored only as a keyed hash, like tokens."""

    __tablename__ = "invites"
    __table_args__ = (
        CheckConstraint("max_uses > 0", name="max_uses_positive"),
        CheckConstraint("uses BETWEEN 0 AND max_uses", name="uses_within_max"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # NULL: every stream of the owner.
    stream_id: Mapped[int | None] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class InviteKey(Base):
    """A viewer key minted by opening an invite: the Headscale key id, so that revoking the
    invite can remove the machines that joined with it."""

    __tablename__ = "invite_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    invite_id: Mapped[int] = mapped_column(ForeignKey("invites.id", ondelete="CASCADE"), index=True)
    mesh_key_id: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()

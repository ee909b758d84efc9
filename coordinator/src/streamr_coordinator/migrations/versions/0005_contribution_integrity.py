"""contribution integrity: broadcasts, edge pulls, tickets, pool history, soft delete, moderation,
the origin's heartbeat

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# A new stream's first pool is in force from the beginning of time (nothing of it can have been
# paid before); later changes are written by the coordinator from the next period boundary.
FIRST_POOL = """
CREATE FUNCTION record_first_pool() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stream_pools (stream_id, effective_from, pool_minor)
    VALUES (NEW.id, '-infinity', NEW.payout_pool_minor);
    RETURN NULL;
END $$;
CREATE TRIGGER streams_first_pool AFTER INSERT ON streams
    FOR EACH ROW EXECUTE FUNCTION record_first_pool();
"""
# How many seconds a set of time ranges covers (report verification intersects sessions, pulls and
# broadcasts as multiranges).
RANGE_SECONDS = """
CREATE FUNCTION range_seconds(ranges tstzmultirange) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(sum(extract(epoch FROM upper(r) - lower(r))), 0)::double precision
    FROM unnest(ranges) AS r
$$;
"""


def _now() -> sa.Column:
    return sa.Column(
        "started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.add_column(
        "streams",
        sa.Column("moderated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("streams", sa.Column("payout_pool_from", sa.DateTime(timezone=True)))
    op.add_column("streams", sa.Column("deleted_at", sa.DateTime(timezone=True)))
    op.drop_constraint("uq_streams_name", "streams", type_="unique")
    op.create_index(
        "uq_streams_name_current",
        "streams",
        ["name"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index("ix_streams_name", "streams", ["name"])

    op.create_table(
        "stream_pools",
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pool_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("pool_minor >= 0", name=op.f("ck_stream_pools_pool_not_negative")),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["streams.id"],
            name=op.f("fk_stream_pools_stream_id_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("stream_id", "effective_from", name=op.f("pk_stream_pools")),
    )
    op.execute(
        "INSERT INTO stream_pools (stream_id, effective_from, pool_minor) "
        "SELECT id, '-infinity', payout_pool_minor FROM streams"
    )
    op.execute(FIRST_POOL)
    op.execute(RANGE_SECONDS)

    op.create_table(
        "broadcasts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.Column("server_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        _now(),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["streams.id"],
            name=op.f("fk_broadcasts_stream_id_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    op.create_index(
        "uq_broadcasts_open",
        "broadcasts",
        ["stream_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_index("ix_broadcasts_stream_started", "broadcasts", ["stream_id", "started_at"])
    # A stream live now gets a broadcast from when it went live.
    op.execute(
        "INSERT INTO broadcasts (stream_id, server_id, service_id, client_id, started_at) "
        "SELECT id, '', '', '', coalesce(live_since, now()) FROM streams WHERE is_live"
    )

    op.create_table(
        "edge_pulls",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("server_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        _now(),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_edge_pulls_node_id_nodes"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["streams.id"],
            name=op.f("fk_edge_pulls_stream_id_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_edge_pulls")),
    )
    op.create_index(
        "uq_edge_pulls_open",
        "edge_pulls",
        ["stream_id", "client_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_index(
        "ix_edge_pulls_node_window", "edge_pulls", ["node_id", "stream_id", "started_at"]
    )

    op.create_table(
        "origin_heartbeats",
        sa.Column("server_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column(
            "first_seen",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("server_id", "service_id", name=op.f("pk_origin_heartbeats")),
    )

    op.add_column(
        "viewer_sessions",
        sa.Column("service_id", sa.String(length=64), server_default="", nullable=False),
    )
    op.add_column("viewer_sessions", sa.Column("ticket", sa.String(length=32), nullable=True))
    op.add_column(
        "viewer_sessions",
        sa.Column("hls", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_index(
        "uq_viewer_sessions_ticket",
        "viewer_sessions",
        ["ticket"],
        unique=True,
        postgresql_where=sa.text("ticket IS NOT NULL"),
    )
    op.create_index(
        "uq_viewer_sessions_open_hls",
        "viewer_sessions",
        ["stream_id", "client_ip"],
        unique=True,
        postgresql_where=sa.text("hls AND node_id IS NULL AND ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_viewer_sessions_open_hls", table_name="viewer_sessions")
    op.drop_index("uq_viewer_sessions_ticket", table_name="viewer_sessions")
    op.drop_column("viewer_sessions", "hls")
    op.drop_column("viewer_sessions", "ticket")
    op.drop_column("viewer_sessions", "service_id")
    op.drop_table("origin_heartbeats")
    op.drop_index("ix_edge_pulls_node_window", table_name="edge_pulls")
    op.drop_index("uq_edge_pulls_open", table_name="edge_pulls")
    op.drop_table("edge_pulls")
    op.drop_index("ix_broadcasts_stream_started", table_name="broadcasts")
    op.drop_index("uq_broadcasts_open", table_name="broadcasts")
    op.drop_table("broadcasts")
    op.execute("DROP FUNCTION range_seconds(tstzmultirange)")
    op.execute("DROP TRIGGER streams_first_pool ON streams")
    op.execute("DROP FUNCTION record_first_pool()")
    op.drop_table("stream_pools")
    # Streams deleted since the upgrade are gone for good: a downgrade cannot keep them.
    op.execute("DELETE FROM streams WHERE deleted_at IS NOT NULL")
    op.drop_index("ix_streams_name", table_name="streams")
    op.drop_index("uq_streams_name_current", table_name="streams")
    op.create_unique_constraint(op.f("uq_streams_name"), "streams", ["name"])
    op.drop_column("streams", "deleted_at")
    op.drop_column("streams", "payout_pool_from")
    op.drop_column("streams", "moderated")

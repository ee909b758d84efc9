"""contribution reports, payout periods, append-only ledger

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# What was paid stays paid: corrections are new entries, never edits.
APPEND_ONLY = """
CREATE FUNCTION refuse_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON ledger_entries FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_change();
CREATE TRIGGER payout_periods_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON payout_periods FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_change();
"""


def upgrade() -> None:
    op.create_table(
        "payout_periods",
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "period_end > period_start", name=op.f("ck_payout_periods_period_ordered")
        ),
        sa.PrimaryKeyConstraint("period_start", name=op.f("pk_payout_periods")),
        sa.UniqueConstraint("period_end", name=op.f("uq_payout_periods_period_end")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("verified_bytes", sa.BigInteger(), nullable=False),
        sa.Column("trust_bp", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_ledger_entries_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["period_start"],
            ["payout_periods.period_start"],
            name=op.f("fk_ledger_entries_period_start_payout_periods"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_ledger_entries_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("period_start", "stream_id", "node_id", name="uq_ledger_entries_share"),
    )
    op.create_index(
        "ix_ledger_entries_stream_period", "ledger_entries", ["stream_id", "period_start"]
    )
    op.create_index("ix_ledger_entries_user_period", "ledger_entries", ["user_id", "period_start"])
    op.create_table(
        "contribution_reports",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bytes_served", sa.BigInteger(), nullable=False),
        sa.Column("verified_bytes", sa.BigInteger(), nullable=False),
        sa.Column("viewers", sa.Integer(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "bytes_served >= 0 AND verified_bytes BETWEEN 0 AND bytes_served",
            name=op.f("ck_contribution_reports_bytes_bounded"),
        ),
        sa.CheckConstraint(
            "interval_end > interval_start",
            name=op.f("ck_contribution_reports_interval_ordered"),
        ),
        sa.CheckConstraint(
            "viewers >= 0", name=op.f("ck_contribution_reports_viewers_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["nodes.id"],
            name=op.f("fk_contribution_reports_node_id_nodes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["streams.id"],
            name=op.f("fk_contribution_reports_stream_id_streams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contribution_reports")),
        sa.UniqueConstraint(
            "node_id", "stream_id", "interval_start", name="uq_contribution_reports_interval"
        ),
    )
    op.create_index("ix_contribution_reports_received_at", "contribution_reports", ["received_at"])
    op.execute(APPEND_ONLY)


def downgrade() -> None:
    op.execute("DROP TRIGGER payout_periods_append_only ON payout_periods")
    op.execute("DROP TRIGGER ledger_entries_append_only ON ledger_entries")
    op.execute("DROP FUNCTION refuse_ledger_change()")
    op.drop_index("ix_contribution_reports_received_at", table_name="contribution_reports")
    op.drop_table("contribution_reports")
    op.drop_index("ix_ledger_entries_user_period", table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_stream_period", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_table("payout_periods")

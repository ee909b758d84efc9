"""the ledger's users held by payout_recipients (one row per paid user and period), not per entry

Revision ID: 0010
Revises: 0009

The ledger's two foreign keys were checked once per entry: 20,000 checks for a period of 10,000
(stream, node) entries, a third of the payout cycle. A paid user is now held by one row per
(period, user) in `payout_recipients`, with declarative foreign keys to `users` and
`payout_periods` (RESTRICT: what PostgreSQL does for concurrent deletes stays its job), and one
statement-level check that every new ledger entry has its recipient row. Recipients and periods
are append-only, so a row that check saw can never go away: the check needs no lock and holds at
any isolation level. The surrogate `id` (a sequence and an index written per entry, read by
nothing) goes; (period_start, stream_id, node_id) is the primary key it was already unique as.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CHECK_RECIPIENTS = """
CREATE FUNCTION ledger_entries_check_recipients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT FROM (SELECT DISTINCT period_start, user_id FROM added) a
        LEFT JOIN payout_recipients r USING (period_start, user_id)
        WHERE r.user_id IS NULL
    ) THEN
        RAISE EXCEPTION 'ledger_entries_recipient: a ledger entry without its payout_recipients '
            'row (its user is not held as paid in its period)'
            USING ERRCODE = 'foreign_key_violation',
                CONSTRAINT = 'ledger_entries_recipient';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ledger_entries_recipient AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_check_recipients();
CREATE TRIGGER payout_recipients_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
    ON payout_recipients FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_change();
"""


def upgrade() -> None:
    op.create_table(
        "payout_recipients",
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_start"],
            ["payout_periods.period_start"],
            name=op.f("fk_payout_recipients_period_start_payout_periods"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_payout_recipients_user_id_users"),
            ondelete="RESTRICT",
        ),
        # User first: a user's deletion asks whether any row holds them (a period's deletion is
        # refused before its foreign key is asked), so one index serves both.
        sa.PrimaryKeyConstraint("user_id", "period_start", name=op.f("pk_payout_recipients")),
    )
    op.execute("""
        INSERT INTO payout_recipients (period_start, user_id)
        SELECT DISTINCT period_start, user_id FROM ledger_entries
    """)
    op.drop_constraint("fk_ledger_entries_user_id_users", "ledger_entries", type_="foreignkey")
    op.drop_constraint(
        "fk_ledger_entries_period_start_payout_periods", "ledger_entries", type_="foreignkey"
    )
    op.drop_constraint("pk_ledger_entries", "ledger_entries", type_="primary")
    op.drop_constraint("uq_ledger_entries_share", "ledger_entries", type_="unique")
    op.drop_column("ledger_entries", "id")
    op.create_primary_key(
        "pk_ledger_entries", "ledger_entries", ["period_start", "stream_id", "node_id"]
    )
    op.execute(CHECK_RECIPIENTS)


def downgrade() -> None:
    op.execute("DROP TRIGGER payout_recipients_append_only ON payout_recipients")
    op.execute("DROP TRIGGER ledger_entries_recipient ON ledger_entries")
    op.execute("DROP FUNCTION ledger_entries_check_recipients()")
    op.drop_constraint("pk_ledger_entries", "ledger_entries", type_="primary")
    op.create_unique_constraint(
        "uq_ledger_entries_share", "ledger_entries", ["period_start", "stream_id", "node_id"]
    )
    op.execute("ALTER TABLE ledger_entries ADD COLUMN id BIGSERIAL")
    op.create_primary_key("pk_ledger_entries", "ledger_entries", ["id"])
    op.create_foreign_key(
        "fk_ledger_entries_period_start_payout_periods",
        "ledger_entries",
        "payout_periods",
        ["period_start"],
        ["period_start"],
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        "fk_ledger_entries_user_id_users",
        "ledger_entries",
        "users",
        ["user_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.drop_table("payout_recipients")

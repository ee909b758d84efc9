"""running payout totals per (period, stream, node), kept by triggers on contribution_reports

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The period a moment falls in, as `domain.payouts.period_containing` computes it.
PERIOD_START = """
CREATE FUNCTION payout_period_start(moment timestamptz, period_seconds integer)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_timestamp(floor(extract(epoch FROM moment) / period_seconds) * period_seconds)
$$;
"""

# Statement-level triggers with transition tables: a batch of 60 reports is one upsert of one
# row, in the transaction that stores the reports; rows that ON CONFLICT DO NOTHING skipped are
# not in `added`, so a duplicate never counts twice. A total whose last report is gone goes too.
APPLY = """
CREATE FUNCTION payout_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE payout_totals t
        SET verified_bytes = t.verified_bytes - d.verified_bytes, reports = t.reports - d.reports
        FROM (
            SELECT payout_period_start(r.received_at, s.period_seconds) AS period_start,
                r.stream_id, r.node_id, sum(r.verified_bytes) AS verified_bytes,
                count(*) AS reports
            FROM removed r CROSS JOIN payout_schedule s
            GROUP BY 1, 2, 3
        ) d
        WHERE t.period_start = d.period_start AND t.stream_id = d.stream_id
          AND t.node_id = d.node_id;
        DELETE FROM payout_totals t USING removed r
        WHERE t.reports = 0 AND t.stream_id = r.stream_id AND t.node_id = r.node_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO payout_totals AS t (period_start, stream_id, node_id, verified_bytes, reports)
        SELECT payout_period_start(r.received_at, s.period_seconds), r.stream_id, r.node_id,
            sum(r.verified_bytes), count(*)
        FROM added r CROSS JOIN payout_schedule s
        GROUP BY 1, 2, 3
        ON CONFLICT (period_start, stream_id, node_id) DO UPDATE
        SET verified_bytes = t.verified_bytes + EXCLUDED.verified_bytes,
            reports = t.reports + EXCLUDED.reports;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER contribution_reports_totals_insert AFTER INSERT ON contribution_reports
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION payout_totals_apply();
CREATE TRIGGER contribution_reports_totals_update AFTER UPDATE ON contribution_reports
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION payout_totals_apply();
CREATE TRIGGER contribution_reports_totals_delete AFTER DELETE ON contribution_reports
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION payout_totals_apply();
CREATE FUNCTION payout_totals_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE payout_totals;
    RETURN NULL;
END $$;
CREATE TRIGGER contribution_reports_totals_truncate AFTER TRUNCATE ON contribution_reports
    FOR EACH STATEMENT EXECUTE FUNCTION payout_totals_clear();
"""

# The period length lives in the database because the triggers need it. A coordinator started
# with another STREAMR_PAYOUT_PERIOD_SECONDS changes it here, under the payout lock (no report batch
# or payout cycle runs meanwhile), and regroups what is not paid yet. The change must not split a
# period: the last paid period must end on a boundary of the new length.
SET_PERIOD = """
CREATE FUNCTION set_payout_period_seconds(seconds integer, payout_lock bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    paid_until timestamptz;
BEGIN
    IF (SELECT period_seconds FROM payout_schedule) = seconds THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(payout_lock);
    paid_until := coalesce((SELECT max(period_end) FROM payout_periods), '-infinity');
    IF paid_until <> '-infinity' AND payout_period_start(paid_until, seconds) <> paid_until THEN
        RAISE EXCEPTION 'payout periods are paid until %, which is not a boundary of % s periods',
            paid_until, seconds USING ERRCODE = 'check_violation';
    END IF;
    UPDATE payout_schedule SET period_seconds = seconds WHERE period_seconds <> seconds;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM payout_totals WHERE period_start >= paid_until;
    INSERT INTO payout_totals (period_start, stream_id, node_id, verified_bytes, reports)
    SELECT payout_period_start(received_at, seconds), stream_id, node_id, sum(verified_bytes),
        count(*)
    FROM contribution_reports WHERE received_at >= paid_until
    GROUP BY 1, 2, 3;
    RETURN true;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "payout_schedule",
        sa.Column("id", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("period_seconds", sa.Integer(), nullable=False),
        sa.CheckConstraint("id", name=op.f("ck_payout_schedule_one_row")),
        sa.CheckConstraint(
            "period_seconds BETWEEN 60 AND 86400 AND 86400 % period_seconds = 0",
            name=op.f("ck_payout_schedule_divides_a_day"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_schedule")),
    )
    op.execute("INSERT INTO payout_schedule (id, period_seconds) VALUES (true, 3600)")
    op.create_table(
        "payout_totals",
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("verified_bytes", sa.BigInteger(), nullable=False),
        sa.Column("reports", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "verified_bytes >= 0 AND reports >= 0", name=op.f("ck_payout_totals_not_negative")
        ),
        sa.PrimaryKeyConstraint(
            "period_start", "stream_id", "node_id", name=op.f("pk_payout_totals")
        ),
    )
    op.execute(PERIOD_START)
    op.execute(APPLY)
    op.execute(SET_PERIOD)
    # Reports already stored (none are lost by the upgrade): their totals, at the default length.
    op.execute("""
        INSERT INTO payout_totals (period_start, stream_id, node_id, verified_bytes, reports)
        SELECT payout_period_start(received_at, 3600), stream_id, node_id, sum(verified_bytes),
            count(*)
        FROM contribution_reports GROUP BY 1, 2, 3
    """)


def downgrade() -> None:
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER contribution_reports_totals_{event} ON contribution_reports")
    op.execute("DROP FUNCTION set_payout_period_seconds(integer, bigint)")
    op.execute("DROP FUNCTION payout_totals_clear()")
    op.execute("DROP FUNCTION payout_totals_apply()")
    op.execute("DROP FUNCTION payout_period_start(timestamptz, integer)")
    op.drop_table("payout_totals")
    op.drop_table("payout_schedule")

"""token scopes (the node-setup token) and the revocations a cached lookup must not outlive

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("scope", sa.String(length=32), nullable=True))
    op.create_check_constraint("scope", "api_tokens", "scope IN ('node-setup')")
    op.create_table(
        "token_revocations",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column(
            "revoked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_token_revocations")),
    )
    op.create_index(
        op.f("ix_token_revocations_revoked_at"), "token_revocations", ["revoked_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_token_revocations_revoked_at"), table_name="token_revocations")
    op.drop_table("token_revocations")
    op.drop_constraint("ck_api_tokens_scope", "api_tokens", type_="check")
    op.drop_column("api_tokens", "scope")

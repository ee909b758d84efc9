"""nodes tell where viewers play from them

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("nodes", sa.Column("play_base_url", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("nodes", "play_base_url")

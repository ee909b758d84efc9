"""nodes remember the Headscale pre-auth key they were given

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("nodes", sa.Column("mesh_key_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("nodes", "mesh_key_id")

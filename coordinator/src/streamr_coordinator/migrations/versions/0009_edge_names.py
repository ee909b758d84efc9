"""nodes say the port where they serve HTTPS for their edge name

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("nodes", sa.Column("tls_port", sa.Integer(), nullable=True))
    op.create_check_constraint("tls_port_range", "nodes", "tls_port BETWEEN 1 AND 65535")


def downgrade() -> None:
    op.drop_constraint("ck_nodes_tls_port_range", "nodes", type_="check")
    op.drop_column("nodes", "tls_port")

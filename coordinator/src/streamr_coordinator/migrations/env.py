"""Alembic environment: always given an open connection by `streamr_coordinator.migrations`."""

from __future__ import annotations

from alembic import context
from streamr_coordinator.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()

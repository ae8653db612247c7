"""Alerts: an index on (updated_at, id) for the Elasticsearch alerts mirror, which
reads what changed since its cursor every few seconds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_alerts_updated_at_id", "alerts", ["updated_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_updated_at_id", table_name="alerts")

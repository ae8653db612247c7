"""Alerts: the retro-hunt run that opened an alert.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, so existing rows (all live alerts) need no value and SQLite can add
    # the column in place.
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("hunt_id", sa.String(36), nullable=True))
    op.create_index("ix_alerts_hunt_id", "alerts", ["hunt_id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_hunt_id", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("hunt_id")

"""Notifications: deliveries (one per alert, route and channel), the dispatcher's
cursor over new alerts and the alerts index it reads them by.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("route", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notification_deliveries"),
        sa.UniqueConstraint("alert_id", "route", "channel", name="uq_notification_deliveries_alert_route_channel"),
    )
    op.create_index("ix_notification_deliveries_status_next", "notification_deliveries",
                    ["status", "next_attempt_at"])
    op.create_index("ix_notification_deliveries_created_at_id", "notification_deliveries", ["created_at", "id"])
    op.create_table(
        "notification_cursor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_cursor"),
    )
    op.create_index("ix_alerts_created_at_id", "alerts", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_created_at_id", table_name="alerts")
    op.drop_table("notification_cursor")
    op.drop_table("notification_deliveries")

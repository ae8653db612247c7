"""Alerts table.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Types are spelled out rather than imported from soc.alerts.models: a migration
    # is a snapshot and must not change when the models do.
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("rule_id", sa.String(200), nullable=False),
        sa.Column("rule_title", sa.String(500), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), server_default="new", nullable=False),
        sa.Column("tactics", sa.JSON(), nullable=False),
        sa.Column("techniques", sa.JSON(), nullable=False),
        sa.Column("dedup_key", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_ids", sa.JSON(), nullable=False),
        sa.Column("key_fields", sa.JSON(), nullable=False),
        sa.Column("system_id", sa.String(100), nullable=False),
        sa.Column("agency_id", sa.String(100), nullable=True),
        sa.Column("level_gov", sa.String(16), nullable=True),
        sa.Column("classification", sa.Integer(), nullable=True),
        sa.Column("retro", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.String(1000), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_status_last_seen", "alerts", ["status", "last_seen"])
    op.create_index("ix_alerts_last_seen", "alerts", ["last_seen"])
    op.create_index("ix_alerts_first_seen", "alerts", ["first_seen"])
    op.create_index("ix_alerts_dedup_key_last_seen", "alerts", ["dedup_key", "last_seen"])
    op.create_index("ix_alerts_rule_id_last_seen", "alerts", ["rule_id", "last_seen"])
    op.create_index("ix_alerts_level_last_seen", "alerts", ["level", "last_seen"])
    op.create_index("ix_alerts_system_id_last_seen", "alerts", ["system_id", "last_seen"])
    op.create_index("ix_alerts_agency_id_last_seen", "alerts", ["agency_id", "last_seen"])
    op.create_index("ix_alerts_level_gov", "alerts", ["level_gov"])
    op.create_index("ix_alerts_classification", "alerts", ["classification"])


def downgrade() -> None:
    op.drop_table("alerts")

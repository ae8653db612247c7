"""Inventory (agencies, systems, log sources, ingest keys) and identity (users,
sessions and API tokens).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.String(100), nullable=True),
        sa.Column("former_names", sa.JSON(), nullable=False),
        sa.Column("merged_into", sa.String(100), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agencies"),
    )
    op.create_index("ix_agencies_parent_id", "agencies", ["parent_id"])
    op.create_table(
        "systems",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("agency_id", sa.String(100), nullable=False),
        sa.Column("level", sa.String(16), nullable=True),
        sa.Column("classification", sa.Integer(), nullable=False),
        sa.Column("owner", sa.JSON(), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("cidrs", sa.JSON(), nullable=False),
        sa.Column("profile", sa.String(60), nullable=True),
        sa.Column("first_log_at", _TS, nullable=True),
        sa.Column("decommissioned_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_systems"),
    )
    op.create_index("ix_systems_agency_id", "systems", ["agency_id"])
    op.create_table(
        "log_sources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("format", sa.String(40), nullable=False),
        sa.Column("transport", sa.String(20), nullable=False),
        sa.Column("expected_interval_s", sa.Integer(), nullable=True),
        sa.Column("learned_interval_s", sa.Integer(), nullable=True),
        sa.Column("interval_mode", sa.String(10), nullable=False),
        sa.Column("last_seen_at", _TS, nullable=True),
        sa.Column("events_total", sa.BigInteger(), nullable=False),
        sa.Column("parse_failures_total", sa.BigInteger(), nullable=False),
        sa.Column("silent_since", _TS, nullable=True),
        sa.Column("silent_alert_id", sa.String(36), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["system_id"], ["systems.id"], name="fk_log_sources_system_id_systems",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_log_sources"),
        sa.UniqueConstraint("system_id", "name", name="uq_log_sources_system_id_name"),
    )
    op.create_table(
        "ingest_keys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("system_id", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("prefix", sa.String(24), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("last_used_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(["system_id"], ["systems.id"], name="fk_ingest_keys_system_id_systems",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_keys"),
        sa.UniqueConstraint("digest", name="uq_ingest_keys_digest"),
    )
    op.create_index("ix_ingest_keys_system_id", "ingest_keys", ["system_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(200), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("agencies", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", _TS, nullable=True),
        sa.Column("last_login_at", _TS, nullable=True),
        sa.Column("password_changed_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("prefix", sa.String(24), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("last_used_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("source_ip", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_auth_tokens_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_auth_tokens"),
        sa.UniqueConstraint("digest", name="uq_auth_tokens_digest"),
    )
    op.create_index("ix_auth_tokens_user_id", "auth_tokens", ["user_id"])


def downgrade() -> None:
    for table in ("auth_tokens", "users", "ingest_keys", "log_sources", "systems", "agencies"):
        op.drop_table(table)

"""Triage: the alert's assignee, resolution, acknowledge/resolve times and incident;
the derived queue columns (level rank, ATT&CK tags, folded search text, see
``soc.triage.derived``) and the queue's indexes; alert comments; incidents with the
national-reporting fields.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from soc.triage.derived import derived_values, level_rank

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_BATCH = 2000

QUEUE_INDEXES: list[tuple[str, list[str]]] = [
    ("ix_alerts_level_rank_last_seen", ["level_rank", "last_seen"]),
    ("ix_alerts_created_at", ["created_at"]),
]
"""Sort by severity (and ``min_level``); SLA filters and ``time_field=created_at``. The
other queue filters use the ``(column, last_seen)`` indexes of 0001 and above."""


def _backfill() -> None:
    """Derived columns of the alerts already there (the mapper keeps new ones)."""
    alerts = sa.table("alerts", sa.column("id", sa.String), sa.column("level", sa.String),
                      sa.column("level_rank", sa.SmallInteger), sa.column("rule_id", sa.String),
                      sa.column("rule_title", sa.String), sa.column("summary", sa.String),
                      sa.column("tactics", sa.JSON), sa.column("techniques", sa.JSON),
                      sa.column("key_fields", sa.JSON), sa.column("attack_tags", sa.Text),
                      sa.column("search_text", sa.Text))
    ranks = {level: level_rank(level) for level in ("informational", "low", "medium", "high", "critical")}
    op.execute(alerts.update().values(level_rank=sa.case(ranks, value=alerts.c.level, else_=0)))
    if context.is_offline_mode():
        return  # the text columns need the rows; an offline script leaves them to the first edit
    bind = op.get_bind()
    last = ""
    while True:
        rows = bind.execute(sa.select(alerts.c.id, alerts.c.level, alerts.c.rule_id, alerts.c.rule_title,
                                      alerts.c.summary, alerts.c.tactics, alerts.c.techniques, alerts.c.key_fields)
                            .where(alerts.c.id > last).order_by(alerts.c.id).limit(_BATCH)).mappings().all()
        if not rows:
            return
        for row in rows:
            derived = derived_values(dict(row))
            bind.execute(alerts.update().where(alerts.c.id == row["id"])
                         .values(attack_tags=derived["attack_tags"], search_text=derived["search_text"]))
        last = rows[-1]["id"]


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("assignee_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("resolution", sa.String(20), nullable=True))
        batch.add_column(sa.Column("acknowledged_at", _TS, nullable=True))
        batch.add_column(sa.Column("resolved_at", _TS, nullable=True))
        batch.add_column(sa.Column("status_changed_at", _TS, nullable=True))
        batch.add_column(sa.Column("incident_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("level_rank", sa.SmallInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("attack_tags", sa.Text(), server_default=sa.text("''"), nullable=False))
        batch.add_column(sa.Column("search_text", sa.Text(), server_default=sa.text("''"), nullable=False))
    _backfill()
    op.create_index("ix_alerts_assignee_id_last_seen", "alerts", ["assignee_id", "last_seen"])
    op.create_index("ix_alerts_incident_id", "alerts", ["incident_id"])
    for name, columns in QUEUE_INDEXES:
        op.create_index(name, "alerts", columns)
    op.create_table(
        "alert_comments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("author_id", sa.String(36), nullable=True),
        sa.Column("author_name", sa.String(100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_alert_comments_alert_id_alerts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_comments"),
    )
    op.create_index("ix_alert_comments_alert_id_created_at", "alert_comments", ["alert_id", "created_at"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("classification", sa.String(60), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("agency_id", sa.String(100), nullable=True),
        sa.Column("affected_systems", sa.JSON(), nullable=False),
        sa.Column("affected_agencies", sa.JSON(), nullable=False),
        sa.Column("occurred_at", _TS, nullable=True),
        sa.Column("detected_at", _TS, nullable=False),
        sa.Column("reported_at", _TS, nullable=True),
        sa.Column("reported_to", sa.String(300), nullable=True),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.Column("actions_taken", sa.JSON(), nullable=False),
        sa.Column("impact", sa.Text(), nullable=False),
        sa.Column("assignee_id", sa.String(36), nullable=True),
        sa.Column("created_by", sa.String(36), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.UniqueConstraint("code", name="uq_incidents_code"),
    )
    op.create_index("ix_incidents_status_detected_at", "incidents", ["status", "detected_at"])
    op.create_index("ix_incidents_agency_id", "incidents", ["agency_id"])


def downgrade() -> None:
    op.drop_table("incidents")
    op.drop_table("alert_comments")
    for name, _ in reversed(QUEUE_INDEXES):
        op.drop_index(name, table_name="alerts")
    op.drop_index("ix_alerts_incident_id", table_name="alerts")
    op.drop_index("ix_alerts_assignee_id_last_seen", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        for column in ("search_text", "attack_tags", "level_rank", "incident_id", "status_changed_at",
                       "resolved_at", "acknowledged_at", "resolution", "assignee_id"):
            batch.drop_column(column)

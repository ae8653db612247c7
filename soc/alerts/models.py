"""The ``alerts`` table.

An alert is one or more detections of the same rule about the same thing (see
:mod:`soc.alerts.store` for the deduplication key). Columns the triage queue filters
on (status, time, system, agency, rule, level) are real indexed columns; what varies
by rule (the events' key fields) is JSON.

The schema is created by ``soc/migrations`` — a change here needs a new migration.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Index, SmallInteger, String, Text, event, text
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from soc.db import Base, utcnow
from soc.triage.derived import DERIVE, attack_tags, level_rank, search_text

AlertKind = Literal["detection", "correlation"]

STATUS_NEW = "new"
CLOSED_STATUSES: tuple[str, ...] = ("resolved", "closed", "false_positive")
"""Statuses that end an alert: a later detection of the same thing opens a new alert
instead of growing a closed one. ``resolved`` is the triage workflow's end
(:mod:`soc.triage.workflow`); ``closed`` and ``false_positive`` are kept for alerts
closed before the workflow existed."""
DERIVED_COLUMNS: frozenset[str] = frozenset({"level_rank", "attack_tags", "search_text"})
"""Columns computed from the others for the triage queue's indexes and filters
(:mod:`soc.triage.derived`); not part of an alert's public view."""
MAX_EVENT_IDS = 1000
"""Event ids kept per alert (the newest); ``count`` keeps counting past it."""


def new_alert_id() -> str:
    return str(uuid.uuid4())


def _derived(name: str) -> Callable[[Any], Any]:
    """A column default computing derived column ``name`` from the inserted row."""

    derive = DERIVE[name]

    def default(context: Any) -> Any:
        return derive(context.get_current_parameters())

    return default


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_alert_id)
    rule_id: Mapped[str] = mapped_column(String(200))
    rule_title: Mapped[str] = mapped_column(String(500))
    level: Mapped[str] = mapped_column(String(16))
    """Rule level: informational | low | medium | high | critical."""
    kind: Mapped[str] = mapped_column(String(16))
    """detection | correlation"""
    status: Mapped[str] = mapped_column(String(32), default=STATUS_NEW, server_default=STATUS_NEW)
    tactics: Mapped[list[str]] = mapped_column(default=list)
    techniques: Mapped[list[str]] = mapped_column(default=list)
    dedup_key: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the grouping key (the readable values are in ``key_fields``)."""
    count: Mapped[int] = mapped_column(default=1)
    """Events seen (may exceed ``len(event_ids)``)."""
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    """Set on every change: the alerts mirror follows it."""
    version: Mapped[int] = mapped_column(default=1)
    """Row revision, bumped by every ORM update (optimistic concurrency, see mapper args)."""
    event_ids: Mapped[list[str]] = mapped_column(default=list)
    key_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Dotted ECS field → value from the events (source.ip, user.name …) plus
    correlation group values."""
    system_id: Mapped[str] = mapped_column(String(100))
    agency_id: Mapped[str | None] = mapped_column(String(100))
    level_gov: Mapped[str | None] = mapped_column(String(16))
    """Administrative level of the system: province | district | commune."""
    classification: Mapped[int | None]
    """Security classification level of the system (1–5)."""
    retro: Mapped[bool] = mapped_column(default=False)
    """Raised by a retro-hunt over stored history (``soc rules hunt``), not by the
    stream. Part of the dedup scope: a retro-hunt result never grows a live alert
    and a live detection never grows a retro-hunt alert."""
    hunt_id: Mapped[str | None] = mapped_column(String(36), default=None)
    """The retro-hunt run that opened the alert (``None`` for live alerts)."""
    summary: Mapped[str] = mapped_column(String(1000), default="")
    """One line, Vietnamese / English."""
    # -- triage (see soc.triage) ------------------------------------------------------
    assignee_id: Mapped[str | None] = mapped_column(String(36), default=None)
    resolution: Mapped[str | None] = mapped_column(String(20), default=None)
    """true_positive | false_positive | benign, when resolved."""
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    """First move out of ``new`` (time-to-acknowledge SLA)."""
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    """Last move into ``resolved`` (time-to-resolve SLA); cleared by a reopen."""
    status_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    incident_id: Mapped[str | None] = mapped_column(String(36), default=None)
    # Derived (soc.triage.derived): computed on INSERT by the column defaults (ORM and
    # Core inserts alike), on ORM updates by the mapper event below.
    level_rank: Mapped[int] = mapped_column(SmallInteger, default=_derived("level_rank"), server_default="0")
    """0 informational … 4 critical: severity order for sorting and ``min_level``."""
    attack_tags: Mapped[str] = mapped_column(Text, default=_derived("attack_tags"), server_default=text("''"))
    """``,credential-access,t1110,``: ATT&CK tactics and techniques for ``LIKE`` filters."""
    search_text: Mapped[str] = mapped_column(Text, default=_derived("search_text"), server_default=text("''"))
    """Rule id, title, summary and key fields, folded, for the free-text filter."""

    def as_dict(self) -> dict[str, Any]:
        """Every column but the derived ones, as JSON-ready values (times in ISO 8601 UTC)."""
        out: dict[str, Any] = {}
        for column in self.__table__.columns:
            if column.key in DERIVED_COLUMNS:
                continue
            value = getattr(self, column.key)
            out[column.key] = value.isoformat() if isinstance(value, datetime) else value
        return out

    __table_args__ = (
        Index("ix_alerts_status_last_seen", "status", "last_seen"),
        Index("ix_alerts_last_seen", "last_seen"),
        Index("ix_alerts_first_seen", "first_seen"),
        Index("ix_alerts_dedup_key_last_seen", "dedup_key", "last_seen"),
        Index("ix_alerts_rule_id_last_seen", "rule_id", "last_seen"),
        Index("ix_alerts_level_last_seen", "level", "last_seen"),
        Index("ix_alerts_system_id_last_seen", "system_id", "last_seen"),
        Index("ix_alerts_agency_id_last_seen", "agency_id", "last_seen"),
        Index("ix_alerts_level_gov", "level_gov"),
        Index("ix_alerts_classification", "classification"),
        Index("ix_alerts_hunt_id", "hunt_id"),
        Index("ix_alerts_updated_at_id", "updated_at", "id"),
        Index("ix_alerts_assignee_id_last_seen", "assignee_id", "last_seen"),
        Index("ix_alerts_incident_id", "incident_id"),
        Index("ix_alerts_level_rank_last_seen", "level_rank", "last_seen"),
        Index("ix_alerts_created_at", "created_at"),
    )
    # SQLAlchemy adds "AND version = :old" to every UPDATE and bumps it, so a triage
    # edit based on a stale read fails (StaleDataError) instead of overwriting.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (read once by the mapper)

    def __repr__(self) -> str:
        return f"Alert(id={self.id!r}, rule_id={self.rule_id!r}, count={self.count}, status={self.status!r})"


@event.listens_for(Alert, "before_update")
def _derive(_mapper: Mapper[Alert], _connection: Any, alert: Alert) -> None:
    # The store grows the summary, internal alerts rewrite their key fields: keep the
    # derived columns in step on every ORM update.
    alert.level_rank = level_rank(alert.level)
    alert.attack_tags = attack_tags(alert.tactics, alert.techniques)
    alert.search_text = search_text(alert.rule_id, alert.rule_title, alert.summary, alert.key_fields)

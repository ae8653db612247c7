"""Tables of triage: ``alert_comments``, ``incidents`` (the alert's own triage
columns — assignee, resolution, acknowledged/resolved times, incident — are on
:class:`soc.alerts.models.Alert`).

An incident carries what the national incident report needs (compliance-vn.md,
VN-INC-*): when it was detected and reported, to whom, the affected systems and
agencies, its classification and severity, the actions taken and its status.

The schema is created by ``soc/migrations`` — a change here needs a new migration.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from soc.db import Base, utcnow


def new_id() -> str:
    return str(uuid.uuid4())


class AlertComment(Base):
    __tablename__ = "alert_comments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    alert_id: Mapped[str] = mapped_column(String(36), ForeignKey("alerts.id", ondelete="CASCADE"))
    author_id: Mapped[str | None] = mapped_column(String(36), default=None)
    author_name: Mapped[str] = mapped_column(String(100), default="")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_alert_comments_alert_id_created_at", "alert_id", "created_at"),)


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    """Human reference, ``SC-<year>-<seq>`` (sự cố)."""
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(16))
    """low | medium | high | critical (maps to the national severity scale in reports)."""
    classification: Mapped[str] = mapped_column(String(60), default="other")
    """Incident type (malware, intrusion, dos, data_leak, phishing, defacement, …)."""
    status: Mapped[str] = mapped_column(String(20), default="open")
    """open | investigating | contained | resolved | closed"""
    agency_id: Mapped[str | None] = mapped_column(String(100), default=None)
    """The agency that owns the response (scope)."""
    affected_systems: Mapped[list[str]] = mapped_column(default=list)
    affected_agencies: Mapped[list[str]] = mapped_column(default=list)
    occurred_at: Mapped[datetime | None] = mapped_column(default=None)
    detected_at: Mapped[datetime]
    reported_at: Mapped[datetime | None] = mapped_column(default=None)
    """When it was reported to the competent authority (VN-INC report deadline)."""
    reported_to: Mapped[str | None] = mapped_column(String(300), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    actions_taken: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    """``[{"at": ISO time, "by": user, "action": text}]`` in order."""
    impact: Mapped[str] = mapped_column(Text, default="")
    assignee_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created_by: Mapped[str | None] = mapped_column(String(36), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (
        Index("ix_incidents_status_detected_at", "status", "detected_at"),
        Index("ix_incidents_agency_id", "agency_id"),
    )
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

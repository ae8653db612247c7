"""Tables of notifications: ``notification_deliveries`` (one row per alert × route
× channel: what was sent where, attempts, outcome) and ``notification_cursor``
(the last alert the dispatcher has routed).

The schema is created by ``soc/migrations`` — a change here needs a new migration.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from soc.alerts.models import Alert
from soc.db import Base, utcnow


def new_id() -> str:
    return str(uuid.uuid4())


class NotificationDelivery(Base):
    __tablename__ = "notification_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    alert_id: Mapped[str] = mapped_column(String(36))
    route: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    """email | webhook | telegram"""
    target: Mapped[str] = mapped_column(String(500))
    """Recipients or URL (without credentials)."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending | sent | failed (retries exhausted)"""
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    response: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """What the receiver answered (status code, SMTP reply)."""

    __table_args__ = (
        UniqueConstraint("alert_id", "route", "channel", name="uq_notification_deliveries_alert_route_channel"),
        Index("ix_notification_deliveries_status_next", "status", "next_attempt_at"),
        # The deliveries list pages newest first.
        Index("ix_notification_deliveries_created_at_id", "created_at", "id"),
    )


class NotificationCursor(Base):
    """One row (id 1): how far the dispatcher has read the alerts, in
    ``(created_at, id)`` order."""

    __tablename__ = "notification_cursor"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    created_at: Mapped[datetime]
    alert_id: Mapped[str] = mapped_column(String(36))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    """When the dispatcher first ran: alerts created before it are never notified."""


# The dispatcher reads new alerts in (created_at, id) order; the alerts table has no
# index for it otherwise. Declared here so the alerts model stays about alerts.
Index("ix_alerts_created_at_id", Alert.created_at, Alert.id)

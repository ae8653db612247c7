"""How alerts and comments look in the API: the row's public columns plus the SLA
block and the assignee's name; the detail adds comments, evidence and incident."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc.alerts.models import Alert
from soc.config import SlaTarget
from soc.identity.models import UserRow
from soc.store.base import EventStore
from soc.triage.evidence import evidence
from soc.triage.models import AlertComment
from soc.triage.sla import sla_block


def people(session: Session, ids: Iterable[str | None]) -> dict[str, dict[str, Any]]:
    """User id → ``{id, username, display_name}`` for the ids given (one query)."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = session.execute(select(UserRow.id, UserRow.username, UserRow.display_name).where(UserRow.id.in_(wanted)))
    return {r.id: {"id": r.id, "username": r.username, "display_name": r.display_name} for r in rows}


def alert_view(alert: Alert, *, sla_targets: Mapping[str, SlaTarget], now: datetime,
               users: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    out = alert.as_dict()
    out["sla"] = sla_block(alert, sla_targets, now)
    out["assignee"] = users.get(alert.assignee_id) if alert.assignee_id else None
    return out


def alert_views(session: Session, alerts: list[Alert], *, sla_targets: Mapping[str, SlaTarget],
                now: datetime) -> list[dict[str, Any]]:
    users = people(session, (a.assignee_id for a in alerts))
    return [alert_view(a, sla_targets=sla_targets, now=now, users=users) for a in alerts]


def comment_view(comment: AlertComment) -> dict[str, Any]:
    return {"id": comment.id, "alert_id": comment.alert_id, "author_id": comment.author_id,
            "author_name": comment.author_name, "body": comment.body, "created_at": comment.created_at.isoformat()}


def comments_of(session: Session, alert_id: str, limit: int = 500) -> list[dict[str, Any]]:
    rows = session.scalars(select(AlertComment).where(AlertComment.alert_id == alert_id)
                           .order_by(AlertComment.created_at, AlertComment.id).limit(limit))
    return [comment_view(c) for c in rows]


def incident_summary(session: Session, incident_id: str | None) -> dict[str, Any] | None:
    from soc.triage.models import Incident

    if incident_id is None:
        return None
    incident = session.get(Incident, incident_id)
    if incident is None:
        return None
    return {"id": incident.id, "code": incident.code, "title": incident.title, "status": incident.status,
            "severity": incident.severity}


def alert_detail(session: Session, alert: Alert, *, store: EventStore, sla_targets: Mapping[str, SlaTarget],
                 now: datetime) -> dict[str, Any]:
    """The alert with its comments, its evidence events and its incident."""
    out = alert_views(session, [alert], sla_targets=sla_targets, now=now)[0]
    out["comments"] = comments_of(session, alert.id)
    out["evidence"] = evidence(store, alert)
    out["incident"] = incident_summary(session, alert.incident_id)
    return out

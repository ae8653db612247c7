"""Incidents: alerts an analyst escalated, with what the national report needs.

An incident gets a human code ``SC-<year>-<nnnn>`` (sự cố; the year in the SOC's
time zone, numbers from 0001 each year). Codes are unique by constraint; two
incidents created at the same moment on PostgreSQL both compute the same next
number, the second insert fails on the constraint and that creation is retried with
the next number.

The ``report`` block of an incident follows ``compliance-vn.md`` (VN-IR-02/03/05,
section 5.2): every deadline runs from ``detected_at``; an initial notice within
24 h for a serious incident (immediately when national security or public order is
at stake), a report on cause, scope of impact and remediation within 72 h for every
incident (Decree 331/2026 Art. 31.2.d, Law 116 Art. 40.1.c), and the legacy 5-day
(120 h) notice to the national coordinator (Decision 05/2017, Circular 20/2017)
alongside. Until the Ministry of Public Security defines "serious", severity maps
to the national class as the document recommends, choosing the higher class when
unsure: critical → ``national_security_or_serious_disruption`` (immediate),
high → ``serious`` (24 h + 72 h), medium and low → ``incident`` (72 h).

Lock order (as in :mod:`soc.triage.changes`): alerts (by id), then the incident,
then the audit chain head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from soc.alerts.models import CLOSED_STATUSES, Alert
from soc.audit.trail import Actor, record
from soc.config import SocConfig
from soc.db import Database, UTCDateTime, utcnow
from soc.i18n import register
from soc.identity.principal import Principal
from soc.inventory.models import SystemRow
from soc.triage.changes import Assignees
from soc.triage.derived import LEVEL_RANK
from soc.triage.errors import TriageError, not_found
from soc.triage.models import Incident
from soc.triage.queries import QueryInputError, decode_keys, encode_keys
from soc.triage.views import alert_views
from soc.triage.workflow import IN_PROGRESS, apply_change

CLASSIFICATIONS: dict[str, tuple[str, str]] = {
    "malware": ("Mã độc", "Malware"),
    "intrusion": ("Xâm nhập hệ thống", "System intrusion"),
    "dos": ("Tấn công từ chối dịch vụ", "Denial of service"),
    "data_leak": ("Lộ, lọt dữ liệu", "Data leak"),
    "phishing": ("Lừa đảo, giả mạo (phishing)", "Phishing"),
    "defacement": ("Thay đổi giao diện trang web", "Website defacement"),
    "unauthorized_access": ("Truy cập trái phép", "Unauthorized access"),
    "vulnerability": ("Khai thác lỗ hổng", "Vulnerability exploitation"),
    "other": ("Khác", "Other"),
}
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
STATUSES: tuple[str, ...] = ("open", "investigating", "contained", "resolved", "closed")
DONE_STATUSES: tuple[str, ...] = ("resolved", "closed")

NATIONAL_SEVERITY: dict[str, str] = {
    "critical": "national_security_or_serious_disruption",
    "high": "serious",
    "medium": "incident",
    "low": "incident",
}
NATIONAL_LABELS: dict[str, tuple[str, str]] = {
    "national_security_or_serious_disruption": (
        "Có dấu hiệu xâm hại an ninh quốc gia, trật tự an toàn xã hội hoặc gây gián đoạn nghiêm trọng",
        "Signs of harm to national security or public order, or serious disruption"),
    "serious": ("Sự cố nghiêm trọng", "Serious incident"),
    "incident": ("Sự cố an ninh mạng", "Cybersecurity incident"),
}
INITIAL_NOTICE_HOURS = 24
REPORT_HOURS = 72
LEGACY_REPORT_HOURS = 120
LEGAL_BASIS = "Nghị định 331/2026/NĐ-CP Điều 31.2.d; Luật 116/2025/QH15 Điều 40.1.c / Decree 331/2026 Art. 31.2.d; " \
              "Law 116 Art. 40.1.c"
REPORT_TO = ("Đơn vị chuyên trách của Bộ Công an (A05 hoặc Công an tỉnh) / "
             "Ministry of Public Security specialised body (A05 or provincial police)")
MAX_ALERTS = 1000
CODE_ATTEMPTS = 5

register({
    "incident.bad_value": (
        "Giá trị '{value}' không hợp lệ cho '{field}'; dùng một trong: {known}",
        "Invalid value '{value}' for '{field}'; use one of: {known}",
    ),
    "incident.alert_linked": (
        "Cảnh báo '{alert}' đã thuộc sự cố {code}; gỡ khỏi sự cố đó trước",
        "Alert '{alert}' already belongs to incident {code}; unlink it there first",
    ),
    "incident.agency_scope": (
        "Bạn không phụ trách cơ quan '{agency}'",
        "Agency '{agency}' is outside your scope",
    ),
    "incident.agency_required": (
        "Các cảnh báo thuộc nhiều cơ quan ({agencies}): chọn cơ quan chủ trì bằng agency_id",
        "The alerts belong to several agencies ({agencies}): choose the owning one with agency_id",
    ),
    "incident.too_many_alerts": (
        "Tối đa {limit} cảnh báo mỗi lần",
        "At most {limit} alerts at a time",
    ),
    "incident.action_required": (
        "Thiếu nội dung biện pháp đã thực hiện (action)",
        "The action taken (action) is required",
    ),
    "incident.required": (
        "Trường '{field}' không được để trống",
        "Field '{field}' cannot be empty",
    ),
    "incident.code_busy": (
        "Không cấp được mã sự cố do nhiều yêu cầu đồng thời; thử lại",
        "Could not allocate an incident code under concurrent requests; try again",
    ),
})


def label(pair: tuple[str, str]) -> dict[str, str]:
    return {"vi": pair[0], "en": pair[1]}


def _check(field_name: str, value: str | None, known: Sequence[str]) -> None:
    if value is not None and value not in known:
        raise TriageError(422, "incident.bad_value", field=field_name, value=value, known=", ".join(known))


def severity_of_alerts(alerts: Sequence[Alert]) -> str:
    """The highest alert level, as an incident severity (informational counts as low)."""
    rank = max((LEVEL_RANK.get(a.level, 0) for a in alerts), default=LEVEL_RANK["medium"])
    return SEVERITIES[max(rank - 1, 0)]


# --- views ----------------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _hours(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds() / 3600, 2)


def report_block(incident: Incident, systems: dict[str, dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The national report fields (compliance-vn.md 5.2) and the deadline status."""
    national = NATIONAL_SEVERITY.get(incident.severity, "incident")
    detected = incident.detected_at
    initial_required = national != "incident"
    initial_due = detected + timedelta(hours=INITIAL_NOTICE_HOURS) if initial_required else None
    report_due = detected + timedelta(hours=REPORT_HOURS)
    deadline = initial_due or report_due
    reported = incident.reported_at
    hours_to_report = _hours(detected, reported) if reported is not None else None
    return {
        "legal_basis": LEGAL_BASIS,
        "report_to": REPORT_TO,
        "detected_at": _iso(detected),
        "classified_at": _iso(incident.created_at),
        "category": incident.classification,
        "category_label": label(CLASSIFICATIONS.get(incident.classification, CLASSIFICATIONS["other"])),
        "severity": incident.severity,
        "national_severity": national,
        "national_severity_label": label(NATIONAL_LABELS[national]),
        "immediate_notice_required": national == "national_security_or_serious_disruption",
        "initial_notice_due": _iso(initial_due),
        "report_due": _iso(report_due),
        "legacy_report_due": _iso(detected + timedelta(hours=LEGACY_REPORT_HOURS)),
        "deadline_hours": INITIAL_NOTICE_HOURS if initial_required else REPORT_HOURS,
        "reported_at": _iso(reported),
        "reported_to": incident.reported_to,
        "hours_to_report": hours_to_report,
        "within_deadline": (reported <= deadline) if reported is not None else None,
        "overdue": reported is None and now > deadline,
        "hours_left": _hours(now, deadline) if reported is None else None,
        "occurred_at": _iso(incident.occurred_at),
        "affected_systems": [systems.get(s, {"id": s, "name": None, "agency_id": None, "classification": None})
                             for s in incident.affected_systems],
        "affected_agencies": list(incident.affected_agencies),
        "actions_taken": len(incident.actions_taken),
        "impact": incident.impact,
        "status": incident.status,
        "resolved_at": _iso(incident.resolved_at),
    }


def _systems(session: Session, incidents: Sequence[Incident]) -> dict[str, dict[str, Any]]:
    ids = sorted({s for i in incidents for s in i.affected_systems})
    if not ids:
        return {}
    rows = session.execute(select(SystemRow.id, SystemRow.name, SystemRow.agency_id, SystemRow.classification)
                           .where(SystemRow.id.in_(ids)))
    return {r.id: {"id": r.id, "name": r.name, "agency_id": r.agency_id, "classification": r.classification}
            for r in rows}


def incident_view(incident: Incident, systems: dict[str, dict[str, Any]], now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in Incident.__table__.columns:
        value = getattr(incident, column.key)
        out[column.key] = value.isoformat() if isinstance(value, datetime) else value
    out["classification_label"] = label(CLASSIFICATIONS.get(incident.classification, CLASSIFICATIONS["other"]))
    out["report"] = report_block(incident, systems, now)
    return out


def incident_views(session: Session, incidents: Sequence[Incident], now: datetime) -> list[dict[str, Any]]:
    systems = _systems(session, incidents)
    return [incident_view(i, systems, now) for i in incidents]


def incident_detail(session: Session, incident: Incident, cfg: SocConfig, now: datetime) -> dict[str, Any]:
    out = incident_views(session, [incident], now)[0]
    alerts = list(session.scalars(select(Alert).where(Alert.incident_id == incident.id)
                                  .order_by(Alert.first_seen, Alert.id).limit(MAX_ALERTS)))
    out["alerts"] = alert_views(session, alerts, sla_targets=cfg.triage.sla, now=now)
    return out


# --- reading ----------------------------------------------------------------------------------

def visible_incident(session: Session, principal: Principal, incident_id: str, *, lock: bool = False) -> Incident:
    stmt = select(Incident).where(Incident.id == incident_id, principal.scope.clause(Incident.agency_id))
    if lock:
        stmt = stmt.with_for_update()
    incident = session.scalars(stmt).first()
    if incident is None:
        raise not_found("incident", incident_id)
    return incident


@dataclass
class IncidentFilter:
    status: list[str]
    severity: list[str]
    classification: list[str]
    agency_id: list[str]
    since: datetime | None = None
    until: datetime | None = None


def list_incidents(session: Session, principal: Principal, flt: IncidentFilter, *, limit: int, cursor: str | None,
                   now: datetime) -> tuple[list[dict[str, Any]], str | None]:
    """Newest detected first; ``(incidents, next cursor)``."""
    for name, values, known in (("status", flt.status, STATUSES), ("severity", flt.severity, SEVERITIES),
                                ("classification", flt.classification, tuple(CLASSIFICATIONS))):
        for value in values:
            if value not in known:
                raise QueryInputError("triage.bad_value", field=name, value=value, known=", ".join(known))
    conds: list[ColumnElement[bool]] = [principal.scope.clause(Incident.agency_id)]
    for column, values in ((Incident.status, flt.status), (Incident.severity, flt.severity),
                           (Incident.classification, flt.classification), (Incident.agency_id, flt.agency_id)):
        if values:
            conds.append(column.in_(values))
    if flt.since is not None:
        conds.append(Incident.detected_at >= flt.since)
    if flt.until is not None:
        conds.append(Incident.detected_at < flt.until)
    stmt = select(Incident).where(*conds)
    if cursor:
        detected, last_id = decode_keys(cursor, "incidents", [UTCDateTime(), str])
        stmt = stmt.where(tuple_(Incident.detected_at, Incident.id) < tuple_(_bind(detected), _bind(last_id)))
    limit = max(1, min(limit, 500))
    rows = list(session.scalars(stmt.order_by(Incident.detected_at.desc(), Incident.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_keys("incidents", [rows[-1].detected_at, rows[-1].id]) if more and rows else None
    return incident_views(session, rows, now), next_cursor


def _bind(value: Any) -> Any:
    from sqlalchemy import String, literal

    return literal(value, UTCDateTime() if isinstance(value, datetime) else String())


# --- writing ----------------------------------------------------------------------------------

@dataclass
class NewIncident:
    title: str
    alert_ids: list[str]
    description: str = ""
    severity: str | None = None
    classification: str = "other"
    occurred_at: datetime | None = None
    detected_at: datetime | None = None
    agency_id: str | None = None
    affected_systems: list[str] | None = None
    impact: str = ""


def _lock_alerts(session: Session, principal: Principal, ids: Sequence[str]) -> list[Alert]:
    wanted = list(dict.fromkeys(ids))
    if len(wanted) > MAX_ALERTS:
        raise TriageError(422, "incident.too_many_alerts", limit=MAX_ALERTS)
    if not wanted:
        return []
    rows = {a.id: a for a in session.scalars(
        select(Alert).where(Alert.id.in_(wanted), principal.scope.clause(Alert.agency_id))
        .order_by(Alert.id).with_for_update())}
    for alert_id in wanted:
        if alert_id not in rows:
            raise not_found("alert", alert_id)
    return [rows[i] for i in wanted]


def _link(session: Session, actor: Actor, incident: Incident, alerts: Sequence[Alert], now: datetime) -> None:
    """Put ``alerts`` into ``incident``: open ones go to ``in_progress``."""
    codes: dict[str, str] = {}
    for alert in alerts:
        if alert.incident_id is not None and alert.incident_id != incident.id:
            code = codes.get(alert.incident_id) or session.scalar(
                select(Incident.code).where(Incident.id == alert.incident_id)) or alert.incident_id
            raise TriageError(409, "incident.alert_linked", alert=alert.id, code=code)
    for alert in alerts:
        if alert.incident_id == incident.id:
            continue
        before: dict[str, Any] = {"incident_id": alert.incident_id}
        after: dict[str, Any] = {"incident_id": incident.id}
        alert.incident_id = incident.id
        if alert.status not in CLOSED_STATUSES and alert.status != IN_PROGRESS:
            moved = apply_change(alert, IN_PROGRESS, None, now)
            if moved is not None:
                before.update(moved.before)
                after.update(moved.after)
        session.flush()
        record(session, actor, "alert.update", "alert", alert.id, agency_id=alert.agency_id, before=before,
               after={**after, "incident_code": incident.code})


def _next_code(session: Session, year: int) -> str:
    prefix = f"SC-{year}-"
    last = session.scalar(select(Incident.code).where(Incident.code.like(f"{prefix}%"))
                          .order_by(func.length(Incident.code).desc(), Incident.code.desc()).limit(1))
    seq = int(last[len(prefix):]) + 1 if last and last[len(prefix):].isdigit() else 1
    return f"{prefix}{seq:04d}"


def _resolve_agency(principal: Principal, wanted: str | None, alerts: Sequence[Alert]) -> str | None:
    if wanted is not None:
        if not principal.scope.allows(wanted):
            raise TriageError(422, "incident.agency_scope", agency=wanted)
        return wanted
    agencies = sorted({a.agency_id for a in alerts if a.agency_id is not None})
    if len(agencies) == 1:
        return agencies[0]
    if principal.scope.all:
        return None
    if not agencies and len(principal.agencies) == 1:
        return principal.agencies[0]
    raise TriageError(422, "incident.agency_required", agencies=", ".join(agencies) or "-")


def create_incident(db: Database, principal: Principal, new: NewIncident, cfg: SocConfig) -> dict[str, Any]:
    if not new.title.strip():
        raise TriageError(422, "incident.required", field="title")
    _check("severity", new.severity, SEVERITIES)
    _check("classification", new.classification, tuple(CLASSIFICATIONS))
    actor = Actor.of(principal)
    for _ in range(CODE_ATTEMPTS):
        now = utcnow()
        try:
            with db.write() as session:
                alerts = _lock_alerts(session, principal, new.alert_ids)
                agency = _resolve_agency(principal, new.agency_id, alerts)
                detected = new.detected_at or min((a.first_seen for a in alerts), default=now)
                systems = new.affected_systems if new.affected_systems is not None else \
                    list(dict.fromkeys(a.system_id for a in alerts))
                affected_agencies = list(dict.fromkeys(
                    [*(a.agency_id for a in alerts if a.agency_id), *([agency] if agency else [])]))
                incident = Incident(
                    code=_next_code(session, now.astimezone(cfg.tz).year), title=new.title.strip(),
                    description=new.description, severity=new.severity or severity_of_alerts(alerts),
                    classification=new.classification, status="open", agency_id=agency,
                    affected_systems=systems, affected_agencies=affected_agencies, occurred_at=new.occurred_at,
                    detected_at=detected, impact=new.impact, created_by=principal.user_id, created_at=now,
                    updated_at=now, actions_taken=[])
                session.add(incident)
                session.flush()
                _link(session, actor, incident, alerts, now)
                view = incident_detail(session, incident, cfg, now)
                record(session, actor, "incident.create", "incident", incident.id, agency_id=agency,
                       after={k: view[k] for k in ("code", "title", "severity", "classification", "status",
                                                   "agency_id", "detected_at", "affected_systems")}
                       | {"alert_ids": [a.id for a in alerts]})
                return view
        except IntegrityError as exc:
            if "incidents.code" not in str(exc) and "uq_incidents_code" not in str(exc):
                raise
            continue  # another creation took the code meanwhile: take the next one
    raise TriageError(503, "incident.code_busy")


REQUIRED: tuple[str, ...] = ("title", "description", "severity", "classification", "status", "detected_at",
                             "impact", "affected_systems")
"""Fields a PATCH may change but not empty (``null``)."""
EDITABLE: tuple[str, ...] = ("title", "description", "severity", "classification", "status", "occurred_at",
                             "detected_at", "reported_at", "reported_to", "impact", "assignee_id",
                             "affected_systems")


def update_incident(db: Database, principal: Principal, incident_id: str, versions: set[int],
                    changes: dict[str, Any], cfg: SocConfig) -> dict[str, Any]:
    """PATCH: only the fields in ``changes`` (a ``resolved``/``closed`` status sets
    ``resolved_at``, moving back clears it)."""
    _check("severity", changes.get("severity"), SEVERITIES)
    _check("classification", changes.get("classification"), tuple(CLASSIFICATIONS))
    _check("status", changes.get("status"), STATUSES)
    for name in REQUIRED:
        if name in changes and (changes[name] is None or (name == "title" and not changes[name].strip())):
            raise TriageError(422, "incident.required", field=name)
    now = utcnow()
    with db.write() as session:
        incident = visible_incident(session, principal, incident_id, lock=True)
        if incident.version not in versions:
            raise TriageError(412, "triage.stale", what="incident", id=incident.id,
                              state=incident_detail(session, incident, cfg, now),
                              headers={"ETag": f'"{incident.version}"'},
                              sent=", ".join(str(v) for v in sorted(versions)), current=incident.version)
        if changes.get("assignee_id") is not None:
            Assignees(session).check(changes["assignee_id"], incident.agency_id)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for name in EDITABLE:
            if name in changes and changes[name] != getattr(incident, name):
                before[name], after[name] = getattr(incident, name), changes[name]
                setattr(incident, name, changes[name])
        if "status" in after:
            if incident.status in DONE_STATUSES and incident.resolved_at is None:
                before["resolved_at"], after["resolved_at"] = None, now
                incident.resolved_at = now
            elif incident.status not in DONE_STATUSES and incident.resolved_at is not None:
                before["resolved_at"], after["resolved_at"] = incident.resolved_at, None
                incident.resolved_at = None
        if after:
            session.flush()
            record(session, Actor.of(principal), "incident.update", "incident", incident.id,
                   agency_id=incident.agency_id, before=before, after=after)
        return incident_detail(session, incident, cfg, now)


def add_action(db: Database, principal: Principal, incident_id: str, action: str, at: datetime | None,
               cfg: SocConfig) -> dict[str, Any]:
    text = action.strip()
    if not text:
        raise TriageError(422, "incident.action_required")
    now = utcnow()
    entry = {"at": (at or now).isoformat(), "by": principal.username, "by_id": principal.user_id, "action": text}
    with db.write() as session:
        # Locked: two analysts appending at once must both end up in the list.
        incident = visible_incident(session, principal, incident_id, lock=True)
        incident.actions_taken = [*incident.actions_taken, entry]
        session.flush()
        record(session, Actor.of(principal), "incident.action", "incident", incident.id,
               agency_id=incident.agency_id, after=entry)
        return incident_detail(session, incident, cfg, now)


def link_alerts(db: Database, principal: Principal, incident_id: str, alert_ids: Sequence[str],
                cfg: SocConfig) -> dict[str, Any]:
    now = utcnow()
    actor = Actor.of(principal)
    with db.write() as session:
        alerts = _lock_alerts(session, principal, alert_ids)
        incident = visible_incident(session, principal, incident_id, lock=True)
        fresh = [a for a in alerts if a.incident_id != incident.id]
        _link(session, actor, incident, fresh, now)
        systems = list(dict.fromkeys([*incident.affected_systems, *(a.system_id for a in fresh)]))
        agencies = list(dict.fromkeys([*incident.affected_agencies, *(a.agency_id for a in fresh if a.agency_id)]))
        before = {"affected_systems": incident.affected_systems, "affected_agencies": incident.affected_agencies}
        incident.affected_systems, incident.affected_agencies = systems, agencies
        if fresh:
            session.flush()
            record(session, actor, "incident.link", "incident", incident.id, agency_id=incident.agency_id,
                   before=before, after={"alert_ids": [a.id for a in fresh], "affected_systems": systems,
                                         "affected_agencies": agencies})
        return incident_detail(session, incident, cfg, now)

"""Request and response bodies of the alert and incident API (OpenAPI schemas with
examples). Responses are built as plain dicts by :mod:`soc.triage.views` and
:mod:`soc.triage.incidents`; these models describe them, and the tests validate
real answers against them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from soc.triage import examples

Status = Literal["new", "acknowledged", "in_progress", "resolved"]
Resolution = Literal["true_positive", "false_positive", "benign"]
Level = Literal["informational", "low", "medium", "high", "critical"]
Severity = Literal["low", "medium", "high", "critical"]
IncidentStatus = Literal["open", "investigating", "contained", "resolved", "closed"]
Classification = Literal["malware", "intrusion", "dos", "data_leak", "phishing", "defacement",
                         "unauthorized_access", "vulnerability", "other"]

_ALERT_ID = examples.ALERT_ID
_USER_ID = examples.USER_ID


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Person(BaseModel):
    id: str
    username: str
    display_name: str


class Sla(BaseModel):
    acknowledge_due: datetime
    acknowledge_breached: bool
    acknowledged_after_s: float | None
    resolve_due: datetime
    resolve_breached: bool
    resolved_after_s: float | None


class AlertOut(BaseModel):
    """An alert as the queue shows it."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.ALERT]})

    id: str
    rule_id: str
    rule_title: str
    level: str
    kind: str
    status: str
    tactics: list[str]
    techniques: list[str]
    dedup_key: str
    count: int
    first_seen: datetime
    last_seen: datetime
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Send it back as If-Match when changing the alert")
    event_ids: list[str]
    key_fields: dict[str, Any]
    system_id: str
    agency_id: str | None
    level_gov: str | None
    classification: int | None
    retro: bool
    hunt_id: str | None
    summary: str
    assignee_id: str | None
    resolution: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    status_changed_at: datetime | None
    incident_id: str | None
    sla: Sla
    assignee: Person | None


class FacetBucket(BaseModel):
    value: str | int
    count: int


class AlertPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.ALERT_PAGE]})

    items: list[AlertOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page")
    total: int | None = Field(None, description="With total=true only")
    facets: dict[str, list[FacetBucket]] | None = Field(None, description="With facets=… only")


class CommentOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.COMMENT]})

    id: str
    alert_id: str
    author_id: str | None
    author_name: str
    body: str
    created_at: datetime


class CommentIn(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"body": "Đã chặn IP 203.0.113.7 trên tường lửa / Blocked 203.0.113.7 at the firewall"}]})

    body: str = Field(min_length=1, max_length=10_000)


class CommentList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [examples.COMMENT]}]})

    items: list[CommentOut]


class Evidence(BaseModel):
    total: int = Field(description="Event ids the alert holds")
    shown: int
    events: list[dict[str, Any]]
    error: str | None = Field(description="Why the event store could not be read, if it could not")


class IncidentSummary(BaseModel):
    id: str
    code: str
    title: str
    status: str
    severity: str


class AlertDetail(AlertOut):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.ALERT_DETAIL]})

    comments: list[CommentOut]
    evidence: Evidence
    incident: IncidentSummary | None


class AlertPatch(_In):
    """Only the fields given change; ``assignee_id: null`` unassigns."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "acknowledged"},
        {"status": "resolved", "resolution": "false_positive",
         "comment": "Quét định kỳ của đội vận hành / Scheduled scan by the operations team"},
        {"assignee_id": _USER_ID},
        {"assignee_id": None},
    ]})

    status: Status | None = None
    resolution: Resolution | None = None
    assignee_id: str | None = None
    comment: str | None = Field(None, max_length=10_000)


class AlertFilterIn(_In):
    """The list filters, as a JSON object (same names and meaning as the query parameters)."""

    status: list[str] = []
    level: list[str] = []
    min_level: Level | None = None
    rule_id: list[str] = []
    tactic: list[str] = []
    technique: list[str] = []
    system_id: list[str] = []
    agency_id: list[str] = []
    include_children: bool = False
    level_gov: list[str] = []
    classification: list[int] = []
    assignee: list[str] = []
    incident_id: list[str] = []
    retro: bool | None = None
    since: str | None = None
    until: str | None = None
    time_field: Literal["last_seen", "first_seen", "created_at", "updated_at"] = "last_seen"
    q: str | None = None
    sla_breached: bool | None = None
    sla: Literal["acknowledge", "resolve"] | None = None


class BulkIn(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"ids": [_ALERT_ID], "action": "acknowledge"},
        {"filter": {"rule_id": [examples.BRUTEFORCE_RULE_ID], "status": ["new"]}, "action": "resolve",
         "resolution": "benign", "comment": "Kiểm thử xâm nhập có kế hoạch / Planned penetration test"},
        {"ids": [_ALERT_ID], "action": "assign", "assignee_id": _USER_ID, "versions": {_ALERT_ID: 3}},
    ]})

    ids: list[str] | None = Field(None, max_length=1000)
    filter: AlertFilterIn | None = None
    action: Literal["acknowledge", "start", "resolve", "reopen", "assign", "comment"]
    resolution: Resolution | None = None
    assignee_id: str | None = None
    comment: str | None = Field(None, max_length=10_000)
    versions: dict[str, int] | None = Field(None, description="Expected version per alert id (412 when stale)")


class BulkItem(BaseModel):
    id: str
    ok: bool
    status_code: int
    reason: str | None
    reason_vi: str | None
    version: int | None


class BulkOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.BULK_OUT]})

    results: list[BulkItem]
    succeeded: int
    failed: int
    more: bool = Field(description="A filter matched more alerts than one request handles; repeat it")


class AlertGroup(BaseModel):
    rule_id: str | None = None
    rule_title: str | None = None
    system_id: str | None = None
    agency_id: str | None = None
    total: int
    open: int
    events: int
    max_level: str | None
    first_seen: datetime | None
    last_seen: datetime | None


class AlertGroups(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.ALERT_GROUPS]})

    by: str
    items: list[AlertGroup]
    truncated: bool


# --- incidents ------------------------------------------------------------------------------

class IncidentIn(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": examples.INCIDENT["title"], "description": examples.INCIDENT["description"],
        "severity": "high", "classification": "intrusion", "alert_ids": [_ALERT_ID],
    }]})

    title: str = Field(min_length=1, max_length=500)
    description: str = ""
    severity: Severity | None = Field(None, description="Default: from the highest alert level")
    classification: Classification = "other"
    alert_ids: list[str] = Field(default_factory=list, max_length=1000)
    occurred_at: AwareDatetime | None = None
    detected_at: AwareDatetime | None = Field(None, description="Default: the earliest first_seen of the alerts")
    agency_id: str | None = Field(None, description="Default: the alerts' agency when they share one")
    affected_systems: list[str] | None = Field(None, description="Default: the alerts' systems")
    impact: str = ""


class IncidentPatch(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "contained"},
        {"reported_at": "2026-11-23T09:30:00+07:00", "reported_to": "Phòng An ninh mạng, Công an tỉnh Phú Thọ"},
    ]})

    title: str | None = Field(None, min_length=1, max_length=500)
    description: str | None = None
    severity: Severity | None = None
    classification: Classification | None = None
    status: IncidentStatus | None = None
    occurred_at: AwareDatetime | None = None
    detected_at: AwareDatetime | None = None
    reported_at: AwareDatetime | None = None
    reported_to: str | None = Field(None, max_length=300)
    impact: str | None = None
    assignee_id: str | None = None
    affected_systems: list[str] | None = None


class ActionIn(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"action": "Cô lập máy chủ app-linux01 khỏi mạng / Isolated app-linux01 from the network"}]})

    action: str = Field(min_length=1, max_length=2000)
    at: AwareDatetime | None = Field(None, description="When it was done (default: now)")


class LinkIn(_In):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"alert_ids": [examples.TAKEOVER_ALERT_ID]}]})

    alert_ids: list[str] = Field(min_length=1, max_length=1000)


class Label(BaseModel):
    vi: str
    en: str


class IncidentReport(BaseModel):
    """What the report to the competent authority needs (compliance-vn.md 5.2)."""

    legal_basis: str
    report_to: str
    detected_at: datetime
    classified_at: datetime
    category: str
    category_label: Label
    severity: str
    national_severity: str
    national_severity_label: Label
    immediate_notice_required: bool
    initial_notice_due: datetime | None
    report_due: datetime
    legacy_report_due: datetime
    deadline_hours: int
    reported_at: datetime | None
    reported_to: str | None
    hours_to_report: float | None
    within_deadline: bool | None
    overdue: bool
    hours_left: float | None
    occurred_at: datetime | None
    affected_systems: list[dict[str, Any]]
    affected_agencies: list[str]
    actions_taken: int
    impact: str
    status: str
    resolved_at: datetime | None


class IncidentOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.INCIDENT]})

    id: str
    code: str = Field(examples=["SC-2026-0001"])
    title: str
    description: str
    severity: str
    classification: str
    classification_label: Label
    status: str
    agency_id: str | None
    affected_systems: list[str]
    affected_agencies: list[str]
    occurred_at: datetime | None
    detected_at: datetime
    reported_at: datetime | None
    reported_to: str | None
    resolved_at: datetime | None
    actions_taken: list[dict[str, Any]]
    impact: str
    assignee_id: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    report: IncidentReport


class IncidentDetail(IncidentOut):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.INCIDENT_DETAIL]})

    alerts: list[AlertOut]


class IncidentPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [examples.INCIDENT_PAGE]})

    items: list[IncidentOut]
    next_cursor: str | None

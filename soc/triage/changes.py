"""Changing alerts: status, resolution, assignee, comments, one at a time or in bulk.

Two analysts never overwrite each other's change unseen:

1. the client sends the version it read (``If-Match``, or per-alert ``versions`` in a
   bulk request); a different current version is refused (412) with the current
   state;
2. the row is read ``FOR UPDATE`` (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already
   serializes writers), so a second writer waits for the first and then sees its
   version;
3. the ORM adds ``AND version = :read`` to the UPDATE (``version_id_col``), so even a
   writer that slipped past both fails with ``StaleDataError`` instead of winning.

Rows are locked before the audit chain head (which :func:`soc.audit.trail.record`
locks), in id order in a bulk change, so concurrent writers cannot deadlock.
Every change is recorded in the audit trail in its own transaction's commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from soc.alerts.models import CLOSED_STATUSES, Alert
from soc.api.etag import if_match_versions
from soc.audit.trail import Actor, record
from soc.db import Database, utcnow
from soc.i18n import register
from soc.identity.models import UserRow
from soc.identity.principal import Principal
from soc.identity.roles import Permission, allowed
from soc.identity.scope import resolve_scope
from soc.triage.errors import TriageError, not_found
from soc.triage.models import AlertComment
from soc.triage.workflow import ACKNOWLEDGED, IN_PROGRESS, REOPEN_TO, RESOLVED, apply_change, check_change

MAX_COMMENT_CHARS = 10_000
MAX_BULK = 1000

BulkAction = Literal["acknowledge", "start", "resolve", "reopen", "assign", "comment"]
BULK_ACTIONS: dict[str, str | None] = {"acknowledge": ACKNOWLEDGED, "start": IN_PROGRESS, "resolve": RESOLVED,
                                       "reopen": REOPEN_TO, "assign": None, "comment": None}
"""Bulk action → the status it moves alerts to (``None``: no status change)."""

register({
    "triage.assignee_unknown": (
        "Không có người dùng '{id}' để giao việc",
        "No user '{id}' to assign to",
    ),
    "triage.assignee_inactive": (
        "Người dùng '{username}' đã bị khóa, không thể giao việc",
        "User '{username}' is deactivated and cannot be assigned",
    ),
    "triage.assignee_role": (
        "Người dùng '{username}' có vai trò '{role}', không được xử lý cảnh báo; giao cho analyst hoặc admin",
        "User '{username}' has role '{role}', which cannot triage alerts; assign an analyst or an admin",
    ),
    "triage.assignee_scope": (
        "Người dùng '{username}' không phụ trách cơ quan '{agency}' của cảnh báo này",
        "User '{username}' has no access to agency '{agency}' of this alert",
    ),
    "triage.comment_required": (
        "Thiếu nội dung bình luận (comment)",
        "A comment text is required",
    ),
    "triage.comment_too_long": (
        "Bình luận dài {length} ký tự, tối đa {limit}",
        "The comment is {length} characters long, at most {limit}",
    ),
    "triage.reopen_not_resolved": (
        "Cảnh báo đang ở trạng thái '{current}', chưa đóng nên không thể mở lại",
        "The alert is '{current}', not resolved, so it cannot be reopened",
    ),
    "triage.bulk_target": (
        "Chỉ định đúng một trong 'ids' (tối đa {limit}) hoặc 'filter'",
        "Give exactly one of 'ids' (at most {limit}) or 'filter'",
    ),
})

Render = Callable[[Session, Alert], dict[str, Any]]
"""Builds the API view of an alert (inside the caller's session)."""


@dataclass
class AlertChange:
    """A change to one alert. ``assign`` tells whether ``assignee_id`` is part of it
    (``None`` then unassigns)."""

    status: str | None = None
    resolution: str | None = None
    assign: bool = False
    assignee_id: str | None = None
    comment: str | None = None


@dataclass
class BulkResult:
    id: str
    ok: bool
    status_code: int
    reason: str | None = None
    reason_vi: str | None = None
    version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "status_code": self.status_code, "reason": self.reason,
                "reason_vi": self.reason_vi, "version": self.version}


@dataclass
class Assignees:
    """Assignee checks, each user's scope resolved once per request."""

    session: Session
    cache: dict[str, tuple[UserRow | None, Any]] = field(default_factory=dict)

    def check(self, user_id: str, agency_id: str | None) -> None:
        if user_id not in self.cache:
            user = self.session.get(UserRow, user_id)
            scope = resolve_scope(self.session, user.agencies) if user is not None else None
            self.cache[user_id] = (user, scope)
        user, scope = self.cache[user_id]
        if user is None:
            raise TriageError(422, "triage.assignee_unknown", id=user_id)
        if not user.active:
            raise TriageError(422, "triage.assignee_inactive", username=user.username)
        if not allowed(user.role, Permission.TRIAGE):
            raise TriageError(422, "triage.assignee_role", username=user.username, role=user.role)
        if not scope.allows(agency_id):
            raise TriageError(422, "triage.assignee_scope", username=user.username, agency=agency_id or "-")


def parse_if_match(header: str | None) -> set[int]:
    """The versions an ``If-Match`` header accepts (``"3"``, ``W/"3"``, ``3``, lists)."""
    if header is None or not header.strip():
        raise TriageError(428, "triage.if_match_required")
    try:
        versions = if_match_versions(header)
    except ValueError:
        versions = None
    if versions is None:  # malformed, or "*": a triage change always names the version it read
        raise TriageError(400, "triage.if_match_invalid", value=header[:100])
    return versions


def visible_alert(session: Session, principal: Principal, alert_id: str, *, lock: bool = False) -> Alert:
    """The alert if it exists and is in the caller's scope, else 404 (never 403)."""
    stmt = select(Alert).where(Alert.id == alert_id, principal.scope.clause(Alert.agency_id))
    if lock:
        stmt = stmt.with_for_update()
    alert = session.scalars(stmt).first()
    if alert is None:
        raise not_found("alert", alert_id)
    return alert


def _comment_text(text: str | None, required: bool) -> str | None:
    body = (text or "").strip()
    if not body:
        if required:
            raise TriageError(422, "triage.comment_required")
        return None
    if len(body) > MAX_COMMENT_CHARS:
        raise TriageError(422, "triage.comment_too_long", length=len(body), limit=MAX_COMMENT_CHARS)
    return body


def _add_comment(session: Session, principal: Principal, alert: Alert, body: str, now: datetime) -> AlertComment:
    comment = AlertComment(alert_id=alert.id, author_id=principal.user_id, author_name=principal.username,
                           body=body, created_at=now)
    session.add(comment)
    session.flush()
    return comment


def _apply(session: Session, principal: Principal, alert: Alert, change: AlertChange, now: datetime,
           assignees: Assignees) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """Check everything, then change ``alert``: ``(before, after, comment text)``."""
    check_change(alert, change.status, change.resolution)
    if change.assign and change.assignee_id is not None:
        assignees.check(change.assignee_id, alert.agency_id)
    comment = _comment_text(change.comment, required=False)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    moved = apply_change(alert, change.status, change.resolution, now)
    if moved is not None:
        before.update(moved.before)
        after.update(moved.after)
    if change.assign and change.assignee_id != alert.assignee_id:
        before["assignee_id"], after["assignee_id"] = alert.assignee_id, change.assignee_id
        alert.assignee_id = change.assignee_id
    return before, after, comment


def _stale(session: Session, alert: Alert, sent: Sequence[int] | set[int], render: Render) -> TriageError:
    return TriageError(412, "triage.stale", what="alert", id=alert.id, state=render(session, alert),
                       headers={"ETag": f'"{alert.version}"'}, sent=", ".join(str(v) for v in sorted(sent)),
                       current=alert.version)


def update_alert(db: Database, principal: Principal, alert_id: str, versions: set[int], change: AlertChange,
                 render: Render) -> dict[str, Any]:
    """PATCH one alert; returns its view after the change (unchanged: as it is)."""
    now = utcnow()
    try:
        with db.write() as session:
            alert = visible_alert(session, principal, alert_id, lock=True)
            if alert.version not in versions:
                raise _stale(session, alert, versions, render)
            before, after, comment = _apply(session, principal, alert, change, now, Assignees(session))
            actor = Actor.of(principal)
            if after:
                session.flush()
                record(session, actor, "alert.update", "alert", alert.id, agency_id=alert.agency_id,
                       before=before, after=after)
            if comment is not None:
                note = _add_comment(session, principal, alert, comment, now)
                record(session, actor, "alert.comment", "alert", alert.id, agency_id=alert.agency_id,
                       after={"comment_id": note.id, "body": comment})
            return render(session, alert)
    except StaleDataError:
        # Another writer got in between our read and our UPDATE: answer as for a stale If-Match.
        with db.read() as session:
            current = visible_alert(session, principal, alert_id)
            raise _stale(session, current, versions, render) from None


def add_comment(db: Database, principal: Principal, alert_id: str, text: str) -> dict[str, Any]:
    from soc.triage.views import comment_view

    body = _comment_text(text, required=True)
    assert body is not None
    now = utcnow()
    with db.write() as session:
        alert = visible_alert(session, principal, alert_id)
        note = _add_comment(session, principal, alert, body, now)
        record(session, Actor.of(principal), "alert.comment", "alert", alert.id, agency_id=alert.agency_id,
               after={"comment_id": note.id, "body": body})
        return comment_view(note)


def bulk_change(db: Database, principal: Principal, ids: Sequence[str], action: str, *,
                resolution: str | None = None, assignee_id: str | None = None, comment: str | None = None,
                versions: dict[str, int] | None = None) -> list[BulkResult]:
    """Apply ``action`` to each alert on its own: one audit entry per alert changed,
    a result per id (404 out of scope or unknown, 409/422 refused, 412 stale)."""
    wanted = list(dict.fromkeys(ids))[:MAX_BULK]
    versions = versions or {}
    target = BULK_ACTIONS[action]
    if action == "comment":
        _comment_text(comment, required=True)
    change = AlertChange(status=target, resolution=resolution if action == "resolve" else None,
                         assign=action == "assign", assignee_id=assignee_id if action == "assign" else None,
                         comment=comment)
    now = utcnow()
    results: list[BulkResult] = []
    changed: list[tuple[BulkResult, Alert]] = []
    with db.write() as session:
        rows = session.scalars(select(Alert).where(Alert.id.in_(wanted), principal.scope.clause(Alert.agency_id))
                               .order_by(Alert.id).with_for_update())
        alerts = {a.id: a for a in rows}
        assignees = Assignees(session)
        actor = Actor.of(principal)
        for alert_id in wanted:
            alert = alerts.get(alert_id)
            try:
                if alert is None:
                    raise not_found("alert", alert_id)
                expected = versions.get(alert_id)
                if expected is not None and expected != alert.version:
                    raise TriageError(412, "triage.stale", what="alert", id=alert_id, current=alert.version,
                                      sent=expected)
                if action == "reopen" and alert.status not in CLOSED_STATUSES:
                    raise TriageError(409, "triage.reopen_not_resolved", current=alert.status)
                step = change
                if target is not None and alert.status == target:
                    step = AlertChange(comment=comment)  # already there: only the comment, if any
                before, after, note = _apply(session, principal, alert, step, now, assignees)
            except TriageError as exc:
                message = exc.message()
                results.append(BulkResult(alert_id, False, exc.status, message["en"], message["vi"],
                                          alert.version if alert is not None else None))
                continue
            if note is not None:
                comment_row = _add_comment(session, principal, alert, note, now)
                after["comment_id"], after["comment"] = comment_row.id, note
            result = BulkResult(alert_id, True, 200)
            if after:
                session.flush()
                record(session, actor, f"alert.bulk.{action}", "alert", alert.id, agency_id=alert.agency_id,
                       before=before, after=after)
            results.append(result)
            changed.append((result, alert))
    for result, alert in changed:
        result.version = alert.version
    return results

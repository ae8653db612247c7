"""The alert status workflow an analyst moves an alert through.

::

    new ──► acknowledged ──► in_progress ──► resolved (true_positive | false_positive | benign)
     │            │                ▲             │
     │            └────────────────┼─────────────┤ (acknowledged → resolved, new → resolved)
     └─────────────────────────────┘             │
                    in_progress ◄── reopen ──────┘

- ``new`` → ``acknowledged`` | ``in_progress`` | ``resolved``
- ``acknowledged`` → ``in_progress`` | ``resolved``
- ``in_progress`` → ``resolved``
- ``resolved`` → ``in_progress`` (a **reopen**: someone works on it again, so it goes
  straight back to work rather than to ``acknowledged``, which would restart nothing)

Resolving needs a resolution; a reopen clears it and ``resolved_at``.
``acknowledged_at`` is set by the first move out of ``new`` (the time-to-acknowledge
SLA runs until then) and never changes after; ``status_changed_at`` follows every
change. Alerts closed before this workflow existed (``closed``, ``false_positive``)
can only be reopened.

A resolved alert is never grown by new detections (it is in
:data:`~soc.alerts.models.CLOSED_STATUSES`): the next occurrence opens a new alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from soc.alerts.models import Alert
from soc.i18n import register
from soc.triage.errors import TriageError

NEW = "new"
ACKNOWLEDGED = "acknowledged"
IN_PROGRESS = "in_progress"
RESOLVED = "resolved"
STATUSES: tuple[str, ...] = (NEW, ACKNOWLEDGED, IN_PROGRESS, RESOLVED)
LEGACY_CLOSED: tuple[str, ...] = ("closed", "false_positive")
OPEN_STATUSES: tuple[str, ...] = (NEW, ACKNOWLEDGED, IN_PROGRESS)
RESOLUTIONS: tuple[str, ...] = ("true_positive", "false_positive", "benign")
REOPEN_TO = IN_PROGRESS

TRANSITIONS: dict[str, tuple[str, ...]] = {
    NEW: (ACKNOWLEDGED, IN_PROGRESS, RESOLVED),
    ACKNOWLEDGED: (IN_PROGRESS, RESOLVED),
    IN_PROGRESS: (RESOLVED,),
    RESOLVED: (REOPEN_TO,),
    "closed": (REOPEN_TO,),
    "false_positive": (REOPEN_TO,),
}
STATUS_RANK: dict[str, int] = {NEW: 0, ACKNOWLEDGED: 1, IN_PROGRESS: 2, RESOLVED: 3, "closed": 4,
                               "false_positive": 5}
"""Workflow order, for sorting by status."""

register({
    "triage.bad_transition": (
        "Không thể chuyển cảnh báo từ '{current}' sang '{wanted}'; trạng thái tiếp theo hợp lệ: {allowed}",
        "An alert cannot move from '{current}' to '{wanted}'; allowed next statuses: {allowed}",
    ),
    "triage.unknown_status": (
        "Trạng thái '{wanted}' không tồn tại; dùng một trong: {known}",
        "Unknown status '{wanted}'; use one of: {known}",
    ),
    "triage.resolution_required": (
        "Cần có kết luận khi đóng cảnh báo: resolution là một trong {known}",
        "Resolving needs a resolution: one of {known}",
    ),
    "triage.resolution_unknown": (
        "Kết luận '{value}' không hợp lệ; dùng một trong: {known}",
        "Unknown resolution '{value}'; use one of: {known}",
    ),
    "triage.resolution_without_resolve": (
        "Chỉ ghi kết luận (resolution) khi cảnh báo ở trạng thái resolved (hiện tại: '{current}')",
        "A resolution goes with status resolved only (the alert is '{current}')",
    ),
})


class WorkflowError(TriageError):
    """A change the workflow refuses: 409 for a transition from the wrong state (the
    message names the allowed next statuses), 422 for a bad request."""


def allowed_next(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


@dataclass(frozen=True, slots=True)
class StatusChange:
    """What a status change did, for the audit trail (``before`` → ``after``)."""

    before: dict[str, Any]
    after: dict[str, Any]


_TRACKED = ("status", "resolution", "acknowledged_at", "resolved_at")


def _snapshot(alert: Alert) -> dict[str, Any]:
    return {name: getattr(alert, name) for name in _TRACKED}


def check_change(alert: Alert, status: str | None, resolution: str | None) -> None:
    """Raise :class:`WorkflowError` unless ``status``/``resolution`` may be applied."""
    if resolution is not None and resolution not in RESOLUTIONS:
        raise WorkflowError(422, "triage.resolution_unknown", value=resolution, known=", ".join(RESOLUTIONS))
    if status is None or status == alert.status:
        if resolution is not None and alert.status != RESOLVED:
            raise WorkflowError(422, "triage.resolution_without_resolve", current=alert.status)
        return
    if status not in STATUSES:
        raise WorkflowError(422, "triage.unknown_status", wanted=status, known=", ".join(STATUSES))
    allowed = allowed_next(alert.status)
    if status not in allowed:
        raise WorkflowError(409, "triage.bad_transition", current=alert.status, wanted=status,
                            allowed=", ".join(allowed) or "-")
    if status == RESOLVED and resolution is None:
        raise WorkflowError(422, "triage.resolution_required", known=", ".join(RESOLUTIONS))
    if status != RESOLVED and resolution is not None:
        raise WorkflowError(422, "triage.resolution_without_resolve", current=status)


def apply_change(alert: Alert, status: str | None, resolution: str | None, now: datetime) -> StatusChange | None:
    """Move ``alert`` (checked first, see :func:`check_change`); ``None`` when nothing changes."""
    check_change(alert, status, resolution)
    before = _snapshot(alert)
    if status is not None and status != alert.status:
        if alert.acknowledged_at is None:
            alert.acknowledged_at = now
        if status == RESOLVED:
            alert.resolved_at = now
            alert.resolution = resolution
        else:
            # A reopen (or any move that is not a resolve) leaves no stale verdict behind.
            alert.resolved_at = None
            alert.resolution = None
        alert.status = status
        alert.status_changed_at = now
    elif resolution is not None and resolution != alert.resolution:
        alert.resolution = resolution
    after = _snapshot(alert)
    if after == before:
        return None
    changed = [name for name in _TRACKED if before[name] != after[name]]
    return StatusChange({n: before[n] for n in changed}, {n: after[n] for n in changed})

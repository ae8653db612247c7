"""The events behind an alert, read back from the event store.

The store interface (:class:`~soc.store.base.EventStore`) has no lookup by id, so
this asks its public search: ``event.id:("…" OR "…")`` within the alert's own time
span (plus a margin), which both stores answer from their time index instead of
scanning history. Only the newest :data:`MAX_EVIDENCE` ids are fetched; the alert
says how many it holds.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from soc.alerts.models import Alert
from soc.i18n import register, t
from soc.store.base import EventStore, TimeRange

log = logging.getLogger(__name__)

register({
    "triage.evidence_unavailable": (
        "Không đọc được các sự kiện của cảnh báo từ kho sự kiện: {detail}",
        "The alert's events could not be read from the event store: {detail}",
    ),
})

MAX_EVIDENCE = 100
MARGIN = timedelta(minutes=5)
"""Around the alert's span: an event stored without a time got one close to when it
was detected, not necessarily the very same instant."""


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def id_query(ids: list[str]) -> str:
    return "event.id:(" + " OR ".join(_quoted(i) for i in ids) + ")"


def evidence(store: EventStore, alert: Alert, limit: int = MAX_EVIDENCE) -> dict[str, Any]:
    """``{events, total, shown, error}``: the alert's newest events, oldest first."""
    ids = [i for i in alert.event_ids if i][-limit:]
    out: dict[str, Any] = {"total": len(alert.event_ids), "shown": 0, "events": [], "error": None}
    if not ids:
        return out
    span = TimeRange(alert.first_seen - MARGIN, alert.last_seen + MARGIN)
    try:
        events = store.search(id_query(ids), span, limit=len(ids), newest_first=False)
    except Exception as exc:  # the store being down must not hide the alert itself
        log.warning("evidence of alert %s unavailable: %s", alert.id, exc)
        out["error"] = t("triage.evidence_unavailable", detail=f"{type(exc).__name__}: {exc}")
        return out
    out["events"], out["shown"] = events, len(events)
    return out

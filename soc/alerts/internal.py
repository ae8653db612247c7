"""Alerts the SOC raises about itself: a spool filling up because the event store is
down, a log source gone silent. They go through :meth:`AlertStore.raise_detections`
like any rule's detections, so deduplication, exceptions, the triage queue and
notifications treat them the same way.

An internal alert has no Sigma rule; its rule id is ``soc-internal-<kind>`` (a
namespace no loaded rule uses, see :func:`is_internal_rule`), it has no ATT&CK
tactic, and ``key`` says which thing it is about (a sink, a source). Raising the
same kind with the same key again while the alert is open (and within the store's
dedup window) grows that alert instead of opening another.

How it is built on the store as it is: only correlation detections dedup on values
the caller chooses (their group), so an internal alert is a correlation-kind
detection whose group is ``{"soc.internal": {"key": key}}``. Being a mapping, the
group value stays out of the alert's key fields, so the store's summary line is
"<title> on host <SOC host> (N events)"; the key and ``fields`` are written into the
alert's key fields right after, in a second short transaction (with the summary
recomputed from them, as the store does when the alert grows).
"""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from collectors.event import Event, iso_utc, unique_ids
from soc.alerts.models import Alert
from soc.alerts.store import MAX_VALUE_CHARS, AlertBatchResult, AlertStore, summarize
from soc.db import make_session_factory, write_session
from soc.detect.model import Detection, RuleInfo

INTERNAL_RULE_PREFIX = "soc-internal-"
"""Rule ids of internal alerts start with this; no Sigma rule may."""
LEVELS: tuple[str, ...] = ("informational", "low", "medium", "high", "critical")
KEY_FIELD = "soc.internal.key"
"""The key field holding ``key`` on an internal alert."""
_KIND = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


def internal_rule_id(kind: str) -> str:
    """``spool_full`` → ``soc-internal-spool-full``."""
    if not _KIND.match(kind):
        raise ValueError(f"internal alert kind {kind!r}: use lowercase letters, digits, '-' or '_'")
    return INTERNAL_RULE_PREFIX + kind.replace("_", "-")


def is_internal_rule(rule_id: str) -> bool:
    return rule_id.startswith(INTERNAL_RULE_PREFIX)


def raise_internal_alert(store: AlertStore, *, kind: str, title_vi: str, title_en: str, level: str,
                         fields: dict[str, Any], key: str, gov: dict[str, Any] | None = None) -> AlertBatchResult:
    """Raise (or, while one is open for the same ``kind`` and ``key``, grow) an
    internal alert. ``fields`` (dotted name → scalar) are the facts an analyst
    needs — bytes, quota, the last error — and are kept on the alert, the latest
    raise winning. ``gov`` (the ``gov.*`` object a system's events carry) attributes
    the alert to that system and agency, for scope and notification routing. Returns
    what the store did (``created`` or ``updated``; nothing when an exception
    suppresses it)."""
    if level not in LEVELS:
        raise ValueError(f"level {level!r}: use one of {', '.join(LEVELS)}")
    for title in (title_vi, title_en):
        if not title.strip() or " / " in title:
            raise ValueError("titles must be non-empty and must not contain ' / ' (it separates the languages)")
    rule = RuleInfo(id=internal_rule_id(kind), title=f"{title_vi.strip()} / {title_en.strip()}", level=level,
                    kind="correlation", description="SOC internal alert / cảnh báo nội bộ của SOC")
    now = iso_utc(datetime.now(UTC))
    event_id = unique_ids(1)[0]
    event: Event = {
        "@timestamp": now,
        "message": rule.title,
        "event": {"id": event_id, "kind": "alert", "module": "soc", "dataset": "soc.internal", "action": kind},
        "host": {"name": socket.gethostname()},
    }
    if gov is not None:
        event["gov"] = gov
    detection = Detection(rule=rule, events=[event], event_ids=[event_id], first_seen=now, last_seen=now,
                          group={"soc.internal": {"key": key}})
    result = store.raise_detections([detection])
    if result.alert_ids:
        _record_fields(store, result.alert_ids[0], {KEY_FIELD: key, **fields})
    return result


def _record_fields(store: AlertStore, alert_id: str, fields: dict[str, Any]) -> None:
    clean = {name: _scalar(value) for name, value in fields.items() if value is not None}
    with write_session(make_session_factory(store.engine)) as session:
        alert = session.scalars(select(Alert).where(Alert.id == alert_id).with_for_update()).one_or_none()
        if alert is not None:
            # A new dict: JSON columns do not track in-place mutation.
            alert.key_fields = {**alert.key_fields, **clean}
            # Computed as the store computes it on every growth, so it does not
            # change wording when the alert grows.
            alert.summary = summarize(alert.rule_title, alert.key_fields, alert.count, {})


def _scalar(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        return value
    return str(value)[:MAX_VALUE_CHARS]

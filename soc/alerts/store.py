"""The alert store: detections in, alerts out.

:meth:`AlertStore.raise_detections` takes what the rule and correlation engines
emit and, in one database transaction per batch,

1. drops detections an exception (allowlist) covers, counting them per exception;
2. folds each remaining detection into the open alert with the same **dedup key**
   whose activity lies within ``dedup_window`` seconds of it (count grows,
   ``last_seen`` advances, event ids are appended), or opens a new alert.

Dedup key (SHA-256 of):

- correlation rules: rule id + the correlation's group-by values — the rule author
  already said what "the same thing" is;
- single-event rules: rule id + ``gov.system.id`` + ``source.ip``,
  ``destination.ip``, ``user.name`` and ``host.name`` of the event (missing ones as
  null; text compared case-insensitively) — the same actor against the same target on
  the same system. The system is part of it so an alert never spans two agencies'
  systems (triage access is per agency). A spray over many accounts therefore gives
  one alert per account; counting it as one attack is a correlation rule's job.

Retro-hunt results (``Detection.retro``, from ``soc rules hunt``) are deduplicated
among themselves only: the key of a retro-hunt detection carries its origin, so it
never grows a live alert, and a live detection never grows a retro-hunt alert. The
triage queue thus tells what the stream raised from what a hunt over history found,
and a hunt over what the stream already saw does not touch the live alerts.

Alerts in a closed status (:data:`~soc.alerts.models.CLOSED_STATUSES`) are never
grown: the next occurrence opens a new alert. A detection whose event ids the alert
already holds (events redelivered from the spool, the same retro-hunt run twice)
changes nothing, so replays do not inflate counts.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from collectors.event import UNASSIGNED_SYSTEM, Event, get_field
from soc.alerts.exceptions import ExceptionSet
from soc.alerts.models import CLOSED_STATUSES, MAX_EVENT_IDS, Alert, new_alert_id
from soc.db import make_session_factory, utcnow, write_session
from soc.detect.model import Detection

KEY_FIELDS: tuple[str, ...] = (
    "source.ip",
    "source.port",
    "destination.ip",
    "destination.port",
    "user.name",
    "user.domain",
    "host.name",
    "url.original",
    "url.domain",
    "http.request.method",
    "http.response.status_code",
    "user_agent.original",
    "process.name",
    "process.executable",
    "process.command_line",
    "process.parent.name",
    "file.path",
    "dns.question.name",
    "winlog.event_id",
    "event.action",
    "event.outcome",
    "rule.name",
)
"""ECS fields copied into ``Alert.key_fields`` when the events carry them."""
DEDUP_FIELDS: tuple[str, ...] = ("source.ip", "destination.ip", "user.name", "host.name")
"""Fields of a single-event rule's dedup key (with the rule id and the system)."""
KEY_FIELDS_EVENTS = 10
"""Events consulted for key fields: the first that carries a field gives its value."""
MAX_VALUE_CHARS = 1024
_CHUNK = 500
"""Bound parameters per ``IN`` list (far below any backend's limit)."""

# Main key field of a summary line: field → (Vietnamese, English) wording.
_SUMMARY_FIELDS: dict[str, tuple[str, str]] = {
    "source.ip": ("từ", "from"),
    "user.name": ("tài khoản", "user"),
    "host.name": ("trên máy", "on host"),
    "destination.ip": ("đến", "to"),
    "url.original": ("URL", "URL"),
    "process.command_line": ("lệnh", "command"),
}


@dataclass(slots=True)
class AlertBatchResult:
    """What one :meth:`AlertStore.raise_detections` call did, counted in detections:
    ``created + updated + duplicates + suppressed == len(detections)``."""

    created: int = 0
    """Detections that opened a new alert."""
    updated: int = 0
    """Detections folded into an alert (one from an earlier batch or this one)."""
    suppressed: int = 0
    suppressed_by: dict[str, int] = field(default_factory=dict)
    """Exception id → detections it suppressed."""
    duplicates: int = 0
    """Detections whose events the alert already held (redelivered or re-scanned)."""
    alert_ids: list[str] = field(default_factory=list)
    """Alerts created or changed, in the order first touched."""


# --- what a detection says --------------------------------------------------------

def _clip(value: Any) -> Any:
    if isinstance(value, str):
        return value[:MAX_VALUE_CHARS]
    if isinstance(value, list):
        return [_clip(v) for v in value[:20] if not isinstance(v, dict | list)]
    return value


def key_fields(events: Sequence[Event], group: dict[str, Any] | None = None) -> dict[str, Any]:
    """Dotted ECS field → value: the correlation ``group`` values, then each of
    :data:`KEY_FIELDS` from the first of the first events that carries it."""
    out: dict[str, Any] = {}
    for name, value in (group or {}).items():
        if value is not None and not isinstance(value, dict):
            out[name] = _clip(value)
    head = events[:KEY_FIELDS_EVENTS]
    for name in KEY_FIELDS:
        if name in out:
            continue
        for event in head:
            value = get_field(event, name)
            if value is not None and value != "" and value != [] and not isinstance(value, dict):
                out[name] = _clip(value)
                break
    systems = list(dict.fromkeys(str(get_field(e, "gov.system.id") or UNASSIGNED_SYSTEM) for e in events))
    if len(systems) > 1:
        # A correlation across systems: the alert is filed under the first one.
        out["gov.system.id"] = systems[:20]
    return out


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def dedup_key(detection: Detection) -> str:
    """The grouping key of a detection (see the module docstring)."""
    rule = detection.rule
    parts: dict[str, Any] = {"rule": rule.id}
    if detection.retro:
        # Only here, so the keys of live alerts stay what they always were.
        parts["origin"] = "retrohunt"
    if rule.kind == "correlation":
        parts["group"] = {k: _norm(v) for k, v in sorted(detection.group.items())}
    else:
        event = detection.events[0] if detection.events else {}
        parts["system"] = str(get_field(event, "gov.system.id") or UNASSIGNED_SYSTEM)
        for name in DEDUP_FIELDS:
            parts[name] = _norm(get_field(event, name))
    raw = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        shown = ", ".join(str(v) for v in value[:3])
        return shown + (", …" if len(value) > 3 else "")
    text = str(value)
    return text if len(text) <= 120 else text[:119] + "…"


def summarize(title: str, fields: dict[str, Any], count: int, group: Iterable[str] = ()) -> str:
    """One line in both languages: rule title, main key field, event count.

    The main field is the first correlation group field, otherwise the first of
    source.ip, user.name, host.name, destination.ip … the fields hold. A title
    written ``Tiếng Việt / English`` is split between the halves."""
    vi_title, sep, en_title = title.partition(" / ")
    if not sep:
        en_title = vi_title
    order = [*(name for name in group if name in fields), *_SUMMARY_FIELDS]
    main = next(((name, fields[name]) for name in order if name in fields), None)
    vi, en = vi_title.strip(), en_title.strip()
    if main is not None:
        name, value = main
        vi_word, en_word = _SUMMARY_FIELDS.get(name, (f"{name} =", f"{name} ="))
        vi += f" {vi_word} {_fmt(value)}"
        en += f" {en_word} {_fmt(value)}"
    line = f"{vi} ({count} sự kiện) / {en} ({count} event{'s' if count != 1 else ''})"
    return line if len(line) <= 1000 else line[:999] + "…"


def _timestamp(value: str | None, fallback: datetime) -> datetime:
    if not value:
        return fallback
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return fallback
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _classification(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(slots=True)
class _Pending:
    detection: Detection
    key: str
    first: datetime
    last: datetime

    @classmethod
    def of(cls, detection: Detection, now: datetime) -> _Pending:
        first = _timestamp(detection.first_seen, now)
        last = _timestamp(detection.last_seen, first)
        return cls(detection, dedup_key(detection), min(first, last), max(first, last))


# --- the store --------------------------------------------------------------------

class AlertStore:
    """Alerts in the SOC database (see the module docstring for the semantics).

    Thread-safe: batches are written one at a time, which also keeps a single
    process from contending with itself for SQLite's write lock."""

    def __init__(self, engine: Engine, *, dedup_window: float = 3600.0,
                 exceptions: ExceptionSet | None = None, cache_size: int = 100_000) -> None:
        if dedup_window < 0:
            raise ValueError("dedup_window must be >= 0 seconds")
        self.engine = engine
        self.exceptions = exceptions
        """Replaceable at any time (the detect stage reloads it); read once per batch."""
        self._sessions = make_session_factory(engine)
        self._window = timedelta(seconds=dedup_window)
        self._cache: OrderedDict[str, str] = OrderedDict()
        """Dedup key → id of its latest open alert, least recently used first."""
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def dedup_window(self) -> float:
        """Seconds between an alert's activity and a detection that still joins it."""
        return self._window.total_seconds()

    # -- writing ------------------------------------------------------------------
    def raise_detections(self, detections: Sequence[Detection], *, hunt_id: str | None = None
                         ) -> AlertBatchResult:
        """Apply exceptions, then create or update alerts, all in one transaction.
        ``hunt_id`` names the retro-hunt run the (``retro``) detections come from; the
        alerts they open record it."""
        result = AlertBatchResult()
        exceptions = self.exceptions
        today = date.today()
        now = utcnow()
        pending: list[_Pending] = []
        for detection in detections:
            hit = exceptions.suppresses(detection, today) if exceptions is not None else None
            if hit is not None:
                result.suppressed += 1
                result.suppressed_by[hit.id] = result.suppressed_by.get(hit.id, 0) + 1
            else:
                pending.append(_Pending.of(detection, now))
        if not pending:
            return result
        with self._lock:
            latest = self._write(pending, now, result, hunt_id)
            # Only after the commit: a rolled-back batch must leave no ids behind.
            for key, alert_id in latest.items():
                self._cache[key] = alert_id
                self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    def _write(self, pending: list[_Pending], now: datetime, result: AlertBatchResult,
               hunt_id: str | None) -> dict[str, str]:
        touched: dict[str, tuple[Alert, Detection]] = {}
        with write_session(self._sessions) as session:
            candidates = self._candidates(session, pending)
            known_ids: dict[str, set[str]] = {}
            for item in pending:
                alert = self._best(candidates.get(item.key, ()), item)
                if alert is None:
                    alert = self._new_alert(item, now, hunt_id)
                    session.add(alert)
                    candidates.setdefault(item.key, []).append(alert)
                    known_ids[alert.id] = set(alert.event_ids)
                    result.created += 1
                else:
                    ids = known_ids.setdefault(alert.id, set(alert.event_ids))
                    if not self._grow(alert, item, ids, now):
                        result.duplicates += 1
                        continue
                    result.updated += 1
                if alert.id not in touched:
                    result.alert_ids.append(alert.id)
                touched[alert.id] = (alert, item.detection)
            for alert, det in touched.values():
                # Detections folded into one correlation alert share its group fields.
                group = det.group if alert.kind == "correlation" else {}
                alert.summary = summarize(alert.rule_title, alert.key_fields, alert.count, group)
        latest: dict[str, str] = {}
        for key, alerts in candidates.items():
            if alerts:
                latest[key] = max(alerts, key=lambda a: a.last_seen).id
        return latest

    def _candidates(self, session: Session, pending: list[_Pending]) -> dict[str, list[Alert]]:
        """Open alerts the batch may grow, by dedup key: the cached ones (one query by
        id), then, for keys the cache cannot serve, a query by key."""
        out: dict[str, list[Alert]] = {}
        seen: set[str] = set()

        def keep(alerts: Iterable[Alert]) -> None:
            for alert in alerts:
                if alert.id not in seen and alert.status not in CLOSED_STATUSES:
                    seen.add(alert.id)
                    out.setdefault(alert.dedup_key, []).append(alert)

        keys = list(dict.fromkeys(item.key for item in pending))
        cached = [self._cache[k] for k in keys if k in self._cache]
        for chunk in _chunks(cached):
            # FOR UPDATE on PostgreSQL (a triage edit waits for the batch); SQLite
            # ignores it and is already serialized by BEGIN IMMEDIATE.
            keep(session.scalars(select(Alert).where(Alert.id.in_(chunk)).with_for_update()))
        missing = [item for item in pending if self._best(out.get(item.key, ()), item) is None]
        if missing:
            floor = min(item.first for item in missing) - self._window
            need = list(dict.fromkeys(item.key for item in missing))
            for chunk in _chunks(need):
                keep(session.scalars(
                    select(Alert)
                    .where(Alert.dedup_key.in_(chunk), Alert.status.not_in(CLOSED_STATUSES),
                           Alert.last_seen >= floor)
                    .with_for_update()))
        return out

    def _best(self, alerts: Iterable[Alert], item: _Pending) -> Alert | None:
        """The most recent alert whose activity is within the window of the detection's."""
        best: Alert | None = None
        for alert in alerts:
            gap = max(item.first - alert.last_seen, alert.first_seen - item.last, timedelta(0))
            if gap <= self._window and (best is None or alert.last_seen > best.last_seen):
                best = alert
        return best

    def _new_alert(self, item: _Pending, now: datetime, hunt_id: str | None) -> Alert:
        det = item.detection
        rule = det.rule
        first_event: Event = det.events[0] if det.events else {}
        event_ids = list(dict.fromkeys(i for i in det.event_ids if i))[-MAX_EVENT_IDS:]
        return Alert(
            id=new_alert_id(),
            rule_id=rule.id,
            rule_title=rule.title[:500],
            level=rule.level,
            kind=rule.kind,
            tactics=rule.tactics,
            techniques=rule.techniques,
            dedup_key=item.key,
            count=max(det.event_count, len(event_ids), 1),
            first_seen=item.first,
            last_seen=item.last,
            created_at=now,
            updated_at=now,
            event_ids=event_ids,
            key_fields=key_fields(det.events, det.group if rule.kind == "correlation" else None),
            system_id=str(get_field(first_event, "gov.system.id") or UNASSIGNED_SYSTEM),
            agency_id=get_field(first_event, "gov.agency.id"),
            level_gov=get_field(first_event, "gov.level"),
            classification=_classification(get_field(first_event, "gov.classification")),
            retro=det.retro,
            hunt_id=hunt_id if det.retro else None,
            summary="",
        )

    @staticmethod
    def _grow(alert: Alert, item: _Pending, known: set[str], now: datetime) -> bool:
        """Fold a detection into an alert; ``False`` when it adds no new event."""
        det = item.detection
        ids = list(dict.fromkeys(i for i in det.event_ids if i))
        new_ids = [i for i in ids if i not in known]
        if ids and not new_ids:
            return False
        # Events already counted are not counted again; those beyond the ids the
        # detection carries (a large correlation window) are taken as new.
        alert.count += max(det.event_count - (len(ids) - len(new_ids)), len(new_ids), 1)
        alert.first_seen = min(alert.first_seen, item.first)
        alert.last_seen = max(alert.last_seen, item.last)
        if new_ids:
            known.update(new_ids)
            # A new list, not an in-place append: JSON columns do not track mutation.
            alert.event_ids = (list(alert.event_ids) + new_ids)[-MAX_EVENT_IDS:]
        alert.retro = alert.retro and det.retro
        alert.updated_at = now
        return True

    # -- reading ------------------------------------------------------------------
    def get(self, alert_id: str) -> Alert | None:
        with self._sessions() as session:
            return session.get(Alert, alert_id)

    def list_alerts(self, *, since: datetime | None = None, until: datetime | None = None,
                    status: str | Sequence[str] | None = None, rule_id: str | Sequence[str] | None = None,
                    level: str | Sequence[str] | None = None, system_id: str | Sequence[str] | None = None,
                    limit: int = 100) -> list[Alert]:
        """Alerts active in ``[since, until)`` (``last_seen >= since`` and
        ``first_seen < until``) matching every filter given (a list means any of),
        most recent ``last_seen`` first."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        stmt = select(Alert)
        if since is not None:
            stmt = stmt.where(Alert.last_seen >= _aware(since, "since"))
        if until is not None:
            stmt = stmt.where(Alert.first_seen < _aware(until, "until"))
        for column, wanted in ((Alert.status, status), (Alert.rule_id, rule_id), (Alert.level, level),
                               (Alert.system_id, system_id)):
            if wanted is not None:
                values = [wanted] if isinstance(wanted, str) else list(wanted)
                stmt = stmt.where(column.in_(values))
        stmt = stmt.order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit)
        with self._sessions() as session:
            return list(session.scalars(stmt))


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]

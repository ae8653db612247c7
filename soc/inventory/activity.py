"""Arrival counters per system and log source, fed by the pipeline.

The pipeline thread calls :meth:`ActivityTracker.observe` once per batch, after the
batch is stored or spooled (a refused batch will be resent and is not counted). It
only adds to in-memory tallies; :meth:`ActivityTracker.flush`, run by the scheduler
every few seconds, writes the accumulated deltas to ``log_sources`` (totals, last
arrival, arrival history) and sets ``systems.first_log_at`` the first time.

**Which log source an event belongs to** is decided at flush time, against the log
sources the database holds then (so a source added a moment ago is used at once):

1. the log source the batch names (``POST /api/v1/ingest?source=<name>``);
2. else a source whose ``format`` is the event's format — the declared format of the
   batch, else the format the parsed event shows (its ``event.module`` /
   ``event.dataset``; a syslog header adds ``syslog`` as a second choice, so an nginx
   line relayed by syslog matches the ``nginx`` source first, a ``syslog`` one next);
   a source whose transport also fits the batch wins a tie;
3. else a source whose ``transport`` is the batch's (``syslog`` for events from the
   syslog listeners: agentless network devices);
4. else the system's only source;
5. else ``unlisted``: a per-system catch-all kept in memory, shown by the health
   routes but not watched for silence.

A parse failure carries no format of its own; in an auto-detected batch it goes with
the format most of the same system's events in that batch had (a batch comes from one
stream: a file, a syslog sender, an ingest request).

**Times are arrival times** (``Origin.received``, the wall clock when the source read
the batch), never event times: a source replaying old logs is alive.

**History** (``log_sources.history``, JSON, bounded in size) keeps what learning the
expected interval needs (see :func:`learn_interval`):

- ``gaps``: a histogram of the gaps, in whole minutes, between consecutive minutes in
  which the source sent anything (a source busy every second gives one 1-minute gap
  per minute); long gaps are bucketed (5 min up to 6 h, 1 h up to 2 days, 1 day up to
  30 days), and all counts are halved when they pass :data:`GAP_SAMPLES_MAX` so the
  histogram follows the source's recent behaviour;
- ``week``: active minutes per UTC weekday-hour (168 cells), to learn quiet hours;
- ``recent``: events and parse failures per hour over the last day;
- ``last_minute`` (epoch minute of the last arrival) and ``since`` (first arrival).

Once ``health.learn_min_samples`` gaps are known, every flush that records arrivals
of a source also updates its ``learned_interval_s``; the silent-source check uses it
when the source's ``interval_mode`` is ``learned``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from collectors.batch import Origin
from collectors.event import PARSE_FAILURE_TAG, UNASSIGNED_SYSTEM, Event
from collectors.parsers import resolve_format
from soc.db import Database
from soc.inventory.models import LogSourceRow, SystemRow

log = logging.getLogger("soc.inventory.activity")

UNLISTED = "unlisted"
"""Name of the per-system catch-all for events no declared log source matches."""

# -- learning parameters (documented in docs/configuration.md, health section) --------
GAP_QUANTILE = 0.99
"""The learned interval covers this share of the source's observed gaps…"""
SAFETY_FACTOR = 1.5
"""…times this margin…"""
LEARN_FLOOR_S = 60
"""…and is never shorter than this."""
GAP_SAMPLES_MAX = 10_000
"""Histogram counts are halved past this many gaps (recent behaviour weighs more)."""
WEEK_CELL_MAX = 600
"""Week cells are halved past this many active minutes (about ten weeks)."""
RECENT_HOURS = 24
"""Window of the recent parse-failure rate."""
QUIET_SHARE = 0.05
"""A weekday-hour is quiet when the source was active there less than this share of
its busiest weekday-hour."""
QUIET_MIN_DAYS = 14
"""Quiet hours are trusted only after the source has been observed this long."""
QUIET_MAX_INTERVAL_S = 3600
"""Quiet hours apply only to sources whose interval is shorter than this: the model is
for "busy in office hours, still at night" sources; a source that sends once a day
already has its rhythm in its gaps."""
QUIET_MAX_CELLS = 132
"""A week with more quiet cells than this (of 168) is not used: too little is left to
watch."""

_MAX_MINUTES = 1500
"""Distinct arrival minutes kept per tally between two flushes (a day's worth; only
reached when flushes fail for that long)."""

_KIND_TRANSPORTS: dict[str, tuple[str, ...]] = {
    "syslog": ("syslog",),
    "http": ("http", "agent"),
    "file": ("file", "agent"),
    "cli": ("file",),
    "evtx": ("evtx", "agent"),
    "elasticsearch": ("elasticsearch", "agent"),
}
"""Log source transports a batch's origin kind delivers."""

_DATASET_FORMATS: dict[str, str] = {
    "nginx.access": "access", "apache.access": "access", "tomcat.access": "access", "web.access": "access",
    "nginx.error": "web_error", "apache.error": "web_error", "iis.access": "iis",
}
_MODULE_FORMATS: dict[str, str] = {
    "web": "access", "iis": "iis", "fortinet": "fortigate", "cisco": "cisco_asa", "suricata": "suricata",
    "wazuh": "wazuh", "windows": "windows", "sysmon": "windows", "app": "json",
}
_SYSLOG_ONLY: tuple[str, ...] = ("syslog",)
_NO_FORMAT: tuple[str, ...] = ()
_NOT_SEEN = object()
_with_syslog: dict[str, tuple[str, ...]] = {}
_alone: dict[str, tuple[str, ...]] = {}


def canonical_format(name: str | None) -> str | None:
    """The parser a format name designates (``nginx`` → ``access``); ``None`` for
    ``auto`` or nothing; an unknown name stays as it is."""
    if not name or name == "auto":
        return None
    try:
        return resolve_format(name)
    except KeyError:
        return name


def event_formats(event: Event) -> tuple[str, ...]:
    """Formats a parsed event shows, most specific first (see the module docstring)."""
    meta = event.get("event")
    fmt: str | None = None
    if isinstance(meta, dict):
        dataset = meta.get("dataset")
        if dataset is not None:
            fmt = _DATASET_FORMATS.get(dataset)
        if fmt is None:
            module = meta.get("module")
            if module is not None:
                fmt = _MODULE_FORMATS.get(module)
    log_obj = event.get("log")
    syslog = isinstance(log_obj, dict) and "syslog" in log_obj
    if fmt is None:
        return _SYSLOG_ONLY if syslog else _NO_FORMAT
    # Interned tuples: the tally dicts hash them once per batch and system.
    table = _with_syslog if syslog else _alone
    found = table.get(fmt)
    if found is None:
        found = table[fmt] = (fmt, "syslog") if syslog else (fmt,)
    return found


@dataclass(frozen=True, slots=True)
class _Key:
    system_id: str
    log_source: str | None
    formats: tuple[str, ...]
    kind: str


@dataclass(slots=True)
class _Tally:
    events: int = 0
    failures: int = 0
    first: float = math.inf
    last: float = 0.0
    minutes: set[int] = field(default_factory=set)
    hours: dict[int, list[int]] = field(default_factory=dict)

    def add(self, events: int, failures: int, at: float) -> None:
        self.events += events
        self.failures += failures
        self.first = min(self.first, at)
        self.last = max(self.last, at)
        if len(self.minutes) < _MAX_MINUTES:
            self.minutes.add(int(at // 60))
        hour = self.hours.setdefault(int(at // 3600), [0, 0])
        hour[0] += events
        hour[1] += failures

    def merge(self, other: _Tally) -> None:
        self.events += other.events
        self.failures += other.failures
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        room = _MAX_MINUTES - len(self.minutes)
        if room > 0:
            self.minutes.update(sorted(other.minutes)[-room:])
        for hour, (n, f) in other.hours.items():
            mine = self.hours.setdefault(hour, [0, 0])
            mine[0] += n
            mine[1] += f


@dataclass(slots=True)
class Unlisted:
    """Events of a system that no declared log source matched (kept in memory)."""

    events: int = 0
    parse_failures: int = 0
    last_seen_at: datetime | None = None
    formats: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {"name": UNLISTED, "state": "unlisted", "watched": False, "events_total": self.events,
                "parse_failures_total": self.parse_failures,
                "parse_failure_rate": _rate(self.parse_failures, self.events),
                "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
                "formats": sorted(self.formats)}


@dataclass(slots=True)
class FlushResult:
    events: int = 0
    sources: int = 0
    unlisted: int = 0
    """Events that matched no declared log source."""
    first_logs: list[str] = field(default_factory=list)
    """Systems whose first event this flush recorded."""


class ActivityTracker:
    """Thread-safe: the pipeline thread observes, a scheduler thread flushes."""

    def __init__(self, *, learn_min_samples: int = 20, log_sources: dict[str, str] | None = None) -> None:
        self.learn_min_samples = learn_min_samples
        self.log_sources: dict[str, str] = dict(log_sources or {})
        """Pipeline source name → the log source its events count for (a configured
        ``sources.<name>.log_source``), when the origin names none itself."""
        self.watch_start: datetime | None = None
        """When the silent-source job started watching (set by its scheduler): silence
        is not counted from before, when the service heard nothing."""
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[_Key, _Tally] = {}
        self._unlisted: dict[str, Unlisted] = {}
        self._declared: dict[str | None, tuple[str, ...] | None] = {}

    # -- the pipeline side ---------------------------------------------------------------
    def observe(self, origin: Origin, events: Sequence[Event]) -> None:
        """Count a stored batch. Never raises: counters must not cost a batch."""
        try:
            self._observe(origin, events)
        except Exception:
            log.exception("activity counters failed on a batch from %s", origin.source)

    def _observe(self, origin: Origin, events: Sequence[Event]) -> None:
        if origin.format in self._declared:
            declared = self._declared[origin.format]
        else:
            fmt = canonical_format(origin.format)
            declared = self._declared[origin.format] = (fmt,) if fmt else None
        per_system: dict[str, dict[tuple[str, ...], list[int]]] = {}
        last_gov: Any = None
        table: dict[tuple[str, ...], list[int]] | None = None
        counts: list[int] | None = None
        # A batch comes from one stream, so its events nearly always share a dataset:
        # the formats are worked out again only when the dataset changes.
        last_dataset: Any = _NOT_SEEN
        formats = declared if declared is not None else _NO_FORMAT
        for event in events:
            gov = event.get("gov")
            # The enrich stage shares one gov object among a system's events.
            if gov is not last_gov:
                last_gov = gov
                counts = None
                system = gov.get("system") if isinstance(gov, dict) else None
                system_id = system.get("id") if isinstance(system, dict) else None
                if not system_id or system_id == UNASSIGNED_SYSTEM:
                    table = None
                else:
                    table = per_system.setdefault(system_id, {})
            if table is None:
                continue
            if declared is None:
                meta = event.get("event")
                dataset = meta.get("dataset") if meta.__class__ is dict else None
                if dataset != last_dataset:
                    last_dataset = dataset
                    new_formats = event_formats(event)
                    if new_formats is not formats:
                        formats, counts = new_formats, None
            if counts is None:
                counts = table.get(formats)
                if counts is None:
                    counts = table[formats] = [0, 0]
            counts[0] += 1
            tags = event.get("tags")
            if tags and PARSE_FAILURE_TAG in tags:
                counts[1] += 1
        if not per_system:
            return
        for table in per_system.values():
            _fold_formatless(table)
        at = origin.received
        with self._lock:
            for system_id, formats_counts in per_system.items():
                for formats, (n, failed) in formats_counts.items():
                    key = _Key(system_id, origin.log_source or self.log_sources.get(origin.source), formats,
                               origin.kind)
                    tally = self._pending.get(key)
                    if tally is None:
                        tally = self._pending[key] = _Tally()
                    tally.add(n, failed, at)

    # -- reading the in-memory part --------------------------------------------------------
    def unlisted(self, system_id: str) -> Unlisted | None:
        with self._lock:
            found = self._unlisted.get(system_id)
            if found is None:
                return None
            return Unlisted(found.events, found.parse_failures, found.last_seen_at, set(found.formats))

    def pending_events(self) -> int:
        with self._lock:
            return sum(t.events for t in self._pending.values())

    # -- the scheduler side ------------------------------------------------------------
    def flush(self, db: Database) -> FlushResult:
        """Write what was observed since the last flush. On a database error the
        deltas are kept for the next flush and the error propagates."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
            if not pending:
                return FlushResult()
            try:
                return self._write(db, pending)
            except Exception:
                with self._lock:
                    for key, tally in pending.items():
                        mine = self._pending.get(key)
                        if mine is None:
                            self._pending[key] = tally
                        else:
                            mine.merge(tally)
                raise

    def _write(self, db: Database, pending: dict[_Key, _Tally]) -> FlushResult:
        result = FlushResult()
        system_ids = sorted({key.system_id for key in pending})
        unlisted: dict[str, list[tuple[_Key, _Tally]]] = {}
        first: dict[str, float] = {}
        for key, tally in pending.items():
            first[key.system_id] = min(first.get(key.system_id, math.inf), tally.first)
        with db.write() as session:
            # Systems before their sources: the order inventory edits lock them in.
            for system_id, at in sorted(first.items()):
                # A Core UPDATE that leaves the version and updated_at alone: logs
                # arriving are not an inventory edit (no stale ETag, no registry reload).
                changed = session.execute(
                    update(SystemRow).where(SystemRow.id == system_id, SystemRow.first_log_at.is_(None))
                    .values(first_log_at=_dt(at), updated_at=SystemRow.updated_at)
                    .execution_options(synchronize_session=False))
                if getattr(changed, "rowcount", 0):
                    result.first_logs.append(system_id)
            rows = session.scalars(select(LogSourceRow).where(LogSourceRow.system_id.in_(system_ids))
                                   .order_by(LogSourceRow.system_id, LogSourceRow.name).with_for_update()).all()
            by_system: dict[str, list[LogSourceRow]] = {}
            for row in rows:
                by_system.setdefault(row.system_id, []).append(row)
            merged: dict[int, tuple[LogSourceRow, _Tally]] = {}
            for key, tally in pending.items():
                result.events += tally.events
                target = resolve_source(by_system.get(key.system_id, []), key.log_source, key.formats, key.kind)
                if target is None:
                    unlisted.setdefault(key.system_id, []).append((key, tally))
                    result.unlisted += tally.events
                    continue
                entry = merged.get(target.id)
                if entry is None:
                    # A fresh tally: ``pending`` must stay as it was if this flush fails.
                    entry = merged[target.id] = (target, _Tally())
                entry[1].merge(tally)
            for row, tally in merged.values():
                _apply(row, tally, self.learn_min_samples)
            result.sources = len(merged)
        with self._lock:
            for system_id, items in unlisted.items():
                catch_all = self._unlisted.setdefault(system_id, Unlisted())
                for key, tally in items:
                    catch_all.events += tally.events
                    catch_all.parse_failures += tally.failures
                    seen = _dt(tally.last)
                    if catch_all.last_seen_at is None or seen > catch_all.last_seen_at:
                        catch_all.last_seen_at = seen
                    catch_all.formats.update(key.formats[:1])
        return result


def _fold_formatless(table: dict[tuple[str, ...], list[int]]) -> None:
    """Parse failures of an auto-detected batch go with the batch's main format."""
    loose = table.get(_NO_FORMAT)
    if loose is None or len(table) < 2:
        return
    main = max((formats for formats in table if formats), key=lambda formats: table[formats][0])
    del table[_NO_FORMAT]
    table[main][0] += loose[0]
    table[main][1] += loose[1]


def resolve_source(sources: Sequence[LogSourceRow], named: str | None, formats: tuple[str, ...],
                   kind: str) -> LogSourceRow | None:
    """The log source a tally belongs to (order in the module docstring); ``None``
    means ``unlisted``. ``sources`` are one system's, sorted by name."""
    if not sources:
        return None
    if named is not None:
        for source in sources:
            if source.name == named:
                return source
    transports = _KIND_TRANSPORTS.get(kind, ())
    for fmt in formats:
        candidates = [s for s in sources if canonical_format(s.format) == fmt]
        if candidates:
            fitting = [s for s in candidates if s.transport == "any" or s.transport in transports]
            return (fitting or candidates)[0]
    for source in sources:
        if source.transport in transports:
            return source
    if len(sources) == 1:
        return sources[0]
    return None


def _apply(row: LogSourceRow, tally: _Tally, min_samples: int) -> None:
    row.events_total = (row.events_total or 0) + tally.events
    row.parse_failures_total = (row.parse_failures_total or 0) + tally.failures
    seen = _dt(tally.last)
    if row.last_seen_at is None or seen > row.last_seen_at:
        row.last_seen_at = seen
    history = record_arrivals(row.history or {}, tally.minutes, tally.hours, tally.first)
    row.history = history
    learned = learn_interval(history, min_samples)
    if learned is not None and learned != row.learned_interval_s:
        row.learned_interval_s = learned


# -- history ---------------------------------------------------------------------------

def gap_bucket(minutes: int) -> int:
    """Histogram bucket of a gap (its upper bound, in minutes)."""
    if minutes <= 60:
        return minutes
    if minutes <= 360:
        return -(-minutes // 5) * 5
    if minutes <= 2880:
        return -(-minutes // 60) * 60
    return min(-(-minutes // 1440) * 1440, 43_200)


def week_cell(epoch_minute: int) -> int:
    """UTC weekday (Monday 0) × 24 + hour of an epoch minute (1970-01-01 was a Thursday)."""
    return ((epoch_minute // 1440 + 3) % 7) * 24 + (epoch_minute // 60) % 24


def record_arrivals(history: dict[str, Any], minutes: Iterable[int], hours: dict[int, list[int]],
                    first: float) -> dict[str, Any]:
    """A new history dict with the arrivals of one flush added (JSON columns do not
    track in-place changes)."""
    out = dict(history)
    gaps: dict[str, int] = dict(out.get("gaps") or {})
    week: list[int] = list(out.get("week") or [0] * 168)
    last = out.get("last_minute")
    for minute in sorted(minutes):
        if last is not None and minute <= last:
            continue  # the same minute again, or a late flush of an older one
        if last is not None:
            bucket = str(gap_bucket(minute - last))
            gaps[bucket] = gaps.get(bucket, 0) + 1
        week[week_cell(minute)] += 1
        last = minute
    if sum(gaps.values()) > GAP_SAMPLES_MAX:
        gaps = {k: v // 2 for k, v in gaps.items() if v // 2}
    if max(week) > WEEK_CELL_MAX:
        week = [v // 2 for v in week]
    out["gaps"], out["week"], out["last_minute"] = gaps, week, last
    recent: dict[int, list[int]] = {int(h): [int(n), int(f)] for h, n, f in out.get("recent") or []}
    for hour, (n, f) in hours.items():
        mine = recent.setdefault(hour, [0, 0])
        mine[0] += n
        mine[1] += f
    if recent:
        newest = max(recent)
        out["recent"] = [[h, n, f] for h, (n, f) in sorted(recent.items()) if h > newest - RECENT_HOURS]
    if not out.get("since") and math.isfinite(first):
        out["since"] = _dt(first).isoformat()
    return out


def gap_samples(history: dict[str, Any]) -> int:
    return sum(int(v) for v in (history.get("gaps") or {}).values())


def learn_interval(history: dict[str, Any], min_samples: int) -> int | None:
    """The interval (seconds) learned from the gap histogram, ``None`` before
    ``min_samples`` gaps: the :data:`GAP_QUANTILE` quantile of the gaps, taken as the
    longest real gap its minute bucket allows (a gap of ``g`` minute-steps lasts under
    ``g + 1`` minutes), times :data:`SAFETY_FACTOR`, at least :data:`LEARN_FLOOR_S`."""
    gaps = sorted((int(k), int(v)) for k, v in (history.get("gaps") or {}).items())
    total = sum(count for _, count in gaps)
    if total < min_samples or total == 0:
        return None
    rank = math.ceil(GAP_QUANTILE * total)
    seen = 0
    quantile = gaps[-1][0]
    for gap, count in gaps:
        seen += count
        if seen >= rank:
            quantile = gap
            break
    return max(LEARN_FLOOR_S, math.ceil((quantile + 1) * 60 * SAFETY_FACTOR))


def recent_failure_rate(history: dict[str, Any], now: datetime) -> float | None:
    """Parse failures / events over the last :data:`RECENT_HOURS` hours."""
    floor = int(now.timestamp() // 3600) - RECENT_HOURS + 1
    events = failures = 0
    for hour, n, f in history.get("recent") or []:
        if hour >= floor:
            events += n
            failures += f
    return _rate(failures, events)


def _rate(failures: int, events: int) -> float | None:
    return round(failures / events, 6) if events else None


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


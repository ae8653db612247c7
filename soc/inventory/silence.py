"""The silent-source job: an alert when a log source stops sending, cleared when it
sends again.

Every log source of every system that is not decommissioned is watched — agents,
HTTP ingest, files and agentless syslog devices alike — once it has an **expected
interval** in effect (:func:`effective_interval`):

- the learned one (``learned_interval_s``) when ``interval_mode`` is ``learned`` and
  something has been learned (:func:`soc.inventory.activity.learn_interval`);
- else the one set by hand (``expected_interval_s``);
- else ``health.default_interval`` from the configuration, when set.

Silence is measured from the source's last arrival, or from when the source was
created if that is later (a source onboarded and never heard from goes silent too),
or from when the service started watching if that is later still (the SOC heard
nothing while it was down). A learned source with a known weekly rhythm does not
count its quiet hours (:func:`quiet_cells`).

When the silence passes the interval, the job raises one ``source_silent`` internal
alert (level ``high`` for systems of classification 3 and above, ``medium`` below),
attributed to the system and its agency, and marks the source ``silent_since``.
Later runs leave it alone until an arrival newer than ``silent_since`` is recorded;
then, in one transaction, the alert is resolved (benign, with a comment saying when
logs resumed), the source is unmarked and both changes are audited as
``system:silent-source``. A later silence opens a new alert: each silence has its own
key (the source and the time it went quiet).

**Timing.** A check that runs every ``P`` seconds raises the alert at most
``interval + P`` after the last arrival. :func:`schedule` runs it every
``min(health.silent_check_seconds, shortest interval / 2)`` seconds (never more
often than every :data:`MIN_CHECK_SECONDS`), so an alert comes within 1.5× the
source's interval — within the promised twice the interval — for any interval of at
least ``2 × MIN_CHECK_SECONDS``; the period follows interval changes after each run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from soc.alerts.internal import raise_internal_alert
from soc.alerts.models import Alert
from soc.alerts.store import AlertStore
from soc.audit.trail import Actor, record
from soc.config import ConfigError, SocConfig
from soc.db import Database, utcnow
from soc.i18n import both, register
from soc.inventory.activity import (
    QUIET_MAX_CELLS,
    QUIET_MAX_INTERVAL_S,
    QUIET_MIN_DAYS,
    QUIET_SHARE,
    ActivityTracker,
)
from soc.inventory.models import AgencyRow, LogSourceRow, SystemRow
from soc.timeparse import parse_interval
from soc.triage.models import AlertComment
from soc.triage.workflow import OPEN_STATUSES, RESOLVED, apply_change

log = logging.getLogger("soc.inventory.silence")

ALERT_KIND = "source_silent"
ACTOR = Actor.system("silent-source")
FLUSH_SECONDS = 5.0
"""How often the activity counters are written to the database."""
MIN_CHECK_SECONDS = 5.0
JOB_ID = "silent-sources"
FLUSH_JOB_ID = "activity-flush"

register({
    "health.silent_title": ("Nguồn log {source} của hệ thống {system} ngừng gửi log",
                            "Log source {source} of system {system} went silent"),
    "health.resumed": ("Nhận lại log lúc {at}; cảnh báo được đóng tự động",
                       "Logs resumed at {at}; the alert was resolved automatically"),
    "health.unwatched": ("Nguồn log không còn được giám sát (hệ thống ngừng hoạt động hoặc không có chu kỳ "
                         "mong đợi); cảnh báo được đóng tự động",
                         "The log source is no longer watched (system decommissioned or no expected interval); "
                         "the alert was resolved automatically"),
})

def default_interval_s(cfg: SocConfig) -> int | None:
    """``health.default_interval`` in seconds (``None`` when unset)."""
    text = cfg.health.default_interval
    if text is None:
        return None
    try:
        return parse_interval(text)
    except ValueError as exc:
        raise ConfigError(cfg.config_path or "config/soc.yaml", "health.default_interval", str(exc),
                          "ví dụ 15m hoặc 1h / e.g. 15m or 1h") from None


def effective_interval(source: LogSourceRow, default_s: int | None) -> tuple[int | None, str | None]:
    """The interval the check uses and where it comes from: ``learned`` |
    ``manual`` | ``default`` (``(None, None)``: the source is not watched)."""
    if source.interval_mode == "learned" and source.learned_interval_s:
        return source.learned_interval_s, "learned"
    if source.expected_interval_s:
        return source.expected_interval_s, "manual"
    if default_s:
        return default_s, "default"
    return None, None


def quiet_cells(history: dict[str, Any], interval_s: int, now: datetime) -> frozenset[int]:
    """Weekday-hours (see :func:`soc.inventory.activity.week_cell`) in which the
    source is normally still: those with less than ``QUIET_SHARE`` of its busiest
    weekday-hour's activity. Empty (no quiet hours) unless the source has been
    observed ``QUIET_MIN_DAYS`` days, its interval is under ``QUIET_MAX_INTERVAL_S``
    and at most ``QUIET_MAX_CELLS`` of the 168 cells would be quiet."""
    if interval_s >= QUIET_MAX_INTERVAL_S:
        return frozenset()
    since = history.get("since")
    week = history.get("week")
    if not since or not isinstance(week, list) or len(week) != 168:
        return frozenset()
    try:
        started = datetime.fromisoformat(since)
    except ValueError:
        return frozenset()
    if now - started < timedelta(days=QUIET_MIN_DAYS):
        return frozenset()
    top = max(week)
    if top <= 0:
        return frozenset()
    quiet = frozenset(i for i, count in enumerate(week) if count < QUIET_SHARE * top)
    return quiet if len(quiet) <= QUIET_MAX_CELLS else frozenset()


def silence_deadline(reference: datetime, interval_s: int, quiet: frozenset[int] = frozenset()) -> datetime:
    """When a source silent since ``reference`` becomes overdue: ``interval_s``
    seconds later, not counting time in ``quiet`` weekday-hours."""
    if not quiet:
        return reference + timedelta(seconds=interval_s)
    remaining = float(interval_s)
    t = reference.timestamp()
    for _ in range(2 * 168 + 1):  # at least 36 watched hours a week, intervals under an hour
        hour_start = (t // 3600) * 3600
        hour_end = hour_start + 3600
        cell = ((int(hour_start) // 86_400 + 3) % 7) * 24 + (int(hour_start) // 3600) % 24
        if cell not in quiet:
            if hour_end - t >= remaining:
                return datetime.fromtimestamp(t + remaining, UTC)
            remaining -= hour_end - t
        t = hour_end
    return reference + timedelta(seconds=interval_s)


@dataclass(frozen=True, slots=True)
class Watch:
    """How a source is watched right now."""

    interval_s: int
    origin: str
    """learned | manual | default"""
    reference: datetime
    """Silence is measured from here."""
    deadline: datetime
    quiet_hours: int
    """Weekday-hours not counted (learned rhythm)."""


def watch_of(source: LogSourceRow, system: SystemRow, *, default_s: int | None, now: datetime,
             watch_start: datetime | None = None) -> Watch | None:
    """``None`` when the source is not watched (decommissioned system, no interval)."""
    if system.decommissioned_at is not None:
        return None
    interval, origin = effective_interval(source, default_s)
    if interval is None or origin is None:
        return None
    reference = source.created_at
    if source.last_seen_at is not None and source.last_seen_at > reference:
        reference = source.last_seen_at
    if watch_start is not None and watch_start > reference:
        reference = watch_start
    quiet = quiet_cells(source.history or {}, interval, now) if origin == "learned" else frozenset()
    return Watch(interval, origin, reference, silence_deadline(reference, interval, quiet), len(quiet))


def alert_level(classification: int | None) -> str:
    return "high" if (classification or 0) >= 3 else "medium"


@dataclass(slots=True)
class SilenceReport:
    raised: list[str] = field(default_factory=list)
    """``system/source`` of each source that went silent in this run."""
    cleared: list[str] = field(default_factory=list)
    watched: int = 0
    shortest_interval_s: int | None = None


@dataclass(frozen=True, slots=True)
class _Raise:
    source_id: int
    system_id: str
    source: str
    agency_id: str
    reference: datetime
    interval_s: int
    origin: str
    last_seen_at: datetime | None
    gov: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Clear:
    source_id: int
    resumed: bool


def check_silence(db: Database, alerts: AlertStore, *, default_s: int | None = None, now: datetime | None = None,
                  watch_start: datetime | None = None) -> SilenceReport:
    """One run of the job (see the module docstring)."""
    now = now or utcnow()
    report = SilenceReport()
    raises: list[_Raise] = []
    clears: list[_Clear] = []
    with db.read() as session:
        agencies = {row.id: row for row in session.scalars(select(AgencyRow))}
        pairs = session.execute(select(LogSourceRow, SystemRow).join(SystemRow, SystemRow.id == LogSourceRow.system_id)
                                .order_by(LogSourceRow.system_id, LogSourceRow.name)).all()
        for source, system in pairs:
            watch = watch_of(source, system, default_s=default_s, now=now, watch_start=watch_start)
            if source.silent_since is not None:
                resumed = source.last_seen_at is not None and source.last_seen_at > source.silent_since
                if resumed or watch is None:
                    clears.append(_Clear(source.id, resumed))
            if watch is None:
                continue
            report.watched += 1
            if report.shortest_interval_s is None or watch.interval_s < report.shortest_interval_s:
                report.shortest_interval_s = watch.interval_s
            if source.silent_since is None and now > watch.deadline:
                raises.append(_Raise(source.id, system.id, source.name, system.agency_id, watch.reference,
                                     watch.interval_s, watch.origin, source.last_seen_at,
                                     _gov(system, agencies.get(system.agency_id))))
    for clear in clears:
        name = _clear(db, clear, now)
        if name is not None:
            report.cleared.append(name)
    for silent in raises:
        if _raise(db, alerts, silent):
            report.raised.append(f"{silent.system_id}/{silent.source}")
    return report


def _gov(system: SystemRow, agency: AgencyRow | None) -> dict[str, Any]:
    """The ``gov.*`` object the enrich stage gives the system's events."""
    gov: dict[str, Any] = {"system": {"id": system.id, "name": system.name, "type": system.type},
                           "agency": {"id": system.agency_id, "name": agency.name if agency else system.agency_id},
                           "classification": system.classification}
    level = system.level or (agency.level if agency else None)
    if level:
        gov["level"] = level
    return gov


def _title_part(text: str) -> str:
    # " / " separates the two languages of an alert title.
    return text.replace(" / ", "/")


def _raise(db: Database, alerts: AlertStore, item: _Raise) -> bool:
    system_name = _title_part(str(item.gov["system"]["name"]))
    title = both("health.silent_title", source=_title_part(item.source), system=system_name)
    fields: dict[str, Any] = {
        "gov.system.id": item.system_id, "gov.agency.id": item.agency_id, "soc.log_source": item.source,
        "soc.last_seen": item.last_seen_at.isoformat() if item.last_seen_at else "never",
        "soc.silent_since": item.reference.isoformat(), "soc.expected_interval_s": item.interval_s,
        "soc.interval_origin": item.origin,
    }
    # The key names this silence (source and when it went quiet): the store folds a
    # repeated raise of it into one alert, and the next silence gets its own alert.
    key = f"{item.system_id}/{item.source}@{item.reference.isoformat()}"
    result = raise_internal_alert(alerts, kind=ALERT_KIND, title_vi=title["vi"], title_en=title["en"],
                                  level=alert_level(item.gov.get("classification")), fields=fields, key=key,
                                  gov=item.gov)
    alert_id = result.alert_ids[0] if result.alert_ids else None  # none: an exception suppressed it
    with db.write() as session:
        row = session.scalars(select(LogSourceRow).where(LogSourceRow.id == item.source_id)
                              .with_for_update()).one_or_none()
        if row is None or row.silent_since is not None:
            return False
        row.silent_since = item.reference
        row.silent_alert_id = alert_id
        record(session, ACTOR, "log_source.silent", "log_source", f"{item.system_id}/{item.source}",
               agency_id=item.agency_id,
               after={"silent_since": item.reference, "silent_alert_id": alert_id, "interval_s": item.interval_s,
                      "interval_origin": item.origin, "last_seen_at": item.last_seen_at})
    log.warning("log source %s/%s silent since %s (interval %ss)", item.system_id, item.source,
                item.reference.isoformat(), item.interval_s)
    return True


def _clear(db: Database, item: _Clear, now: datetime) -> str | None:
    with db.write() as session:
        row = session.scalars(select(LogSourceRow).where(LogSourceRow.id == item.source_id)
                              .with_for_update()).one_or_none()
        if row is None or row.silent_since is None:
            return None
        system = session.get(SystemRow, row.system_id)
        agency_id = system.agency_id if system is not None else None
        target = f"{row.system_id}/{row.name}"
        if item.resumed and row.last_seen_at is not None:
            comment = both("health.resumed", at=row.last_seen_at.isoformat())
        else:
            comment = both("health.unwatched")
        body = f"{comment['vi']} / {comment['en']}"
        alert = None
        if row.silent_alert_id is not None:
            alert = session.scalars(select(Alert).where(Alert.id == row.silent_alert_id)
                                    .with_for_update()).one_or_none()
        if alert is not None and alert.status in OPEN_STATUSES:
            # The analysts' workflow, so the alert looks as if resolved by hand
            # (acknowledged and resolved times, status change time).
            change = apply_change(alert, RESOLVED, "benign", now)
            note = AlertComment(alert_id=alert.id, author_name=ACTOR.name, body=body, created_at=now)
            session.add(note)
            session.flush()
            if change is not None:
                record(session, ACTOR, "alert.update", "alert", alert.id, agency_id=alert.agency_id,
                       before=change.before, after=change.after)
            record(session, ACTOR, "alert.comment", "alert", alert.id, agency_id=alert.agency_id,
                   after={"comment_id": note.id, "body": body})
        record(session, ACTOR, "log_source.resume", "log_source", target, agency_id=agency_id,
               before={"silent_since": row.silent_since, "silent_alert_id": row.silent_alert_id},
               after={"last_seen_at": row.last_seen_at, "reason": "resumed" if item.resumed else "unwatched"})
        row.silent_since = None
        row.silent_alert_id = None
    log.info("log source %s: %s", target, body)
    return target


# -- scheduling -----------------------------------------------------------------------

def check_period(silent_check_seconds: float, shortest_interval_s: int | None) -> float:
    """Seconds between two runs of the check (see "Timing" in the module docstring)."""
    period = silent_check_seconds
    if shortest_interval_s:
        period = min(period, shortest_interval_s / 2)
    return max(MIN_CHECK_SECONDS, period)


def shortest_interval(db: Database, default_s: int | None) -> int | None:
    """The shortest interval in effect over the watched sources."""
    shortest: int | None = None
    with db.read() as session:
        pairs = session.execute(select(LogSourceRow, SystemRow)
                                .join(SystemRow, SystemRow.id == LogSourceRow.system_id)
                                .where(SystemRow.decommissioned_at.is_(None))).all()
        for source, _ in pairs:
            interval, _origin = effective_interval(source, default_s)
            if interval is not None and (shortest is None or interval < shortest):
                shortest = interval
    return shortest


def schedule(scheduler: Any, state: Any, *, alerts: AlertStore | None = None) -> None:
    """Add the activity flush (every :data:`FLUSH_SECONDS`) and the silent-source check
    to an APScheduler ``AsyncIOScheduler``. ``state`` is the service's
    :class:`~soc.api.state.AppState`, whose ``activity`` must be the
    :class:`~soc.inventory.activity.ActivityTracker` the pipeline feeds; ``alerts`` is
    the service's alert store (so alert exceptions apply; a new one on the SOC
    database otherwise)."""
    tracker = state.activity
    if not isinstance(tracker, ActivityTracker):
        raise ValueError("state.activity must be the ActivityTracker the pipeline feeds (pipeline.activity)")
    db: Database = state.db
    cfg: SocConfig = state.cfg
    default_s = default_interval_s(cfg)
    store = alerts if alerts is not None else AlertStore(db.engine)
    watch_start = tracker.watch_start = utcnow()
    period = check_period(cfg.health.silent_check_seconds, shortest_interval(db, default_s))

    async def flush() -> None:
        try:
            await asyncio.to_thread(tracker.flush, db)
        except Exception:
            log.exception("writing the log source counters failed (kept for the next try)")

    def run_check() -> SilenceReport:
        tracker.flush(db)
        return check_silence(db, store, default_s=default_s, watch_start=watch_start)

    async def check() -> None:
        nonlocal period
        try:
            report = await asyncio.to_thread(run_check)
        except Exception:
            log.exception("the silent-source check failed")
            return
        wanted = check_period(cfg.health.silent_check_seconds, report.shortest_interval_s)
        if wanted != period:
            period = wanted
            scheduler.reschedule_job(JOB_ID, trigger="interval", seconds=period)

    scheduler.add_job(flush, "interval", seconds=FLUSH_SECONDS, id=FLUSH_JOB_ID, max_instances=1, coalesce=True)
    scheduler.add_job(check, "interval", seconds=period, id=JOB_ID, max_instances=1, coalesce=True)

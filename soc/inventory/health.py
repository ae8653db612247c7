"""Onboarding state and per-source health of a system.

A system is ``awaiting_first_log`` until its first event arrives, then
``receiving``; ``silent`` while every source of it is silent; ``decommissioned``
once retired. Each log source is ``awaiting`` (never sent anything), ``receiving``
or ``silent`` (a ``source_silent`` alert is open, see :mod:`soc.inventory.silence`),
with its counters from the pipeline (:mod:`soc.inventory.activity`), its parse-failure
rates (overall and over the last day) and the interval the silent-source check uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc.inventory.activity import RECENT_HOURS, Unlisted, gap_samples, recent_failure_rate
from soc.inventory.models import LogSourceRow, SystemRow
from soc.inventory.silence import watch_of

ONBOARDING_STATES = ("awaiting_first_log", "receiving", "silent", "decommissioned")
SOURCE_STATES = ("awaiting", "receiving", "silent")


def onboarding_state(system: SystemRow, sources: Sequence[LogSourceRow], now: datetime) -> str:
    """``awaiting_first_log`` until the first event arrives, then ``receiving``;
    ``silent`` while every watched source of the system is silent."""
    if system.decommissioned_at is not None:
        return "decommissioned"
    if system.first_log_at is None:
        return "awaiting_first_log"
    if sources and all(source.silent_since is not None for source in sources):
        return "silent"
    return "receiving"


def source_state(source: LogSourceRow) -> str:
    if source.silent_since is not None:
        return "silent"
    if source.last_seen_at is None:
        return "awaiting"
    return "receiving"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def source_health(source: LogSourceRow, system: SystemRow, now: datetime, *, default_s: int | None = None,
                  learn_min_samples: int = 20, watch_start: datetime | None = None) -> dict[str, Any]:
    """One log source as the health routes show it."""
    history = source.history or {}
    watch = watch_of(source, system, default_s=default_s, now=now, watch_start=watch_start)
    events, failures = source.events_total or 0, source.parse_failures_total or 0
    return {
        "name": source.name,
        "format": source.format,
        "transport": source.transport,
        "state": source_state(source),
        "last_seen_at": _iso(source.last_seen_at),
        "events_total": events,
        "parse_failures_total": failures,
        "parse_failure_rate": round(failures / events, 6) if events else None,
        "parse_failure_rate_recent": recent_failure_rate(history, now),
        "recent_window_hours": RECENT_HOURS,
        "interval_mode": source.interval_mode,
        "expected_interval_s": source.expected_interval_s,
        "learned_interval_s": source.learned_interval_s,
        "interval_s": watch.interval_s if watch else None,
        "interval_origin": watch.origin if watch else None,
        "watched": watch is not None,
        "quiet_hours": watch.quiet_hours if watch else 0,
        "silent": source.silent_since is not None,
        "silent_since": _iso(source.silent_since),
        "silent_alert_id": source.silent_alert_id,
        "next_deadline": _iso(watch.deadline) if watch and source.silent_since is None else None,
        "overdue": bool(watch and source.silent_since is None and now > watch.deadline),
        "learning": {"samples": gap_samples(history), "needed": learn_min_samples, "since": history.get("since")},
    }


def system_health(session: Session, system_id: str, now: datetime, *, default_s: int | None = None,
                  learn_min_samples: int = 20, unlisted: Unlisted | None = None,
                  watch_start: datetime | None = None) -> dict[str, Any]:
    """The onboarding state and every source of a system (``unlisted``: the events no
    declared source matched, from the activity tracker). Raises LookupError for an
    unknown system."""
    system = session.get(SystemRow, system_id)
    if system is None:
        raise LookupError(system_id)
    sources = list(session.scalars(select(LogSourceRow).where(LogSourceRow.system_id == system_id)
                                   .order_by(LogSourceRow.name)))
    items = [source_health(s, system, now, default_s=default_s, learn_min_samples=learn_min_samples,
                           watch_start=watch_start) for s in sources]
    events = sum(s.events_total or 0 for s in sources)
    failures = sum(s.parse_failures_total or 0 for s in sources)
    if unlisted is not None:
        events += unlisted.events
        failures += unlisted.parse_failures
    return {
        "system": {"id": system.id, "name": system.name, "agency_id": system.agency_id,
                   "classification": system.classification, "type": system.type},
        "state": onboarding_state(system, sources, now),
        "first_log_at": _iso(system.first_log_at),
        "decommissioned_at": _iso(system.decommissioned_at),
        "events_total": events,
        "parse_failures_total": failures,
        "parse_failure_rate": round(failures / events, 6) if events else None,
        "sources": items,
        "unlisted": unlisted.as_dict() if unlisted is not None else None,
        "checked_at": now.isoformat(),
    }

"""Service-level targets per alert level (``triage.sla`` in the configuration).

Both clocks start at the alert's ``created_at``:

- **acknowledge**: until the first move out of ``new`` (``acknowledged_at``);
- **resolve**: until ``resolved`` (``resolved_at``).

A target is *breached* when it was met late, or is still open and its due time has
passed. An alert closed before the workflow existed (``closed``/``false_positive``
without the times) is neither pending nor late.

:func:`sla_block` computes the flags for one alert in Python; :func:`breach_clause`
is the same rule as a SQL condition (a ``CASE`` on the level rank with bound
parameters), so the ``sla_breached`` filter runs in the database and pages like any
other filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Float, and_, case, false, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from soc.alerts.models import CLOSED_STATUSES, Alert
from soc.config import SlaTarget
from soc.db import UTCDateTime
from soc.triage.derived import LEVELS, level_rank

SlaKind = Literal["acknowledge", "resolve"]
SLA_KINDS: tuple[str, ...] = ("acknowledge", "resolve")


def target_for(targets: Mapping[str, SlaTarget], level: str) -> SlaTarget:
    """The target of ``level``; an unknown level gets the informational one."""
    return targets.get(level) or targets["informational"]


def _minutes(target: SlaTarget, kind: SlaKind) -> float:
    return target.acknowledge_minutes if kind == "acknowledge" else target.resolve_minutes


def _one(created: datetime, done: datetime | None, pending: bool, minutes: float, now: datetime
         ) -> tuple[datetime, bool, float | None]:
    due = created + timedelta(minutes=minutes)
    if done is not None:
        return due, done > due, round((done - created).total_seconds(), 3)
    return due, pending and now > due, None


def sla_block(alert: Alert, targets: Mapping[str, SlaTarget], now: datetime) -> dict[str, Any]:
    """``{acknowledge_due, acknowledge_breached, acknowledged_after_s, resolve_due,
    resolve_breached, resolved_after_s}`` (times ISO 8601 UTC, durations in seconds)."""
    target = target_for(targets, alert.level)
    closed = alert.status in CLOSED_STATUSES
    ack_due, ack_late, ack_after = _one(alert.created_at, alert.acknowledged_at, not closed,
                                        target.acknowledge_minutes, now)
    res_due, res_late, res_after = _one(alert.created_at, alert.resolved_at, not closed,
                                        target.resolve_minutes, now)
    return {
        "acknowledge_due": ack_due.isoformat(), "acknowledge_breached": ack_late,
        "acknowledged_after_s": ack_after,
        "resolve_due": res_due.isoformat(), "resolve_breached": res_late, "resolved_after_s": res_after,
    }


# --- SQL ------------------------------------------------------------------------------

class seconds_between(FunctionElement[float]):
    """``end - start`` in seconds, for two timestamp columns, on SQLite and PostgreSQL."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_default(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as naive UTC text ("2026-11-23 01:00:00.000000"), which julianday() reads.
    start, end = list(element.clauses)
    return f"((julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)})) * 86400.0)"


def _per_level(values: Mapping[int, Any], type_: Any) -> Any:
    return case({rank: literal(value, type_) for rank, value in values.items()}, value=Alert.level_rank,
                else_=literal(values[0], type_))


def breach_clause(targets: Mapping[str, SlaTarget], now: datetime, kind: SlaKind | None = None,
                  breached: bool = True) -> ColumnElement[bool]:
    """Alerts whose ``kind`` target (either, when ``None``) is breached — or, with
    ``breached=False``, whose targets are all met or still within time."""
    kinds: tuple[SlaKind, ...] = (kind,) if kind is not None else ("acknowledge", "resolve")
    conditions = []
    for one in kinds:
        done = Alert.acknowledged_at if one == "acknowledge" else Alert.resolved_at
        seconds = {level_rank(level): _minutes(target_for(targets, level), one) * 60.0 for level in LEVELS}
        deadline = {rank: now - timedelta(seconds=s) for rank, s in seconds.items()}
        late_done = and_(done.is_not(None), seconds_between(Alert.created_at, done) > _per_level(seconds, Float()))
        late_pending = and_(done.is_(None), Alert.status.not_in(CLOSED_STATUSES),
                            Alert.created_at < _per_level(deadline, UTCDateTime()))
        conditions.append(or_(late_done, late_pending))
    any_breach = or_(false(), *conditions)
    return any_breach if breached else ~any_breach

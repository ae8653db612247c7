"""Source health: onboarding state, per log source counters, parse-failure rates and
silence, and re-learning a source's expected interval.

Systems outside the caller's agency scope do not exist for the caller (404).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from soc.api.deps import Reader, ServiceAdmin, StateDep
from soc.api.errors import ApiError
from soc.api.state import AppState
from soc.audit.trail import Actor, record
from soc.db import utcnow
from soc.i18n import register
from soc.identity.principal import Principal
from soc.inventory.activity import ActivityTracker, gap_samples, learn_interval
from soc.inventory.health import source_health, system_health
from soc.inventory.models import LogSourceRow, SystemRow
from soc.inventory.silence import default_interval_s, effective_interval

router = APIRouter(prefix="/api/v1", tags=["health"])
log = logging.getLogger("soc.api.source_health")

register({
    "health.learn_insufficient": (
        "Nguồn log '{source}' mới có {samples} khoảng cách giữa các lần nhận log, cần ít nhất {needed} để học chu kỳ; "
        "chờ thêm log hoặc đặt chu kỳ thủ công",
        "Log source '{source}' has {samples} arrival gaps recorded; learning needs at least {needed}: "
        "wait for more logs or set the interval by hand",
    ),
})

_SOURCE_EXAMPLE: dict[str, Any] = {
    "name": "web-access", "format": "nginx", "transport": "syslog", "state": "receiving",
    "last_seen_at": "2026-11-24T01:02:03+00:00", "events_total": 120_344, "parse_failures_total": 17,
    "parse_failure_rate": 0.000141, "parse_failure_rate_recent": 0.0, "recent_window_hours": 24,
    "interval_mode": "learned", "expected_interval_s": 300, "learned_interval_s": 180, "interval_s": 180,
    "interval_origin": "learned", "watched": True, "quiet_hours": 0, "silent": False, "silent_since": None,
    "silent_alert_id": None, "next_deadline": "2026-11-24T01:05:03+00:00", "overdue": False,
    "learning": {"samples": 5230, "needed": 20, "since": "2026-11-01T00:00:10+00:00"},
}
_HEALTH_EXAMPLE: dict[str, Any] = {
    "system": {"id": "dvc-phutho", "name": "Cổng dịch vụ công tỉnh", "agency_id": "tinh-phu-tho",
               "classification": 3, "type": "one_stop_portal"},
    "state": "receiving", "first_log_at": "2026-11-01T00:00:10+00:00", "decommissioned_at": None,
    "events_total": 120_344, "parse_failures_total": 17, "parse_failure_rate": 0.000141,
    "sources": [_SOURCE_EXAMPLE], "unlisted": None, "checked_at": "2026-11-24T01:03:00+00:00",
}
_LIST_EXAMPLE: dict[str, Any] = {
    "total": 1, "items": [{**_SOURCE_EXAMPLE, "system_id": "dvc-phutho", "system_name": "Cổng dịch vụ công tỉnh",
                           "agency_id": "tinh-phu-tho"}],
}
_LEARN_EXAMPLE: dict[str, Any] = {
    "system_id": "dvc-phutho", "source": "web-access", "learned_interval_s": 180, "samples": 5230, "needed": 20,
    "interval_mode": "learned", "interval_s": 180, "interval_origin": "learned", "reset": False,
}


def _example(example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"example": example}}},
            404: {"description": "No such system (or outside your agency scope)"}}


def _system_in_scope(session: Session, principal: Principal, system_id: str) -> SystemRow:
    system = session.get(SystemRow, system_id)
    if system is None or not principal.scope.allows(system.agency_id):
        raise ApiError(404, "api.not_found", what="system", id=system_id)
    return system


def _tracker(state: AppState) -> ActivityTracker | None:
    return state.activity if isinstance(state.activity, ActivityTracker) else None


@router.get("/systems/{system_id}/health", summary="System health / Tình trạng nhận log của hệ thống",
            responses=_example(_HEALTH_EXAMPLE))
def get_system_health(system_id: str, principal: Reader, state: StateDep) -> dict[str, Any]:
    tracker = _tracker(state)
    with state.db.read() as session:
        _system_in_scope(session, principal, system_id)
        return system_health(session, system_id, utcnow(), default_s=default_interval_s(state.cfg),
                             learn_min_samples=state.cfg.health.learn_min_samples,
                             unlisted=tracker.unlisted(system_id) if tracker else None,
                             watch_start=tracker.watch_start if tracker else None)


@router.get("/health/sources", summary="Log sources and their state / Các nguồn log và trạng thái",
            responses=_example(_LIST_EXAMPLE))
def list_source_health(
    principal: Reader,
    state: StateDep,
    source_state: Annotated[Literal["silent", "receiving", "awaiting"] | None,
                            Query(alias="state", description="Only sources in this state")] = None,
    system: Annotated[str | None, Query(description="Only this system's sources")] = None,
    agency: Annotated[str | None, Query(description="Only systems of this agency")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Every log source of every system in scope that is not decommissioned."""
    conditions: list[Any] = [principal.scope.clause(SystemRow.agency_id), SystemRow.decommissioned_at.is_(None)]
    if system is not None:
        conditions.append(SystemRow.id == system)
    if agency is not None:
        conditions.append(SystemRow.agency_id == agency)
    if source_state == "silent":
        conditions.append(LogSourceRow.silent_since.is_not(None))
    elif source_state == "awaiting":
        conditions += [LogSourceRow.silent_since.is_(None), LogSourceRow.last_seen_at.is_(None)]
    elif source_state == "receiving":
        conditions += [LogSourceRow.silent_since.is_(None), LogSourceRow.last_seen_at.is_not(None)]
    tracker = _tracker(state)
    now = utcnow()
    default_s = default_interval_s(state.cfg)
    with state.db.read() as session:
        joined = select(LogSourceRow, SystemRow).join(SystemRow, SystemRow.id == LogSourceRow.system_id)
        total = session.scalar(select(func.count()).select_from(joined.where(*conditions).subquery())) or 0
        rows = session.execute(joined.where(*conditions).order_by(LogSourceRow.system_id, LogSourceRow.name)
                               .limit(limit).offset(offset)).all()
        items = [{**source_health(source, sys_row, now, default_s=default_s,
                                  learn_min_samples=state.cfg.health.learn_min_samples,
                                  watch_start=tracker.watch_start if tracker else None),
                  "system_id": sys_row.id, "system_name": sys_row.name, "agency_id": sys_row.agency_id}
                 for source, sys_row in rows]
    return {"total": total, "items": items}


_LEARNING_KEYS = ("gaps", "week", "since", "last_minute")


@router.post("/systems/{system_id}/sources/{name}/learn",
             summary="Learn a log source's expected interval now / Học chu kỳ nhận log của nguồn",
             responses={**_example(_LEARN_EXAMPLE),
                        409: {"description": "Too few arrival gaps recorded yet to learn from"}})
def learn_source_interval(
    system_id: str,
    name: str,
    principal: ServiceAdmin,
    state: StateDep,
    reset: Annotated[bool, Query(description="Forget the arrival history and learn afresh from new arrivals "
                                             "(after a change in how the system logs)")] = False,
) -> dict[str, Any]:
    """Computes the interval from the source's arrival history now (it is otherwise
    updated as logs arrive). It is used by the silent-source check when the source's
    ``interval_mode`` is ``learned``."""
    tracker = _tracker(state)
    if tracker is not None:
        try:
            tracker.flush(state.db)  # the latest arrivals count
        except Exception:
            log.exception("flushing the activity counters before learning failed")
    needed = state.cfg.health.learn_min_samples
    with state.db.write() as session:
        system = _system_in_scope(session, principal, system_id)
        source = session.scalars(select(LogSourceRow).where(LogSourceRow.system_id == system_id,
                                                            LogSourceRow.name == name).with_for_update()).one_or_none()
        if source is None:
            raise ApiError(404, "api.not_found", what="log source", id=f"{system_id}/{name}")
        before = {"learned_interval_s": source.learned_interval_s, "samples": gap_samples(source.history or {})}
        if reset:
            source.history = {k: v for k, v in (source.history or {}).items() if k not in _LEARNING_KEYS}
            source.learned_interval_s = None
        else:
            learned = learn_interval(source.history or {}, needed)
            if learned is None:
                raise ApiError(409, "health.learn_insufficient", source=name,
                               samples=gap_samples(source.history or {}), needed=needed)
            source.learned_interval_s = learned
        samples = gap_samples(source.history or {})
        record(session, Actor.of(principal), "log_source.learn", "log_source", f"{system_id}/{name}",
               agency_id=system.agency_id, before=before,
               after={"learned_interval_s": source.learned_interval_s, "samples": samples, "reset": reset})
        interval, origin = effective_interval(source, default_interval_s(state.cfg))
        return {"system_id": system_id, "source": name, "learned_interval_s": source.learned_interval_s,
                "samples": samples, "needed": needed, "interval_mode": source.interval_mode,
                "interval_s": interval, "interval_origin": origin, "reset": reset}

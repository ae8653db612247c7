"""The alert queue as SQL: filters, sort with keyset cursors, facet counts, groups.

Everything the caller gives becomes a SQLAlchemy expression with bound parameters,
and the caller's agency scope is always part of the WHERE clause, so an alert out of
scope is never counted, listed or grouped.

Speed with a million alerts comes from real columns and indexes (migration 0005):
each equality filter has an index that starts with its column and ends with the
default sort column (``last_seen``), so the first page of a filtered queue is an
ordered index range read that stops after ``limit`` rows; pages after it continue
from the cursor with a row-value comparison on ``(sort columns…, id)``. A list
never counts unless asked (``total``, ``facets``): counting a million rows is the
slow part of a queue.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

import orjson
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    case,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import Session

from soc.alerts.models import CLOSED_STATUSES, Alert
from soc.config import SlaTarget
from soc.db import UTCDateTime
from soc.detect.model import TACTICS
from soc.i18n import register
from soc.identity.principal import Principal
from soc.identity.scope import resolve_scope
from soc.timeparse import parse_time
from soc.triage.derived import LEVEL_RANK, LEVELS, fold, slug
from soc.triage.errors import TriageError
from soc.triage.sla import SLA_KINDS, SlaKind, breach_clause
from soc.triage.workflow import LEGACY_CLOSED, STATUS_RANK, STATUSES

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
FACET_BUCKETS = 50
"""Values shown per facet (the most frequent)."""
MAX_GROUPS = 1000

TimeField = Literal["last_seen", "first_seen", "created_at", "updated_at"]
TIME_FIELDS: tuple[str, ...] = ("last_seen", "first_seen", "created_at", "updated_at")
SORTS: tuple[str, ...] = ("last_seen", "first_seen", "created_at", "updated_at", "level", "count", "status")
FACETS: tuple[str, ...] = ("status", "level", "rule_id", "system_id", "agency_id", "assignee_id", "tactic",
                           "level_gov")
GROUP_BY: dict[str, tuple[str, ...]] = {"rule": ("rule_id",), "system": ("system_id",),
                                        "rule,system": ("rule_id", "system_id"),
                                        "system,rule": ("rule_id", "system_id")}
LEVEL_GOVS: tuple[str, ...] = ("province", "district", "commune")
TACTIC_SLUGS: tuple[str, ...] = tuple(dict.fromkeys(slug(name) for name in TACTICS.values()))
ME, NOBODY = "me", "none"

register({
    "triage.bad_value": (
        "Giá trị '{value}' không hợp lệ cho '{field}'; dùng một trong: {known}",
        "Invalid value '{value}' for '{field}'; use one of: {known}",
    ),
    "triage.bad_cursor": (
        "Con trỏ phân trang không hợp lệ hoặc thuộc về một cách sắp xếp khác; bắt đầu lại từ trang đầu",
        "Invalid page cursor, or one made for another sort order; start again from the first page",
    ),
    "triage.bad_time": (
        "Thời gian '{value}' của '{field}' không hợp lệ: dùng 24h, 7d, 30m hoặc ISO 8601",
        "Invalid time '{value}' for '{field}': use 24h, 7d, 30m or ISO 8601",
    ),
})


class QueryInputError(TriageError):
    """A filter, sort or cursor the caller must fix (answered with 400)."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(400, key, **params)


def _check(field_name: str, values: Sequence[str], known: Sequence[str]) -> list[str]:
    for value in values:
        if value not in known:
            raise QueryInputError("triage.bad_value", field=field_name, value=value, known=", ".join(known))
    return list(values)


def split_values(values: Sequence[str] | str | None) -> list[str]:
    """Repeated parameters and comma-separated lists alike: ``status=new,acknowledged``."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_when(value: str | datetime | None, field_name: str, tz: tzinfo) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if not value.strip():
        return None
    try:
        return parse_time(value, tz=tz)
    except ValueError:
        raise QueryInputError("triage.bad_time", value=value, field=field_name) from None


@dataclass
class AlertFilter:
    """What the queue shows; empty lists mean "any"."""

    status: list[str] = field(default_factory=list)
    level: list[str] = field(default_factory=list)
    min_level: str | None = None
    rule_id: list[str] = field(default_factory=list)
    tactic: list[str] = field(default_factory=list)
    technique: list[str] = field(default_factory=list)
    system_id: list[str] = field(default_factory=list)
    agency_id: list[str] = field(default_factory=list)
    include_children: bool = False
    level_gov: list[str] = field(default_factory=list)
    classification: list[int] = field(default_factory=list)
    assignee: list[str] = field(default_factory=list)
    """User ids, ``me`` or ``none`` (unassigned)."""
    incident_id: list[str] = field(default_factory=list)
    """Incident ids, or ``none`` (not in any incident)."""
    retro: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    time_field: str = "last_seen"
    q: str | None = None
    sla_breached: bool | None = None
    sla: str | None = None
    """acknowledge | resolve (with ``sla_breached``; both when unset)."""

    def validated(self) -> AlertFilter:
        _check("status", self.status, (*STATUSES, *LEGACY_CLOSED))
        _check("level", self.level, LEVELS)
        if self.min_level is not None:
            _check("min_level", [self.min_level], LEVELS)
        _check("level_gov", self.level_gov, LEVEL_GOVS)
        _check("time_field", [self.time_field], TIME_FIELDS)
        if self.sla is not None:
            _check("sla", [self.sla], SLA_KINDS)
        for value in self.classification:
            if not 1 <= value <= 5:
                raise QueryInputError("triage.bad_value", field="classification", value=value, known="1, 2, 3, 4, 5")
        return self


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _tag_like(tag: str) -> ColumnElement[bool]:
    return Alert.attack_tags.like(_like_pattern(f",{tag},"), escape="\\")


def conditions(session: Session, principal: Principal, flt: AlertFilter, *, sla_targets: dict[str, SlaTarget],
               now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE conditions of ``flt`` for ``principal`` (scope first, always)."""
    out: list[ColumnElement[bool]] = [principal.scope.clause(Alert.agency_id)]
    for column, values in ((Alert.status, flt.status), (Alert.level, flt.level), (Alert.rule_id, flt.rule_id),
                           (Alert.system_id, flt.system_id), (Alert.level_gov, flt.level_gov)):
        if values:
            out.append(column.in_(list(values)))
    if flt.min_level is not None:
        out.append(Alert.level_rank >= LEVEL_RANK[flt.min_level])
    if flt.classification:
        out.append(Alert.classification.in_(list(flt.classification)))
    if flt.agency_id:
        out.append(_agency_condition(session, flt.agency_id, flt.include_children))
    if flt.tactic:
        out.append(or_(*(_tag_like(slug(t)) for t in flt.tactic)))
    if flt.technique:
        parts = []
        for technique in flt.technique:
            tag = slug(technique)
            parts += [_tag_like(tag), Alert.attack_tags.like(_like_pattern(f",{tag}.") , escape="\\")]
        out.append(or_(*parts))
    if flt.assignee:
        ids = [principal.user_id if a == ME else a for a in flt.assignee if a != NOBODY]
        parts = [Alert.assignee_id.in_(ids)] if ids else []
        if NOBODY in flt.assignee:
            parts.append(Alert.assignee_id.is_(None))
        out.append(or_(*parts))
    if flt.incident_id:
        ids = [i for i in flt.incident_id if i != NOBODY]
        parts = [Alert.incident_id.in_(ids)] if ids else []
        if NOBODY in flt.incident_id:
            parts.append(Alert.incident_id.is_(None))
        out.append(or_(*parts))
    if flt.retro is not None:
        out.append(Alert.retro.is_(flt.retro))
    column = getattr(Alert, flt.time_field)
    if flt.since is not None:
        out.append(column >= flt.since)
    if flt.until is not None:
        out.append(column < flt.until)
    if flt.q and flt.q.strip():
        out.append(Alert.search_text.like(_like_pattern(fold(flt.q.strip())), escape="\\"))
    if flt.sla_breached is not None:
        kind: SlaKind | None = flt.sla  # type: ignore[assignment]
        out.append(breach_clause(sla_targets, now, kind, flt.sla_breached))
    return out


def _agency_condition(session: Session, agencies: list[str], include_children: bool) -> ColumnElement[bool]:
    if not include_children:
        return Alert.agency_id.in_(agencies)
    tree = resolve_scope(session, agencies)
    if tree.all:
        return Alert.agency_id.is_not(None) | Alert.agency_id.is_(None)
    wanted = sorted(tree.agencies | set(agencies))
    return Alert.agency_id.in_(wanted) if wanted else false()


# --- sort and cursor ----------------------------------------------------------------------

_STATUS_RANK = case(STATUS_RANK, value=Alert.status, else_=literal(99))


def sort_columns(sort: str) -> list[Any]:
    """The ORDER BY columns of ``sort`` (``id`` last, making every key unique)."""
    if sort not in SORTS:
        raise QueryInputError("triage.bad_value", field="sort", value=sort, known=", ".join(SORTS))
    heads: dict[str, list[Any]] = {
        "level": [Alert.level_rank, Alert.last_seen],
        "status": [_STATUS_RANK, Alert.last_seen],
        "count": [Alert.count],
    }
    return [*heads.get(sort, [getattr(Alert, sort)]), Alert.id]


def _column_type(column: Any) -> Any:
    return getattr(column, "type", None) or Integer()


def encode_keys(kind: str, values: Sequence[Any]) -> str:
    """An opaque cursor: the last row's sort key, and what it was made for."""
    raw = orjson.dumps({"k": kind, "v": [v.isoformat() if isinstance(v, datetime) else v for v in values]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_keys(cursor: str, kind: str, types: Sequence[Any]) -> list[Any]:
    """The key values of a cursor made for ``kind``, typed by ``types`` (a
    :class:`UTCDateTime` gives an aware datetime, ``str`` and ``int`` themselves)."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["k"] != kind or len(data["v"]) != len(types):
            raise ValueError("cursor of another listing")
        values: list[Any] = []
        for type_, value in zip(types, data["v"], strict=True):
            if isinstance(type_, UTCDateTime):
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError("naive time in cursor")
                values.append(parsed)
            elif type_ is str:
                values.append(str(value))
            else:
                values.append(int(value))
        return values
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise QueryInputError("triage.bad_cursor") from None


def _cursor_types(columns: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for column in columns:
        type_ = _column_type(column)
        out.append(type_ if isinstance(type_, UTCDateTime) else str if column is Alert.id else int)
    return out


def _key_of(alert: Alert, sort: str) -> list[Any]:
    heads: dict[str, list[Any]] = {
        "level": [alert.level_rank, alert.last_seen],
        "status": [STATUS_RANK.get(alert.status, 99), alert.last_seen],
        "count": [alert.count],
    }
    return [*heads.get(sort, [getattr(alert, sort)]), alert.id]


def after_cursor(columns: list[Any], values: list[Any], order: str) -> ColumnElement[bool]:
    bound = tuple_(*(literal(v, _column_type(c)) for c, v in zip(columns, values, strict=True)))
    key = tuple_(*columns)
    return key < bound if order == "desc" else key > bound


@dataclass
class Page:
    alerts: list[Alert]
    next_cursor: str | None


def list_page(session: Session, conds: list[ColumnElement[bool]], *, sort: str = "last_seen", order: str = "desc",
              limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page:
    """One page of the queue, in ``sort`` order, after ``cursor``."""
    if order not in ("asc", "desc"):
        raise QueryInputError("triage.bad_value", field="order", value=order, known="asc, desc")
    limit = max(1, min(limit, MAX_LIMIT))
    columns = sort_columns(sort)
    stmt = select(Alert).where(*conds)
    if cursor:
        values = decode_keys(cursor, f"alerts:{sort}:{order}", _cursor_types(columns))
        stmt = stmt.where(after_cursor(columns, values, order))
    stmt = stmt.order_by(*(c.desc() if order == "desc" else c.asc() for c in columns)).limit(limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_keys(f"alerts:{sort}:{order}", _key_of(rows[-1], sort)) if more and rows else None
    return Page(rows, next_cursor)


def count(session: Session, conds: list[ColumnElement[bool]]) -> int:
    return int(session.scalar(select(func.count()).select_from(Alert).where(*conds)) or 0)


def facets(session: Session, conds: list[ColumnElement[bool]], names: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """``{facet: [{value, count}, …]}``, the most frequent values first."""
    _check("facets", names, FACETS)
    out: dict[str, list[dict[str, Any]]] = {}
    for name in dict.fromkeys(names):
        if name == "tactic":
            out[name] = _tactic_facet(session, conds)
            continue
        column = getattr(Alert, name)
        n = func.count().label("n")
        rows = session.execute(select(column, n).where(*conds).group_by(column)
                               .order_by(n.desc(), column).limit(FACET_BUCKETS)).all()
        out[name] = [{"value": value if value is not None else NOBODY, "count": int(c)} for value, c in rows]
    return out


def _tactic_facet(session: Session, conds: list[ColumnElement[bool]]) -> list[dict[str, Any]]:
    sums = [func.coalesce(func.sum(case((_tag_like(tag), 1), else_=0)), 0) for tag in TACTIC_SLUGS]
    row = session.execute(select(*sums).where(*conds)).one()
    buckets = [{"value": tag, "count": int(c)} for tag, c in zip(TACTIC_SLUGS, row, strict=True) if c]
    return sorted(buckets, key=lambda b: (-b["count"], b["value"]))


def groups(session: Session, conds: list[ColumnElement[bool]], by: str, *, limit: int = 100,
           sort: str = "last_seen") -> tuple[list[dict[str, Any]], bool]:
    """Alerts grouped by rule, system or both: ``(groups, truncated)``."""
    if by not in GROUP_BY:
        raise QueryInputError("triage.bad_value", field="by", value=by, known="rule, system, rule,system")
    if sort not in ("last_seen", "total", "open", "level"):
        raise QueryInputError("triage.bad_value", field="sort", value=sort, known="last_seen, total, open, level")
    keys = [getattr(Alert, name) for name in GROUP_BY[by]]
    total = func.count().label("total")
    open_ = func.coalesce(func.sum(case((Alert.status.not_in(CLOSED_STATUSES), 1), else_=0)), 0).label("open")
    max_rank = func.max(Alert.level_rank).label("max_rank")
    last_seen = func.max(Alert.last_seen).label("last_seen")
    first_seen = func.min(Alert.first_seen).label("first_seen")
    events = func.coalesce(func.sum(Alert.count), 0).label("events")
    extra: list[Any] = [func.max(Alert.rule_title).label("rule_title")] if "rule_id" in GROUP_BY[by] else []
    if "system_id" in GROUP_BY[by]:
        extra.append(func.max(Alert.agency_id).label("agency_id"))
    order: Any = {"last_seen": last_seen, "total": total, "open": open_, "level": max_rank}[sort]
    limit = max(1, min(limit, MAX_GROUPS))
    stmt = (select(*keys, total, open_, max_rank, last_seen, first_seen, events, *extra).where(*conds)
            .group_by(*keys).order_by(order.desc(), *keys).limit(limit + 1))
    rows = session.execute(stmt).mappings().all()
    out = []
    for row in rows[:limit]:
        item: dict[str, Any] = {name: row[name] for name in GROUP_BY[by]}
        item.update(total=int(row["total"]), open=int(row["open"]), events=int(row["events"]),
                    max_level=LEVELS[int(row["max_rank"])] if row["max_rank"] is not None else None,
                    last_seen=_iso(row["last_seen"]), first_seen=_iso(row["first_seen"]))
        for name in ("rule_title", "agency_id"):
            if name in row:
                item[name] = row[name]
        out.append(item)
    return out, len(rows) > limit


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def list_ids(conds: list[ColumnElement[bool]], *, limit: int) -> Select[Any]:
    """Ids of matching alerts, most recent first (what a bulk change by filter acts on)."""
    return select(Alert.id).where(*conds).order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(limit)

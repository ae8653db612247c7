"""Agency scope: a user bound to agencies sees those, their children (districts,
communes) and agencies merged into any of them. A user bound to a province (an
agency at level ``province`` with no parent) sees everything, events and alerts no
system claims included; so does a user bound to ``*`` (the first admin, created
before any agency is known)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import Session

from soc.inventory.models import AgencyRow


@dataclass(frozen=True, slots=True)
class Scope:
    all: bool
    agencies: frozenset[str]

    def allows(self, agency_id: str | None) -> bool:
        return self.all or (agency_id is not None and agency_id in self.agencies)

    def clause(self, column: Any) -> ColumnElement[bool]:
        """A WHERE condition keeping rows whose ``column`` (an agency id) is in scope."""
        if self.all:
            return true()
        if not self.agencies:
            return false()
        return column.in_(sorted(self.agencies))  # type: ignore[no-any-return,unused-ignore]


ALL_AGENCIES = "*"
EVERYTHING = Scope(True, frozenset())
NOTHING = Scope(False, frozenset())


def resolve_scope(session: Session, bound: Iterable[str]) -> Scope:
    rows = session.execute(select(AgencyRow.id, AgencyRow.parent_id, AgencyRow.merged_into,
                                  AgencyRow.level)).all()
    return scope_from_rows(rows, bound)


def scope_from_rows(rows: Iterable[Any], bound: Iterable[str]) -> Scope:
    """``rows`` of (id, parent_id, merged_into, level)."""
    bound = list(bound)
    if ALL_AGENCIES in bound:
        return EVERYTHING
    children: dict[str, list[str]] = defaultdict(list)
    info: dict[str, tuple[str | None, str]] = {}
    for agency_id, parent_id, merged_into, level in rows:
        info[agency_id] = (parent_id, level)
        if parent_id:
            children[parent_id].append(agency_id)
        if merged_into:
            children[merged_into].append(agency_id)
    seen: set[str] = set()
    stack = [a for a in bound if a in info]
    for agency_id in stack:
        parent_id, level = info[agency_id]
        if parent_id is None and level == "province":
            return EVERYTHING
    while stack:
        agency_id = stack.pop()
        if agency_id in seen:
            continue
        seen.add(agency_id)
        stack.extend(children.get(agency_id, ()))
    return Scope(False, frozenset(seen))

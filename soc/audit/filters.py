"""Which audit entries a reader asked for, as SQL conditions (list, export).

Every value is a bound parameter; ``action`` matches by dotted prefix, so
``alert`` and ``alert.`` find ``alert.update`` and ``alert.comment`` (but not
``alerts.x``), and ``system.key`` finds ``system.key.rotate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_

from soc.audit.models import AuditEntry
from soc.identity.scope import EVERYTHING, Scope


@dataclass(frozen=True, slots=True)
class AuditFilter:
    since: datetime | None = None
    """Inclusive."""
    until: datetime | None = None
    """Exclusive."""
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    agency_id: str | None = None
    scope: Scope = EVERYTHING
    """Entries of agencies in scope; an all-agency scope also sees entries without an agency."""

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if not self.scope.all:
            where.append(self.scope.clause(AuditEntry.agency_id))
        if self.since is not None:
            where.append(AuditEntry.at >= self.since)
        if self.until is not None:
            where.append(AuditEntry.at < self.until)
        if self.actor:
            where.append(AuditEntry.actor_name == self.actor)
        if self.action:
            where.append(_action(self.action))
        if self.target_type:
            where.append(AuditEntry.target_type == self.target_type)
        if self.target_id:
            where.append(AuditEntry.target_id == self.target_id)
        if self.agency_id:
            where.append(AuditEntry.agency_id == self.agency_id)
        return where


def _action(action: str) -> ColumnElement[bool]:
    if action.endswith("."):
        return AuditEntry.action.startswith(action, autoescape=True)
    return or_(AuditEntry.action == action, AuditEntry.action.startswith(action + ".", autoescape=True))

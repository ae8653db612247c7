"""Which routes an alert takes.

A route matches an alert whose level is at least the route's ``min_level`` and whose
agency is within the route's agencies as a user's scope is: the agencies, their
children and agencies merged into them (:func:`soc.identity.scope.scope_from_rows`);
a route naming the province sees every alert, unattributed ones included. A route
without agencies takes every agency's alerts. SOC internal alerts
(``soc-internal-*``: a silent log source, a full spool) are routed like any other.
Alerts a retro-hunt opened are left to the analyst who ran it unless the route says
``retro: true``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc.alerts.internal import LEVELS
from soc.config import NotificationRoute
from soc.identity.scope import EVERYTHING, Scope, scope_from_rows
from soc.inventory.models import AgencyRow

_RANK = {level: i for i, level in enumerate(LEVELS)}


def level_rank(level: str) -> int:
    """Position of ``level`` among informational…critical; an unknown level ranks lowest."""
    return _RANK.get(level, -1)


@dataclass(frozen=True, slots=True)
class RoutedAlert:
    """What routing needs to know of an alert."""

    id: str
    level: str
    agency_id: str | None
    retro: bool = False


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    route: NotificationRoute
    scope: Scope

    def matches(self, alert: RoutedAlert) -> bool:
        if level_rank(alert.level) < level_rank(self.route.min_level):
            return False
        if alert.retro and not self.route.retro:
            return False
        return self.scope.allows(alert.agency_id)


class Router:
    """The configured routes, with each route's agencies expanded over the agency tree."""

    def __init__(self, routes: Sequence[NotificationRoute], agency_rows: Iterable[Any]) -> None:
        rows = list(agency_rows)
        self.routes = [CompiledRoute(r, _route_scope(rows, r.agencies)) for r in routes]

    @classmethod
    def load(cls, session: Session, routes: Sequence[NotificationRoute]) -> Router:
        rows = session.execute(select(AgencyRow.id, AgencyRow.parent_id, AgencyRow.merged_into,
                                      AgencyRow.level)).all() if routes else []
        return cls(routes, rows)

    def match(self, alert: RoutedAlert) -> list[NotificationRoute]:
        return [c.route for c in self.routes if c.matches(alert)]


def _route_scope(rows: list[Any], agencies: list[str]) -> Scope:
    if not agencies:
        return EVERYTHING
    scope = scope_from_rows(rows, agencies)
    # An agency the inventory does not hold yet still names the alerts its events carry.
    return scope if scope.all else Scope(False, scope.agencies | frozenset(agencies))

"""What each role may do: the table the authorization matrix test checks.

Every role reads within its agency scope; only what is listed here changes state.
"""

from __future__ import annotations

from enum import StrEnum

from soc.identity.models import ROLES


class Permission(StrEnum):
    READ = "read"
    """Alerts, incidents, systems, agencies, events and source health in scope."""
    TRIAGE = "triage"
    """Change alerts (status, assignee, comments, bulk) and incidents."""
    INVENTORY = "inventory"
    """Agencies, systems, log sources, ingest keys."""
    USERS_READ = "users.read"
    USERS_WRITE = "users.write"
    AUDIT_READ = "audit.read"
    SERVICE_READ = "service.read"
    """Prometheus metrics, notification deliveries, service internals."""
    SERVICE_WRITE = "service.write"
    """Service operations: test notifications, re-learn intervals, force checks."""


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "analyst": frozenset({Permission.READ, Permission.TRIAGE, Permission.USERS_READ}),
    "auditor": frozenset({Permission.READ, Permission.USERS_READ, Permission.AUDIT_READ, Permission.SERVICE_READ}),
    "viewer": frozenset({Permission.READ}),
}
assert set(ROLE_PERMISSIONS) == set(ROLES)


def allowed(role: str, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())

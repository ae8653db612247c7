"""The authenticated caller of an API request."""

from __future__ import annotations

from dataclasses import dataclass

from soc.identity.roles import Permission, allowed
from soc.identity.scope import Scope


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    username: str
    role: str
    agencies: tuple[str, ...]
    scope: Scope
    token_id: str
    token_kind: str
    """session | api"""
    source_ip: str | None = None

    def can(self, permission: Permission) -> bool:
        return allowed(self.role, permission)

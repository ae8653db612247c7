"""Authentication and authorization, injected into every route.

A user presents ``Authorization: Bearer <token>`` (a login session or an API token)
or the console's HTTP-only ``soc_session`` cookie; :func:`require` turns that into a
:class:`~soc.identity.principal.Principal` and checks the role's permission (the
table is :mod:`soc.identity.roles`). Ingest senders present their system's ingest key
(``Authorization: Bearer`` or ``X-Ingest-Key``) instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Cookie, Depends, Header, Request

from soc.api.errors import ApiError
from soc.api.state import AppState
from soc.identity.principal import Principal
from soc.identity.roles import Permission
from soc.identity.tokens import authenticate
from soc.timeparse import parse_time

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
SESSION_COOKIE = "soc_session"


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.soc
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def query_time(value: str | None, state: AppState) -> datetime | None:
    """A ``since``/``until`` parameter (``24h``, ``7d`` or ISO 8601; local times in the
    configured zone), or ``None`` when absent; 400 naming the value otherwise."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value, tz=state.cfg.tz)
    except ValueError:
        raise ApiError(400, "search.bad_time", value=value) from None


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def current_principal(request: Request, state: StateDep,
                      authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
                      soc_session: Annotated[str | None, Cookie(include_in_schema=False)] = None) -> Principal:
    secret = _bearer(authorization) or soc_session
    if not secret:
        raise ApiError(401, "api.unauthorized", headers=_CHALLENGE)
    principal = authenticate(state.db, secret, client_ip(request))
    if principal is None:
        raise ApiError(401, "api.unauthorized", headers=_CHALLENGE)
    return principal


def require(permission: Permission) -> Any:
    """A dependency giving the caller, refused with 403 unless the role has ``permission``."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(permission):
            raise ApiError(403, "api.forbidden", role=principal.role, permission=permission.value)
        return principal

    return Depends(check)


Reader = Annotated[Principal, require(Permission.READ)]
Triager = Annotated[Principal, require(Permission.TRIAGE)]
InventoryAdmin = Annotated[Principal, require(Permission.INVENTORY)]
UsersReader = Annotated[Principal, require(Permission.USERS_READ)]
UsersAdmin = Annotated[Principal, require(Permission.USERS_WRITE)]
AuditReader = Annotated[Principal, require(Permission.AUDIT_READ)]
ServiceReader = Annotated[Principal, require(Permission.SERVICE_READ)]
ServiceAdmin = Annotated[Principal, require(Permission.SERVICE_WRITE)]


def ingest_system(state: StateDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
                  x_ingest_key: Annotated[str | None, Header()] = None) -> str:
    """The system id the presented ingest key belongs to."""
    key = x_ingest_key or _bearer(authorization)
    system_id = state.registry.system_for_key(key) if key else None
    if system_id is None:
        raise ApiError(401, "api.bad_ingest_key", headers=_CHALLENGE)
    return system_id

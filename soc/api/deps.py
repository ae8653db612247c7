"""Authentication dependencies: the admin token for read routes, an ingest key for
``POST /api/v1/ingest``. Both arrive as ``Authorization: Bearer <secret>``; ingest
senders may use ``X-Ingest-Key`` instead."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from soc.api.errors import ApiError
from soc.api.state import AppState

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.soc
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def require_admin(state: StateDep, authorization: Annotated[str | None, Header()] = None) -> None:
    token = _bearer(authorization)
    if token is None or not state.admin.verify(token):
        raise ApiError(401, "api.unauthorized", headers=_CHALLENGE)


def ingest_system(state: StateDep, authorization: Annotated[str | None, Header()] = None,
                  x_ingest_key: Annotated[str | None, Header()] = None) -> str:
    """The system id the presented ingest key belongs to."""
    key = x_ingest_key or _bearer(authorization)
    system_id = state.registry.system_for_key(key) if key else None
    if system_id is None:
        raise ApiError(401, "api.bad_ingest_key", headers=_CHALLENGE)
    return system_id


AdminDep = Depends(require_admin)

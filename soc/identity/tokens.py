"""Bearer secrets: login sessions (``soc_sess_…``, expire) and API tokens for
automation (``soc_api_…``, until revoked or their expiry). Only SHA-256 digests are
stored; a token is looked up by its digest."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from soc.db import Database, utcnow
from soc.identity.models import TokenRow, UserRow
from soc.identity.principal import Principal
from soc.identity.scope import resolve_scope
from soc.systems import hash_secret, new_secret

TOKEN_PREFIX = {"session": "soc_sess", "api": "soc_api"}
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token (not on every request)."""


def issue_token(session: Session, user: UserRow, *, kind: str, name: str = "",
                ttl: timedelta | None = None, source_ip: str | None = None) -> tuple[TokenRow, str]:
    """A new token for ``user``; returns the row and the secret (shown once)."""
    secret = new_secret(TOKEN_PREFIX[kind])
    now = utcnow()
    row = TokenRow(user_id=user.id, kind=kind, name=name, digest=hash_secret(secret),
                   prefix=secret[:len(TOKEN_PREFIX[kind]) + 5], created_at=now,
                   expires_at=now + ttl if ttl else None, source_ip=source_ip)
    session.add(row)
    session.flush()
    return row, secret


def authenticate(db: Database, secret: str, source_ip: str | None = None,
                 now: datetime | None = None) -> Principal | None:
    """The principal a bearer secret stands for, or ``None`` (unknown, revoked,
    expired, user disabled or locked)."""
    now = now or utcnow()
    with db.read() as session:
        found = session.execute(
            select(TokenRow, UserRow).join(UserRow, UserRow.id == TokenRow.user_id)
            .where(TokenRow.digest == hash_secret(secret))
        ).first()
        if found is None:
            return None
        token, user = found
        if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
            return None
        if not user.active:
            return None
        scope = resolve_scope(session, user.agencies)
        principal = Principal(user_id=user.id, username=user.username, role=user.role,
                              agencies=tuple(user.agencies), scope=scope, token_id=token.id,
                              token_kind=token.kind, source_ip=source_ip)
        stale = token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION
    if stale:
        with db.write() as session:
            session.execute(update(TokenRow).where(TokenRow.id == token.id).values(last_used_at=now))
    return principal

"""Bearer secrets: login sessions (``soc_sess_…``, expire) and API tokens for
automation (``soc_api_…``, until revoked or their expiry). Only SHA-256 digests are
stored; a token is looked up by its digest.

A locked account (too many failed logins) keeps its tokens: the lock stops password
guessing, and letting a guesser end the owner's sessions would hand them a denial
of service. Disabling an account revokes its tokens."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
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
                ttl: timedelta | None = None, source_ip: str | None = None,
                now: datetime | None = None) -> tuple[TokenRow, str]:
    """A new token for ``user``; returns the row and the secret (shown once)."""
    secret = new_secret(TOKEN_PREFIX[kind])
    now = now or utcnow()
    row = TokenRow(user_id=user.id, kind=kind, name=name, digest=hash_secret(secret),
                   prefix=secret[:len(TOKEN_PREFIX[kind]) + 5], created_at=now,
                   expires_at=now + ttl if ttl else None, source_ip=source_ip)
    session.add(row)
    session.flush()
    return row, secret


def authenticate(db: Database, secret: str, source_ip: str | None = None,
                 now: datetime | None = None) -> Principal | None:
    """The principal a bearer secret stands for, or ``None`` (unknown, revoked,
    expired, user disabled)."""
    now = now or utcnow()
    with db.read() as session:
        found = session.execute(
            select(TokenRow, UserRow).join(UserRow, UserRow.id == TokenRow.user_id)
            .where(TokenRow.digest == hash_secret(secret))
        ).first()
        if found is None:
            return None
        token, user = found
        if not is_live(token, now):
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


def is_live(token: TokenRow, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def live_tokens(session: Session, user_id: str, now: datetime | None = None) -> list[TokenRow]:
    """The user's tokens that still work, newest first."""
    now = now or utcnow()
    rows = session.scalars(
        select(TokenRow).where(TokenRow.user_id == user_id, TokenRow.revoked_at.is_(None),
                               or_(TokenRow.expires_at.is_(None), TokenRow.expires_at > now))
        .order_by(TokenRow.created_at.desc(), TokenRow.id)
    )
    return list(rows)


def revoke_tokens(session: Session, user_id: str, *, kinds: Iterable[str] | None = None,
                  names: Iterable[str] | None = None, keep: str | None = None,
                  now: datetime | None = None) -> list[str]:
    """Revoke the user's live tokens (of ``kinds``, named one of ``names``, all but
    ``keep``); returns the ids revoked."""
    now = now or utcnow()
    query = select(TokenRow.id).where(TokenRow.user_id == user_id, TokenRow.revoked_at.is_(None))
    if kinds is not None:
        query = query.where(TokenRow.kind.in_(list(kinds)))
    if names is not None:
        query = query.where(TokenRow.name.in_(list(names)))
    if keep is not None:
        query = query.where(TokenRow.id != keep)
    ids = list(session.scalars(query))
    if ids:
        session.execute(update(TokenRow).where(TokenRow.id.in_(ids)).values(revoked_at=now),
                        execution_options={"synchronize_session": "fetch"})
    return ids


def token_dict(token: TokenRow, current: str | None = None) -> dict[str, Any]:
    """Public view of a token: never its digest."""
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": token.id, "kind": token.kind, "name": token.name, "prefix": token.prefix,
            "created_at": iso(token.created_at), "expires_at": iso(token.expires_at),
            "last_used_at": iso(token.last_used_at), "revoked_at": iso(token.revoked_at),
            "source_ip": token.source_ip, "current": token.id == current}

"""Signing in with a username and password, and the lockout that stops guessing.

The answer to a wrong password, an unknown username, a disabled account or an
account without a password is the same 401, and each costs one argon2
verification, so neither the answer nor its timing says which usernames exist.
After ``lockout_threshold`` failures in a row the account is locked for
``lockout_minutes``: logins are refused with 423 (and ``Retry-After``) even with the
right password, until the lock expires or an administrator unlocks the account.
The failure count starts again when a lock expires.

The password is verified outside the write transaction (it takes tens of
milliseconds, and SQLite's write lock is the whole database's); the outcome is then
written with the user row locked, so concurrent attempts all count.

Login bookkeeping (failures, lock, last login, rehash) is written with a plain
UPDATE that leaves the row's ``version`` alone: a user signing in must not make an
administrator's pending edit of that user stale.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from soc.audit.trail import Actor, record
from soc.config import AuthConfig
from soc.db import Database, utcnow
from soc.i18n import register
from soc.identity.errors import IdentityError
from soc.identity.models import TokenRow, UserRow
from soc.identity.passwords import hash_password, needs_rehash, verify_password
from soc.identity.tokens import issue_token
from soc.identity.users import audit_agency, normalise_username

ANONYMOUS = "anonymous"

register({
    "auth.bad_credentials": ("Sai tên đăng nhập hoặc mật khẩu", "Wrong username or password"),
    "auth.locked": (
        "Tài khoản tạm khóa do đăng nhập sai nhiều lần; thử lại sau {minutes} phút "
        "hoặc nhờ quản trị viên mở khóa",
        "The account is locked after repeated failed logins; retry in {minutes} minutes "
        "or ask an administrator to unlock it",
    ),
})


def _locked(until: datetime, now: datetime) -> IdentityError:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    return IdentityError(423, "auth.locked", headers={"Retry-After": str(seconds)}, minutes=math.ceil(seconds / 60))


def login(db: Database, auth: AuthConfig, username: str, password: str, ip: str | None = None,
          now: datetime | None = None) -> tuple[UserRow, TokenRow, str]:
    """A new login session: the user, the token row and its secret (for the cookie
    and the bearer header). Raises :class:`IdentityError` 401 or 423."""
    now = now or utcnow()
    name = normalise_username(username)[:100]
    with db.read() as session:
        seen_hash = session.scalars(select(UserRow.password_hash).where(UserRow.username == name)).first()
    matches = verify_password(seen_hash, password)
    with db.write() as session:
        outcome = _settle(session, auth, name, password, seen_hash, matches, ip, now)
    if isinstance(outcome, IdentityError):
        raise outcome
    return outcome


def _settle(session: Session, auth: AuthConfig, name: str, password: str, seen_hash: str | None, matches: bool,
            ip: str | None, now: datetime) -> tuple[UserRow, TokenRow, str] | IdentityError:
    """Write the attempt's outcome; return the session or the error to raise after commit."""
    anonymous = Actor(None, ANONYMOUS, None, ip)
    user = session.scalars(select(UserRow).where(UserRow.username == name).with_for_update()).first()
    if user is None or not user.active or user.password_hash is None:
        reason = "unknown_user" if user is None else "disabled" if not user.active else "no_password"
        record(session, anonymous, "auth.login_failed", "user", user.id if user else None,
               agency_id=audit_agency(user) if user else None, after={"username": name, "reason": reason})
        return IdentityError(401, "auth.bad_credentials")
    agency = audit_agency(user)
    if user.locked_until is not None and user.locked_until > now:
        record(session, anonymous, "auth.login_failed", "user", user.id, agency_id=agency,
               after={"username": name, "reason": "locked", "locked_until": user.locked_until})
        return _locked(user.locked_until, now)
    if user.password_hash != seen_hash:
        matches = verify_password(user.password_hash, password)
    if not matches:
        lock_expired = user.locked_until is not None
        failures = (0 if lock_expired else user.failed_logins) + 1
        values: dict[str, Any] = {"failed_logins": failures, "locked_until": None}
        if failures >= auth.lockout_threshold:
            values["locked_until"] = now + timedelta(minutes=auth.lockout_minutes)
        _bookkeep(session, user, values)
        record(session, anonymous, "auth.login_failed", "user", user.id, agency_id=agency,
               after={"username": name, "reason": "wrong_password", "failed_logins": failures})
        if values["locked_until"] is None:
            return IdentityError(401, "auth.bad_credentials")
        record(session, Actor.system("auth"), "auth.lockout", "user", user.id, agency_id=agency,
               after={"username": name, "failed_logins": failures, "locked_until": values["locked_until"]})
        return _locked(values["locked_until"], now)
    values = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
    if needs_rehash(user.password_hash):
        values["password_hash"] = hash_password(password)
    _bookkeep(session, user, values)
    token, secret = issue_token(session, user, kind="session", name="login",
                                ttl=timedelta(hours=auth.session_hours), source_ip=ip, now=now)
    record(session, Actor(user.id, user.username, user.role, ip), "auth.login", "user", user.id, agency_id=agency,
           after={"token_id": token.id, "expires_at": token.expires_at})
    return user, token, secret


def _bookkeep(session: Session, user: UserRow, values: dict[str, Any]) -> None:
    """Write login state without bumping ``version`` or ``updated_at`` (see the module doc)."""
    session.execute(update(UserRow).where(UserRow.id == user.id).values(updated_at=user.updated_at, **values),
                    execution_options={"synchronize_session": "evaluate"})

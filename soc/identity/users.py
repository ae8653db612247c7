"""Managing user accounts: create, change, disable, passwords, unlock, API tokens.

Every function runs inside the caller's ``db.write()`` transaction and appends its
audit entry there, so a change and its record commit together. Audit entries never
hold password hashes or token digests.

Scope rules (``scope`` is the acting user's, :data:`~soc.identity.scope.EVERYTHING`
for the local CLI):

* a caller **sees** a user bound to at least one agency of their scope (an
  all-scope caller sees everyone); an unseen user answers 404;
* a caller **changes** a user only when the scope covers every agency the user is
  bound to, so a commune administrator cannot touch a colleague who also belongs
  to another commune;
* new bindings must be agencies in the caller's scope; ``*`` needs an all-scope caller.

So that the province never loses its administrators, nobody disables or demotes
themselves, and the last active all-scope administrator cannot be disabled,
demoted or narrowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from soc.audit.trail import Actor, record
from soc.db import utcnow
from soc.i18n import register
from soc.identity.errors import IdentityError, StaleUser
from soc.identity.models import ROLES, TokenRow, UserRow
from soc.identity.passwords import check_policy, generate_password, hash_password, verify_password
from soc.identity.scope import ALL_AGENCIES, Scope, scope_from_rows
from soc.identity.tokens import issue_token, revoke_tokens
from soc.inventory.models import AgencyRow

USERNAME = re.compile(r"[a-z0-9._-]{3,64}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
EDITABLE = ("role", "agencies", "display_name", "email", "active")
MAX_TOKEN_DAYS = 3650

register({
    "users.bad_username": (
        "Tên đăng nhập '{username}' không hợp lệ: cần 3–64 ký tự a-z, 0-9, '.', '_', '-'",
        "Invalid username '{username}': use 3–64 characters from a-z, 0-9, '.', '_', '-'",
    ),
    "users.bad_role": ("Vai trò '{role}' không tồn tại; dùng một trong: {roles}",
                       "Unknown role '{role}'; use one of: {roles}"),
    "users.no_agency": (
        "Cần gắn người dùng với ít nhất một cơ quan (hoặc '*' cho mọi cơ quan)",
        "Bind the user to at least one agency (or '*' for every agency)",
    ),
    "users.unknown_agency": ("Không có cơ quan: {agencies}; các cơ quan bạn có thể dùng: {known}",
                             "Unknown agency: {agencies}; agencies you can use: {known}"),
    "users.merged_agency": ("Cơ quan '{agency}' đã sáp nhập vào '{into}'; hãy gắn với '{into}'",
                            "Agency '{agency}' was merged into '{into}'; bind '{into}' instead"),
    "users.star_needs_all_scope": (
        "Chỉ quản trị viên toàn tỉnh mới gắn được '*' (mọi cơ quan)",
        "Only a province-wide administrator can bind '*' (every agency)",
    ),
    "users.exists": ("Tên đăng nhập '{username}' đã có người dùng", "The username '{username}' is taken"),
    "users.bad_email": ("Địa chỉ email '{email}' không hợp lệ", "Invalid email address '{email}'"),
    "users.bad_display_name": ("Tên hiển thị dài quá {max} ký tự", "The display name is longer than {max} characters"),
    "users.bad_field": ("Không sửa được trường '{field}'; các trường sửa được: {fields}",
                        "The field '{field}' cannot be changed; changeable fields: {fields}"),
    "users.not_manageable": (
        "Người dùng '{username}' còn thuộc cơ quan ngoài phạm vi của bạn ({agencies}); "
        "chỉ quản trị viên có phạm vi bao trùm các cơ quan đó mới sửa được",
        "User '{username}' is also bound to agencies outside your scope ({agencies}); "
        "only an administrator whose scope covers them can change this user",
    ),
    "users.self_disable": ("Bạn không thể tự vô hiệu hóa tài khoản của mình; hãy nhờ quản trị viên khác",
                           "You cannot disable your own account; ask another administrator"),
    "users.self_demote": ("Bạn không thể tự bỏ vai trò quản trị của mình; hãy nhờ quản trị viên khác",
                          "You cannot remove your own admin role; ask another administrator"),
    "users.last_admin": (
        "'{username}' là quản trị viên toàn tỉnh cuối cùng còn hoạt động; hãy tạo hoặc kích hoạt "
        "một quản trị viên toàn tỉnh khác trước",
        "'{username}' is the last active province-wide administrator; create or enable another one first",
    ),
    "users.stale": (
        "Người dùng đã được sửa trong lúc đó (phiên bản {current}, bạn gửi {expected}); "
        "hãy tải lại rồi áp dụng lại thay đổi",
        "The user changed meanwhile (version {current}, you sent {expected}); reload it and apply your change again",
    ),
    "users.wrong_password": ("Mật khẩu hiện tại không đúng", "The current password is wrong"),
    "users.unknown": ("Không có người dùng '{username}' (xem: soc users list)",
                      "No user '{username}' (see: soc users list)"),
    "users.bad_token_name": ("Tên mã API cần 1–{max} ký tự", "An API token name needs 1–{max} characters"),
    "users.bad_token_days": ("Thời hạn mã API phải từ 1 đến {max} ngày", "An API token lasts 1 to {max} days"),
})


# --- who sees and changes whom -----------------------------------------------------

def visible(scope: Scope, user: UserRow) -> bool:
    return scope.all or any(scope.allows(a) for a in user.agencies if a != ALL_AGENCIES)


def outside(scope: Scope, user: UserRow) -> list[str]:
    """The user's agencies the scope does not cover (empty: the caller may change the user)."""
    if scope.all:
        return []
    return [a for a in user.agencies if a == ALL_AGENCIES or not scope.allows(a)]


def audit_agency(user: UserRow) -> str | None:
    """The agency an audit entry about ``user`` is filed under (auditors see their scope's)."""
    return next((a for a in user.agencies if a != ALL_AGENCIES), None)


def agency_rows(session: Session) -> list[Any]:
    return list(session.execute(select(AgencyRow.id, AgencyRow.parent_id, AgencyRow.merged_into, AgencyRow.level)))


def _all_scope(rows: Iterable[Any], agencies: Iterable[str]) -> bool:
    return scope_from_rows(rows, agencies).all


# --- lookups -----------------------------------------------------------------------

def normalise_username(username: str) -> str:
    return username.strip().lower()


def find_user(session: Session, username: str) -> UserRow | None:
    return session.scalars(select(UserRow).where(UserRow.username == normalise_username(username))).first()


def get_user(session: Session, scope: Scope, user_id: str, *, for_update: bool = False) -> UserRow:
    """The user, or 404 when there is none or it is outside ``scope``."""
    query = select(UserRow).where(UserRow.id == user_id)
    if for_update:
        query = query.with_for_update()
    user = session.scalars(query).first()
    if user is None or not visible(scope, user):
        raise IdentityError(404, "api.not_found", what="user", id=user_id)
    return user


def list_users(session: Session, scope: Scope, *, role: str | None = None, agency: str | None = None,
               active: bool | None = None) -> list[UserRow]:
    """Users in ``scope``, by username. The agency filter keeps users bound to it;
    bindings live in a JSON list, filtered here rather than with dialect JSON operators
    (a province has hundreds of users, not millions)."""
    query = select(UserRow).order_by(UserRow.username)
    if role is not None:
        query = query.where(UserRow.role == role)
    if active is not None:
        query = query.where(UserRow.active.is_(active))
    return [u for u in session.scalars(query)
            if visible(scope, u) and (agency is None or agency in u.agencies)]


# --- validation --------------------------------------------------------------------

def _username(username: str) -> str:
    name = normalise_username(username)
    if not USERNAME.fullmatch(name):
        raise IdentityError(422, "users.bad_username", username=username)
    return name


def _role(role: str) -> str:
    if role not in ROLES:
        raise IdentityError(422, "users.bad_role", role=role, roles=", ".join(ROLES))
    return role


def _email(email: str | None) -> str | None:
    email = (email or "").strip() or None
    if email is not None and (len(email) > 200 or not EMAIL.fullmatch(email)):
        raise IdentityError(422, "users.bad_email", email=email)
    return email


def _display_name(name: str | None) -> str:
    name = (name or "").strip()
    if len(name) > 200:
        raise IdentityError(422, "users.bad_display_name", max=200)
    return name


def _agencies(session: Session, scope: Scope, agencies: Iterable[str]) -> list[str]:
    """Bindings checked against the inventory and the caller's scope."""
    cleaned = list(dict.fromkeys(a.strip() for a in agencies if a.strip()))
    if not cleaned:
        raise IdentityError(422, "users.no_agency")
    if ALL_AGENCIES in cleaned:
        if not scope.all:
            raise IdentityError(403, "users.star_needs_all_scope")
        return [ALL_AGENCIES]
    # An agency outside the caller's scope is answered as unknown: a scoped admin must
    # not learn which agency ids exist elsewhere in the province by probing bindings.
    known = {row.id: row for row in session.scalars(select(AgencyRow)) if scope.allows(row.id)}
    unknown = [a for a in cleaned if a not in known]
    if unknown:
        usable = sorted(a for a, row in known.items() if row.merged_into is None)
        raise IdentityError(422, "users.unknown_agency", agencies=", ".join(unknown),
                            known=", ".join(usable) or "—")
    merged = next((a for a in cleaned if known[a].merged_into), None)
    if merged is not None:
        raise IdentityError(422, "users.merged_agency", agency=merged, into=known[merged].merged_into)
    return cleaned


def require_manageable(scope: Scope, user: UserRow) -> None:
    out = outside(scope, user)
    if out:
        raise IdentityError(403, "users.not_manageable", username=user.username, agencies=", ".join(out))


def _guard_admins(session: Session, actor: Actor, user: UserRow, *, role: str, agencies: list[str],
                  active: bool) -> None:
    """Refuse a change that would leave the province without an administrator."""
    if actor.id == user.id and user.active and not active:
        raise IdentityError(409, "users.self_disable")
    if actor.id == user.id and user.role == "admin" and role != "admin":
        raise IdentityError(409, "users.self_demote")
    if not (user.active and user.role == "admin"):
        return
    rows = agency_rows(session)
    if not _all_scope(rows, user.agencies) or (active and role == "admin" and _all_scope(rows, agencies)):
        return
    others = session.scalars(select(UserRow).where(UserRow.role == "admin", UserRow.active.is_(True),
                                                   UserRow.id != user.id))
    if not any(_all_scope(rows, other.agencies) for other in others):
        raise IdentityError(409, "users.last_admin", username=user.username)


# --- changes -----------------------------------------------------------------------

def create_user(session: Session, actor: Actor, scope: Scope, *, username: str, role: str,
                agencies: Iterable[str], display_name: str | None = None, email: str | None = None,
                password: str | None = None) -> tuple[UserRow, str | None]:
    """A new active user; without ``password`` one is generated and returned (shown once)."""
    name = _username(username)
    user = UserRow(username=name, role=_role(role), agencies=_agencies(session, scope, agencies),
                   display_name=_display_name(display_name), email=_email(email))
    generated = None
    if password is None:
        password = generated = generate_password()
    check_policy(password, name)
    if find_user(session, name) is not None:
        raise IdentityError(409, "users.exists", username=name)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        # Created by a concurrent request between the check above and this insert.
        raise IdentityError(409, "users.exists", username=name) from None
    record(session, actor, "user.create", "user", user.id, agency_id=audit_agency(user), after=user.as_dict())
    return user, generated


def update_user(session: Session, actor: Actor, scope: Scope, user_id: str, changes: Mapping[str, Any], *,
                expected_version: int | None = None, action: str = "user.update") -> UserRow:
    """Change ``role``, ``agencies``, ``display_name``, ``email`` or ``active``.

    ``expected_version`` (from If-Match) guards against overwriting someone else's
    edit: a mismatch raises :class:`StaleUser` with the current row. Disabling
    revokes every token of the user."""
    user = get_user(session, scope, user_id, for_update=True)
    if expected_version is not None and user.version != expected_version:
        raise StaleUser(user, expected_version)
    require_manageable(scope, user)
    for field in changes:
        if field not in EDITABLE:
            raise IdentityError(422, "users.bad_field", field=field, fields=", ".join(EDITABLE))
    new: dict[str, Any] = {}
    if "role" in changes:
        new["role"] = _role(changes["role"])
    if "agencies" in changes:
        new["agencies"] = _agencies(session, scope, changes["agencies"] or [])
    if "display_name" in changes:
        new["display_name"] = _display_name(changes["display_name"])
    if "email" in changes:
        new["email"] = _email(changes["email"])
    if "active" in changes:
        new["active"] = bool(changes["active"])
    diff = {k: v for k, v in new.items() if getattr(user, k) != v}
    if not diff:
        return user
    _guard_admins(session, actor, user, role=diff.get("role", user.role),
                  agencies=diff.get("agencies", user.agencies), active=diff.get("active", user.active))
    before = {k: getattr(user, k) for k in diff}
    for key, value in diff.items():
        setattr(user, key, value)
    after: dict[str, Any] = dict(diff)
    if diff.get("active") is False:
        after["tokens_revoked"] = len(revoke_tokens(session, user.id))
    session.flush()
    record(session, actor, action, "user", user.id, agency_id=audit_agency(user), before=before, after=after)
    return user


def disable_user(session: Session, actor: Actor, scope: Scope, user_id: str) -> UserRow:
    """Deactivate the account and revoke its sessions and API tokens (the row stays,
    for the audit trail and assignments)."""
    return update_user(session, actor, scope, user_id, {"active": False}, action="user.disable")


def set_password(session: Session, actor: Actor, scope: Scope, user_id: str,
                 password: str | None = None) -> tuple[UserRow, str | None]:
    """An administrator's reset: new password (generated and returned when not
    given), login sessions revoked, lockout cleared. API tokens stay."""
    user = get_user(session, scope, user_id, for_update=True)
    require_manageable(scope, user)
    generated = None
    if password is None:
        password = generated = generate_password()
    check_policy(password, user.username)
    was_locked = user.locked_until is not None or user.failed_logins > 0
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.failed_logins, user.locked_until = 0, None
    revoked = revoke_tokens(session, user.id, kinds=["session"])
    session.flush()
    record(session, actor, "user.password.reset", "user", user.id, agency_id=audit_agency(user),
           after={"password_changed_at": user.password_changed_at, "sessions_revoked": len(revoked),
                  "unlocked": was_locked})
    return user, generated


def change_own_password(session: Session, actor: Actor, user_id: str, current: str, new: str,
                        keep_token: str | None = None) -> UserRow:
    """The signed-in user's own change: needs the current password; ends their other sessions."""
    user = session.scalars(select(UserRow).where(UserRow.id == user_id).with_for_update()).one()
    if not verify_password(user.password_hash, current):
        raise IdentityError(400, "users.wrong_password")
    check_policy(new, user.username)
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    revoked = revoke_tokens(session, user.id, kinds=["session"], keep=keep_token)
    session.flush()
    record(session, actor, "user.password.change", "user", user.id, agency_id=audit_agency(user),
           after={"password_changed_at": user.password_changed_at, "sessions_revoked": len(revoked)})
    return user


def unlock_user(session: Session, actor: Actor, scope: Scope, user_id: str) -> UserRow:
    """Lift a lockout before it expires (and forget the failed attempts)."""
    user = get_user(session, scope, user_id, for_update=True)
    require_manageable(scope, user)
    before = {"locked_until": user.locked_until, "failed_logins": user.failed_logins}
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    record(session, actor, "user.unlock", "user", user.id, agency_id=audit_agency(user), before=before,
           after={"locked_until": None, "failed_logins": 0})
    return user


# --- API tokens --------------------------------------------------------------------

def issue_api_token(session: Session, actor: Actor, user: UserRow, *, name: str, days: int | None,
                    source_ip: str | None = None) -> tuple[TokenRow, str]:
    """An API token for ``user`` (``days=None``: until revoked); the secret is returned once."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise IdentityError(422, "users.bad_token_name", max=100)
    if days is not None and not 1 <= days <= MAX_TOKEN_DAYS:
        raise IdentityError(422, "users.bad_token_days", max=MAX_TOKEN_DAYS)
    token, secret = issue_token(session, user, kind="api", name=name,
                                ttl=timedelta(days=days) if days else None, source_ip=source_ip)
    record(session, actor, "token.create", "token", token.id, agency_id=audit_agency(user),
           after={"user_id": user.id, "username": user.username, "kind": token.kind, "name": token.name,
                  "prefix": token.prefix, "expires_at": token.expires_at})
    return token, secret


def revoke_token(session: Session, actor: Actor, user: UserRow, token_id: str, *,
                 action: str = "token.revoke") -> TokenRow:
    """Revoke one of ``user``'s tokens (404 when it is not theirs; revoking twice is a no-op)."""
    token = session.get(TokenRow, token_id)
    if token is None or token.user_id != user.id:
        raise IdentityError(404, "api.not_found", what="token", id=token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        record(session, actor, action, "token", token.id, agency_id=audit_agency(user),
               after={"user_id": user.id, "username": user.username, "kind": token.kind, "name": token.name,
                      "prefix": token.prefix})
    return token

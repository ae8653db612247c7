"""The first administrator, created at the first run.

When the ``users`` table is empty the service (or ``soc admin token``) creates the
user ``admin``, bound to every agency (``*``), with a generated password and an API
token named ``bootstrap``, and prints both ONCE. ``soc admin token --reset`` later
issues a fresh API token for the first active province-wide administrator, revoking
the previous bootstrap/CLI tokens: the way back in when the credentials are lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from soc.audit.trail import Actor, record
from soc.db import Database
from soc.i18n import register, t
from soc.identity.errors import IdentityError
from soc.identity.models import UserRow
from soc.identity.scope import ALL_AGENCIES, EVERYTHING, scope_from_rows
from soc.identity.tokens import revoke_tokens
from soc.identity.users import agency_rows, audit_agency, create_user, issue_api_token

FIRST_ADMIN = "admin"
BOOTSTRAP_TOKEN = "bootstrap"
CLI_TOKEN = "admin-cli"

register({
    "run.first_admin": (
        "Tài khoản quản trị đầu tiên (chỉ hiện MỘT lần, hãy lưu lại và đổi mật khẩu)",
        "First administrator account (shown ONCE: keep it safe and change the password)",
    ),
    "run.first_admin_username": ("Tên đăng nhập", "Username"),
    "run.first_admin_password": ("Mật khẩu", "Password"),
    "run.admin_exists": (
        "Đã có tài khoản người dùng; đăng nhập, hoặc chạy 'soc admin token --reset' để tạo mã API quản trị mới",
        "User accounts exist; sign in, or run 'soc admin token --reset' for a new admin API token",
    ),
    "run.no_admin": (
        "Không còn quản trị viên toàn tỉnh nào hoạt động; tạo một người bằng: "
        "soc users create TEN --role admin --agency '*'",
        "No active province-wide administrator is left; create one with: "
        "soc users create NAME --role admin --agency '*'",
    ),
})


@dataclass(frozen=True, slots=True)
class FirstAdmin:
    username: str
    password: str
    token: str

    def lines(self) -> list[tuple[str, str]]:
        """(label, value) rows for the startup banner; print them once, with ``run.first_admin`` above."""
        return [(t("run.first_admin_username"), self.username), (t("run.first_admin_password"), self.password),
                (t("run.admin_token"), self.token)]


def ensure_first_admin(db: Database) -> FirstAdmin | None:
    """Create the first administrator when there is no user at all; ``None`` otherwise."""
    actor = Actor.system("first-run")
    try:
        with db.write() as session:
            if session.scalar(select(UserRow.id).limit(1)) is not None:
                return None
            user, password = create_user(session, actor, EVERYTHING, username=FIRST_ADMIN, role="admin",
                                         agencies=[ALL_AGENCIES], display_name="Quản trị viên / Administrator")
            _, secret = issue_api_token(session, actor, user, name=BOOTSTRAP_TOKEN, days=None)
    except IdentityError as exc:
        if exc.status != 409:
            raise
        # Another process (a second service starting on PostgreSQL) created it first.
        return None
    assert password is not None
    return FirstAdmin(user.username, password, secret)


def reset_admin_token(db: Database, actor: Actor) -> tuple[str, str] | None:
    """A new API token for the first active all-scope administrator, revoking their
    earlier bootstrap and CLI tokens; ``(username, secret)``, or ``None`` when no such
    administrator exists."""
    with db.write() as session:
        rows = agency_rows(session)
        admins = session.scalars(select(UserRow).where(UserRow.role == "admin", UserRow.active.is_(True))
                                 .order_by(UserRow.created_at, UserRow.username))
        user = next((u for u in admins if scope_from_rows(rows, u.agencies).all), None)
        if user is None:
            return None
        for token_id in revoke_tokens(session, user.id, kinds=["api"], names=[BOOTSTRAP_TOKEN, CLI_TOKEN]):
            record(session, actor, "token.revoke", "token", token_id, agency_id=audit_agency(user),
                   after={"user_id": user.id, "username": user.username, "reason": "admin token reset"})
        _, secret = issue_api_token(session, actor, user, name=CLI_TOKEN, days=None)
        return user.username, secret


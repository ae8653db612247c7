"""``soc users …``: accounts managed from the server's shell.

Whoever runs these has the database in hand, so the commands act with every
agency in scope; each change is audited as ``cli:<os user>``. Generated passwords
and API tokens are printed once and never stored in clear.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import orjson
import typer
from rich.table import Table
from sqlalchemy.orm import Session

from soc.audit.trail import Actor
from soc.cli.common import ConfigOpt, console, fail, load
from soc.config import SocConfig
from soc.db import Database, open_database
from soc.i18n import register, t
from soc.identity.errors import IdentityError
from soc.identity.models import ROLES, UserRow
from soc.identity.scope import EVERYTHING
from soc.identity.users import (
    create_user,
    disable_user,
    find_user,
    issue_api_token,
    list_users,
    set_password,
    unlock_user,
)

users_app = typer.Typer(help="Người dùng / Users", no_args_is_help=True)

register({
    "users.cli.created": ("Đã tạo người dùng {username} (vai trò {role}, cơ quan {agencies})",
                          "Created user {username} (role {role}, agencies {agencies})"),
    "users.cli.password": ("Mật khẩu của {username} (chỉ hiện MỘT lần, hãy chuyển an toàn cho người dùng)",
                           "Password of {username} (shown ONCE, hand it over safely)"),
    "users.cli.password_set": ("Đã đặt mật khẩu mới cho {username}; các phiên đăng nhập cũ đã bị thu hồi",
                               "Set a new password for {username}; their login sessions were revoked"),
    "users.cli.disabled": ("Đã vô hiệu hóa {username} và thu hồi mọi mã", "Disabled {username} and revoked its tokens"),
    "users.cli.unlocked": ("Đã mở khóa {username}", "Unlocked {username}"),
    "users.cli.token": ("Mã API '{name}' của {username} (chỉ hiện MỘT lần)",
                        "API token '{name}' of {username} (shown ONCE)"),
    "users.cli.none": ("Chưa có người dùng nào", "There are no users"),
    "users.cli.empty_stdin": ("Không đọc được mật khẩu từ đầu vào chuẩn (dòng trống)",
                              "No password on standard input (empty line)"),
    "users.cli.col.username": ("Tên đăng nhập", "Username"),
    "users.cli.col.name": ("Tên hiển thị", "Display name"),
    "users.cli.col.role": ("Vai trò", "Role"),
    "users.cli.col.agencies": ("Cơ quan", "Agencies"),
    "users.cli.col.state": ("Trạng thái", "State"),
    "users.cli.col.last_login": ("Đăng nhập gần nhất", "Last login"),
    "users.cli.active": ("hoạt động", "active"),
    "users.cli.inactive": ("đã vô hiệu hóa", "disabled"),
    "users.cli.locked": ("bị khóa đến {until}", "locked until {until}"),
})

UsernameArg = Annotated[str, typer.Argument(help="Tên đăng nhập / username")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin",
                                             help="Đọc mật khẩu từ stdin / read the password from standard input")]


def cli_actor() -> Actor:
    """The operator: the OS account running the command."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = f"uid-{os.getuid()}"
    return Actor(None, f"cli:{name}"[:100])


@contextmanager
def _database(cfg: SocConfig) -> Iterator[Database]:
    db = open_database(cfg)
    try:
        yield db
    except IdentityError as exc:
        raise fail(t(exc.key, **exc.params)) from None
    finally:
        db.dispose()


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise fail(t("users.cli.empty_stdin"))
    return password


def _existing(session: Session, username: str) -> UserRow:
    user = find_user(session, username)
    if user is None:
        raise IdentityError(404, "users.unknown", username=username)
    return user


def _show_password(username: str, password: str | None) -> None:
    if password is not None:
        console.print(f"[bold yellow]{t('users.cli.password', username=username)}[/bold yellow]: {password}",
                      highlight=False, soft_wrap=True)


@users_app.command("create")
def create(
    username: UsernameArg,
    role: Annotated[str, typer.Option("--role", "-r", help=f"Vai trò / role: {', '.join(ROLES)}")],
    agency: Annotated[list[str] | None, typer.Option(
        "--agency", "-a", help="Mã cơ quan, lặp lại được; '*' = mọi cơ quan / agency id, repeatable; '*' = all",
    )] = None,
    display_name: Annotated[str | None, typer.Option("--display-name", help="Tên hiển thị / display name")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Email")] = None,
    password_stdin: PasswordStdin = False,
    config: ConfigOpt = None,
) -> None:
    """Tạo người dùng / Create a user (a generated password is printed once)."""
    password = _read_password() if password_stdin else None
    with _database(load(config)) as db, db.write() as session:
        user, generated = create_user(session, cli_actor(), EVERYTHING, username=username, role=role,
                                      agencies=agency or [], display_name=display_name, email=email,
                                      password=password)
    console.print(t("users.cli.created", username=user.username, role=user.role, agencies=", ".join(user.agencies)),
                  highlight=False)
    _show_password(user.username, generated)


@users_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Xuất JSON / print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Liệt kê người dùng / List users."""
    with _database(load(config)) as db, db.read() as session:
        users = [u.as_dict() for u in list_users(session, EVERYTHING)]
    if as_json:
        sys.stdout.write(orjson.dumps(users, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not users:
        console.print(t("users.cli.none"))
        return
    table = Table()
    for key in ("username", "name", "role", "agencies", "state", "last_login"):
        table.add_column(t(f"users.cli.col.{key}"))
    for user in users:
        state = t("users.cli.active") if user["active"] else t("users.cli.inactive")
        if user["locked_until"]:
            state += "; " + t("users.cli.locked", until=user["locked_until"])
        table.add_row(user["username"], user["display_name"], user["role"], ", ".join(user["agencies"]), state,
                      user["last_login_at"] or "-")
    console.print(table)


@users_app.command("disable")
def disable(username: UsernameArg, config: ConfigOpt = None) -> None:
    """Vô hiệu hóa người dùng và thu hồi mọi mã / Disable a user and revoke their tokens."""
    with _database(load(config)) as db, db.write() as session:
        user = disable_user(session, cli_actor(), EVERYTHING, _existing(session, username).id)
    console.print(t("users.cli.disabled", username=user.username), highlight=False)


@users_app.command("passwd")
def passwd(username: UsernameArg, password_stdin: PasswordStdin = False, config: ConfigOpt = None) -> None:
    """Đặt lại mật khẩu / Reset a password (a generated one is printed once)."""
    password = _read_password() if password_stdin else None
    with _database(load(config)) as db, db.write() as session:
        user, generated = set_password(session, cli_actor(), EVERYTHING, _existing(session, username).id, password)
    console.print(t("users.cli.password_set", username=user.username), highlight=False)
    _show_password(user.username, generated)


@users_app.command("unlock")
def unlock(username: UsernameArg, config: ConfigOpt = None) -> None:
    """Mở khóa tài khoản bị khóa do đăng nhập sai / Unlock an account locked by failed logins."""
    with _database(load(config)) as db, db.write() as session:
        user = unlock_user(session, cli_actor(), EVERYTHING, _existing(session, username).id)
    console.print(t("users.cli.unlocked", username=user.username), highlight=False)


@users_app.command("token")
def token(
    username: UsernameArg,
    name: Annotated[str, typer.Option("--name", "-n", help="Mục đích của mã / what the token is for")],
    days: Annotated[int | None, typer.Option("--days", help="Thời hạn (ngày) / lifetime in days "
                                                            "(default: auth.api_token_days)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Cấp mã API / Issue an API token (printed once)."""
    cfg = load(config)
    with _database(cfg) as db, db.write() as session:
        user = _existing(session, username)
        _, secret = issue_api_token(session, cli_actor(), user, name=name, days=days or cfg.auth.api_token_days)
    console.print(f"[bold yellow]{t('users.cli.token', name=name.strip(), username=user.username)}[/bold yellow]: "
                  f"{secret}", highlight=False, soft_wrap=True)

"""``soc users …`` as an operator runs it on the server (Typer's runner, a real database)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from soc.cli.main import app
from soc.config import AuthConfig
from soc.db import Database
from soc.identity.errors import IdentityError
from soc.identity.login import login
from soc.identity.models import UserRow
from soc.identity.tokens import authenticate
from soc.identity.users import find_user
from tests.conftest import REPO
from tests.service.identity_fixtures import PASSWORD, Account, audit_entries, make_user

__all__ = ["make_user"]

runner = CliRunner()


@pytest.fixture(autouse=True)
def cli_env(service_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, agencies: list[str]) -> None:
    monkeypatch.setenv("SOC_CONFIG", str(REPO / "config" / "soc.yaml"))
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SOC_DATABASE_URL", service_db_url)
    monkeypatch.setenv("SOC_LANG", "en")
    monkeypatch.setenv("COLUMNS", "200")


def soc(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def _user(db: Database, username: str) -> UserRow:
    with db.read() as session:
        user = find_user(session, username)
    assert user is not None
    return user


def _printed_password(output: str) -> str:
    match = re.search(r"shown ONCE, hand it over safely\): (\S+)", output)
    assert match, output
    return match.group(1)


def test_create_prints_a_generated_password_that_logs_in(db: Database) -> None:
    code, out = soc("users", "create", "Lan", "--role", "analyst", "--agency", "xa-hy-cuong",
                    "--agency", "so-khcn", "--display-name", "Trần Thị Lan", "--email", "lan@phutho.gov.vn")
    assert code == 0, out
    user = _user(db, "lan")
    assert (user.role, user.agencies, user.display_name) == ("analyst", ["xa-hy-cuong", "so-khcn"], "Trần Thị Lan")
    logged_in, _, _ = login(db, AuthConfig(), "lan", _printed_password(out))
    assert logged_in.id == user.id


def test_create_reads_the_password_from_stdin(db: Database) -> None:
    code, out = soc("users", "create", "lan", "--role", "viewer", "--agency", "xa-hy-cuong", "--password-stdin",
                    stdin=PASSWORD + "\n")
    assert code == 0, out
    assert "shown ONCE" not in out
    assert login(db, AuthConfig(), "lan", PASSWORD)[0].username == "lan"


def test_create_is_audited_as_the_operating_system_user(db: Database) -> None:
    soc("users", "create", "lan", "--role", "viewer", "--agency", "xa-hy-cuong")
    entry = audit_entries(db, "user.create")[-1]
    assert entry.actor_name.startswith("cli:") and entry.actor_id is None


def test_an_unknown_agency_lists_the_known_ones() -> None:
    code, out = soc("users", "create", "lan", "--role", "viewer", "--agency", "xa-khong-co")
    assert code == 2
    assert "Unknown agency: xa-khong-co" in out and "tinh-phu-tho" in out and "xa-hy-cuong" in out


def test_a_bad_role_lists_the_roles() -> None:
    code, out = soc("users", "create", "lan", "--role", "superuser", "--agency", "xa-hy-cuong")
    assert code == 2 and "admin, analyst, auditor, viewer" in out


def test_a_short_password_is_refused_with_the_reason() -> None:
    code, out = soc("users", "create", "lan", "--role", "viewer", "--agency", "xa-hy-cuong", "--password-stdin",
                    stdin="short\n")
    assert code == 2 and "at least 12 characters" in out


def test_list_json_holds_every_user_without_hashes(make_user: Callable[..., Account]) -> None:
    make_user("lan", bound=["xa-hy-cuong"])
    make_user("minh", role="auditor", bound=["so-khcn"])
    code, out = soc("users", "list", "--json")
    assert code == 0, out
    users = orjson.loads(out)
    assert [(u["username"], u["role"]) for u in users] == [("lan", "analyst"), ("minh", "auditor")]
    assert "password" not in out and "argon2" not in out


def test_list_shows_a_table(make_user: Callable[..., Account]) -> None:
    make_user("lan", bound=["xa-hy-cuong"])
    code, out = soc("users", "list")
    assert code == 0 and "lan" in out and "xa-hy-cuong" in out and "Username" in out


def test_disable_stops_the_users_tokens(db: Database, make_user: Callable[..., Account]) -> None:
    account = make_user("lan", bound=["xa-hy-cuong"])
    _, _, secret = login(db, AuthConfig(), "lan", account.password)
    code, out = soc("users", "disable", "lan")
    assert code == 0, out
    assert authenticate(db, secret) is None and _user(db, "lan").active is False


def test_an_unknown_username_says_how_to_list_users() -> None:
    code, out = soc("users", "disable", "ghost")
    assert code == 2 and "No user 'ghost'" in out and "soc users list" in out


def test_the_cli_will_not_disable_the_last_all_scope_admin(make_user: Callable[..., Account]) -> None:
    make_user("boss", role="admin", bound=["*"])
    code, out = soc("users", "disable", "boss")
    assert code == 2 and "last active province-wide administrator" in out


def test_passwd_prints_a_new_password(db: Database, make_user: Callable[..., Account]) -> None:
    make_user("lan", bound=["xa-hy-cuong"])
    code, out = soc("users", "passwd", "lan")
    assert code == 0, out
    assert login(db, AuthConfig(), "lan", _printed_password(out))[0].username == "lan"


def test_unlock_lifts_a_lockout(db: Database, make_user: Callable[..., Account]) -> None:
    account = make_user("lan", bound=["xa-hy-cuong"])
    auth = AuthConfig(lockout_threshold=1)
    with pytest.raises(IdentityError) as locked:
        login(db, auth, "lan", "sai-mật-khẩu-rồi-đó")
    assert locked.value.status == 423
    code, out = soc("users", "unlock", "lan")
    assert code == 0, out
    assert login(db, auth, "lan", account.password)[0].locked_until is None


def test_token_prints_an_api_token_once(db: Database, make_user: Callable[..., Account]) -> None:
    make_user("robot", role="viewer", bound=["xa-hy-cuong"])
    code, out = soc("users", "token", "robot", "--name", "exporter", "--days", "30")
    assert code == 0, out
    [secret] = re.findall(r"soc_api_[A-Za-z0-9_-]+", out)
    principal = authenticate(db, secret)
    assert principal is not None and principal.username == "robot" and principal.token_kind == "api"

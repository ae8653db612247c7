"""The first administrator: created once when there are no users, and
``soc admin token`` to get (back) an admin API token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soc.auth import ensure_first_admin
from soc.cli.main import app
from soc.config import AuthConfig
from soc.db import Database
from soc.identity.login import login
from soc.identity.tokens import authenticate
from tests.conftest import REPO
from tests.service.identity_fixtures import audit_entries

runner = CliRunner()


@pytest.fixture
def cli_env(service_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_CONFIG", str(REPO / "config" / "soc.yaml"))
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SOC_DATABASE_URL", service_db_url)
    monkeypatch.setenv("SOC_LANG", "en")
    monkeypatch.setenv("COLUMNS", "200")


def _api_tokens(output: str) -> list[str]:
    return re.findall(r"soc_api_[A-Za-z0-9_-]+", output)


def test_the_first_admin_is_created_when_there_are_no_users(db: Database) -> None:
    first = ensure_first_admin(db)
    assert first is not None and first.username == "admin"
    principal = authenticate(db, first.token)
    assert principal is not None and principal.role == "admin" and principal.scope.all
    assert principal.agencies == ("*",)
    user, _, _ = login(db, AuthConfig(), "admin", first.password)
    assert user.username == "admin"


def test_the_first_admin_is_created_only_once(db: Database) -> None:
    assert ensure_first_admin(db) is not None
    assert ensure_first_admin(db) is None


def test_no_first_admin_when_users_exist(db: Database, make_caller: object) -> None:
    make_caller("viewer")  # type: ignore[operator]
    assert ensure_first_admin(db) is None


def test_the_first_admin_is_audited_as_the_first_run(db: Database) -> None:
    first = ensure_first_admin(db)
    assert first is not None
    created = audit_entries(db, "user.create")
    assert [(e.actor_name, e.after["username"]) for e in created] == [("system:first-run", "admin")]  # type: ignore[index]
    assert [e.after["name"] for e in audit_entries(db, "token.create")] == ["bootstrap"]  # type: ignore[index]


def test_banner_lines_name_each_credential_in_both_languages(db: Database) -> None:
    first = ensure_first_admin(db)
    assert first is not None
    labels = [label for label, _ in first.lines()]
    assert labels[0] == "Tên đăng nhập / Username" and labels[1] == "Mật khẩu / Password"
    assert [value for _, value in first.lines()] == [first.username, first.password, first.token]


def test_admin_token_on_a_new_database_prints_the_first_admin_once(cli_env: None, db: Database) -> None:
    first = runner.invoke(app, ["admin", "token", "--reset"])
    assert first.exit_code == 0, first.output
    tokens = _api_tokens(first.output)
    assert len(tokens) == 1 and authenticate(db, tokens[0]) is not None
    assert "Username" in first.output and "Password" in first.output
    again = runner.invoke(app, ["admin", "token"])
    assert again.exit_code == 0 and _api_tokens(again.output) == []
    assert "soc admin token --reset" in again.output


def test_admin_token_reset_replaces_the_previous_admin_token(cli_env: None, db: Database) -> None:
    bootstrap = _api_tokens(runner.invoke(app, ["admin", "token"]).output)[0]
    reset = runner.invoke(app, ["admin", "token", "--reset"])
    assert reset.exit_code == 0, reset.output
    [fresh] = _api_tokens(reset.output)
    principal = authenticate(db, fresh)
    assert principal is not None and principal.username == "admin"
    assert authenticate(db, bootstrap) is None
    assert audit_entries(db, "token.revoke")[-1].actor_name.startswith("cli:")


def test_admin_token_reset_spares_the_admins_other_tokens(cli_env: None, db: Database) -> None:
    runner.invoke(app, ["admin", "token"])
    named = runner.invoke(app, ["users", "token", "admin", "--name", "siem"])
    [siem] = _api_tokens(named.output)
    runner.invoke(app, ["admin", "token", "--reset"])
    assert authenticate(db, siem) is not None

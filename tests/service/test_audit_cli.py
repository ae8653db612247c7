"""``soc audit verify|export|list`` against the database ``SOC_DATABASE_URL`` names."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soc.cli.main import app
from soc.db import Database
from tests.conftest import REPO
from tests.service.audit_fixtures import append, tamper

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_DATABASE_URL", db.url)
    monkeypatch.setenv("SOC_CONFIG", str(REPO / "config" / "soc.yaml"))
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "cli-var"))
    monkeypatch.setenv("SOC_LANG", "en")
    monkeypatch.setenv("COLUMNS", "200")


def soc(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_verify_prints_ok_with_the_count_and_exits_0(db: Database) -> None:
    append(db, 4)
    code, out = soc("audit", "verify")
    assert code == 0, out
    assert "intact: 4 entries" in out


def test_verify_names_the_first_broken_entry_and_exits_1(db: Database) -> None:
    append(db, 4)
    tamper(db, "DELETE FROM audit_log WHERE seq = 2")
    code, out = soc("audit", "verify")
    assert code == 1
    assert "missing from #2" in out


def test_verify_json_is_the_result(db: Database) -> None:
    append(db, 3)
    tamper(db, "UPDATE audit_log SET target_id = 'other' WHERE seq = 3")
    code, out = soc("audit", "verify", "--json")
    body = json.loads(out)
    assert code == 1
    assert (body["ok"], body["first_broken_seq"], body["reason"], body["checked"]) == (False, 3, "hash_mismatch", 2)


def test_export_writes_every_entry_to_a_file(db: Database, tmp_path: Path) -> None:
    append(db, 5)
    out = tmp_path / "audit.ndjson"
    code, printed = soc("audit", "export", "--out", str(out))
    assert code == 0, printed
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5]
    assert "Exported 5 entries" in printed


def test_export_csv_with_a_time_window(db: Database, tmp_path: Path) -> None:
    append(db, 3)
    out = tmp_path / "audit.csv"
    code, printed = soc("audit", "export", "--format", "csv", "--since", "1h", "--until", "2999-01-01", "--out",
                        str(out))
    assert code == 0, printed
    with out.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["seq"] for r in rows] == ["1", "2", "3"]
    assert "Exported 3 entries" in printed
    code, printed = soc("audit", "export", "--format", "csv", "--until", "1h", "--out", str(out))
    assert code == 0 and "Exported 0 entries" in printed


def test_export_without_a_file_writes_to_stdout(db: Database) -> None:
    append(db, 2)
    code, out = soc("audit", "export", "--action", "alert")
    assert code == 0
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [1, 2]


def test_export_refuses_an_invalid_time(db: Database) -> None:
    code, out = soc("audit", "export", "--since", "last week")
    assert code == 2
    assert "Invalid time 'last week'" in out


def test_list_shows_the_newest_entries_of_an_action(db: Database) -> None:
    append(db, 3)
    append(db, 2, action="user.create", target_type="user", agency_id=None)
    code, out = soc("audit", "list", "--limit", "1", "--action", "alert.")
    assert code == 0, out
    assert "alert.update" in out and "user.create" not in out
    assert "│ 3 " in out and "1 newest entries" in out


def test_list_of_an_empty_trail_says_so(db: Database) -> None:
    code, out = soc("audit", "list")
    assert code == 0 and "No matching audit entries" in out

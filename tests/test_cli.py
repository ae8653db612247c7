"""The ``soc`` command as a user runs it (in-process through Typer's runner)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from soc.cli.main import app
from tests.conftest import DATASETS, REPO

SSHD = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"
EVTX = DATASETS / "evtx" / "Credential Access" / "kerberos_pwd_spray_4771.evtx"

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_CONFIG", str(REPO / "config" / "soc.yaml"))
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SOC_LANG", "en")
    monkeypatch.setenv("COLUMNS", "200")


def soc(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _summary(output: str) -> list[int]:
    row = [line for line in output.splitlines() if re.search(r"\d", line) and "│" in line][-1]
    return [int(n.replace(",", "")) for n in re.findall(r"[\d,]+", row)]


def test_ingest_prints_read_parsed_failed_stored() -> None:
    code, out = soc("ingest", str(SSHD))
    assert code == 0, out
    assert _summary(out) == [1000, 1000, 0, 1000]


def test_reingesting_the_same_file_stores_nothing_twice() -> None:
    soc("ingest", str(SSHD))
    code, out = soc("ingest", str(SSHD))
    assert code == 0
    assert _summary(out)[-1] == 0
    assert soc("events", "search", "*", "--count")[1].strip() == "1000"


def test_ingest_with_system_attributes_every_event() -> None:
    soc("ingest", str(SSHD), "--system", "ad-servers")
    assert soc("events", "search", "gov.system.id:ad-servers", "--count")[1].strip() == "1000"


def test_ingest_without_system_marks_unknown_hosts_unassigned() -> None:
    soc("ingest", str(SSHD))
    assert soc("events", "search", "gov.system.id:unassigned", "--count")[1].strip() == "1000"


def test_ingest_reads_evtx_files() -> None:
    code, out = soc("ingest", str(EVTX))
    assert code == 0, out
    assert _summary(out) == [12, 12, 0, 12]
    assert soc("events", "search", "winlog.event_id:4771", "--count")[1].strip() == "2"
    assert soc("events", "search", "winlog.event_id:4768", "--count")[1].strip() == "9"


def test_ingest_counts_unparseable_lines_and_keeps_them(tmp_path: Path) -> None:
    junk = tmp_path / "junk.log"
    junk.write_text("@@@ not a log @@@\n" + SSHD.read_text().splitlines()[0] + "\n")
    _, out = soc("ingest", str(junk))
    assert _summary(out) == [2, 1, 1, 2]
    _code, out = soc("events", "search", "tags:_parse_failure", "--json")
    assert orjson.loads(out.splitlines()[0])["event"]["original"] == "@@@ not a log @@@"


def test_ingest_refuses_an_unknown_system() -> None:
    code, out = soc("ingest", str(SSHD), "--system", "nope")
    assert code == 2
    assert "nope" in out and "ioffice" in out


def test_ingest_refuses_an_unknown_format() -> None:
    code, out = soc("ingest", str(SSHD), "--format", "klingon")
    assert code == 2
    assert "klingon" in out


def test_search_json_prints_one_ecs_document_per_line() -> None:
    soc("ingest", str(SSHD))
    code, out = soc("events", "search", 'event.outcome:failure AND user.name:root', "--json", "--limit", "5")
    assert code == 0
    docs = [orjson.loads(line) for line in out.splitlines()]
    assert len(docs) == 5
    assert all(d["user"]["name"] == "root" and d["event"]["outcome"] == "failure" for d in docs)


def test_search_since_excludes_old_events() -> None:
    soc("ingest", str(SSHD))  # December lines: at least weeks old whatever today is
    assert soc("events", "search", "*", "--since", "1h", "--count")[1].strip() == "0"


def test_search_explains_a_bad_time() -> None:
    code, out = soc("events", "search", "*", "--since", "yesterday-ish")
    assert code == 2
    assert "24h" in out


def test_search_explains_a_bad_query() -> None:
    code, out = soc("events", "search", "user.name:(", "--count")
    assert code == 2
    assert out.strip()


def test_config_check_reports_a_valid_configuration() -> None:
    code, out = soc("config", "check")
    assert code == 0
    assert "valid" in out


def test_config_check_names_file_and_key_of_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("api: {port: eighty}\n")
    code, out = soc("config", "check", "--config", str(bad))
    assert code == 2
    assert "bad.yaml" in out and "api.port" in out


def test_systems_list_shows_the_inventory() -> None:
    code, out = soc("systems", "list")
    assert code == 0
    assert "ioffice" in out and "motcua-huyen-lam-thao" in out


def test_systems_key_prints_a_key_once() -> None:
    code, out = soc("systems", "key", "mail")
    assert code == 0
    assert re.search(r"soc_ingest_\S+", out)

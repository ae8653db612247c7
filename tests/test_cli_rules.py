"""``soc rules …`` and ``soc alerts list`` as an analyst or incident responder runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soc.cli.main import app
from tests.conftest import DATASETS, REPO

runner = CliRunner()
SSHD = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"
ACUNETIX = DATASETS / "web" / "apache-http-logs" / "acunetix.txt"
LOG_CLEARED = DATASETS / "evtx" / "Defense Evasion" / "DE_1102_security_log_cleared.evtx"


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_CONFIG", str(REPO / "config" / "soc.yaml"))
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SOC_LANG", "en")
    monkeypatch.setenv("COLUMNS", "250")


def soc(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _matches(output: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_every_shipped_rule_passes_its_own_samples() -> None:
    code, out = soc("rules", "test")
    assert code == 0, out[-3000:]
    assert " 0 failed" in out


def test_validate_reports_the_shipped_rules_with_nothing_skipped() -> None:
    code, out = soc("rules", "validate")
    assert code == 0, out
    assert "skipped 0" in out


def test_validate_names_every_skipped_sigmahq_rule_with_a_reason() -> None:
    code, out = soc("rules", "validate", str(DATASETS / "sigma-rules" / "sigmahq-rules.zip"))
    assert "Loaded" in out
    skipped = [line for line in out.splitlines() if line.startswith("skipped ")]
    assert all(" — " in line for line in skipped)
    assert code == (1 if skipped else 0)


def test_validate_names_file_and_line_of_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("title: broken\nlogsource: {product: linux}\ndetection:\n  sel: {a: [1\n  condition: sel\n")
    code, out = soc("rules", "validate", str(bad))
    assert code == 1
    assert "bad.yml" in out and "line" in out


def test_scan_finds_the_brute_force_in_a_real_sshd_log() -> None:
    code, out = soc("rules", "scan", str(SSHD), "--json")
    assert code == 0
    matches = _matches(out)
    assert any(m["rule_id"] == "77240479-9b83-468c-a9b2-7e1638e29dc1" for m in matches)
    assert all(m["rule_id"] and (m["event.original"] or m["event_ids"]) for m in matches)


def test_scan_finds_web_attacks_in_a_scanner_log() -> None:
    code, out = soc("rules", "scan", str(ACUNETIX), "--json")
    assert code == 0
    titles = {m["title"] for m in _matches(out)}
    assert any("SQL Injection" in t for t in titles)
    assert any("Path Traversal" in t for t in titles)


def test_scan_reads_evtx_files_with_sigmahq_rules() -> None:
    code, out = soc("rules", "scan", str(LOG_CLEARED), "--json", "--rules",
                    str(DATASETS / "sigma-rules" / "sigmahq-rules.zip"))
    assert code == 0
    assert any("Cleared" in m["title"] for m in _matches(out))


def test_scan_profile_prints_the_costliest_rules() -> None:
    code, out = soc("rules", "scan", str(SSHD), "--profile")
    assert code == 0
    assert "Rules that cost the most time" in out


def test_convert_prints_a_lucene_query_on_ecs_fields() -> None:
    code, out = soc("rules", "convert", str(REPO / "rules" / "windows" / "account_lockout.yml"), "--target", "lucene")
    assert code == 0, out
    assert "winlog" in out


def test_convert_refuses_an_unknown_target() -> None:
    code, out = soc("rules", "convert", str(REPO / "rules" / "windows" / "account_lockout.yml"), "--target", "kql")
    assert code == 2
    assert "lucene" in out


def test_ingested_attack_appears_in_alerts_list() -> None:
    assert soc("ingest", str(SSHD))[0] == 0
    code, out = soc("alerts", "list", "--json")
    assert code == 0
    alerts = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert any(a["rule_id"] == "77240479-9b83-468c-a9b2-7e1638e29dc1" for a in alerts)
    assert all(a["tactics"] is not None and a["summary"] for a in alerts)

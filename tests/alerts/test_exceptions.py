"""Exceptions (allowlists): loading, validation errors, matching."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from soc.alerts.exceptions import ExceptionEntry, ExceptionSet
from soc.config import ConfigError
from tests.alerts.conftest import SQLI, SSH_BRUTE_FORCE, SSH_FAILED, correlation, single, sshd_failed, ts, web_request
from tests.conftest import REPO

TODAY = date(2026, 11, 23)


def write(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def entry(**values: object) -> ExceptionEntry:
    base: dict[str, object] = {"id": "x", "rule": SQLI.id, "reason": "test", "owner": "soc@phutho.gov.vn",
                               "expires": "2027-01-31"}
    base.update(values)
    return ExceptionEntry.model_validate(base)


# --- the shipped example -----------------------------------------------------------

def test_example_file_loads_and_suppresses_the_monthly_scan() -> None:
    exceptions = ExceptionSet.load(REPO / "config" / "exceptions")
    assert [e.id for e in exceptions.entries] == [
        "openvas-web-scan", "ad-account-migration-2026-12", "lb-healthcheck-dvc"]
    assert exceptions.expired(TODAY) == []
    assert [e.id for e in exceptions.expired(date(2027, 6, 1))] == [
        "openvas-web-scan", "ad-account-migration-2026-12"]
    hit = exceptions.suppresses(single(SQLI, web_request()), TODAY)
    assert hit is not None and hit.id == "openvas-web-scan"
    assert hit.source is not None and hit.source.endswith("example.yaml")
    assert exceptions.suppresses(single(SQLI, web_request(ip="198.51.100.23")), TODAY) is None


def test_example_maintenance_window_covers_the_admin_on_the_domain_controllers() -> None:
    exceptions = ExceptionSet.load(REPO / "config" / "exceptions")
    event = sshd_failed(user="qt.nguyenvana", host="DC01")
    event["winlog"] = {"event_id": 4720}
    hit = exceptions.suppresses(single(SSH_FAILED, event), TODAY)
    assert hit is not None and hit.id == "ad-account-migration-2026-12"
    assert exceptions.suppresses(single(SSH_FAILED, event), date(2026, 12, 6)) is None
    event["winlog"] = {"event_id": "4625"}
    assert exceptions.suppresses(single(SSH_FAILED, event), TODAY) is None


# --- matching ----------------------------------------------------------------------

def test_expired_exception_does_not_suppress_and_is_reported() -> None:
    old = entry(id="old-scan", match={"source.ip": "10.10.99.20"}, expires="2026-11-22")
    current = entry(id="scan", match={"source.ip": "10.10.99.20"}, expires="2026-11-23")
    assert ExceptionSet([old]).suppresses(single(SQLI, web_request()), TODAY) is None
    assert ExceptionSet([old]).expired(TODAY) == [old]
    hit = ExceptionSet([old, current]).suppresses(single(SQLI, web_request()), TODAY)
    assert hit is not None and hit.id == "scan"  # the last day still counts


def test_system_scoped_exception_applies_only_to_that_system() -> None:
    scoped = ExceptionSet([entry(system="portal", match={"source.ip|cidr": "10.10.99.0/24"})])
    assert scoped.suppresses(single(SQLI, web_request(system="portal")), TODAY) is not None
    assert scoped.suppresses(single(SQLI, web_request(system="motcua-xa-thanh-son")), TODAY) is None
    several = ExceptionSet([entry(system=["portal", "motcua-xa-thanh-son"], match={"source.ip": "10.10.99.20"})])
    assert several.suppresses(single(SQLI, web_request(system="motcua-xa-thanh-son")), TODAY) is not None


def test_system_scope_alone_silences_one_rule_on_one_system() -> None:
    scoped = ExceptionSet([entry(system="portal")])
    assert scoped.suppresses(single(SQLI, web_request(ip="198.51.100.23")), TODAY) is not None
    assert scoped.suppresses(single(SQLI, web_request(system="motcua-xa-thanh-son")), TODAY) is None


@pytest.mark.parametrize(("networks", "ip", "expected"), [
    ("10.10.99.0/24", "10.10.99.20", True),
    ("10.10.99.0/24", "10.10.98.20", False),
    ("10.10.99.20/32", "10.10.99.20", True),
    (["192.0.2.0/24", "10.0.0.0/8"], "10.10.99.20", True),
    ("2001:db8:10::/48", "2001:db8:10::5", True),
    ("10.0.0.0/8", "2001:db8:10::5", False),
    ("10.0.0.0/8", "not-an-ip", False),
])
def test_cidr_condition(networks: str | list[str], ip: str, expected: bool) -> None:
    exceptions = ExceptionSet([entry(match={"source.ip|cidr": networks})])
    assert (exceptions.suppresses(single(SQLI, web_request(ip=ip)), TODAY) is not None) is expected


@pytest.mark.parametrize(("match", "expected"), [
    ({"url.original|startswith": "/tin-tuc?"}, True),
    ({"url.original|startswith": "/admin"}, False),
    ({"user_agent.original|contains": "openvas"}, True),  # case-insensitive, as Sigma
    ({"http.request.method": ["POST", "GET"]}, True),  # a list is any of
    ({"http.response.status_code": "200"}, True),  # numbers compare as text
    ({"related.ip": "10.10.99.20"}, False),  # absent field
    ({"source.ip": "10.10.99.20", "http.request.method": "POST"}, False),  # all must hold
])
def test_conditions(match: dict[str, object], expected: bool) -> None:
    exceptions = ExceptionSet([entry(match=match)])
    assert (exceptions.suppresses(single(SQLI, web_request()), TODAY) is not None) is expected


def test_list_valued_event_field_matches_when_any_element_does() -> None:
    exceptions = ExceptionSet([entry(rule=SSH_FAILED.id, match={"related.ip|cidr": "203.0.113.0/24"})])
    assert exceptions.suppresses(single(SSH_FAILED, sshd_failed()), TODAY) is not None


def test_rule_scope_by_id_name_and_wildcard() -> None:
    named = SSH_FAILED.__class__(id="0f9e", title=SSH_FAILED.title, name="ssh_failed_login")
    by_name = ExceptionSet([entry(rule="ssh_failed_login", match={"source.ip": "203.0.113.7"})])
    assert by_name.suppresses(single(named, sshd_failed()), TODAY) is not None
    other_rule = ExceptionSet([entry(rule=[SQLI.id], match={"source.ip": "203.0.113.7"})])
    assert other_rule.suppresses(single(SSH_FAILED, sshd_failed()), TODAY) is None
    wildcard = ExceptionSet([entry(rule="*", match={"source.ip": "203.0.113.7"})])
    assert wildcard.suppresses(single(SSH_FAILED, sshd_failed()), TODAY) is not None


def test_correlation_is_suppressed_only_when_every_event_matches() -> None:
    exceptions = ExceptionSet([entry(rule=SSH_BRUTE_FORCE.id, match={"source.ip|cidr": "10.10.99.0/24"})])
    scanner = [sshd_failed(ip="10.10.99.20", ts=ts(i), n=i) for i in range(5)]
    assert exceptions.suppresses(correlation(SSH_BRUTE_FORCE, scanner, {"user.name": "root"}), TODAY) is not None
    mixed = [*scanner, sshd_failed(ip="203.0.113.7", ts=ts(6))]
    assert exceptions.suppresses(correlation(SSH_BRUTE_FORCE, mixed, {"user.name": "root"}), TODAY) is None


def test_correlation_without_events_is_judged_by_its_group_values() -> None:
    exceptions = ExceptionSet([entry(rule=SSH_BRUTE_FORCE.id, match={"source.ip": "10.10.99.20"})])
    detection = correlation(SSH_BRUTE_FORCE, [sshd_failed(ip="10.10.99.20")], {"source.ip": "10.10.99.20"})
    detection.events = []
    assert exceptions.suppresses(detection, TODAY) is not None


# --- loading and errors ------------------------------------------------------------

GOOD = """\
    exceptions:
      - id: openvas
        rule: "*"
        match: {source.ip|cidr: 10.10.99.20/32}
        reason: quét định kỳ / scheduled scan
        owner: soc@phutho.gov.vn
        expires: 2027-05-31
    """


def test_load_reads_yaml_and_yml_files_in_order(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yml", GOOD.replace("openvas", "nessus"))
    write(tmp_path, "c.yaml", "# only comments\n")
    exceptions = ExceptionSet.load(tmp_path)
    assert [e.id for e in exceptions.entries] == ["openvas", "nessus"]
    assert len(exceptions) == 2


def test_load_logs_expired_entries(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "a.yaml", GOOD.replace("2027-05-31", "2026-01-31"))
    exceptions = ExceptionSet.load(tmp_path, today=TODAY)
    assert [e.id for e in exceptions.expired(TODAY)] == ["openvas"]
    assert "openvas" in caplog.text and "expired" in caplog.text


@pytest.mark.parametrize(("body", "key", "problem"), [
    (GOOD.replace("        reason: quét định kỳ / scheduled scan\n", ""), "exceptions.openvas.reason", "required"),
    (GOOD.replace("        owner: soc@phutho.gov.vn\n", ""), "exceptions.openvas.owner", "required"),
    (GOOD.replace("owner: soc@phutho.gov.vn", "owner: '  '"), "exceptions.openvas.owner", "empty"),
    (GOOD.replace("expires: 2027-05-31", "expires: next month"), "exceptions.openvas.expires", "date"),
    (GOOD.replace("10.10.99.20/32", "10.10.99.300/32"), "exceptions.openvas.match.source.ip|cidr",
     "not an IP network"),
    (GOOD.replace("source.ip|cidr", "source.ip|regex"), "exceptions.openvas.match.source.ip|regex",
     "unknown condition"),
    (GOOD.replace("match: {source.ip|cidr: 10.10.99.20/32}", "match: {source.ip: {a: 1}}"),
     "exceptions.openvas.match.source.ip", ""),
    (GOOD.replace("        match: {source.ip|cidr: 10.10.99.20/32}\n", ""), "exceptions.openvas.rule",
     "silence every rule"),
    (GOOD.replace("rule:", "rules:"), "exceptions.openvas.rule", "required"),
    (GOOD.replace("exceptions:", "allowlist:"), "allowlist", "exceptions:"),
    (GOOD.replace("      - id: openvas", "      - id: open vas"), "exceptions.open vas.id", "pattern"),
])
def test_bad_file_names_file_and_key(tmp_path: Path, body: str, key: str, problem: str) -> None:
    path = write(tmp_path, "scanners.yaml", body)
    with pytest.raises(ConfigError) as info:
        ExceptionSet.load(tmp_path)
    assert info.value.file == str(path)
    assert info.value.key == key
    assert problem in info.value.problem
    assert info.value.fix


def test_duplicate_id_across_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    second = write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(ConfigError) as info:
        ExceptionSet.load(tmp_path)
    assert info.value.file == str(second) and info.value.key == "exceptions.openvas.id"
    assert "a.yaml" in info.value.problem


def test_invalid_yaml_and_missing_directory(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "exceptions:\n  - id: [unclosed\n")
    with pytest.raises(ConfigError, match=r"a\.yaml") as info:
        ExceptionSet.load(tmp_path)
    assert info.value.key.startswith("line ")
    with pytest.raises(ConfigError) as missing:
        ExceptionSet.load(tmp_path / "nope")
    assert missing.value.file == str(tmp_path / "nope")

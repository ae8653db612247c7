"""Wazuh alerts (``wazuh-alerts-*`` documents): the record inside is read by our own
parsers, so it gives the event we would have made from the raw log and our rules fire
on it the same way; Wazuh's verdict is kept under ``wazuh.*``."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.event import Event, get_field
from collectors.parsers import OBJECT_PARSERS, Dispatcher, ParseContext
from soc.detect.engine import Engine
from soc.detect.loader import load_rules
from tests.conftest import DATASETS, REPO
from tests.parsers.helpers import failed
from tests.parsers.test_ecs_doc import ADMIN_GROUP, USER_CREATED, evtx_records, hit, rule_ids

WAZUH = DATASETS / "logs" / "wazuh"
SUDO_DENIED_RULE = "c192eb2b-25f4-4c88-ad2d-6db72146dee0"  # Sudo Attempt By An Account Not In Sudoers
TEXT_FILES = ("sshd", "sudo", "pam", "postfix", "su", "dovecot", "named", "syslog")


# --- test data: Wazuh's own test logs and real EVTX records wrapped as alerts ----------

@cache
def wazuh_rows(name: str) -> tuple[dict[str, Any], ...]:
    text = (WAZUH / f"{name}.jsonl").read_text(encoding="utf-8")
    return tuple(orjson.loads(line) for line in text.splitlines() if line.strip())


def alert(row: dict[str, Any], *, full_log: str | None = None, data: dict[str, Any] | None = None,
          agent: str = "web01", timestamp: str = "2026-11-24T08:36:31.500+0700") -> dict[str, Any]:
    """A wazuh-alerts-4.x document for a row of Wazuh's ruleset tests, shaped as the
    Wazuh manager writes it."""
    doc: dict[str, Any] = {
        "timestamp": timestamp,
        "rule": {"level": row["wazuh_level"], "description": row["wazuh_rule_description"],
                 "id": row["wazuh_rule_id"], "firedtimes": 1, "mail": False, "groups": ["syslog"],
                 "mitre": {"id": ["T1110"], "tactic": ["Credential Access"], "technique": ["Brute Force"]}},
        "agent": {"id": "003", "name": agent, "ip": "10.10.1.23"},
        "manager": {"name": "wazuh-manager"},
        "id": "1795512991.1234567",
        "cluster": {"name": "wazuh", "node": "node01"},
        "decoder": {"name": row["wazuh_decoder"]},
        "location": "/var/log/auth.log",
    }
    if full_log is not None:
        doc["full_log"] = full_log
    if data is not None:
        doc["data"] = data
    return doc


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def wazuh_windows_alert(record: dict[str, Any], rule_id: str = "60154", level: int = 8) -> dict[str, Any]:
    """The Wazuh eventchannel alert of an evtx-package record: ``data.win`` with the
    system fields as strings and the EventData names in lowerCamelCase."""
    event = record["Event"]
    system = event["System"]
    provider = system["Provider"]["#attributes"]
    execution = system["Execution"]["#attributes"]
    guid = provider.get("Guid", "")
    win = {
        "system": {
            "providerName": provider["Name"], "providerGuid": guid if guid.startswith("{") else "{" + guid + "}",
            "eventID": str(system["EventID"]), "version": str(system["Version"]), "level": str(system["Level"]),
            "task": str(system["Task"]), "opcode": str(system["Opcode"]), "keywords": system["Keywords"],
            "systemTime": system["TimeCreated"]["#attributes"]["SystemTime"],
            "eventRecordID": str(system["EventRecordID"]), "processID": str(execution["ProcessID"]),
            "threadID": str(execution["ThreadID"]), "channel": system["Channel"], "computer": system["Computer"],
            "severityValue": "AUDIT_SUCCESS",
        },
        "eventdata": {_lower_first(k): str(v) for k, v in event["EventData"].items() if v is not None},
    }
    return {
        "timestamp": "2026-11-24T10:00:01.250+0000",
        "rule": {"level": level, "description": "Windows security event", "id": rule_id, "groups": ["windows"]},
        "agent": {"id": "007", "name": system["Computer"].split(".")[0].lower(), "ip": "10.10.2.7"},
        "manager": {"name": "wazuh-manager"},
        "id": "1795514401.99",
        "decoder": {"name": "windows_eventchannel"},
        "data": {"win": win},
        "location": "EventChannel",
    }


def real_windows_alerts() -> list[tuple[str, dict[str, Any]]]:
    """Wazuh's own eventchannel samples (win_security.jsonl) as alerts."""
    out = []
    for row in wazuh_rows("win_security"):
        doc = alert(row, data={"win": orjson.loads(row["log"])["win"]}, timestamp="2021-11-08T18:09:48.000+0000")
        out.append((row["case"], doc))
    return out


def text_rows() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{name}:{n}", row) for name in TEXT_FILES for n, row in enumerate(wazuh_rows(name))]


def parse(record: dict[str, Any], fmt: str | None = None) -> Event:
    return Dispatcher().parse(copy.deepcopy(record), fmt, ParseContext())


def parse_line(line: str) -> Event:
    return Dispatcher().parse(line, None, ParseContext())


@cache
def linux_engine() -> Engine:
    return Engine(load_rules([REPO / "rules" / "linux"]))


# --- Windows alerts --------------------------------------------------------------------

@pytest.mark.parametrize("path", [ADMIN_GROUP, USER_CREATED], ids=lambda p: p.name)
def test_a_windows_alert_fires_the_same_rules_as_its_evtx_record(path: Path) -> None:
    fired = set()
    for record in evtx_records(path):
        event = parse(hit(wazuh_windows_alert(record), "wazuh-alerts-4.x-2026.11.24"), "wazuh")
        assert rule_ids(event) == rule_ids(parse(record))
        fired.update(rule_ids(event))
    assert fired


@pytest.mark.parametrize("path", [ADMIN_GROUP, USER_CREATED], ids=lambda p: p.name)
def test_a_windows_alert_has_the_fields_of_its_evtx_record(path: Path) -> None:
    record = evtx_records(path)[0]
    reference = parse(record)
    event = parse(wazuh_windows_alert(record), "wazuh")
    for field in ("@timestamp", "winlog.event_id", "winlog.channel", "winlog.computer_name", "winlog.record_id",
                  "winlog.provider_name", "event.code", "event.action", "event.dataset", "host.name",
                  "user.name", "user.target.name", "group.name"):
        assert get_field(event, field) == get_field(reference, field), field
    assert event["winlog"]["event_data"] == {k: str(v) for k, v in reference["winlog"]["event_data"].items()}


@pytest.mark.parametrize(("case", "doc"), real_windows_alerts(), ids=lambda v: v if isinstance(v, str) else "")
def test_wazuh_camel_case_event_data_gets_the_windows_names_back(case: str, doc: dict[str, Any]) -> None:
    event = parse(doc, "wazuh")
    names = event["winlog"]["event_data"]
    assert names
    assert all(name[:1].isupper() for name in names), case
    assert event["winlog"]["event_id"] == event["event"]["code"] == doc["data"]["win"]["system"]["eventID"]
    assert event["host"]["name"] == doc["data"]["win"]["system"]["computer"]


def test_a_real_4722_alert_names_the_enabled_account() -> None:
    _case, doc = real_windows_alerts()[0]
    event = parse(doc, "wazuh")
    assert event["winlog"]["event_data"]["TargetUserName"] == "toby"
    assert event["winlog"]["event_data"]["SubjectUserName"] == "itadmin"
    assert event["user"]["target"]["name"] == "toby"
    assert event["event"]["action"] == "enabled-user-account"


def test_a_directory_service_alert_keeps_the_windows_spelling_of_acronyms() -> None:
    doc = next(doc for case, doc in real_windows_alerts() if "modified" in case)
    data = parse(doc, "wazuh")["winlog"]["event_data"]
    assert data["DSName"] and data["AttributeLDAPDisplayName"] and data["ObjectDN"]


def test_a_windows_alert_is_timed_by_its_record_and_created_at_the_alert() -> None:
    _case, doc = real_windows_alerts()[0]
    event = parse(doc, "wazuh")
    assert event["@timestamp"] == "2021-11-08T18:09:47.436Z"
    assert event["event"]["created"] == "2021-11-08T18:09:48.000Z"


def test_the_windows_record_is_not_repeated_under_wazuh() -> None:
    _case, doc = real_windows_alerts()[0]
    assert "data" not in parse(doc, "wazuh")["wazuh"]


# --- text log alerts ------------------------------------------------------------------

def test_a_sudo_alert_fires_our_sudo_rule_like_the_raw_line() -> None:
    row = next(r for r in wazuh_rows("sudo") if "NOT in sudoers" in r["log"])
    event = parse(alert(row, full_log=row["log"], data={"srcuser": "ddp2", "dstuser": "root"}), "wazuh")
    fired = [info.id for info in linux_engine().match(event)]
    assert fired == [info.id for info in linux_engine().match(parse_line(row["log"]))]
    assert SUDO_DENIED_RULE in fired
    assert event["event"]["action"] == "sudo_denied"
    assert event["user"]["name"] == "ddp2"


@pytest.mark.parametrize(("case", "row"), text_rows(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_text_alert_has_the_fields_of_its_line(case: str, row: dict[str, Any]) -> None:
    reference = parse_line(row["log"])
    event = parse(alert(row, full_log=row["log"]), "wazuh")
    for field in ("event.dataset", "event.module", "event.action", "event.outcome", "event.category",
                  "process.name", "process.pid", "user.name", "source.ip", "source.port", "message"):
        assert get_field(event, field) == get_field(reference, field), field


def test_a_text_alert_is_timed_by_the_alert() -> None:
    row = wazuh_rows("sshd")[0]
    event = parse(alert(row, full_log=row["log"], timestamp="2026-02-09T11:44:56.250+0700"), "wazuh")
    assert event["@timestamp"] == "2026-02-09T04:44:56.250Z"


def test_a_line_no_parser_reads_becomes_a_wazuh_event_with_the_line_as_message() -> None:
    row = {"wazuh_level": 3, "wazuh_rule_description": "Custom", "wazuh_rule_id": "100100", "wazuh_decoder": "x"}
    line = "\x01\x02 something only a custom Wazuh decoder understands"
    event = parse(alert(row, full_log=line), "wazuh")
    assert not failed(event)
    assert event["message"] == line
    assert event["event"]["dataset"] == "wazuh.alerts"
    assert event["event"]["module"] == "wazuh"


def test_an_alert_without_a_record_takes_the_rule_description_as_message() -> None:
    row = {"wazuh_level": 7, "wazuh_rule_description": "Integrity checksum changed.", "wazuh_rule_id": "550",
           "wazuh_decoder": "syscheck_integrity_changed"}
    doc = alert(row, data={})
    doc["syscheck"] = {"path": "/etc/passwd", "event": "modified"}
    event = parse(doc, "wazuh")
    assert event["message"] == "Integrity checksum changed."
    assert event["wazuh"]["syscheck"]["path"] == "/etc/passwd"
    assert event["event"]["dataset"] == "wazuh.alerts"


# --- what Wazuh adds ------------------------------------------------------------------

def _sshd_alert(**kwargs: Any) -> dict[str, Any]:
    row = next(r for r in wazuh_rows("sshd") if "Failed password" in r["log"])
    return alert(row, full_log=row["log"], **kwargs)


def test_wazuh_verdict_is_kept_under_wazuh() -> None:
    event = parse(_sshd_alert(data={"srcip": "172.18.1.100", "dstuser": "user"}), "wazuh")
    wazuh = event["wazuh"]
    assert wazuh["rule"]["id"] == "5760"
    assert wazuh["rule"]["level"] == 5
    assert wazuh["decoder"] == {"name": "sshd"}
    assert wazuh["location"] == "/var/log/auth.log"
    assert wazuh["manager"] == {"name": "wazuh-manager"}
    assert wazuh["data"] == {"srcip": "172.18.1.100", "dstuser": "user"}
    assert "full_log" not in wazuh and "agent" not in wazuh and "timestamp" not in wazuh


def test_rule_level_is_the_event_severity_and_mitre_the_threat() -> None:
    event = parse(_sshd_alert(), "wazuh")
    assert event["event"]["severity"] == 5
    assert event["threat"] == {"framework": "MITRE ATT&CK", "technique": {"id": ["T1110"], "name": ["Brute Force"]},
                               "tactic": {"name": ["Credential Access"]}}


def test_the_wazuh_agent_is_the_ecs_agent_and_names_the_host() -> None:
    event = parse(_sshd_alert(), "wazuh")
    assert event["agent"] == {"type": "wazuh", "id": "003", "name": "web01"}
    assert event["host"]["name"] == "web01"
    assert event["host"]["ip"] == ["10.10.1.23"]
    assert event["host"]["hostname"] == "localhost"  # what the line itself says


def test_decoded_data_fills_what_our_parser_did_not_find() -> None:
    row = {"wazuh_level": 5, "wazuh_rule_description": "Custom login failure", "wazuh_rule_id": "100200",
           "wazuh_decoder": "custom"}
    doc = alert(row, full_log="\x01 LOGIN FAIL", data={"srcip": "198.51.100.9", "srcport": "4444",
                                                        "srcuser": "alice", "dstuser": "root"})
    event = parse(doc, "wazuh")
    assert event["source"] == {"ip": "198.51.100.9", "port": 4444}
    assert event["user"] == {"name": "alice", "target": {"name": "root"}}
    assert event["related"] == {"ip": ["198.51.100.9"], "user": ["alice", "root"]}


def test_our_parser_wins_over_decoded_data() -> None:
    event = parse(_sshd_alert(data={"srcip": "192.0.2.1", "dstuser": "someone-else"}), "wazuh")
    assert event["source"]["ip"] == "172.18.1.100"
    assert event["user"]["name"] == "user"


def test_event_original_is_the_whole_alert_and_the_hit_origin_is_labelled() -> None:
    doc = _sshd_alert()
    event = parse(hit(doc, "wazuh-alerts-4.x-2026.11.24", "w-1"), "wazuh")
    assert orjson.loads(event["event"]["original"]) == doc
    assert event["labels"] == {"source_index": "wazuh-alerts-4.x-2026.11.24", "source_id": "w-1"}


def test_parsing_does_not_change_the_record() -> None:
    record = hit(_sshd_alert(data={"srcip": "192.0.2.1"}))
    before = copy.deepcopy(record)
    event = Dispatcher().parse(record, "wazuh", ParseContext())
    event["wazuh"]["rule"]["level"] = 99
    event["wazuh"]["data"]["srcip"] = "changed"
    assert record == before


# --- detection ------------------------------------------------------------------------

def test_alerts_are_auto_detected_bare_and_as_hits() -> None:
    doc = _sshd_alert()
    assert parse(doc) == parse(doc, "wazuh")
    assert parse(hit(doc)) == parse(hit(doc), "wazuh")


def test_a_document_that_is_not_an_alert_fails_the_declared_format() -> None:
    assert failed(parse({"timestamp": "2026-11-24T10:00:00Z", "agent": {"name": "x"}}, "wazuh"))


def test_an_alert_needs_a_rule_an_agent_and_something_analysed() -> None:
    sniff = OBJECT_PARSERS["wazuh"].sniff
    assert sniff(_sshd_alert())
    assert not sniff({"rule": {"id": "1"}, "agent": {"name": "x"}})
    assert not sniff({"rule": {"id": "1"}, "full_log": "x"})

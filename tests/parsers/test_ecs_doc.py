"""ECS documents read back from Elasticsearch (Beats, Elastic Agent): bare or as search
hits, they keep their fields, look like our own Windows events where our rules read
them, and fire the same rules as the EVTX records they came from."""

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
from collectors.parsers.ecs_doc import dataset_from_index
from soc.detect.engine import Engine
from soc.detect.loader import load_rules
from tests.conftest import DATASETS, REPO
from tests.parsers.helpers import failed

EVTX = DATASETS / "evtx"
ADMIN_GROUP = EVTX / "Persistence" / "Network_Service_Guest_added_to_admins_4732.jsonl"
LOG_CLEARED = EVTX / "Defense Evasion" / "DE_1102_security_log_cleared.jsonl"
USER_CREATED = EVTX / "Defense Evasion" / "DE_Fake_ComputerAccount_4720.jsonl"
RULE_IDS = {
    ADMIN_GROUP: "07b0b643-3cdd-4b4e-be7b-8e96bb60d2ac",  # Member Added To Administrators …
    LOG_CLEARED: "0cd92b0c-5acd-4817-942f-4d461bc08f18",  # Windows Security Audit Log Cleared
    USER_CREATED: "68df298d-9e49-4222-994a-f371b949537d",  # Windows User Account Created
}

FILEBEAT_SSHD: dict[str, Any] = {
    "@timestamp": "2026-11-24T03:15:30.123456Z",
    "agent": {"type": "filebeat", "version": "8.13.2", "name": "web01"},
    "ecs": {"version": "8.11.0"},
    "event": {"dataset": "system.auth", "module": "system", "kind": "event", "outcome": "failure",
              "category": ["authentication"], "action": "ssh_login"},
    "host": {"name": "web01", "hostname": "web01"},
    "process": {"name": "sshd", "pid": 4242},
    "source": {"ip": "203.0.113.7", "port": 50022},
    "user": {"name": "root"},
    "message": "Failed password for root from 203.0.113.7 port 50022 ssh2",
    "log": {"file": {"path": "/var/log/auth.log"}, "offset": 1234},
}


# --- test data: real EVTX records as Winlogbeat 8 would have indexed them ------------

def _text(value: Any) -> Any:
    return value["#text"] if isinstance(value, dict) and "#text" in value else value


def _attrs(node: Any) -> dict[str, Any]:
    return (node or {}).get("#attributes") or {}


def winlogbeat_doc(record: dict[str, Any]) -> dict[str, Any]:
    """The Winlogbeat 8 document of an evtx-package record: every EventData value a
    string, UserData under ``winlog.user_data`` with its ``xml_name``, ``host.name``
    the agent's short lower-case host name."""
    event = record["Event"]
    system = event["System"]
    provider = _attrs(system.get("Provider"))
    eid = str(_text(system["EventID"]))
    guid = provider.get("Guid", "")
    winlog: dict[str, Any] = {
        "channel": system["Channel"], "computer_name": system["Computer"], "event_id": eid,
        "provider_name": provider.get("Name"),
        "provider_guid": guid if guid.startswith("{") else "{" + guid + "}",
        "record_id": system["EventRecordID"], "api": "wineventlog",
        "process": {"pid": _attrs(system.get("Execution")).get("ProcessID"),
                    "thread": {"id": _attrs(system.get("Execution")).get("ThreadID")}},
    }
    if isinstance(event.get("EventData"), dict):
        winlog["event_data"] = {k: str(v) for k, v in event["EventData"].items()
                                if not k.startswith("#") and v is not None}
    if isinstance(event.get("UserData"), dict):
        name, inner = next(iter(event["UserData"].items()))
        winlog["user_data"] = {"xml_name": name,
                               **{k: str(v) for k, v in inner.items() if not k.startswith("#")}}
    stamp = _attrs(system["TimeCreated"])["SystemTime"]
    return {
        "@timestamp": stamp[:23] + "Z",
        "agent": {"type": "winlogbeat", "version": "8.13.2", "name": system["Computer"].split(".")[0].lower()},
        "ecs": {"version": "8.0.0"},
        "event": {"code": eid, "kind": "event", "provider": provider.get("Name"),
                  "created": "2026-11-24T00:00:00.000Z"},
        "host": {"name": system["Computer"].split(".")[0].lower()},
        "log": {"level": "information"},
        "winlog": winlog,
    }


def hit(doc: dict[str, Any], index: str = "winlogbeat-2026.11.24", doc_id: str = "AZ3x-1") -> dict[str, Any]:
    return {"_index": index, "_id": doc_id, "_source": doc}


@cache
def evtx_records(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(orjson.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


@cache
def windows_engine() -> Engine:
    return Engine(load_rules([REPO / "rules" / "windows"]))


def parse(record: dict[str, Any], fmt: str | None = None) -> Event:
    return Dispatcher().parse(copy.deepcopy(record), fmt, ParseContext())


def rule_ids(event: Event) -> list[str]:
    return [info.id for info in windows_engine().match(event)]


# --- Windows documents ---------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(RULE_IDS), ids=lambda p: p.name)
def test_a_winlogbeat_hit_fires_the_same_rules_as_its_evtx_record(path: Path) -> None:
    fired = set()
    for record in evtx_records(path):
        reference = parse(record)
        event = parse(hit(winlogbeat_doc(record)), "ecs")
        assert rule_ids(event) == rule_ids(reference)
        fired.update(rule_ids(event))
    assert RULE_IDS[path] in fired


@pytest.mark.parametrize("path", sorted(RULE_IDS), ids=lambda p: p.name)
def test_winlogbeat_fields_our_rules_read_are_shaped_like_ours(path: Path) -> None:
    record = evtx_records(path)[0]
    reference = parse(record)
    event = parse(hit(winlogbeat_doc(record)), "ecs")
    for field in ("winlog.event_id", "winlog.channel", "winlog.provider_name", "winlog.computer_name",
                  "winlog.record_id", "event.code", "event.action", "event.category", "event.dataset",
                  "user.name", "user.domain", "@timestamp"):
        assert get_field(event, field) == get_field(reference, field), field
    assert {k: str(v) for k, v in reference["winlog"]["event_data"].items()} == event["winlog"]["event_data"]


def test_a_winlogbeat_hit_is_auto_detected_like_a_declared_one() -> None:
    record = evtx_records(ADMIN_GROUP)[0]
    declared = parse(hit(winlogbeat_doc(record)), "ecs")
    assert parse(hit(winlogbeat_doc(record))) == declared


def test_a_bare_winlogbeat_document_is_still_read_by_the_windows_parser() -> None:
    doc = winlogbeat_doc(evtx_records(ADMIN_GROUP)[0])
    assert parse(doc) == parse(doc, "windows")


def test_winlogbeat_host_name_is_kept() -> None:
    event = parse(hit(winlogbeat_doc(evtx_records(ADMIN_GROUP)[0])), "ecs")
    assert event["host"]["name"] == "msedgewin10"
    assert event["winlog"]["computer_name"] == "MSEDGEWIN10"


# --- other ECS documents ------------------------------------------------------------

def test_a_filebeat_document_keeps_its_fields() -> None:
    event = parse(hit(FILEBEAT_SSHD, "filebeat-8.13.2-2026.11.24"), "ecs")
    for field in ("event.dataset", "event.action", "event.outcome", "source.ip", "user.name", "process.name",
                  "host.name", "message", "log.file.path", "agent.type"):
        assert get_field(event, field) == get_field(FILEBEAT_SSHD, field), field


def test_the_timestamp_is_written_in_our_form() -> None:
    assert parse(hit(FILEBEAT_SSHD), "ecs")["@timestamp"] == "2026-11-24T03:15:30.123Z"
    doc = {**FILEBEAT_SSHD, "@timestamp": "2026-11-24T10:15:30.5+07:00"}
    assert parse(hit(doc), "ecs")["@timestamp"] == "2026-11-24T03:15:30.500Z"


def test_an_unreadable_timestamp_is_left_to_the_pipeline() -> None:
    event = parse(hit({**FILEBEAT_SSHD, "@timestamp": "yesterday"}), "ecs")
    assert "@timestamp" not in event
    assert '"yesterday"' in event["event"]["original"]


def test_event_original_is_the_compact_document() -> None:
    event = parse(hit(FILEBEAT_SSHD), "ecs")
    assert orjson.loads(event["event"]["original"]) == FILEBEAT_SSHD
    assert "\n" not in event["event"]["original"]


def test_an_event_original_the_document_carries_is_kept() -> None:
    doc = copy.deepcopy(FILEBEAT_SSHD)
    doc["event"]["original"] = "Nov 24 10:15:30 web01 sshd[4242]: Failed password for root"
    assert parse(hit(doc), "ecs")["event"]["original"] == doc["event"]["original"]


def test_the_hit_it_came_from_is_kept_in_labels() -> None:
    event = parse(hit(FILEBEAT_SSHD, "filebeat-8.13.2-2026.11.24", "Xy12"), "ecs")
    assert event["labels"] == {"source_index": "filebeat-8.13.2-2026.11.24", "source_id": "Xy12"}


def test_labels_the_document_has_are_kept_beside_the_origin() -> None:
    event = parse(hit({**FILEBEAT_SSHD, "labels": {"env": "prod"}}), "ecs")
    assert event["labels"]["env"] == "prod"
    assert event["labels"]["source_index"] == "winlogbeat-2026.11.24"


def test_a_document_without_a_dataset_takes_its_data_stream_dataset() -> None:
    doc = copy.deepcopy(FILEBEAT_SSHD)
    del doc["event"]["dataset"]
    doc["data_stream"] = {"type": "logs", "dataset": "system.auth", "namespace": "default"}
    assert parse(hit(doc, ".ds-logs-other-default-2026.11.24-000001"), "ecs")["event"]["dataset"] == "system.auth"


def test_a_document_without_any_dataset_takes_one_from_its_index() -> None:
    doc = copy.deepcopy(FILEBEAT_SSHD)
    del doc["event"]["dataset"]
    assert parse(hit(doc, "filebeat-8.13.2-2026.11.24-000001"), "ecs")["event"]["dataset"] == "filebeat"


@pytest.mark.parametrize(("index", "dataset"), [
    ("filebeat-8.11.0-2026.11.24-000001", "filebeat"),
    ("winlogbeat-2026.11.24", "winlogbeat"),
    ("wazuh-alerts-4.x-2026.11.24", "wazuh_alerts"),
    (".ds-logs-system.auth-default-2026.11.24-000001", "system.auth"),
    ("logs-nginx.access-prod", "nginx.access"),
    ("remote:auditbeat-7.17.0", "auditbeat"),
    ("ioffice-audit", "ioffice_audit"),
])
def test_dataset_from_index_name(index: str, dataset: str) -> None:
    assert dataset_from_index(index) == dataset


def test_parsing_does_not_change_the_record() -> None:
    """A batch whose submit failed is parsed again: the record must be as read."""
    record = hit(winlogbeat_doc(evtx_records(ADMIN_GROUP)[0]))
    before = copy.deepcopy(record)
    event = Dispatcher().parse(record, "ecs", ParseContext())
    event["event"]["id"] = "x"
    event["winlog"]["event_data"]["TargetSid"] = "changed"
    assert record == before


# --- auto-detection -----------------------------------------------------------------

def test_a_bare_beats_document_is_auto_detected() -> None:
    event = parse(FILEBEAT_SSHD)
    assert not failed(event)
    assert event["event"]["dataset"] == "system.auth"
    assert "labels" not in event


def test_a_json_object_without_ecs_markers_is_left_to_other_parsers() -> None:
    assert not OBJECT_PARSERS["ecs"].sniff({"@timestamp": "2026-11-24T03:15:30Z", "msg": "hello"})


def test_a_wazuh_alert_hit_is_not_taken_for_ecs() -> None:
    alert = {"timestamp": "2026-11-24T10:00:00.000+0000", "rule": {"id": "5710", "level": 5},
             "agent": {"id": "001", "name": "web01"}, "full_log": "x", "decoder": {"name": "sshd"}}
    event = parse(hit(alert, "wazuh-alerts-4.x-2026.11.24"))
    assert "wazuh" in event

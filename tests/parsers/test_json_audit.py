"""Generic JSON audit parser and the mapping files in config/json_mappings/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.event import PARSE_FAILURE_TAG, Event
from collectors.parsers import Dispatcher, JsonMapping, ParseContext
from collectors.parsers.json_audit import load_json_mappings
from tests.conftest import REPO

MAPPINGS_DIR = REPO / "config" / "json_mappings"

IOFFICE_DOWNLOAD = {"time": "2024-05-02 08:15:30", "user": "nguyenvana", "ip": "10.20.1.15",
                    "action": "DOWNLOAD_DOCUMENT", "doc_id": "VB-2024-00123", "result": "success",
                    "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"}
IOFFICE_LOGIN_FAILED = {"time": "2024-05-02 08:14:02", "user": "nguyenvana", "ip": "10.20.1.15",
                        "action": "LOGIN_FAILED", "doc_id": None, "result": "fail"}
DVC_SUBMIT = {"ts": 1714612530123, "portal": "dichvucong", "event_type": "DOSSIER_SUBMIT", "status": "OK",
              "citizen": {"id": "001090012345", "username": "tranthib"},
              "client": {"ip": "113.160.1.20", "user_agent": "Mozilla/5.0 (Linux; Android 14)"},
              "auth": {"method": "VNeID"}, "dossier": {"code": "H12.34-240502-0001"}}


@pytest.fixture(scope="module")
def mappings() -> dict[str, JsonMapping]:
    return load_json_mappings(MAPPINGS_DIR)


@pytest.fixture
def mapped_ctx(mappings: dict[str, JsonMapping]) -> ParseContext:
    return ParseContext(json_mappings=mappings)


def _parse(record: dict[str, Any], ctx: ParseContext, fmt: str | None = None) -> Event:
    return Dispatcher().parse(orjson.dumps(record).decode(), fmt, ctx)


def test_example_mappings_load(mappings: dict[str, JsonMapping]) -> None:
    assert set(mappings) == {"ioffice_audit", "dvc_portal_audit"}
    assert mappings["ioffice_audit"].fields["user.name"] == "user"
    assert mappings["dvc_portal_audit"].timestamp_format == "epoch_ms"


def test_ioffice_download_maps_user_ip_action_outcome_and_category(mapped_ctx: ParseContext) -> None:
    event = _parse(IOFFICE_DOWNLOAD, mapped_ctx)
    assert event["user"]["name"] == "nguyenvana"
    assert event["source"]["ip"] == "10.20.1.15"
    assert event["event"]["action"] == "DOWNLOAD_DOCUMENT"
    assert event["event"]["outcome"] == "success"
    assert event["event"]["category"] == ["file"]
    assert event["event"]["type"] == ["access"]
    assert event["event"]["dataset"] == "ioffice.audit"
    assert event["event"]["module"] == "app"
    assert event["app"]["document"]["id"] == "VB-2024-00123"


def test_ioffice_time_is_local_wall_clock(mapped_ctx: ParseContext) -> None:
    assert _parse(IOFFICE_DOWNLOAD, mapped_ctx)["@timestamp"] == "2024-05-02T01:15:30.000Z"


def test_ioffice_failed_login_is_an_authentication_failure(mapped_ctx: ParseContext) -> None:
    event = _parse(IOFFICE_LOGIN_FAILED, mapped_ctx)
    assert event["event"]["category"] == ["authentication"]
    assert event["event"]["outcome"] == "failure"


def test_dvc_portal_maps_nested_paths_and_epoch_ms(mapped_ctx: ParseContext) -> None:
    event = _parse(DVC_SUBMIT, mapped_ctx)
    assert event["@timestamp"] == "2024-05-02T01:15:30.123Z"
    assert event["user"] == {"name": "tranthib", "id": "001090012345"}
    assert event["source"]["ip"] == "113.160.1.20"
    assert event["app"]["dossier"]["id"] == "H12.34-240502-0001"
    assert event["event"]["outcome"] == "success"
    assert event["event"]["category"] == ["web"]
    assert event["event"]["dataset"] == "dvc.audit"


def test_mapped_record_keeps_the_whole_object(mapped_ctx: ParseContext) -> None:
    assert _parse(DVC_SUBMIT, mapped_ctx)["json"] == DVC_SUBMIT


def test_record_matching_no_mapping_parses_generically(mapped_ctx: ParseContext) -> None:
    record = {"timestamp": "2024-05-02T08:15:30+07:00", "username": "admin", "client_ip": "::ffff:10.0.0.9",
              "action": "export_report", "status": 403, "report": {"id": 17}}
    event = _parse(record, mapped_ctx)
    assert PARSE_FAILURE_TAG not in event.get("tags", ())
    assert event["@timestamp"] == "2024-05-02T01:15:30.000Z"
    assert event["user"]["name"] == "admin"
    assert event["source"]["ip"] == "10.0.0.9"
    assert event["event"]["action"] == "export_report"
    assert event["event"]["outcome"] == "failure"
    assert event["event"]["dataset"] == "app.audit"
    assert event["json"] == record


@pytest.mark.parametrize("value, expected", [(True, "success"), (False, "failure"), ("OK", "success"),
                                             ("Thất bại", "failure"), (200, "success"), ("500", "failure")])
def test_generic_outcome_values_are_normalised(value: Any, expected: str, ctx: ParseContext) -> None:
    event = _parse({"msg": "x", "result": value}, ctx)
    assert event["event"]["outcome"] == expected


@pytest.mark.parametrize("stamp, expected", [
    ("2024-05-02 08:15:30", "2024-05-02T01:15:30.000Z"),
    ("02/05/2024 08:15:30", "2024-05-02T01:15:30.000Z"),
    (1714612530, "2024-05-02T01:15:30.000Z"),
    (1714612530123, "2024-05-02T01:15:30.123Z"),
    ("2024-05-02T01:15:30.123456789Z", "2024-05-02T01:15:30.123Z"),
])
def test_generic_timestamps_without_offset_are_local_time(stamp: Any, expected: str, ctx: ParseContext) -> None:
    assert _parse({"time": stamp, "msg": "x"}, ctx)["@timestamp"] == expected


def test_auto_detection_ignores_a_mapping_whose_match_keys_are_absent(mappings: dict[str, JsonMapping]) -> None:
    ctx = ParseContext(json_mappings={"ioffice_audit": mappings["ioffice_audit"]})
    event = _parse({"time": "2024-05-02 08:15:30", "user": "x", "action": "LOGIN"}, ctx)
    assert event["event"]["dataset"] == "app.audit"


def test_declared_json_with_a_single_mapping_uses_it(mappings: dict[str, JsonMapping]) -> None:
    ctx = ParseContext(json_mappings={"ioffice_audit": mappings["ioffice_audit"]})
    event = _parse({"time": "2024-05-02 08:15:30", "user": "x", "action": "LOGIN"}, ctx, fmt="json")
    assert event["event"]["dataset"] == "ioffice.audit"
    assert event["event"]["category"] == ["authentication"]


def test_declared_json_mapping_by_name_is_used_without_match_keys(mappings: dict[str, JsonMapping]) -> None:
    ctx = ParseContext(json_mappings=mappings)
    event = _parse({"time": "2024-05-02 08:15:30", "user": "x", "action": "LOGIN"}, ctx, fmt="json:ioffice_audit")
    assert event["event"]["dataset"] == "ioffice.audit"


def test_declared_unknown_json_mapping_is_a_tagged_failure(mappings: dict[str, JsonMapping]) -> None:
    event = _parse({"user": "x"}, ParseContext(json_mappings=mappings), fmt="json:nope")
    assert "_parse_failure" in event["tags"]
    assert "nope" in event["error"]["message"]


def test_unparseable_mapped_timestamp_is_tagged_not_lost(mappings: dict[str, JsonMapping]) -> None:
    record = dict(IOFFICE_DOWNLOAD, time="hôm qua")
    event = _parse(record, ParseContext(json_mappings=mappings))
    assert "@timestamp" not in event
    assert "_timestamp_unparsed" in event["tags"]
    assert event["json"]["time"] == "hôm qua"


def test_invalid_ip_is_left_out_of_source_ip(mapped_ctx: ParseContext) -> None:
    event = _parse(dict(IOFFICE_DOWNLOAD, ip="unknown"), mapped_ctx)
    assert "source" not in event
    assert event["json"]["ip"] == "unknown"


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, key", [
    ("name: x\nfeilds: {user.name: user}\n", "feilds"),
    ("name: x\noutcome_values: {ok: good}\n", "outcome_values.ok"),
    ("name: x\nmatch: {a: 1}\n", "match"),
    ("name: x\ncategory_by_action: {LOGIN: {kind: [authentication]}}\n", "category_by_action.LOGIN"),
    ("name: x\ntimestamp_field: [time]\n", "timestamp_field"),
    ("- just\n- a list\n", "-"),
])
def test_bad_mapping_file_names_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, "broken.yaml", text)
    with pytest.raises(ValueError) as info:
        load_json_mappings(tmp_path)
    assert str(path) in str(info.value)
    assert repr(key) in str(info.value)


def test_duplicate_mapping_names_are_rejected(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "name: same\nmatch: [a]\n")
    _write(tmp_path, "b.yaml", "name: same\nmatch: [b]\n")
    with pytest.raises(ValueError, match="already defined"):
        load_json_mappings(tmp_path)


def test_mapping_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    _write(tmp_path, "hrm_audit.yml", "match: [employee_id]\nfields: {user.name: employee_id}\n")
    assert list(load_json_mappings(tmp_path)) == ["hrm_audit"]

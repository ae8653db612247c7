"""Windows event parser: the evtx package's JSON (real recordings), Winlogbeat,
NXLog and Wazuh shapes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.event import PARSE_FAILURE_TAG, Event, get_field
from collectors.parsers import Dispatcher, ParseContext
from collectors.parsers.windows import WindowsEventParser
from tests.conftest import DATASETS

EVTX = DATASETS / "evtx"
SIGMA = DATASETS / "sigma-regression"
_INDEXES = ("index.jsonl", "expected.jsonl")


@cache
def _sample_lines() -> tuple[tuple[str, str], ...]:
    """(file, line) for every record of the evtx and sigma-regression conversions."""
    files = sorted(EVTX.rglob("*.jsonl")) + sorted(SIGMA.rglob("*.jsonl"))
    out = []
    for path in files:
        if path.name in _INDEXES:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append((str(path.relative_to(DATASETS)), line))
    return tuple(out)


def _parse(line: str | dict[str, Any], ctx: ParseContext, fmt: str | None = None) -> Event:
    return Dispatcher().parse(line, fmt, ctx)


def _first(path: Path, predicate: Callable[[dict[str, Any]], bool]) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if predicate(orjson.loads(line)["Event"]):
            return line
    raise AssertionError(f"no matching record in {path}")


def _event_id(event: dict[str, Any]) -> int:
    eid = event["System"]["EventID"]
    return int(eid["#text"] if isinstance(eid, dict) else eid)


def _source_fields(event: dict[str, Any]) -> set[str]:
    """The EventData / UserData field names of a source record."""
    data = event.get("EventData")
    names = {k for k in data if not k.startswith("#")} if isinstance(data, dict) else set()
    if isinstance(data, dict) and isinstance(data.get("Data"), dict):
        names.discard("Data")  # unnamed data: becomes Param1, Param2 …
    user_data = event.get("UserData")
    if isinstance(user_data, dict):
        for inner in user_data.values():
            if isinstance(inner, dict):
                names |= {k for k in inner if not k.startswith("#")}
    return names


# --- the real recordings ----------------------------------------------------------

def test_every_evtx_and_sigma_regression_record_parses(ctx: ParseContext) -> None:
    lines = _sample_lines()
    assert len(lines) > 1500
    failures = [(name, e.get("error")) for name, line in lines
                if PARSE_FAILURE_TAG in (e := _parse(line, ctx)).get("tags", ())]
    assert failures == []


def test_event_id_and_channel_equal_the_source_record(ctx: ParseContext) -> None:
    for _, line in _sample_lines():
        source = orjson.loads(line)["Event"]["System"]
        event = _parse(line, ctx)
        assert event["winlog"]["event_id"] == str(_event_id({"System": source}))
        assert event["winlog"]["channel"] == source["Channel"]
        assert event["event"]["code"] == event["winlog"]["event_id"]


def test_event_data_keeps_every_source_field_name(ctx: ParseContext) -> None:
    for _, line in _sample_lines():
        source = orjson.loads(line)["Event"]
        expected = _source_fields(source)
        kept = set(get_field(_parse(line, ctx), "winlog.event_data") or {})
        assert expected <= kept, (expected - kept, line[:200])


def test_event_data_keeps_original_value_types(ctx: ParseContext) -> None:
    for _, line in _sample_lines():
        source = orjson.loads(line)["Event"]
        data = source.get("EventData")
        if isinstance(data, dict) and isinstance(data.get("ProcessId"), int):
            event_data = _parse(line, ctx)["winlog"]["event_data"]
            assert event_data["ProcessId"] == data["ProcessId"]
            return
    pytest.fail("no record with an integer ProcessId")


def test_timestamp_is_system_time_in_canonical_form(ctx: ParseContext) -> None:
    line = _sample_lines()[0][1]
    system_time = orjson.loads(line)["Event"]["System"]["TimeCreated"]["#attributes"]["SystemTime"]
    stamp = _parse(line, ctx)["@timestamp"]
    assert stamp[:23] == system_time[:23] and stamp.endswith("Z") and len(stamp) == 24


def test_kerberos_preauth_failure_4771_maps_account_and_source(ctx: ParseContext) -> None:
    path = EVTX / "Credential Access" / "kerberos_pwd_spray_4771.jsonl"
    event = _parse(_first(path, lambda e: _event_id(e) == 4771), ctx)
    assert event["event"]["category"] == ["authentication"]
    assert event["event"]["outcome"] == "failure"
    assert event["event"]["action"] == "kerberos-preauth-failed"
    assert event["user"]["name"] == "Administrator"
    assert event["source"] == {"ip": "172.16.66.1", "port": 55967}
    assert event["winlog"]["event_data"]["Status"] == "0x18"
    assert event["event"]["dataset"] == "windows.security"
    assert "172.16.66.1" in event["related"]["ip"]


def test_sysmon_1_maps_process_creation(ctx: ParseContext) -> None:
    path = EVTX / "Execution" / "revshell_cmd_svchost_sysmon_1.jsonl"
    line = _first(path, lambda e: _event_id(e) == 1)
    data = orjson.loads(line)["Event"]["EventData"]
    event = _parse(line, ctx)
    assert event["event"]["module"] == "sysmon"
    assert event["event"]["dataset"] == "windows.sysmon_operational"
    assert (event["event"]["category"], event["event"]["type"]) == (["process"], ["start"])
    process = event["process"]
    assert process["executable"] == data["Image"]
    assert process["command_line"] == data["CommandLine"]
    assert process["pid"] == data["ProcessId"]
    assert process["parent"]["executable"] == data["ParentImage"]
    assert process["parent"]["command_line"] == data["ParentCommandLine"]
    assert process["name"] == data["Image"].rsplit("\\", 1)[-1]
    sha256 = data["Hashes"].split("SHA256=")[1].split(",")[0].lower()
    assert process["hash"]["sha256"] == sha256
    assert sha256 in event["related"]["hash"]


def test_security_1102_user_data_is_flattened_into_event_data(ctx: ParseContext) -> None:
    path = EVTX / "Defense Evasion" / "DE_1102_security_log_cleared.jsonl"
    line = _first(path, lambda e: _event_id(e) == 1102)
    source = orjson.loads(line)["Event"]["UserData"]["LogFileCleared"]
    event = _parse(line, ctx)
    assert event["event"]["action"] == "audit-log-cleared"
    assert event["winlog"]["user_data"]["xml_name"] == "LogFileCleared"
    assert event["winlog"]["user_data"]["SubjectUserName"] == source["SubjectUserName"]
    assert event["winlog"]["event_data"]["SubjectUserName"] == source["SubjectUserName"]
    assert event["user"]["name"] == source["SubjectUserName"]


def test_system_104_log_cleared_gets_the_same_action(ctx: ParseContext) -> None:
    path = EVTX / "Credential Access" / "Zerologon_CVE-2020-1472_DFIR_System_NetLogon_Error_EventID_5805.jsonl"
    event = _parse(_first(path, lambda e: _event_id(e) == 104), ctx)
    assert event["event"]["action"] == "audit-log-cleared"
    assert event["event"]["dataset"] == "windows.system"
    assert event["user"]["name"] == "a-jbrown"


def test_7045_with_qualifiers_event_id_gives_plain_code(ctx: ParseContext) -> None:
    path = EVTX / "Privilege Escalation" / "System_7045_namedpipe_privesc.jsonl"
    line = _first(path, lambda e: _event_id(e) == 7045)
    assert isinstance(orjson.loads(line)["Event"]["System"]["EventID"], dict)
    event = _parse(line, ctx)
    assert event["winlog"]["event_id"] == "7045"
    assert event["event"]["code"] == "7045"
    assert event["event"]["action"] == "service-installed"
    assert event["service"]["name"] == event["winlog"]["event_data"]["ServiceName"]
    assert "ImagePath" in event["winlog"]["event_data"]


def test_mssql_unnamed_data_becomes_numbered_params(ctx: ParseContext) -> None:
    path = EVTX / "Credential Access" / "MSSQL_multiple_failed_logon_EventID_18456.jsonl"
    line = _first(path, lambda e: _event_id(e) == 18456)
    texts = orjson.loads(line)["Event"]["EventData"]["Data"]["#text"]
    event_data = _parse(line, ctx)["winlog"]["event_data"]
    assert [event_data[f"Param{i}"] for i in range(1, len(texts) + 1)] == texts
    assert "Binary" in event_data
    assert "Data" not in event_data


def test_defender_spaced_names_get_spaceless_aliases(ctx: ParseContext) -> None:
    path = next(SIGMA.rglob("a7c3e5f2-8b1d-4e9a-b6c2-3d7f5e8a9b4c.jsonl"))
    line = path.read_text(encoding="utf-8").splitlines()[0]
    event_data = _parse(line, ctx)["winlog"]["event_data"]
    assert event_data["Source Name"] == event_data["SourceName"]
    assert event_data["Threat Name"] == event_data["ThreatName"] == "Tool:Win32/EICAR_Test_File"
    assert event_data["ProcessName"] == event_data["Process Name"]


def test_4688_maps_new_process(ctx: ParseContext) -> None:
    line = next(line for _, line in _sample_lines() if '"EventID":4688' in line)
    data = orjson.loads(line)["Event"]["EventData"]
    event = _parse(line, ctx)
    assert (event["event"]["category"], event["event"]["type"]) == (["process"], ["start"])
    assert event["process"]["executable"] == data["NewProcessName"]
    assert event["process"]["pid"] == int(data["NewProcessId"], 16)
    assert event["user"]["name"] == data["SubjectUserName"]


def test_sysmon_3_maps_network_endpoints(ctx: ParseContext) -> None:
    line = next(line for _, line in _sample_lines()
                if '"EventID":3,' in line and "Sysmon/Operational" in line and '"DestinationIp":"::1"' not in line)
    data = orjson.loads(line)["Event"]["EventData"]
    event = _parse(line, ctx)
    assert event["event"]["category"] == ["network"]
    assert event["destination"]["port"] == data["DestinationPort"]
    assert event["source"]["port"] == data["SourcePort"]
    assert event["network"]["transport"] == data["Protocol"].lower()
    assert event["destination"]["ip"] in event["related"]["ip"]


def test_sysmon_13_maps_registry_path(ctx: ParseContext) -> None:
    line = next(line for _, line in _sample_lines() if '"EventID":13,' in line and "Sysmon" in line)
    data = orjson.loads(line)["Event"]["EventData"]
    event = _parse(line, ctx)
    assert event["registry"]["path"] == data["TargetObject"]
    assert event["registry"]["value"] == data["TargetObject"].rsplit("\\", 1)[-1]


def test_sysmon_11_maps_file_path(ctx: ParseContext) -> None:
    line = next(line for _, line in _sample_lines() if '"EventID":11,' in line and "Sysmon" in line)
    data = orjson.loads(line)["Event"]["EventData"]
    event = _parse(line, ctx)
    assert event["file"]["path"] == data["TargetFilename"]
    assert event["event"]["type"] == ["creation"]


def test_sysmon_22_maps_dns_question_and_resolved_ips(ctx: ParseContext) -> None:
    record = orjson.loads(next(line for _, line in _sample_lines() if '"EventID":1,' in line and "Sysmon" in line))
    system = record["Event"]["System"]
    system["EventID"], system["Task"] = 22, 22
    record["Event"]["EventData"] = {
        "RuleName": "-", "UtcTime": "2024-05-02 01:15:30.123", "ProcessGuid": "{747F3D96-E8BA-5F26-0000-001035BE1A00}",
        "ProcessId": 4242, "QueryName": "update.example.vn", "QueryStatus": "0",
        "QueryResults": "type:  5 cdn.example.vn;::ffff:203.0.113.7;", "Image": "C:\\Windows\\System32\\curl.exe",
    }
    event = _parse(record, ctx)
    assert event["dns"]["question"]["name"] == "update.example.vn"
    assert event["dns"]["resolved_ip"] == ["203.0.113.7"]
    assert event["event"]["action"] == "dns-query"


def test_other_channels_get_a_dataset_from_their_name(ctx: ParseContext) -> None:
    line = next(line for _, line in _sample_lines() if "Microsoft-Windows-Bits-Client/Operational" in line)
    event = _parse(line, ctx)
    assert event["event"]["dataset"] == "windows.microsoft_windows_bits_client_operational"
    assert event["event"]["module"] == "windows"


def test_log_level_comes_from_level_number(ctx: ParseContext) -> None:
    levels = {}
    for _, line in _sample_lines():
        level = orjson.loads(line)["Event"]["System"]["Level"]
        levels[level] = _parse(line, ctx)["log"]["level"]
    assert levels[4] == "information"
    assert levels[0] == "information"
    assert levels[2] == "error"


def test_record_with_neither_event_data_nor_user_data_parses(ctx: ParseContext) -> None:
    line = next(line for _, line in _sample_lines() if '"EventData":null' in line)
    event = _parse(line, ctx)
    assert "event_data" not in event["winlog"]
    assert event["winlog"]["record_id"]


# --- the same 4625 from four agents ------------------------------------------------

_4625_DATA = {
    "SubjectUserSid": "S-1-0-0", "SubjectUserName": "-", "SubjectDomainName": "-", "SubjectLogonId": "0x0",
    "TargetUserSid": "S-1-0-0", "TargetUserName": "quantri", "TargetDomainName": "SONOIVU",
    "Status": "0xc000006d", "FailureReason": "%%2313", "SubStatus": "0xc000006a", "LogonType": 3,
    "LogonProcessName": "NtLmSsp ", "AuthenticationPackageName": "NTLM", "WorkstationName": "KALI",
    "TransmittedServices": "-", "LmPackageName": "-", "KeyLength": 0, "ProcessId": "0x0", "ProcessName": "-",
    "IpAddress": "203.0.113.45", "IpPort": "49822",
}

EVTX_4625 = {"Event": {
    "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
    "System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing",
                                     "Guid": "{54849625-5478-4994-a5ba-3e3b0328c30d}"}},
        "EventID": 4625, "Version": 0, "Level": 0, "Task": 12544, "Opcode": 0, "Keywords": "0x8010000000000000",
        "TimeCreated": {"#attributes": {"SystemTime": "2024-05-02T01:15:30.1234567Z"}},
        "EventRecordID": 918273, "Correlation": None,
        "Execution": {"#attributes": {"ProcessID": 676, "ThreadID": 4312}},
        "Channel": "Security", "Computer": "DC01.sonoivu.local", "Security": None,
    },
    "EventData": _4625_DATA,
}}

WINLOGBEAT_4625 = {
    "@timestamp": "2024-05-02T01:15:30.123Z",
    "agent": {"type": "winlogbeat", "version": "8.13.2", "hostname": "DC01"},
    "ecs": {"version": "8.0.0"},
    "event": {"code": "4625", "kind": "event", "provider": "Microsoft-Windows-Security-Auditing",
              "action": "Logon", "outcome": "failure", "created": "2024-05-02T01:15:31.002Z"},
    "host": {"name": "DC01.sonoivu.local"},
    "log": {"level": "information"},
    "message": "An account failed to log on.\n\nSubject:\n\tSecurity ID:\t\tS-1-0-0 ...",
    "winlog": {
        "channel": "Security", "computer_name": "DC01.sonoivu.local", "event_id": "4625",
        "provider_name": "Microsoft-Windows-Security-Auditing",
        "provider_guid": "{54849625-5478-4994-a5ba-3e3b0328c30d}", "record_id": 918273,
        "task": "Logon", "opcode": "Info", "keywords": ["Audit Failure"], "api": "wineventlog",
        "process": {"pid": 676, "thread": {"id": 4312}}, "logon": {"type": "Network"},
        # Winlogbeat renders every EventData value as a string.
        "event_data": {k: str(v) for k, v in _4625_DATA.items()},
    },
}

NXLOG_4625 = {
    "EventTime": "2024-05-02 08:15:30", "Hostname": "DC01.sonoivu.local", "Keywords": -9218868437227405312,
    "EventType": "AUDIT_FAILURE", "SeverityValue": 4, "Severity": "ERROR", "EventID": 4625,
    "SourceName": "Microsoft-Windows-Security-Auditing",
    "ProviderGuid": "{54849625-5478-4994-A5BA-3E3B0328C30D}", "Version": 0, "Task": 12544,
    "OpcodeValue": 0, "RecordNumber": 918273, "ProcessID": 676, "ThreadID": 4312, "Channel": "Security",
    "Message": "An account failed to log on.\r\n\r\nSubject:\r\n\tSecurity ID:\t\tS-1-0-0 ...",
    "Category": "Logon", "Opcode": "Info",
    **{k: str(v) for k, v in _4625_DATA.items()},
    "EventReceivedTime": "2024-05-02 08:15:31", "SourceModuleName": "eventlog", "SourceModuleType": "im_msvistalog",
}

WAZUH_4625 = {"win": {
    "system": {
        "providerName": "Microsoft-Windows-Security-Auditing",
        "providerGuid": "{54849625-5478-4994-a5ba-3e3b0328c30d}", "eventID": "4625", "version": "0",
        "level": "0", "task": "12544", "opcode": "0", "keywords": "0x8010000000000000",
        "systemTime": "2024-05-02T01:15:30.1234567Z", "eventRecordID": "918273", "processID": "676",
        "threadID": "4312", "channel": "Security", "computer": "DC01.sonoivu.local",
        "severityValue": "AUDIT_FAILURE", "message": "\"An account failed to log on.\"",
    },
    "eventdata": {k[:1].lower() + k[1:]: str(v) for k, v in _4625_DATA.items()},
}}

SHAPES = {"evtx": EVTX_4625, "winlogbeat": WINLOGBEAT_4625, "nxlog": NXLOG_4625, "wazuh": WAZUH_4625}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_4625_gives_the_same_key_fields_from_every_agent(shape: str, ctx: ParseContext) -> None:
    reference = _parse(copy.deepcopy(EVTX_4625), ctx)
    event = _parse(orjson.dumps(SHAPES[shape]).decode(), ctx)
    for field in ("winlog.event_id", "winlog.channel", "winlog.record_id", "winlog.computer_name",
                  "user.name", "user.domain", "source.ip", "source.port", "event.outcome", "event.code",
                  "event.dataset", "host.name", "winlog.event_data.TargetUserName"):
        assert get_field(event, field) == get_field(reference, field), (shape, field)
    assert reference["user"]["name"] == "quantri"
    assert reference["source"]["ip"] == "203.0.113.45"
    assert reference["event"]["outcome"] == "failure"


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_4625_timestamp_is_the_same_second_from_every_agent(shape: str, ctx: ParseContext) -> None:
    event = _parse(copy.deepcopy(SHAPES[shape]), ctx)
    assert event["@timestamp"].startswith("2024-05-02T01:15:30.")


def test_winlogbeat_keeps_fields_it_already_has(ctx: ParseContext) -> None:
    event = _parse(copy.deepcopy(WINLOGBEAT_4625), ctx)
    assert event["event"]["action"] == "Logon"  # Winlogbeat's, not ours
    assert event["winlog"]["logon"]["type"] == "Network"
    assert event["winlog"]["record_id"] == "918273"
    assert event["agent"]["type"] == "winlogbeat"
    assert event["event"]["category"] == ["authentication"]  # filled in
    assert event["message"].startswith("An account failed")


def test_winlogbeat_numeric_event_id_becomes_a_string(ctx: ParseContext) -> None:
    doc = copy.deepcopy(WINLOGBEAT_4625)
    doc["winlog"]["event_id"] = 4625
    doc["event"]["code"] = 4625
    event = _parse(doc, ctx)
    assert event["winlog"]["event_id"] == "4625"
    assert event["event"]["code"] == "4625"


def test_winlogbeat_user_data_is_copied_into_event_data(ctx: ParseContext) -> None:
    doc = {"@timestamp": "2024-05-02T01:15:30.123Z", "winlog": {
        "channel": "Security", "event_id": 1102, "provider_name": "Microsoft-Windows-Eventlog",
        "computer_name": "DC01", "user_data": {"xml_name": "LogFileCleared", "SubjectUserName": "quantri",
                                               "SubjectDomainName": "SONOIVU"}}}
    event = _parse(doc, ctx)
    assert event["winlog"]["event_data"]["SubjectUserName"] == "quantri"
    assert "xml_name" not in event["winlog"]["event_data"]
    assert event["event"]["action"] == "audit-log-cleared"


def test_nxlog_event_time_without_offset_is_local_time(ctx: ParseContext) -> None:
    event = _parse(copy.deepcopy(NXLOG_4625), ctx)
    assert event["@timestamp"] == "2024-05-02T01:15:30.000Z"  # 08:15:30 in Asia/Ho_Chi_Minh
    assert event["event"]["created"] == "2024-05-02T01:15:31.000Z"


def test_nxlog_system_fields_stay_out_of_event_data(ctx: ParseContext) -> None:
    event = _parse(copy.deepcopy(NXLOG_4625), ctx)
    event_data = event["winlog"]["event_data"]
    assert set(event_data) == set(_4625_DATA)
    assert event["winlog"]["keywords"] == ["Audit Failure"]
    assert event["message"].startswith("An account failed")


def test_wazuh_lower_camel_case_names_are_restored(ctx: ParseContext) -> None:
    event = _parse(copy.deepcopy(WAZUH_4625), ctx)
    assert set(event["winlog"]["event_data"]) == set(_4625_DATA)
    assert event["message"] == "An account failed to log on."


def test_wazuh_win_security_samples_all_parse(ctx: ParseContext) -> None:
    rows = [orjson.loads(line) for line in
            (DATASETS / "logs" / "wazuh" / "win_security.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows
    for row in rows:
        source = orjson.loads(row["log"])["win"]
        event = _parse(row["log"], ctx)
        assert PARSE_FAILURE_TAG not in event.get("tags", ())
        assert event["winlog"]["event_id"] == source["system"]["eventID"]
        assert event["winlog"]["channel"] == "Security"
        assert event["host"]["name"] == source["system"]["computer"]
        assert event["user"]["name"] == source["eventdata"]["subjectUserName"]


def test_wazuh_4722_enabled_account_maps_target_user(ctx: ParseContext) -> None:
    row = orjson.loads((DATASETS / "logs" / "wazuh" / "win_security.jsonl").read_text(encoding="utf-8")
                       .splitlines()[0])
    event = _parse(row["log"], ctx)
    assert event["event"]["action"] == "enabled-user-account"
    assert event["user"]["target"]["name"] == "toby"
    assert event["winlog"]["event_data"]["TargetUserName"] == "toby"


@pytest.mark.parametrize("obj", [{"event_type": "alert", "timestamp": "x"}, {"Event": "text"}, {"EventID": 1},
                                 {"win": {"eventdata": {}}}, {"message": "hello"}])
def test_sniff_rejects_other_objects(obj: dict[str, Any]) -> None:
    assert not WindowsEventParser().sniff(obj)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_sniff_accepts_every_shape(shape: str) -> None:
    assert WindowsEventParser().sniff(SHAPES[shape])


def test_declared_windows_format_on_other_json_is_a_failure_event(ctx: ParseContext) -> None:
    event = _parse('{"message": "hello"}', ctx, fmt="windows")
    assert PARSE_FAILURE_TAG in event["tags"]


def test_processing_error_data_is_kept_in_event_data(ctx: ParseContext) -> None:
    record = copy.deepcopy(EVTX_4625)
    del record["Event"]["EventData"]
    record["Event"]["ProcessingErrorData"] = {"ErrorCode": 15005, "DataItemName": "TargetUserName",
                                              "EventPayload": "0100000000000000"}
    event = _parse(record, ctx)
    assert event["winlog"]["event_data"] == {"ErrorCode": 15005, "DataItemName": "TargetUserName",
                                             "EventPayload": "0100000000000000"}
    assert event["event"]["outcome"] == "failure"

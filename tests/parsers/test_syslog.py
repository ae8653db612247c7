"""Syslog header parsing (RFC 5424, RFC 3164 and real-world variants), year
inference, and the syslog parser's hand-off to program and embedded parsers."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.event import PARSE_FAILURE_TAG, Event, get_field
from collectors.parsers import LINE_PARSERS, Dispatcher, ParseContext
from collectors.parsers.base import PROGRAM_PARSERS, LineParser
from collectors.parsers.syslog import SyslogParser, infer_year, parse_structured_data, split_header
from tests.conftest import DATASETS

LOGHUB = DATASETS / "logs" / "loghub"
WAZUH = DATASETS / "logs" / "wazuh"
LOGHUB_FILES = ("OpenSSH", "Linux", "Thunderbird")
WAZUH_FILES = ("sshd", "pam", "sudo", "su", "syslog", "postfix", "dovecot", "named")
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@cache
def loghub_lines(system: str) -> tuple[str, ...]:
    path = LOGHUB / system / f"{system}_2k.log.part1"
    return tuple(path.read_text(encoding="utf-8").splitlines())


@cache
def wazuh_logs(name: str) -> tuple[str, ...]:
    lines = (WAZUH / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line)["log"] for line in lines if line.strip())


def parse(line: str, ctx: ParseContext) -> Event:
    return Dispatcher().parse(line, None, ctx)


def header(line: str, ctx: ParseContext) -> tuple[Event, str]:
    split = split_header(line, ctx)
    assert split is not None, line
    return split


# --- RFC 5424 (examples from RFC 5424 section 6.5) --------------------------------------

RFC5424_EXAMPLE_1 = ("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
                     "\ufeff'su root' failed for lonvick on /dev/pts/8")
RFC5424_EXAMPLE_2 = ("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
                     "%% It's time to make the do-nuts.")
RFC5424_EXAMPLE_3 = ('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
                     '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
                     '\ufeffAn application event log entry...')
RFC5424_EXAMPLE_4 = ('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
                     '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
                     '[examplePriority@32473 class="high"]')


def test_rfc5424_example_1_header_fields_and_bom_stripped(ctx: ParseContext) -> None:
    event, message = header(RFC5424_EXAMPLE_1, ctx)
    assert event["@timestamp"] == "2003-10-11T22:14:15.003Z"
    assert event["host"]["hostname"] == "mymachine.example.com"
    assert event["log"]["syslog"]["hostname"] == "mymachine.example.com"
    assert event["log"]["syslog"]["appname"] == "su"
    assert event["log"]["syslog"]["msgid"] == "ID47"
    assert event["log"]["syslog"]["version"] == "1"
    assert event["process"] == {"name": "su"}
    assert message == "'su root' failed for lonvick on /dev/pts/8"


def test_rfc5424_nilvalues_are_left_out(ctx: ParseContext) -> None:
    event, _ = header(RFC5424_EXAMPLE_1, ctx)
    assert "procid" not in event["log"]["syslog"]
    assert "structured_data" not in event["log"]["syslog"]


def test_rfc5424_example_2_offset_converted_to_utc_and_procid_kept(ctx: ParseContext) -> None:
    event, message = header(RFC5424_EXAMPLE_2, ctx)
    assert event["@timestamp"] == "2003-08-24T12:14:15.000Z"
    assert event["host"]["hostname"] == "192.0.2.1"
    assert event["log"]["syslog"]["procid"] == "8710"
    assert event["process"] == {"name": "myproc", "pid": 8710}
    assert "msgid" not in event["log"]["syslog"]
    assert message == "%% It's time to make the do-nuts."


def test_rfc5424_example_3_structured_data_and_message(ctx: ParseContext) -> None:
    event, message = header(RFC5424_EXAMPLE_3, ctx)
    assert event["log"]["syslog"]["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}}
    assert message == "An application event log entry..."


def test_rfc5424_example_4_two_sd_elements_and_no_message(ctx: ParseContext) -> None:
    event, message = header(RFC5424_EXAMPLE_4, ctx)
    assert event["log"]["syslog"]["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high"},
    }
    assert message == ""


def test_structured_data_param_values_are_unescaped() -> None:
    parsed = parse_structured_data(r'[id@1 a="say \"hi\"" b="x\]y" c="back\\slash"] rest')
    assert parsed == ({"id@1": {"a": 'say "hi"', "b": "x]y", "c": "back\\slash"}}, " rest")


def test_rfc5424_without_pri_is_still_read(ctx: ParseContext) -> None:
    event, message = header("1 2024-05-01T10:00:00Z web01 nginx 42 - - hello", ctx)
    assert event["@timestamp"] == "2024-05-01T10:00:00.000Z"
    assert event["process"] == {"name": "nginx", "pid": 42}
    assert message == "hello"


# --- PRI ------------------------------------------------------------------------------

@pytest.mark.parametrize(("pri", "facility", "severity"), [
    (0, ("kern", 0), ("emergency", 0)),
    (34, ("auth", 4), ("critical", 2)),
    (86, ("authpriv", 10), ("informational", 6)),
    (165, ("local4", 20), ("notice", 5)),
    (191, ("local7", 23), ("debug", 7)),
])
def test_pri_gives_priority_facility_and_severity(
        ctx: ParseContext, pri: int, facility: tuple[str, int], severity: tuple[str, int]) -> None:
    event, _ = header(f"<{pri}>Oct 11 22:14:15 host app: x", ctx)
    syslog = event["log"]["syslog"]
    assert syslog["priority"] == pri
    assert (syslog["facility"]["name"], syslog["facility"]["code"]) == facility
    assert (syslog["severity"]["name"], syslog["severity"]["code"]) == severity


def test_line_with_only_pri_returns_pri_fields_and_the_rest(ctx: ParseContext) -> None:
    event, message = header('<188>date=2020-04-23 time=12:17:48 devname="fw1"', ctx)
    assert event == {"log": {"syslog": {
        "priority": 188, "facility": {"code": 23, "name": "local7"},
        "severity": {"code": 4, "name": "warning"}}}}
    assert message == 'date=2020-04-23 time=12:17:48 devname="fw1"'


def test_octet_counting_frame_before_pri_is_skipped(ctx: ParseContext) -> None:
    event, message = header("62 <13>Oct 11 22:14:15 host app[7]: framed", ctx)
    assert event["log"]["syslog"]["priority"] == 13
    assert message == "framed"


# --- RFC 3164 and variants ---------------------------------------------------------------

def test_rfc3164_host_tag_and_pid(ctx: ParseContext) -> None:
    event, message = header("Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 1.2.3.4", ctx)
    assert event["host"] == {"hostname": "LabSZ"}
    assert event["process"] == {"name": "sshd", "pid": 24200}
    assert event["log"]["syslog"] == {"hostname": "LabSZ", "appname": "sshd", "procid": "24200"}
    assert message == "Invalid user webmaster from 1.2.3.4"


@pytest.mark.parametrize("line", [
    "Feb  9 11:44:56 someserver sshd[1234]: x",
    "Feb 9 11:44:56 someserver sshd[1234]: x",
    "Feb 09 11:44:56 someserver sshd[1234]: x",
])
def test_single_digit_day_padded_or_not(ctx: ParseContext, line: str) -> None:
    event, _ = header(line, ctx)
    # 11:44:56 in Asia/Ho_Chi_Minh (UTC+7) is 04:44:56 UTC.
    assert event["@timestamp"] == "2026-02-09T04:44:56.000Z"


def test_wall_clock_time_uses_the_context_time_zone() -> None:
    line = "Jul 18 09:21:57 localhost kernel: x"
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    in_hcm, _ = header(line, ParseContext(now=now))
    in_utc, _ = header(line, ParseContext(now=now, tz=UTC))
    assert in_hcm["@timestamp"] == "2026-07-18T02:21:57.000Z"
    assert in_utc["@timestamp"] == "2026-07-18T09:21:57.000Z"


def test_fractional_seconds_are_kept_to_milliseconds(ctx: ParseContext) -> None:
    event, _ = header("Jul 18 09:21:57.123456 localhost kernel: x", ctx)
    assert event["@timestamp"] == "2026-07-18T02:21:57.123Z"


def test_year_before_the_month_is_used(ctx: ParseContext) -> None:
    event, message = header("2015 Nov 13 13:40:01 ether rsyslogd-2177: imuxsock begins", ctx)
    assert event["@timestamp"] == "2015-11-13T06:40:01.000Z"
    assert event["host"]["hostname"] == "ether"
    assert event["process"] == {"name": "rsyslogd-2177"}
    assert message == "imuxsock begins"


def test_year_after_the_day_is_used(ctx: ParseContext) -> None:
    event, message = header("Jan 05 2024 10:00:00 asa01 : %ASA-6-302013: Built", ctx)
    assert event["@timestamp"] == "2024-01-05T03:00:00.000Z"
    assert event["host"]["hostname"] == "asa01"
    assert message == "%ASA-6-302013: Built"


def test_iso_timestamp_with_offset(ctx: ParseContext) -> None:
    event, message = header("2024-01-02T03:04:05+07:00 host prog[1]: msg", ctx)
    assert event["@timestamp"] == "2024-01-01T20:04:05.000Z"
    assert event["process"] == {"name": "prog", "pid": 1}
    assert message == "msg"


def test_iso_timestamp_without_offset_is_local_time(ctx: ParseContext) -> None:
    event, _ = header("2024-01-02T03:04:05 host prog: msg", ctx)
    assert event["@timestamp"] == "2024-01-01T20:04:05.000Z"


def test_iso_timestamp_with_space_microseconds_and_compact_offset(ctx: ParseContext) -> None:
    line = "2020-03-25 09:01:30.852002-0700  localhost sshd[11885]: Address 192.168.33.1 maps to hostname"
    event, message = header(line, ctx)
    assert event["@timestamp"] == "2020-03-25T16:01:30.852Z"
    assert event["host"]["hostname"] == "localhost"
    assert message.startswith("Address 192.168.33.1")


def test_iso_date_with_space_and_no_program_is_not_syslog(ctx: ParseContext) -> None:
    assert split_header("2015-07-28 15:07:26 1.2.3.4 GET /default.aspx - 80 - 31.3.3.7", ctx) is None


@pytest.mark.parametrize(("line", "name", "pid"), [
    ("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: x", "sshd(pam_unix)", 19939),
    ("May  8 08:26:55 mail postfix/smtpd[123]: x", "postfix/smtpd", 123),
    ("Apr 27 15:22:23 niban sudo:     dcid : x", "sudo", None),
    ("Jul 18 09:21:57 localhost kernel: x", "kernel", None),
    ("Jul 18 10:51:43 localhost NetworkManager[1366]: x", "NetworkManager", 1366),
    ("Jun 19 04:09:11 combo syslogd 1.4.1: restart.", "syslogd 1.4.1", None),
    ("Jul  7 08:06:15 combo  -- root[2421]: ROOT LOGIN ON tty2", "-- root", 2421),
])
def test_tag_forms(ctx: ParseContext, line: str, name: str, pid: int | None) -> None:
    event, _ = header(line, ctx)
    assert event["process"].get("name") == name
    assert event["process"].get("pid") == pid


def test_line_without_hostname_takes_the_tag(ctx: ParseContext) -> None:
    event, message = header("Jan 22 18:34:00 filterlog: 65,,,0,vmx1,match,pass", ctx)
    assert "host" not in event
    assert event["process"] == {"name": "filterlog"}
    assert message == "65,,,0,vmx1,match,pass"


def test_level_in_place_of_a_tag_without_hostname(ctx: ParseContext) -> None:
    event, message = header("Mar 13 15:25:07 Info: auth(default): pam(u,1.2.3.4): unknown user", ctx)
    assert event["log"]["level"] == "info"
    assert "process" not in event
    assert message == "auth(default): pam(u,1.2.3.4): unknown user"


def test_no_tag_keeps_the_host_and_the_whole_message(ctx: ParseContext) -> None:
    event, message = header("Feb 20 12:26:25 fw01 date=2011-02-20 devname=fw01", ctx)
    assert event["host"]["hostname"] == "fw01"
    assert message == "date=2011-02-20 devname=fw01"


def test_no_tag_and_no_host_keeps_the_whole_message(ctx: ParseContext) -> None:
    event, message = header("Feb 20 12:26:25 date=2011-02-20 time=12: 26:24 devname=x", ctx)
    assert "host" not in event
    assert message == "date=2011-02-20 time=12: 26:24 devname=x"


def test_impossible_date_still_counts_as_a_header(ctx: ParseContext) -> None:
    event, message = header("May 00 00:00:00 XXX-XX-00 1,2020/00/00 00:00:00,0,TRAFFIC", ctx)
    assert "@timestamp" not in event
    assert message == "1,2020/00/00 00:00:00,0,TRAFFIC"


def test_thunderbird_prefix_finds_the_embedded_header(ctx: ParseContext) -> None:
    line = ("- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: "
            "session closed for user root")
    event, message = header(line, ctx)
    # The collector's epoch seconds, not the node's zone-less wall clock.
    assert event["@timestamp"] == "2005-11-09T20:01:01.000Z"
    assert event["host"]["hostname"] == "dn228"
    assert event["log"]["syslog"]["hostname"] == "dn228/dn228"
    assert event["process"] == {"name": "crond(pam_unix)", "pid": 2915}
    assert message == "session closed for user root"


@pytest.mark.parametrize("line", [
    '192.168.4.25 - - [22/Dec/2016:16:33:52 +0300] "GET / HTTP/1.1" 200 3128',
    "2015/01/08 11:31:23 [error] 80:2 blah",
    "date=2016-06-14 time=12:22:01 devname=fw",
    "just some text",
    "",
])
def test_lines_without_a_header_return_none(ctx: ParseContext, line: str) -> None:
    assert split_header(line, ctx) is None
    assert SyslogParser().parse(line, ctx) is None


def test_trailing_whitespace_and_nul_are_trimmed_from_the_message(ctx: ParseContext) -> None:
    _, message = header("Apr  5 12:56:51 robin: Hello, syslog!\x00\r\n", ctx)
    assert message == "Hello, syslog!"


# --- year inference ----------------------------------------------------------------------

def test_year_is_the_current_one_for_a_past_date() -> None:
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    assert infer_year(3, 1, 10, 0, 0, now, UTC) == 2026


def test_december_line_read_in_january_belongs_to_last_year() -> None:
    now = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    assert infer_year(12, 31, 23, 59, 59, now, UTC) == 2025


def test_january_line_read_in_january_belongs_to_this_year() -> None:
    now = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    assert infer_year(1, 1, 0, 10, 0, now, UTC) == 2026


def test_clock_skew_of_less_than_a_day_crosses_into_the_new_year() -> None:
    now = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert infer_year(1, 1, 10, 0, 0, now, UTC) == 2026


def test_more_than_a_day_ahead_means_last_year() -> None:
    now = datetime(2025, 12, 30, 12, 0, tzinfo=UTC)
    assert infer_year(12, 31, 13, 0, 0, now, UTC) == 2024


def test_year_inference_uses_the_wall_clock_of_the_context_zone() -> None:
    # 2025-12-31T18:00Z is already 2026-01-01 01:00 in Ho Chi Minh City.
    now = datetime(2025, 12, 31, 18, 0, tzinfo=UTC)
    assert infer_year(1, 2, 0, 30, 0, now, HCM) == 2026
    assert infer_year(1, 2, 2, 0, 0, now, HCM) == 2025


def test_29_february_goes_to_the_latest_leap_year() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert infer_year(2, 29, 12, 0, 0, now, UTC) == 2024


def test_without_a_reference_time_the_current_time_is_used() -> None:
    this_year = datetime.now(UTC).year
    assert infer_year(1, 1, 0, 0, 0, None, UTC) in (this_year, this_year + 1)


def test_header_at_the_year_boundary_gets_the_previous_year() -> None:
    ctx = ParseContext(now=datetime(2026, 1, 1, 0, 5, tzinfo=UTC), tz=UTC)
    event, _ = header("Dec 31 23:59:58 host app: late", ctx)
    assert event["@timestamp"] == "2025-12-31T23:59:58.000Z"
    event, _ = header("Jan  1 00:04:00 host app: early", ctx)
    assert event["@timestamp"] == "2026-01-01T00:04:00.000Z"


# --- the syslog parser -------------------------------------------------------------------

def test_registered_with_its_aliases_and_priority() -> None:
    parser = LINE_PARSERS["syslog"]
    assert isinstance(parser, SyslogParser)
    assert parser.aliases == ("rfc3164", "rfc5424")
    assert parser.priority == 90
    assert parser.embeddable is False


@pytest.mark.parametrize("fmt", ["syslog", "rfc3164", "rfc5424"])
def test_declared_format_and_aliases_parse(ctx: ParseContext, fmt: str) -> None:
    event = Dispatcher().parse("Jul 18 09:21:57 localhost kernel: hello", fmt, ctx)
    assert event["message"] == "hello"
    assert PARSE_FAILURE_TAG not in event.get("tags", [])


def test_unknown_program_gives_a_generic_syslog_event(ctx: ParseContext) -> None:
    event = parse("Jul 18 09:21:57 localhost kernel: nouveau E[  PGRAPH] DATA_ERROR", ctx)
    assert event["event"] == {"kind": "event", "dataset": "syslog"}
    assert event["message"] == "nouveau E[  PGRAPH] DATA_ERROR"
    assert event["process"]["name"] == "kernel"


def test_program_parser_gets_program_message_and_header_event(
        ctx: ParseContext, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, str]] = []

    def fake(program: str, message: str, event: Event, pctx: ParseContext) -> bool:
        seen.append((program, message, event["host"]["hostname"]))
        event["event"] = {"kind": "event", "dataset": "fake.log"}
        return True

    monkeypatch.setitem(PROGRAM_PARSERS, "fakeprog", fake)
    event = parse("Jul 18 09:21:57 box fakeprog/worker[9]: payload here", ctx)
    assert seen == [("fakeprog/worker", "payload here", "box")]
    assert event["event"]["dataset"] == "fake.log"
    assert event["message"] == "payload here"


def test_program_parser_that_declines_leaves_a_generic_event(
        ctx: ParseContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROGRAM_PARSERS, "fakeprog", lambda *args: False)
    event = parse("Jul 18 09:21:57 box fakeprog: payload", ctx)
    assert event["event"]["dataset"] == "syslog"


class _Embedded(LineParser):
    name = "test_embedded"
    embeddable = True
    priority = 5
    body: ClassVar[dict[str, Any]] = {}

    def sniff(self, line: str) -> bool:
        return line.startswith("EMBED ")

    def parse(self, line: str, ctx: ParseContext) -> Event | None:
        return json.loads(json.dumps(self.body))


def test_embeddable_body_is_merged_over_the_header(ctx: ParseContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Embedded, "body", {
        "@timestamp": "2024-01-01T00:00:00.000Z",
        "host": {"hostname": "from-body", "ip": "10.0.0.9"},
        "event": {"kind": "event", "dataset": "embedded.log", "original": "EMBED x"},
        "source": {"ip": "1.2.3.4"},
    })
    monkeypatch.setitem(LINE_PARSERS, "test_embedded", _Embedded())
    line = "<13>Jul 18 09:21:57 web01 someapp[5]: EMBED x"
    event = parse(line, ctx)
    assert event["@timestamp"] == "2024-01-01T00:00:00.000Z"
    assert event["host"] == {"hostname": "web01", "ip": "10.0.0.9"}
    assert event["log"]["syslog"]["hostname"] == "web01"
    assert event["log"]["syslog"]["priority"] == 13
    assert event["event"]["dataset"] == "embedded.log"
    assert event["event"]["original"] == line
    assert event["source"]["ip"] == "1.2.3.4"
    assert event["message"] == "EMBED x"


def test_embeddable_body_without_timestamp_keeps_the_header_time(
        ctx: ParseContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Embedded, "body", {"event": {"kind": "event", "dataset": "embedded.log"}})
    monkeypatch.setitem(LINE_PARSERS, "test_embedded", _Embedded())
    event = parse("Jul 18 09:21:57 web01 someapp: EMBED y", ctx)
    assert event["@timestamp"] == "2026-07-18T02:21:57.000Z"
    assert event["event"]["dataset"] == "embedded.log"


def test_unregistered_program_with_pam_tag_is_read_as_pam(ctx: ParseContext) -> None:
    event = parse("Jun 14 15:16:01 combo xyzd(pam_unix)[1]: authentication failure; logname= uid=0 "
                  "euid=0 tty= ruser= rhost=10.9.8.7  user=bob", ctx)
    assert event["event"]["action"] == "authentication_failure"
    assert event["user"]["name"] == "bob"
    assert event["source"]["ip"] == "10.9.8.7"


def test_unregistered_program_with_pam_message_is_read_as_pam(ctx: ParseContext) -> None:
    event = parse("Jun 14 15:16:01 combo xyzd[1]: pam_unix(xyzd:session): session opened for user bob "
                  "by (uid=0)", ctx)
    assert event["event"]["action"] == "session_opened"
    assert event["user"]["name"] == "bob"


# --- real data ------------------------------------------------------------------------------

@pytest.mark.parametrize("system", LOGHUB_FILES)
def test_loghub_lines_parse_by_auto_detection(ctx: ParseContext, system: str) -> None:
    lines = loghub_lines(system)
    dispatcher = Dispatcher()
    failed = [line for line in lines
              if PARSE_FAILURE_TAG in dispatcher.parse(line, None, ctx).get("tags", [])]
    assert len(failed) <= len(lines) // 100, failed[:5]


# Loghub's CSV columns: OpenSSH's "Component" holds the host (it has no program column).
_CSV_COLUMNS = {
    "OpenSSH": ("host.hostname", "Component", "Pid"),
    "Linux": ("process.name", "Component", "PID"),
    "Thunderbird": ("process.name", "Component", "PID"),
}


@pytest.mark.parametrize("system", LOGHUB_FILES)
def test_loghub_header_fields_match_the_structured_csv(ctx: ParseContext, system: str) -> None:
    field, component, pid = _CSV_COLUMNS[system]
    path = LOGHUB / system / f"{system}_2k.log_structured.part1.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    dispatcher = Dispatcher()
    mismatches = []
    for line, row in zip(loghub_lines(system), rows, strict=True):
        event = dispatcher.parse(line, None, ctx)
        got = (get_field(event, field), get_field(event, "process.pid"), event.get("message"))
        expected = (row[component], int(row[pid]) if row[pid] else None, row["Content"].strip())
        if got != expected:
            mismatches.append((row["LineId"], got, expected))
    assert mismatches == []


def test_loghub_thunderbird_host_is_the_node_of_the_prefix(ctx: ParseContext) -> None:
    path = LOGHUB / "Thunderbird" / "Thunderbird_2k.log_structured.part1.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for line, row in zip(loghub_lines("Thunderbird"), rows, strict=True):
        event = parse(line, ctx)
        assert event["host"]["hostname"] == row["User"]
        assert event["log"]["syslog"]["hostname"] == row["Location"]


@pytest.mark.parametrize("name", WAZUH_FILES)
def test_wazuh_lines_with_a_syslog_header_all_parse(ctx: ParseContext, name: str) -> None:
    logs = wazuh_logs(name)
    assert logs
    for log in logs:
        assert split_header(log, ctx) is not None, log
        event = parse(log, ctx)
        assert PARSE_FAILURE_TAG not in event.get("tags", []), log
        assert event["message"]


def test_wazuh_generic_lines_keep_host_and_program(ctx: ParseContext) -> None:
    event = parse(wazuh_logs("syslog")[1], ctx)
    assert event["host"]["hostname"] == "localhost"
    assert event["process"] == {"name": "NetworkManager", "pid": 1366}
    assert event["message"].startswith("<warn> (enp1s0) firewall zone remove failed")

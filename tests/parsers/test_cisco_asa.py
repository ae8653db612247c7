"""Cisco ASA parser, on Wazuh's labelled ASA lines and messages written as the
Cisco ASA syslog reference documents them."""

from __future__ import annotations

import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.parsers import ParseContext
from collectors.parsers.cisco_asa import CiscoAsaParser
from tests.conftest import DATASETS
from tests.parsers.helpers import failed as _failed
from tests.parsers.helpers import parse as _parse
from tests.parsers.helpers import wazuh_logs

WAZUH = DATASETS / "firewall" / "wazuh" / "cisco_asa.jsonl"


def _wazuh() -> tuple[str, ...]:
    return wazuh_logs(WAZUH)


def _wazuh_line(contains: str) -> str:
    return next(line for line in _wazuh() if contains in line)


# --- whole file ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [None, "cisco_asa", "asa"])
def test_every_wazuh_line_parses(fmt: str | None, ctx: ParseContext) -> None:
    events = [_parse(line, ctx, fmt) for line in _wazuh()]
    assert [e for e in events if _failed(e)] == []


def test_every_line_keeps_message_id_level_and_text(ctx: ParseContext) -> None:
    for line in _wazuh():
        event = _parse(line, ctx)
        msg_id = line[7:13]
        assert event["event"]["code"] == event["cisco"]["asa"]["message_id"] == msg_id
        assert event["event"]["dataset"] == "cisco.asa"
        assert event["message"] == line[15:]
        assert event["observer"]["vendor"] == "Cisco"


def test_severity_gives_log_level(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-3-710003"), ctx)
    assert event["log"]["level"] == "errors"
    assert event["event"]["severity"] == 3


# --- chosen messages -------------------------------------------------------------


def test_106023_deny_by_access_group(ctx: ParseContext) -> None:
    line = (
        "Jun 10 12:00:00 10.0.0.1 %ASA-4-106023: Deny tcp src outside:192.0.2.10/52424 "
        'dst inside:10.1.1.5/23 by access-group "outside_access_in" [0x0, 0x0]'
    )
    event = _parse(line, ctx)
    assert event["source"] == {"ip": "192.0.2.10", "port": 52424}
    assert event["destination"] == {"ip": "10.1.1.5", "port": 23}
    assert event["rule"]["name"] == "outside_access_in"
    assert event["observer"]["ingress"]["interface"]["name"] == "outside"
    assert event["observer"]["egress"]["interface"]["name"] == "inside"
    assert event["network"]["transport"] == "tcp"
    assert event["event"]["action"] == "firewall-rule"
    assert event["event"]["outcome"] == "failure"
    assert event["event"]["type"] == ["connection", "denied"]
    assert event["host"]["hostname"] == event["observer"]["hostname"] == "10.0.0.1"
    assert event["@timestamp"] == "2026-06-10T05:00:00.000Z"


def test_106023_icmp_deny_reads_type_and_code(ctx: ParseContext) -> None:
    line = (
        "%ASA-4-106023: Deny icmp src outside:192.0.2.10 dst inside:10.1.1.5 (type 8, code 0) "
        'by access-group "outside_access_in" [0x0, 0x0]'
    )
    event = _parse(line, ctx)
    assert event["network"]["transport"] == "icmp"
    assert event["cisco"]["asa"]["icmp_type"] == "8"
    assert "port" not in event["source"]


def test_302013_outbound_built_takes_the_inside_side_as_source(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-6-302013"), ctx)
    assert event["source"] == {"ip": "10.1.1.2", "port": 53496}
    assert event["destination"] == {"ip": "10.1.2.1", "port": 22}
    assert event["observer"]["ingress"]["interface"]["name"] == "inside"
    assert event["network"]["direction"] == "outbound"
    assert event["cisco"]["asa"]["connection_id"] == "9"
    assert event["event"]["action"] == "connection-built"
    assert event["event"]["type"] == ["connection", "start"]


def test_302013_inbound_with_pri_header_and_mapped_address(ctx: ParseContext) -> None:
    line = (
        "<166>Jan 05 2024 10:00:00 fw01 : %ASA-6-302013: Built inbound TCP connection 1234 for "
        "outside:203.0.113.5/51234 (203.0.113.5/51234) to inside:10.0.0.10/443 (198.51.100.10/443)"
    )
    event = _parse(line, ctx)
    assert event["source"] == {"ip": "203.0.113.5", "port": 51234}
    assert event["destination"]["ip"] == "10.0.0.10"
    assert event["destination"]["nat"] == {"ip": "198.51.100.10", "port": 443}
    assert event["log"]["syslog"]["facility"]["name"] == "local4"
    assert event["observer"]["hostname"] == "fw01"
    assert event["@timestamp"] == "2024-01-05T03:00:00.000Z"


def test_302014_teardown_reads_duration_bytes_and_reason(ctx: ParseContext) -> None:
    line = (
        "%ASA-6-302014: Teardown TCP connection 123 for outside:1.2.3.4/80 to inside:10.1.1.1/5000 "
        "duration 1:02:03 bytes 99999 TCP FINs (LOCAL\\bob)"
    )
    event = _parse(line, ctx)
    assert event["event"]["duration"] == 3723 * 1_000_000_000
    assert event["network"]["bytes"] == 99999
    assert event["event"]["reason"] == "TCP FINs"
    assert event["user"]["name"] == "LOCAL\\bob"
    assert event["event"]["action"] == "connection-teardown"


def test_302021_icmp_teardown_parses_addresses(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-6-302021"), ctx)
    assert event["network"]["transport"] == "icmp"
    assert event["source"]["ip"] == "10.1.2.1"
    assert event["destination"]["ip"] == "10.1.1.2"


def test_302020_faddr_form_inbound(ctx: ParseContext) -> None:
    line = "%ASA-6-302020: Built inbound ICMP connection for faddr 10.0.0.1/1 gaddr 10.0.0.2/0 laddr 10.0.0.3/0"
    event = _parse(line, ctx)
    assert event["source"]["ip"] == "10.0.0.1"
    assert event["destination"]["ip"] == "10.0.0.3"
    assert event["destination"]["nat"]["ip"] == "10.0.0.2"


def test_113005_aaa_rejection_is_failed_logon(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-6-113005"), ctx)
    assert event["event"]["category"] == ["authentication"]
    assert event["event"]["action"] == "logon-failed"
    assert event["event"]["outcome"] == "failure"
    assert event["user"]["name"] == "user"
    assert event["source"]["ip"] == "192.168.0.1"
    assert event["server"]["ip"] == "174.143.32.22"
    assert event["event"]["reason"] == "string"


def test_113004_aaa_success_is_successful_logon(ctx: ParseContext) -> None:
    event = _parse("%ASA-6-113004: AAA user authentication Successful : server = 10.1.1.1 : user = admin", ctx)
    assert event["event"]["action"] == "logon-success"
    assert event["event"]["outcome"] == "success"
    assert event["user"]["name"] == "admin"


def test_605004_login_denied_reads_user_and_service(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-6-605004"), ctx)
    assert event["user"]["name"] == "root"
    assert event["source"] == {"ip": "192.168.2.10", "port": 32597}
    assert event["destination"] == {"ip": "192.168.2.14", "port": 22}
    assert event["network"]["protocol"] == "ssh"
    assert event["event"]["outcome"] == "failure"
    assert event["event"]["category"] == ["authentication"]


def test_605005_login_permitted_is_success(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-6-605005"), ctx)
    assert event["event"]["outcome"] == "success"
    assert event["user"]["name"] == "username"


def test_611103_logout(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-5-611103"), ctx)
    assert event["user"]["name"] == "impssnagios"
    assert event["event"]["type"] == ["end"]


def test_111010_command_records_user_source_and_command(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-5-111010"), ctx)
    assert event["user"]["name"] == "pgskyadm"
    assert event["source"]["ip"] == "143.16.64.46"
    assert event["cisco"]["asa"]["command_line"] == "terminal pager 0"
    assert event["event"]["category"] == ["configuration"]


def test_111004_failed_configuration_end_is_failure(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-5-111004"), ctx)
    assert event["event"]["category"] == ["configuration"]
    assert event["event"]["outcome"] == "failure"


def test_106100_permitted_access_list_hit(ctx: ParseContext) -> None:
    line = (
        "%ASA-6-106100: access-list inside_in permitted tcp inside/10.1.1.2(1234) -> "
        "outside/8.8.8.8(443) hit-cnt 1 first hit [0x1, 0x2]"
    )
    event = _parse(line, ctx)
    assert event["rule"]["name"] == "inside_in"
    assert event["event"]["outcome"] == "success"
    assert event["event"]["type"] == ["connection", "allowed"]
    assert event["destination"] == {"ip": "8.8.8.8", "port": 443}


def test_710003_acl_denial(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-3-710003"), ctx)
    assert event["source"] == {"ip": "192.168.0.1", "port": 11}
    assert event["destination"] == {"ip": "192.168.0.2", "port": 22}
    assert event["event"]["outcome"] == "failure"


def test_305011_translation_maps_nat_address(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-6-305011"), ctx)
    assert event["source"]["ip"] == "10.235.50.55"
    assert event["source"]["nat"] == {"ip": "193.17.116.1", "port": 58159}


def test_106014_icmp_deny(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-3-106014"), ctx)
    assert event["source"]["ip"] == "151.80.47.231"
    assert event["event"]["type"] == ["connection", "denied"]


def test_vpn_session_reads_group_user_and_address(ctx: ParseContext) -> None:
    line = "%ASA-6-716001: Group <DfltGrpPolicy> User <john> IP <172.16.1.1> WebVPN session started."
    event = _parse(line, ctx)
    assert event["user"]["name"] == "john"
    assert event["group"]["name"] == "DfltGrpPolicy"
    assert event["source"]["ip"] == "172.16.1.1"
    assert event["event"]["action"] == "vpn-session-started"


def test_733100_threat_detection_is_an_alert(ctx: ParseContext) -> None:
    line = (
        "%ASA-4-733100: [ Scanning] drop rate-1 exceeded. Current burst rate is 10 per second, max "
        "configured rate is 10; Current average rate is 5 per second, max configured rate is 5; "
        "Cumulative total count is 3000"
    )
    event = _parse(line, ctx)
    assert event["event"]["kind"] == "alert"
    assert event["rule"]["name"] == "Scanning"
    assert event["cisco"]["asa"]["cumulative_total_count"] == "3000"


def test_ips_message_reads_signature(ctx: ParseContext) -> None:
    event = _parse("%ASA-4-400010: IPS:2001 ICMP Echo Reply from 10.10.10.1 to 192.168.1.1 on interface outside", ctx)
    assert event["rule"] == {"id": "2001", "name": "ICMP Echo Reply"}
    assert event["event"]["category"] == ["intrusion_detection"]


def test_unknown_message_id_still_parses(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("%ASA-1-505015"), ctx)
    assert event["event"]["code"] == "505015"
    assert event["log"]["level"] == "alerts"
    assert event["message"] == 'Module ips, application up "IPS", version "7.2(2)E4" Normal Operation'
    assert "action" not in event["event"]


def test_ftd_message_names_the_product(ctx: ParseContext) -> None:
    event = _parse("%FTD-6-302013: Built inbound TCP connection 5 for outside:1.1.1.1/1 to inside:2.2.2.2/2", ctx)
    assert event["observer"]["product"] == "Firepower Threat Defense"
    assert event["source"]["ip"] == "1.1.1.1"


def test_line_without_asa_marker_is_not_claimed(ctx: ParseContext) -> None:
    assert CiscoAsaParser().parse("Jun 10 12:00:00 host sshd[1]: Accepted password for bob", ctx) is None

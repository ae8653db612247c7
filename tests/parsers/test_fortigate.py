"""FortiGate key=value parser, on Elastic's pipeline test lines (with ``<PRI>``) and
Wazuh's labelled FortiOS v4–v6 lines."""

from __future__ import annotations

import re
from functools import cache

import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.parsers import ParseContext
from collectors.parsers.fortigate import FortigateParser, split_pairs
from tests.conftest import DATASETS
from tests.parsers.helpers import failed as _failed
from tests.parsers.helpers import parse as _parse
from tests.parsers.helpers import wazuh_logs

ODD_LINES = DATASETS / "firewall" / "elastic" / "test-fortinet.odd-lines.log"
WAZUH = DATASETS / "firewall" / "wazuh" / "fortigate.jsonl"
# An independent count of the pairs in a line: a key right after the start, a
# space or the PRI's ">", then "=".
_KEY = re.compile(r'(?:^|(?<=[\s>]))([A-Za-z_][\w.-]*)=(?:"[^"]*"|\S*)')


@cache
def _odd_lines() -> tuple[str, ...]:
    return tuple(line for line in ODD_LINES.read_text(encoding="utf-8").splitlines() if line.strip())


def _wazuh() -> tuple[str, ...]:
    return wazuh_logs(WAZUH)


def _wazuh_line(contains: str) -> str:
    return next(line for line in _wazuh() if contains in line)


def _odd_line(contains: str) -> str:
    return next(line for line in _odd_lines() if contains in line)


# --- whole files -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", [None, "fortigate"])
def test_every_elastic_line_parses(fmt: str | None, ctx: ParseContext) -> None:
    events = [_parse(line, ctx, fmt) for line in _odd_lines()]
    assert [e for e in events if _failed(e)] == []
    assert {e["event"]["dataset"] for e in events} == {"fortinet.firewall"}


@pytest.mark.parametrize("fmt", [None, "fortinet"])
def test_every_wazuh_line_parses(fmt: str | None, ctx: ParseContext) -> None:
    events = [_parse(line, ctx, fmt) for line in _wazuh()]
    assert [e for e in events if _failed(e)] == []


@pytest.mark.parametrize("source", ["elastic", "wazuh"])
def test_every_key_value_pair_is_kept(source: str, ctx: ParseContext) -> None:
    lines = _odd_lines() if source == "elastic" else _wazuh()
    for line in lines:
        kept = _parse(line, ctx)["fortinet"]["firewall"]
        assert set(kept) == set(_KEY.findall(line)), line


def test_quoted_values_lose_their_quotes_and_keep_spaces(ctx: ParseContext) -> None:
    kept = _parse(_odd_lines()[0], ctx)["fortinet"]["firewall"]
    assert kept["msg"] == "URL belongs to a denied category in policy"
    assert kept["catdesc"] == "Internet Telephony"
    assert kept["srcip"] == "192.168.2.1"


def test_empty_quoted_value_is_kept(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line('cfgattr=""'), ctx)
    assert event["fortinet"]["firewall"]["cfgattr"] == ""


def test_pri_gives_syslog_facility_and_severity(ctx: ParseContext) -> None:
    event = _parse(_odd_lines()[0], ctx)
    assert event["log"]["syslog"]["priority"] == 188
    assert event["log"]["syslog"]["facility"] == {"code": 23, "name": "local7"}
    assert event["log"]["syslog"]["severity"]["code"] == 4
    assert event["log"]["level"] == "warning"


def test_syslog_header_in_front_gives_host(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("Mar 22 19:21:00 10.10.10.10"), ctx)
    assert event["host"]["hostname"] == "10.10.10.10"
    assert event["observer"]["name"] == "Text"
    assert event["@timestamp"] == "2016-03-22T12:20:46.000Z"  # the device's date/time, ctx.tz


# --- timestamps ------------------------------------------------------------------


def test_eventtime_in_nanoseconds_sets_timestamp(ctx: ParseContext) -> None:
    event = _parse(_odd_lines()[0], ctx)  # eventtime=1587230269052907555
    assert event["@timestamp"] == "2020-04-18T17:17:49.052Z"


def test_eventtime_in_seconds_sets_timestamp(ctx: ParseContext) -> None:
    event = _parse(_odd_line("eventtime=1591788391 "), ctx)
    assert event["@timestamp"] == "2020-06-10T11:26:31.000Z"


def test_date_and_time_use_tz_offset_when_no_eventtime(ctx: ParseContext) -> None:
    line = 'date=2024-05-01 time=10:00:00 devname="fw" logid="0000000013" type="traffic" tz="+0700" action="deny"'
    assert _parse(line, ctx)["@timestamp"] == "2024-05-01T03:00:00.000Z"


def test_date_and_time_without_tz_use_context_zone(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("IPsec DPD failed"), ctx)  # date=2016-06-15 time=10:42:31
    assert event["@timestamp"] == "2016-06-15T03:42:31.000Z"


def test_v4_split_time_is_repaired_and_fragment_kept(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("time=12: 26:24"), ctx)
    assert not _failed(event)
    assert event["fortinet"]["firewall"]["time"] == "12:"
    assert event["fortinet"]["unparsed"] == "26:24"
    assert event["@timestamp"] == "2011-02-20T05:26:24.000Z"


# --- ECS mapping -----------------------------------------------------------------


def test_observer_and_endpoints_are_mapped(ctx: ParseContext) -> None:
    event = _parse(_odd_lines()[0], ctx)
    assert event["observer"] == {
        "vendor": "Fortinet", "product": "FortiGate", "type": "firewall",
        "name": "testswitch1", "serial_number": "somerouterid",
        "ingress": {"interface": {"name": "port1"}}, "egress": {"interface": {"name": "wan1"}},
    }  # fmt: skip
    assert event["source"]["ip"] == "192.168.2.1"
    assert event["source"]["port"] == 61930
    assert event["destination"]["ip"] == "67.43.156.13"
    assert event["destination"]["port"] == 443
    assert event["network"]["transport"] == "tcp"
    assert event["network"]["iana_number"] == "6"
    assert event["user"]["name"] == "elasticuser"
    assert event["rule"]["id"] == "100602"
    assert event["event"]["code"] == "0316013056"
    assert event["event"]["module"] == "fortinet"


def test_v6_traffic_maps_nat_bytes_and_packets(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line('sessionid=359260 proto=6 action="close"'), ctx)
    assert event["source"]["nat"] == {"ip": "172.16.200.2", "port": 60446}
    assert event["source"]["bytes"] == 412
    assert event["destination"]["bytes"] == 2286
    assert event["network"]["bytes"] == 2698
    assert event["source"]["packets"] == event["destination"]["packets"] == 6
    assert event["event"]["outcome"] == "success"
    assert event["event"]["type"] == ["connection", "allowed"]


def test_v4_traffic_deny_uses_v4_key_names(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("time=12: 26:24"), ctx)
    assert event["source"] == {"ip": "10.10.10.10", "port": 1111, "bytes": 0}
    assert event["destination"]["ip"] == "10.20.30.40"
    assert event["observer"]["serial_number"] == "FGXXXX0000000001"
    assert event["event"]["code"] == "9999999999"
    assert event["event"]["action"] == "deny"
    assert event["event"]["outcome"] == "failure"
    assert event["event"]["category"] == ["network"]
    assert event["event"]["type"] == ["connection", "denied"]


def test_policy_name_is_rule_name(ctx: ParseContext) -> None:
    event = _parse(_odd_line('policyname="elasticnewruleset"'), ctx)
    assert event["rule"]["name"] == "elasticnewruleset"
    assert event["network"]["transport"] == "udp"


def test_webfilter_block_maps_url_and_denial(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("authrootstl.cab"), ctx)
    assert event["url"]["domain"] == "www.download.windowsupdate.com"
    assert event["url"]["path"] == "/msdownload/update/v3/static/trustedr/en/authrootstl.cab"
    assert event["url"]["original"] == event["url"]["path"]
    assert event["event"]["category"] == ["network"]
    assert event["event"]["outcome"] == "failure"
    assert event["message"] == "URL was blocked because it is in the URL filter list"


def test_dns_utm_maps_question(ctx: ParseContext) -> None:
    event = _parse(_odd_line('qname="elastic.example.com"'), ctx)
    assert event["dns"]["question"] == {"name": "elastic.example.com", "type": "A"}
    assert event["dns"]["resolved_ip"] == ["67.43.156.13", "67.43.156.13"]


def test_ips_log_is_an_intrusion_alert(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line('subtype="ips"'), ctx)
    assert event["event"]["kind"] == "alert"
    assert event["event"]["category"] == ["intrusion_detection"]
    assert event["event"]["outcome"] == "failure"
    assert event["fortinet"]["firewall"]["attack"] == "Adobe.Flash.newfunction.Handling.Code.Execution"


def test_anomaly_log_is_an_intrusion_alert(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("tcp_syn_flood"), ctx)
    assert event["event"]["category"] == ["intrusion_detection"]
    assert event["source"]["ip"] == "10.10.10.35"


def test_virus_log_is_a_malware_alert(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("EICAR_TEST_FILE"), ctx)
    assert event["event"]["category"] == ["malware"]
    assert event["file"]["name"] == "eicar.com"
    assert event["url"]["domain"] == "172.16.200.55"
    assert event["url"]["path"] == "/virus/eicar.com"
    assert event["user_agent"]["original"] == "curl/7.47.0"


def test_configuration_edit_is_a_change(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line('cfgattr="failed-connection'), ctx)
    assert event["event"]["category"] == ["configuration"]
    assert event["event"]["type"] == ["change"]
    assert event["event"]["action"] == "Edit"
    assert event["user"]["name"] == "a@b.com.na"
    assert event["source"]["ip"] == "10.42.8.253"  # from ui="GUI(10.42.8.253)"


def test_configuration_add_is_a_creation(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("action=Add"), ctx)
    assert event["event"]["category"] == ["configuration"]
    assert event["event"]["type"] == ["creation"]


def test_admin_logout_is_authentication_end(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("Admin logout successful"), ctx)
    assert event["event"]["category"] == ["authentication"]
    assert event["event"]["type"] == ["end"]
    assert event["event"]["outcome"] == "success"


def test_admin_login_failure_is_failed_authentication(ctx: ParseContext) -> None:
    line = (
        'date=2019-05-10 time=11:50:48 logid="0100032002" type="event" subtype="system" level="alert" '
        'vd="root" eventtime=1557514248 logdesc="Admin login failed" sn="0" user="admin" '
        'ui="https(10.1.100.1)" method="https" srcip=10.1.100.1 dstip=10.1.100.5 action="login" '
        'status="failed" reason="passwd_invalid" msg="Administrator admin login failed from https(10.1.100.1)"'
    )
    event = _parse(line, ctx)
    assert event["event"]["category"] == ["authentication"]
    assert event["event"]["type"] == ["start"]
    assert event["event"]["outcome"] == "failure"
    assert event["event"]["reason"] == "passwd_invalid"
    assert event["source"]["ip"] == "10.1.100.1"
    assert event["related"]["user"] == ["admin"]


def test_ssl_vpn_tunnel_maps_remote_ip_and_user(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("SSL VPN tunnel down"), ctx)
    assert event["source"]["ip"] == "5.7.8.9"
    assert event["user"]["name"] == "my_user_name"
    assert event["event"]["duration"] == 147_000_000_000


def test_na_values_are_not_mapped(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("IPsec DPD failed"), ctx)
    assert event["fortinet"]["firewall"]["user"] == "N/A"
    assert "user" not in event


# --- detection -------------------------------------------------------------------


def test_split_pairs_reports_fragments() -> None:
    pairs, leftover = split_pairs('a=1 b="x y" stray c=')
    assert pairs == {"a": "1", "b": "x y", "c": ""}
    assert leftover == ["stray"]


def test_line_without_fortigate_keys_is_not_claimed(ctx: ParseContext) -> None:
    assert FortigateParser().parse("user=bob action=login", ctx) is None

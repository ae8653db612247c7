"""Suricata EVE JSON parser, on Elastic's, Wazuh's and suricata-verify's EVE lines."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.event import PARSE_FAILURE_TAG, Event
from collectors.parsers import Dispatcher, ParseContext
from collectors.parsers.suricata import SuricataEveParser
from tests.conftest import DATASETS

SURICATA = DATASETS / "suricata"
SMALL = SURICATA / "elastic" / "test-eve-small.log"


@cache
def _small_lines() -> tuple[str, ...]:
    return tuple(line for line in SMALL.read_text(encoding="utf-8").splitlines() if line.strip())


def _parse(line: str | dict[str, Any], ctx: ParseContext) -> Event:
    return Dispatcher().parse(line, None, ctx)


def _small(ctx: ParseContext, event_type: str, nth: int = 0) -> tuple[dict[str, Any], Event]:
    lines = [line for line in _small_lines() if orjson.loads(line)["event_type"] == event_type]
    return orjson.loads(lines[nth]), _parse(lines[nth], ctx)


def test_small_eve_lines_all_parse_with_their_event_types(ctx: ParseContext) -> None:
    events = [_parse(line, ctx) for line in _small_lines()]
    assert [e["suricata"]["eve"]["event_type"] for e in events] == [
        "ssh", "alert", "http", "fileinfo", "dns", "stats", "tls", "flow", "http", "tls", "http", "tls"]
    assert all(PARSE_FAILURE_TAG not in e.get("tags", ()) for e in events)
    assert {e["event"]["dataset"] for e in events} == {"suricata.eve"}
    assert {e["event"]["module"] for e in events} == {"suricata"}


def test_alert_maps_rule_severity_and_action(ctx: ParseContext) -> None:
    _, event = _small(ctx, "alert")
    assert event["event"]["kind"] == "alert"
    assert event["event"]["category"] == ["network", "intrusion_detection"]
    assert event["rule"]["id"] == "2024833"
    assert event["rule"]["name"] == "ET POLICY Observed IP Lookup Domain (l2 .io in TLS SNI)"
    assert event["rule"]["category"] == "Potential Corporate Privacy Violation"
    assert event["event"]["severity"] == 1
    assert event["event"]["action"] == "allowed"
    assert event["tls"]["client"]["server_name"] == "l2.io"


def test_blocked_alert_is_denied(ctx: ParseContext) -> None:
    eve, _ = _small(ctx, "alert")
    eve["alert"]["action"] = "blocked"
    event = _parse(eve, ctx)
    assert event["event"]["action"] == "blocked"
    assert event["event"]["type"] == ["denied"]


def test_endpoints_and_transport_come_from_the_five_tuple(ctx: ParseContext) -> None:
    eve, event = _small(ctx, "alert")
    assert event["source"]["ip"] == eve["src_ip"]
    assert event["source"]["port"] == eve["src_port"]
    assert event["destination"]["ip"] == eve["dest_ip"]
    assert event["destination"]["port"] == eve["dest_port"]
    assert event["network"]["transport"] == "tcp"
    assert event["@timestamp"] == "2018-07-05T19:07:20.910Z"


def test_flow_counters_map_to_bytes_and_packets(ctx: ParseContext) -> None:
    eve, event = _small(ctx, "flow")
    assert event["event"]["category"] == ["network"]
    assert event["event"]["type"] == ["connection", "end"]
    assert event["source"]["bytes"] == eve["flow"]["bytes_toserver"]
    assert event["destination"]["packets"] == eve["flow"]["pkts_toclient"]
    assert event["network"]["bytes"] == eve["flow"]["bytes_toserver"] + eve["flow"]["bytes_toclient"]
    assert event["source"]["ip"] == "fe80::fada:cff:fedc:87f1"  # IPv6 in canonical form


def test_dns_v1_answer_maps_question_and_answer(ctx: ParseContext) -> None:
    _, event = _small(ctx, "dns")
    dns = event["dns"]
    assert dns["question"] == {"name": "clients.l.google.com", "type": "A"}
    assert dns["response_code"] == "NOERROR"
    assert dns["type"] == "answer"
    assert dns["answers"]["data"] == ["175.16.199.1"]
    assert dns["resolved_ip"] == ["175.16.199.1"]
    assert event["event"]["category"] == ["network"]


def test_dns_v2_answer_list_maps_every_answer(ctx: ParseContext) -> None:
    eve = {"timestamp": "2024-05-02T08:15:30.000123+0700", "flow_id": 1, "event_type": "dns",
           "src_ip": "10.0.0.53", "src_port": 53, "dest_ip": "10.0.0.5", "dest_port": 50000, "proto": "UDP",
           "dns": {"version": 2, "type": "answer", "id": 7, "flags": "8180", "qr": True, "rd": True, "ra": True,
                   "rrname": "dichvucong.example.vn", "rrtype": "A", "rcode": "NOERROR",
                   "answers": [{"rrname": "dichvucong.example.vn", "rrtype": "CNAME", "ttl": 60,
                                "rdata": "lb.example.vn"},
                               {"rrname": "lb.example.vn", "rrtype": "A", "ttl": 60, "rdata": "203.0.113.10"}],
                   "grouped": {"CNAME": ["lb.example.vn"], "A": ["203.0.113.10"]}}}
    dns = _parse(eve, ctx)["dns"]
    assert dns["answers"]["data"] == ["lb.example.vn", "203.0.113.10"]
    assert dns["answers"]["type"] == ["CNAME", "A"]
    assert dns["resolved_ip"] == ["203.0.113.10"]
    assert dns["header_flags"] == ["QR", "RD", "RA"]


def test_dns_v3_request_reads_the_queries_list(ctx: ParseContext) -> None:
    eve = {"timestamp": "2024-05-02T08:15:30.000123+0700", "event_type": "dns", "src_ip": "10.0.0.5",
           "src_port": 50000, "dest_ip": "10.0.0.53", "dest_port": 53, "proto": "UDP",
           "dns": {"version": 3, "type": "request", "id": 7, "queries": [{"rrname": "evil.example", "rrtype": "TXT"}]}}
    dns = _parse(eve, ctx)["dns"]
    assert dns["type"] == "query"
    assert dns["question"] == {"name": "evil.example", "type": "TXT"}


def test_http_maps_url_method_status_and_user_agent(ctx: ParseContext) -> None:
    eve, event = _small(ctx, "http")
    assert event["event"]["category"] == ["network", "web"]
    assert event["url"]["domain"] == eve["http"]["hostname"]
    assert event["url"]["path"] == "/dd.xml"
    assert event["http"]["request"]["method"] == "GET"
    assert event["http"]["response"]["status_code"] == 200
    assert event["user_agent"]["original"] == eve["http"]["http_user_agent"]


def test_http_absolute_url_is_split_into_path_and_query(ctx: ParseContext) -> None:
    _, event = _small(ctx, "http", nth=1)
    assert event["url"]["path"] == "/msdownload/update/v3/static/trustedr/en/pinrulesstl.cab"
    assert event["url"]["query"] == "111111111111"
    assert event["url"]["domain"] == "ctldl.windowsupdate.com"


def test_tls_maps_sni_ja3_and_certificate(ctx: ParseContext) -> None:
    _, first = _small(ctx, "tls")
    assert first["tls"]["client"]["server_name"] == "p33-btmmdns.icloud.com."
    assert first["tls"]["version"] == "1.2"
    assert first["tls"]["server"]["issuer"].startswith("CN=Apple IST CA 2")
    assert first["tls"]["server"]["not_after"] == "2019-03-29T17:54:31.000Z"
    _, with_ja3 = _small(ctx, "tls", nth=2)
    assert with_ja3["tls"]["client"]["ja3"] == "44d502d471cfdb99c59bdfb0f220e5a8"
    _, with_ja3s = _small(ctx, "tls", nth=1)
    assert with_ja3s["tls"]["server"]["ja3s"] == "adc06261ef82c2e4688b3cf08c1b2f24"


def test_fileinfo_maps_name_size_and_hashes(ctx: ParseContext) -> None:
    eve, event = _small(ctx, "fileinfo")
    assert event["event"]["category"] == ["file"]
    assert event["file"]["name"] == "device-desc.xml"
    assert event["file"]["path"] == "/ssdp/device-desc.xml"
    assert event["file"]["size"] == 1071
    assert event["file"]["hash"] == {k: eve["fileinfo"][k] for k in ("md5", "sha1", "sha256")}
    assert eve["fileinfo"]["sha256"] in event["related"]["hash"]


def test_stats_is_a_metric_and_keeps_the_counters(ctx: ParseContext) -> None:
    eve, event = _small(ctx, "stats")
    assert event["event"]["kind"] == "metric"
    assert "category" not in event["event"]
    assert event["suricata"]["eve"]["stats"] == eve["stats"]


def test_ssh_is_a_network_protocol_event(ctx: ParseContext) -> None:
    eve, event = _small(ctx, "ssh")
    assert event["event"]["category"] == ["network"]
    assert event["network"]["protocol"] == "ssh"
    assert event["suricata"]["eve"]["ssh"] == eve["ssh"]


def test_whole_eve_object_is_kept(ctx: ParseContext) -> None:
    for line in _small_lines():
        assert _parse(line, ctx)["suricata"]["eve"] == orjson.loads(line)


def test_unknown_event_type_is_parsed_generically(ctx: ParseContext) -> None:
    eve = {"timestamp": "2024-05-02T08:15:30.000123+0700", "event_type": "quic", "src_ip": "10.0.0.5",
           "src_port": 50000, "dest_ip": "10.0.0.53", "dest_port": 443, "proto": "UDP", "quic": {"version": "1"}}
    event = _parse(eve, ctx)
    assert event["event"]["category"] == ["network"]
    assert event["suricata"]["eve"]["quic"] == {"version": "1"}


def test_wazuh_malicious_ioc_lines_parse(ctx: ParseContext) -> None:
    rows = [orjson.loads(line) for line in
            (SURICATA / "wazuh" / "malicious-ioc-eve.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows
    for row in rows:
        eve = orjson.loads(row["log"])
        event = _parse(row["log"], ctx)
        assert PARSE_FAILURE_TAG not in event.get("tags", ())
        assert event["source"]["ip"] == eve["src_ip"]
        assert event["event"]["dataset"] == "suricata.eve"


def test_wazuh_http_hostname_maps_to_url_domain(ctx: ParseContext) -> None:
    rows = (SURICATA / "wazuh" / "malicious-ioc-eve.jsonl").read_text(encoding="utf-8").splitlines()
    log = next(orjson.loads(r)["log"] for r in rows if '\\"event_type\\":\\"http\\"' in r)
    event = _parse(log, ctx)
    assert event["url"]["domain"] == "qouv.fr"
    assert "qouv.fr" in event["related"]["hosts"]


def test_suricata_verify_fileinfo_expected_line_parses(ctx: ParseContext) -> None:
    text = (SURICATA / "suricata-verify" / "output-eve-fileinfo" / "expected" / "eve.json").read_text()
    event = _parse(text.strip(), ctx)
    assert event["file"]["name"] == "eicar.com"
    assert event["file"]["size"] == 68
    assert event["url"]["path"] == "/download/eicar.com"
    assert event["url"]["domain"] == "www.eicar.org"


_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
               "array": list}


def test_top_level_eve_fields_match_the_eve_schema_types() -> None:
    schema = orjson.loads((SURICATA / "eve-schema" / "schema.json").read_bytes())["properties"]
    for line in _small_lines():
        for key, value in orjson.loads(line).items():
            expected = schema.get(key, {}).get("type")
            if isinstance(expected, str) and expected in _JSON_TYPES:
                assert isinstance(value, _JSON_TYPES[expected]), (key, value)


def test_bad_timestamp_is_a_failure_event(ctx: ParseContext) -> None:
    event = _parse('{"timestamp": "yesterday", "event_type": "alert"}', ctx)
    assert PARSE_FAILURE_TAG in event["tags"]


@pytest.mark.parametrize("obj, expected", [({"event_type": "dns", "timestamp": "t"}, True),
                                           ({"event_type": "dns"}, False), ({"timestamp": "t"}, False)])
def test_sniff_needs_event_type_and_timestamp(obj: dict[str, Any], expected: bool) -> None:
    assert SuricataEveParser().sniff(obj) is expected

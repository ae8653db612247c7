"""Web server parsers: NCSA access logs, IIS W3C and Apache/nginx error logs, on
real scanner and public-site logs, Wazuh's labelled web lines and loghub's Apache
error log."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import orjson
import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.event import Event
from collectors.parsers import Dispatcher, ParseContext
from collectors.parsers.web_access import AccessLogParser, _clf_timestamp
from tests.conftest import DATASETS
from tests.parsers.helpers import failed as _failed
from tests.parsers.helpers import parse as _parse

WEB = DATASETS / "web"
ACCESS_FILES = (
    "elastic-examples/apache_logs.part1",
    "apache-http-logs/acunetix.txt",
    "apache-http-logs/w3af.txt",
)


@cache
def _lines(relative: str) -> tuple[str, ...]:
    text = (WEB / relative).read_text(encoding="utf-8", errors="replace")
    return tuple(line.rstrip("\r") for line in text.split("\n") if line.strip())


@cache
def _wazuh(name: str) -> tuple[str, ...]:
    rows = (WEB / "wazuh" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return tuple(orjson.loads(row)["log"] for row in rows if row.strip())


def _wazuh_line(name: str, contains: str) -> str:
    return next(line for line in _wazuh(name) if contains in line)


def _parse_rate(lines: tuple[str, ...], ctx: ParseContext, fmt: str | None) -> float:
    dispatcher = Dispatcher()
    parsed = sum(not _failed(dispatcher.parse(line, fmt, ctx)) for line in lines)
    return parsed / len(lines)


# --- access logs: whole files ---------------------------------------------------


@pytest.mark.parametrize("relative", ACCESS_FILES)
def test_access_log_file_parses_through_auto_detection(relative: str, ctx: ParseContext) -> None:
    assert _parse_rate(_lines(relative), ctx, None) >= 0.99


@pytest.mark.parametrize("relative", ACCESS_FILES)
def test_access_log_file_parses_as_declared_nginx(relative: str, ctx: ParseContext) -> None:
    assert _parse_rate(_lines(relative), ctx, "nginx") >= 0.99


@pytest.mark.parametrize("relative", ACCESS_FILES)
def test_access_events_carry_web_access_dataset_and_int_status_and_bytes(relative: str, ctx: ParseContext) -> None:
    for line in _lines(relative)[:500]:
        event = _parse(line, ctx)
        response = event["http"]["response"]
        assert event["event"]["dataset"] == "web.access"
        assert type(response["status_code"]) is int
        # "-" (no body) leaves the count out; a number is always an int
        assert type(response.get("body", {"bytes": 0})["bytes"]) is int
        assert (re.search(r'" \d{3} - ', line) is not None) == ("body" not in response)


@pytest.mark.parametrize(
    ("fmt", "dataset"),
    [("nginx", "nginx.access"), ("apache", "apache.access"), ("tomcat", "tomcat.access"), ("combined", "web.access")],
)
def test_declared_server_names_the_dataset(fmt: str, dataset: str, ctx: ParseContext) -> None:
    event = _parse(_lines("elastic-examples/apache_logs.part1")[0], ctx, fmt)
    assert event["event"]["dataset"] == dataset


# --- access logs: chosen lines ---------------------------------------------------


def test_combined_line_maps_all_ecs_fields(ctx: ParseContext) -> None:
    event = _parse(_lines("elastic-examples/apache_logs.part1")[0], ctx)
    assert event["@timestamp"] == "2015-05-17T10:05:03.000Z"
    assert event["source"]["ip"] == event["client"]["ip"] == "83.149.9.216"
    assert event["related"]["ip"] == ["83.149.9.216"]
    assert event["http"]["request"]["method"] == "GET"
    assert event["http"]["version"] == "1.1"
    assert event["http"]["response"] == {"status_code": 200, "body": {"bytes": 203023}}
    assert event["http"]["request"]["referrer"] == ("http://semicomplete.com/presentations/logstash-monitorama-2013/")
    assert event["url"]["path"] == "/presentations/logstash-monitorama-2013/images/kibana-search.png"
    assert event["url"]["extension"] == "png"
    assert event["user_agent"]["original"].startswith("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1)")
    assert event["event"]["kind"] == "event"
    assert event["event"]["category"] == ["web"]
    assert event["event"]["type"] == ["access"]
    assert event["event"]["outcome"] == "success"
    assert event["event"]["module"] == "web"


def test_scanner_sql_injection_keeps_url_original_exactly(ctx: ParseContext) -> None:
    line = _lines("apache-http-logs/acunetix.txt")[573]  # reference hit "SQL Injection Strings In URI"
    event = _parse(line, ctx)
    assert event["url"]["original"] == "/index.php/2-uncategorised/-1);select%20pg_sleep(2);%20--%20-testsayfasi"
    assert event["url"]["path"] == event["url"]["original"]


def test_sql_injection_in_query_string_lands_in_url_query(ctx: ParseContext) -> None:
    event = _parse(_lines("apache-http-logs/acunetix.txt")[1537], ctx)
    assert event["url"]["path"] == "/DVWA/security.php"
    assert event["url"]["query"] == "test=MbSc4Pmg');select%20pg_sleep(4);%20--%20"
    assert event["http"]["response"]["status_code"] == 302


def test_line_wrapped_in_extra_quotes_parses(ctx: ParseContext) -> None:
    line = _lines("apache-http-logs/acunetix.txt")[0]
    assert line.startswith('"192.168.4.25 - - [') and line.endswith('Safari/537.21""')
    event = _parse(line, ctx)
    assert event["source"]["ip"] == "192.168.4.25"
    assert event["@timestamp"] == "2016-12-22T13:30:52.000Z"
    assert event["http"]["request"]["method"] == "POST"
    assert event["user_agent"]["original"].endswith("Safari/537.21")


def test_apache_escaped_quotes_in_request_are_unescaped(ctx: ParseContext) -> None:
    line = _lines("apache-http-logs/acunetix.txt")[127]
    assert 'ul.menu\\"sTYLe' in line
    event = _parse(line, ctx)
    assert event["url"]["query"].startswith("searchword=ul.menu\"sTYLe='acu:Expre/**/SSion(kzsy(9157))'bad=\"&")
    assert event["http"]["response"]["status_code"] == 200


def test_request_with_empty_target_keeps_method_and_status(ctx: ParseContext) -> None:
    event = _parse(_lines("apache-http-logs/acunetix.txt")[2098], ctx)
    assert event["http"]["request"]["method"] == "GET"
    assert event["http"]["response"]["status_code"] == 400
    assert "url" not in event


def test_crlf_terminated_line_parses(ctx: ParseContext) -> None:
    event = _parse(_lines("apache-http-logs/w3af.txt")[0] + "\r", ctx)
    assert event["user_agent"]["original"] == "w3af.org"


def test_common_format_line_reads_user_and_offset(ctx: ParseContext) -> None:
    event = _parse('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326', ctx)
    assert event["user"]["name"] == "frank"
    assert event["@timestamp"] == "2000-10-10T20:55:36.000Z"
    assert "user_agent" not in event


def test_dash_byte_count_is_omitted(ctx: ParseContext) -> None:
    event = _parse('10.1.1.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 304 - "-" "curl/8.0"', ctx)
    assert event["http"]["response"] == {"status_code": 304}


def test_binary_junk_request_keeps_status_without_method(ctx: ParseContext) -> None:
    line = '10.1.1.1 - - [10/Oct/2000:13:55:36 -0700] "\\x16\\x03\\x01\\x00\\xa5" 400 166 "-" "-"'
    event = _parse(line, ctx)
    assert "method" not in event["http"].get("request", {})
    assert event["url"]["original"] == "\\x16\\x03\\x01\\x00\\xa5"
    assert event["event"]["outcome"] == "failure"


def test_dash_request_parses_without_url(ctx: ParseContext) -> None:
    event = _parse('10.1.1.1 - - [10/Oct/2000:13:55:36 -0700] "-" 408 0 "-" "-"', ctx)
    assert event["http"]["response"]["status_code"] == 408
    assert "url" not in event


def test_trailing_fields_are_kept(ctx: ParseContext) -> None:
    line = '10.1.1.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a.php HTTP/1.1" 200 166 "-" "curl/8" 0.004 "0.003"'
    event = _parse(line, ctx)
    assert event["web"]["access"]["extra"] == ["0.004", "0.003"]
    assert event["url"]["extension"] == "php"


def test_virtual_host_prefix_goes_to_destination(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("web_rules", "www.example.com:80 1.1.1.1"), ctx)
    assert event["source"]["ip"] == "1.1.1.1"
    assert event["destination"] == {"domain": "www.example.com", "port": 80}
    assert event["url"]["domain"] == "www.example.com"
    assert event["url"]["query"].endswith('OR"*/&example=5101')  # \" in the log is a quote
    assert event["web"]["access"]["extra"] == ["-", "XIeFRRmu6BzGhDFQJ1K@HwAAAAs"]


def test_second_client_address_is_kept_as_forwarded_ip(ctx: ParseContext) -> None:
    line = _wazuh_line("web_rules", "nginx: 10.10.10.11")
    content = line.split("nginx: ", 1)[1]
    event = _parse(content, ctx)
    assert event["source"]["ip"] == "10.10.10.11"
    assert event["network"]["forwarded_ip"] == "10.10.10.12"
    assert event["related"]["ip"] == ["10.10.10.11", "10.10.10.12"]
    assert event["url"]["original"] == "/injection/%0d%0aSet-Cookie"


@pytest.mark.parametrize("fmt", [None, "nginx"])
def test_syslog_prefixed_access_line_keeps_header_and_access_fields(fmt: str | None, ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("web_rules", "nginx: 10.10.10.11"), ctx, fmt)
    assert event["host"]["hostname"] == "web01"
    assert event["process"]["name"] == "nginx"
    assert event["http"]["response"]["status_code"] == 404
    assert event["@timestamp"] == "2017-04-10T20:18:05.000Z"  # the access log's own time


def test_truncated_user_agent_still_parses(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("web_appsec", '"Googlebot/1'), ctx)
    assert event["user_agent"]["original"] == "Googlebot/1"
    assert event["@timestamp"] == "2014-04-01T05:00:01.000Z"  # single-digit day


@pytest.mark.parametrize("name", ["web_appsec", "web_rules"])
def test_every_wazuh_access_line_parses(name: str, ctx: ParseContext) -> None:
    failures = [line for line in _wazuh(name) if _failed(_parse(line, ctx))]
    assert failures == []


def test_hostname_client_goes_to_source_domain(ctx: ParseContext) -> None:
    event = _parse('crawler.example.org - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 2 "-" "x"', ctx)
    assert event["source"] == {"domain": "crawler.example.org"}
    assert "related" not in event


def test_repeated_timestamps_are_served_from_the_cache(ctx: ParseContext) -> None:
    parser = AccessLogParser()
    line = '10.9.9.9 - - [03/Jan/2031:04:05:06 +0000] "GET / HTTP/1.1" 200 1 "-" "x"'
    parser.parse(line, ctx)
    hits = _clf_timestamp.cache_info().hits
    parser.parse(line, ctx)
    assert _clf_timestamp.cache_info().hits == hits + 1


def test_non_access_line_is_not_claimed(ctx: ParseContext) -> None:
    assert AccessLogParser().parse("Jan 11 10:13:05 web01 sshd[1]: Accepted password", ctx) is None


# --- IIS W3C ---------------------------------------------------------------------

IIS_FILE = """\
#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2024-03-01 00:00:05
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) \
cs(Referer) sc-status sc-substatus sc-win32-status time-taken
2024-03-01 00:00:05 10.0.0.5 GET /default.aspx id=1 443 - 203.0.113.9 Mozilla/5.0+(Windows+NT+10.0) - \
200 0 0 15
#Fields: date time c-ip cs-username cs-method cs-uri-stem sc-status cs-host
2024-03-01 00:00:06 203.0.113.10 bob POST /login.aspx 401 portal.example.gov.vn
"""


@pytest.fixture
def iis_events(tmp_path: Path, ctx: ParseContext) -> list[Event]:
    path = tmp_path / "u_ex240301.log"
    path.write_text(IIS_FILE, encoding="utf-8")
    dispatcher = Dispatcher()
    return [dispatcher.parse(line, None, ctx) for line in path.read_text(encoding="utf-8").splitlines()]


def test_iis_directives_are_recognisable_events(iis_events: list[Event]) -> None:
    directives = [*iis_events[:4], iis_events[5]]
    assert [e["event"]["action"] for e in directives] == ["w3c_directive"] * 5
    assert [e["iis"]["directive"]["name"] for e in directives] == [
        "Software", "Version", "Date", "Fields", "Fields"]  # fmt: skip
    assert iis_events[2]["@timestamp"] == "2024-03-01T00:00:05.000Z"


def test_iis_row_follows_the_fields_header(iis_events: list[Event]) -> None:
    event = iis_events[4]
    assert event["@timestamp"] == "2024-03-01T00:00:05.000Z"  # UTC, whatever ctx.tz says
    assert event["source"]["ip"] == "203.0.113.9"
    assert event["destination"] == {"ip": "10.0.0.5", "port": 443}
    assert event["url"]["original"] == "/default.aspx?id=1"
    assert event["url"]["query"] == "id=1"
    assert event["user_agent"]["original"] == "Mozilla/5.0 (Windows NT 10.0)"
    assert event["event"]["duration"] == 15_000_000
    assert event["iis"]["sc-win32-status"] == "0"
    assert "referrer" not in event["http"]["request"]
    assert event["event"]["dataset"] == "iis.access"


def test_iis_second_fields_header_changes_the_columns(iis_events: list[Event]) -> None:
    event = iis_events[6]
    assert event["source"]["ip"] == "203.0.113.10"
    assert event["user"]["name"] == "bob"
    assert event["http"]["request"]["method"] == "POST"
    assert event["http"]["response"]["status_code"] == 401
    assert event["url"]["domain"] == "portal.example.gov.vn"
    assert event["event"]["outcome"] == "failure"


def test_iis_row_not_matching_its_header_is_a_visible_failure(iis_events: list[Event], ctx: ParseContext) -> None:
    event = Dispatcher().parse("2024-03-01 00:00:07 203.0.113.10 bob", "iis", ctx)
    assert _failed(event)


def test_iis6_w3svc_layout_is_recognised_without_header(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("web_rules", "W3SVC58"), ctx)
    assert event["iis"]["s-sitename"] == "W3SVC58"
    assert event["source"]["ip"] == "173.201.216.6"
    assert event["url"]["domain"] == "www.somesite.org"
    assert event["url"]["path"] == "/search/programdetails.aspx"
    assert event["url"]["query"].startswith("id=3542&print=');declare%20@c%20cursor;")
    assert event["http"]["response"] == {"status_code": 200, "bytes": 36560}
    assert event["user_agent"]["original"].startswith("Mozilla/5.0 (Windows NT 6.1; WOW64; rv:24.0)")


def test_iis_default_layouts_are_recognised_by_column_count(ctx: ParseContext) -> None:
    iis7 = _parse(_wazuh_line("web_rules", "/QOsa/Browser/Default.aspx"), ctx)
    iis85 = _parse(_wazuh_line("web_rules", "/CFIDE/adminapi"), ctx)
    assert iis7["source"]["ip"] == iis85["source"]["ip"] == "31.3.3.7"
    assert iis7["http"]["response"]["status_code"] == 302
    assert iis85["http"]["response"]["status_code"] == 404
    assert "filename=../lib/password.properties" in iis85["url"]["query"]


# --- error logs ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["apache", "nginx", "modsecurity", "php"])
def test_every_wazuh_error_line_parses(name: str, ctx: ParseContext) -> None:
    events = [_parse(line, ctx) for line in _wazuh(name)]
    assert [e for e in events if _failed(e)] == []
    assert {e["event"]["type"][0] for e in events} == {"error"}


def test_loghub_apache_error_log_parses_with_levels(ctx: ParseContext) -> None:
    path = DATASETS / "logs" / "loghub" / "Apache" / "Apache_2k.log.part1"
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    events = [_parse(line, ctx, "apache_error") for line in lines]
    assert not [e for e in events if _failed(e)]
    assert {e["log"]["level"] for e in events} <= {"notice", "error", "warn"}
    assert events[0]["@timestamp"] == "2005-12-03T21:47:44.000Z"  # ctx.tz is UTC+7


def test_apache_24_error_line_reads_module_pid_client_and_code(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("apache", "AH01136"), ctx)
    assert event["log"] == {"level": "warn", "logger": "proxy"}
    assert event["process"]["pid"] == 2331
    assert event["source"] == {"ip": "77.127.180.111", "port": 54082}
    assert event["error"]["code"] == "AH01136"
    assert event["http"]["request"]["referrer"] == "http://www.easylinker.co.il/he/links.aspx?user=bguyb"
    assert event["@timestamp"] == "2014-09-30T05:24:22.891Z"
    assert event["event"]["dataset"] == "apache.error"


def test_apache_error_line_without_timestamp_parses(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("apache", "default.ida"), ctx)
    assert event["source"]["ip"] == "66.31.142.16"
    assert event["message"] == "File does not exist: /var/www/html/default.ida"
    assert "@timestamp" not in event


def test_modsecurity_message_yields_rule_and_uri(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("modsecurity", "Remote File Inclusion"), ctx)
    assert event["rule"] == {"id": "950119", "name": "Remote File Inclusion Attack", "ruleset": "OWASP_CRS/2.2.9"}
    assert event["url"]["original"] == "/wordpress/web/BetaBlockModules//Module/Module.php"
    assert event["source"]["ip"] == "172.16.10.87"
    assert event["modsecurity"]["tag"] == ["OWASP_CRS/WEB_ATTACK/RFI"]


def test_modsecurity_access_denied_is_a_failure_with_status(ctx: ParseContext) -> None:
    event = _parse(_wazuh_line("modsecurity", "Request Missing an Accept Header"), ctx)
    assert event["http"]["response"]["status_code"] == 403
    assert event["event"]["outcome"] == "failure"
    assert event["event"]["type"] == ["error", "denied"]


def test_nginx_error_line_reads_client_server_and_request(ctx: ParseContext) -> None:
    line = (
        '2015/01/08 11:31:23 [error] 80#2: *1 open() "/usr/share/nginx/html/x.php" failed '
        '(2: No such file or directory), client: 203.0.113.5, server: portal, request: "GET /x.php?a=1 HTTP/1.1", '
        'host: "portal.example.gov.vn"'
    )
    event = _parse(line, ctx)
    assert event["event"]["dataset"] == "nginx.error"
    assert event["log"]["level"] == "error"
    assert event["process"] == {"pid": 80, "thread": {"id": 2}}
    assert event["source"]["ip"] == "203.0.113.5"
    assert event["server"]["domain"] == "portal"
    assert event["http"]["request"]["method"] == "GET"
    assert event["url"]["path"] == "/x.php"
    assert event["url"]["domain"] == "portal.example.gov.vn"
    assert event["@timestamp"] == "2015-01-08T04:31:23.000Z"

"""The analyst query language: every accepted form and every rejection."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from soc.query.ast import And, Cidr, Exists, MatchAll, Not, Or, Range, Term
from soc.query.parse import parse_query
from soc.query.values import time_bounds
from soc.store.base import QueryError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", MatchAll()),
        ("   ", MatchAll()),
        ("*", MatchAll()),
        ("*:*", MatchAll()),
        ("user.name:admin", Term("user.name", "admin")),
        ("user.name: admin", Term("user.name", "admin")),
        ("failed", Term(None, "failed")),
        ("user.name:adm*", Term("user.name", "adm*", "wildcard")),
        ("user.name:ad?in", Term("user.name", "ad?in", "wildcard")),
        ("user.name:adm\\*", Term("user.name", "adm*")),
        ("user.name:adm\\*n*", Term("user.name", "adm\\*n*", "wildcard")),
        ("user.name:john\\ smith", Term("user.name", "john smith")),
        ('message:"invalid user"', Term("message", "invalid user", "phrase")),
        ('"thất bại"', Term(None, "thất bại", "phrase")),
        ('message:"say \\"hi\\""', Term("message", 'say "hi"', "phrase")),
        ("winlog.event_data.TargetUserName:Administrator",
         Term("winlog.event_data.TargetUserName", "Administrator")),
        ("@timestamp:2024-01-01", Term("@timestamp", "2024-01-01")),
        ("url.path:/wp-login.php", Term("url.path", "/wp-login.php")),
        ("url.path:/admin/*", Term("url.path", "/admin/*", "wildcard")),
        ("/etc/passwd", Term(None, "/etc/passwd")),
    ],
)
def test_terms(text: str, expected: object) -> None:
    assert parse_query(text) == expected


a, b, c = Term(None, "a"), Term(None, "b"), Term(None, "c")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a AND b", And((a, b))),
        ("a and b", And((a, b))),
        ("a b", And((a, b))),  # implicit operator is AND, as in KQL
        ("a OR b", Or((a, b))),
        ("a or b", Or((a, b))),
        ("NOT a", Not(a)),
        ("not a", Not(a)),
        ("-a", Not(a)),
        ("+a", a),
        ("a AND NOT b", And((a, Not(b)))),
        ("a -b", And((a, Not(b)))),
        ("a OR b AND c", Or((a, And((b, c))))),
        ("(a OR b) AND c", And((Or((a, b)), c))),
        ("a AND (b OR c)", And((a, Or((b, c))))),
        ("a b c", And((a, b, c))),
        ("a OR (b OR c)", Or((a, b, c))),
        ("NOT NOT a", a),
        ("a^2", a),
        ("* AND a", a),
        ("a OR *", MatchAll()),
        ("user.name:and", Term("user.name", "and")),
        ('"a and b"', Term(None, "a and b", "phrase")),
    ],
)
def test_boolean_operators(text: str, expected: object) -> None:
    assert parse_query(text) == expected


def test_field_group() -> None:
    assert parse_query("event.category:(authentication OR network)") == Or((
        Term("event.category", "authentication"), Term("event.category", "network"),
    ))
    assert parse_query("message:(error -debug)") == And((
        Term("message", "error"), Not(Term("message", "debug")),
    ))


def test_exists() -> None:
    assert parse_query("_exists_:user.name") == Exists("user.name")
    assert parse_query("user.name:*") == Exists("user.name")
    assert parse_query("NOT _exists_:user.name") == Not(Exists("user.name"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http.response.status_code:[500 TO 599]", Range("http.response.status_code", "500", "599")),
        ("http.response.status_code:[500 to 599]", Range("http.response.status_code", "500", "599")),
        ("http.response.status_code:{500 TO 599}",
         Range("http.response.status_code", "500", "599", False, False)),
        ("http.response.status_code:[500 TO 599}",
         Range("http.response.status_code", "500", "599", True, False)),
        ("http.response.status_code:[500 TO *]", Range("http.response.status_code", "500", None)),
        ("http.response.status_code:[* TO 399]", Range("http.response.status_code", None, "399")),
        ("http.response.status_code:>=500", Range("http.response.status_code", "500", None)),
        ("http.response.status_code:>500", Range("http.response.status_code", "500", None, False)),
        ("http.response.status_code:<10", Range("http.response.status_code", None, "10", True, False)),
        ("http.response.status_code:<=10", Range("http.response.status_code", None, "10")),
        ("event.severity:[-5 TO 5]", Range("event.severity", "-5", "5")),
        ("source.ip:[10.0.0.0 TO 10.0.0.255]", Range("source.ip", "10.0.0.0", "10.0.0.255")),
        ("@timestamp:[2024-01-01 TO 2024-01-02]", Range("@timestamp", "2024-01-01", "2024-01-02")),
        ("@timestamp:>=2024-01-01T10:00:00Z", Range("@timestamp", "2024-01-01T10:00:00Z", None)),
        ("user.name:[a TO m]", Range("user.name", "a", "m")),
    ],
)
def test_ranges(text: str, expected: object) -> None:
    assert parse_query(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("source.ip:10.0.0.0/8", Cidr("source.ip", ip_network("10.0.0.0/8"))),
        ('source.ip:"10.0.0.0/8"', Cidr("source.ip", ip_network("10.0.0.0/8"))),
        ("source.ip:10.1.2.3/8", Cidr("source.ip", ip_network("10.0.0.0/8"))),
        ('source.ip:"2001:db8::/32"', Cidr("source.ip", ip_network("2001:db8::/32"))),
        ("source.ip:2001\\:db8\\:\\:/32", Cidr("source.ip", ip_network("2001:db8::/32"))),
        ("related.ip:192.168.*", Cidr("related.ip", ip_network("192.168.0.0/16"))),
        ("source.ip:10.1.2.3", Term("source.ip", "10.1.2.3")),
        ('source.ip:"2001:db8::1"', Term("source.ip", "2001:db8::1", "exact")),
        # A keyword field keeps a slash as text.
        ("url.path:10.0.0.0/8", Term("url.path", "10.0.0.0/8")),
    ],
)
def test_ip_fields(text: str, expected: object) -> None:
    assert parse_query(text) == expected


def _rejects(text: str) -> str:
    with pytest.raises(QueryError) as info:
        parse_query(text)
    message = str(info.value)
    assert " / " in message  # English / Vietnamese
    return message


@pytest.mark.parametrize(
    ("text", "english", "vietnamese"),
    [
        ("user~", "Unsupported query syntax: fuzzy search (~)",
         "Cú pháp truy vấn không được hỗ trợ: tìm kiếm mờ (~)"),
        ('"failed password"~3', "proximity", "tìm kiếm lân cận"),
        ("message:/fail(ed)?/", "regular expressions", "biểu thức chính quy"),
        ("user.name:)", "Invalid query syntax at character 11", "Lỗi cú pháp truy vấn tại ký tự thứ 11"),
        ('message:"unclosed', "unclosed quote", "thiếu dấu nháy"),
        ("a AND (b", "ends too early", "kết thúc đột ngột"),
        ("a AND", "ends too early", "kết thúc đột ngột"),
        ("a:b:c", "nested inside another field", "lồng trường"),
        ("user'.name:x", "Invalid field name", "Tên trường không hợp lệ"),
        ('a"b:x', "Invalid field name", "Tên trường không hợp lệ"),
        ("_exists_:user'name", "Invalid field name", "Tên trường không hợp lệ"),
        ("_exists_:(a OR b)", "_exists_ needs a field name", "_exists_ cần một tên trường"),
        ("*:admin", "'*:' only works as '*:*'", "'*:' chỉ dùng dạng '*:*'"),
        ("[1 TO 5]", "needs a field", "cần một trường"),
        (">=500", "needs a field", "cần một trường"),
        ("http.response.status_code:abc", "is numeric", "là trường số"),
        ("http.response.status_code:5*", "is numeric", "là trường số"),
        ("http.response.status_code:[a TO 5]", "is numeric", "là trường số"),
        ("source.ip:foo", "is not an IP address", "không phải là địa chỉ IP"),
        ("source.ip:10.*.0.1", "IP field", "trường IP"),
        ("source.ip:10.0.0.0/33", "CIDR", "CIDR"),
        ("source.ip:[10.0.0.1 TO foo]", "is not an IP address", "không phải là địa chỉ IP"),
        ("@timestamp:[yesterday TO now]", "Invalid date", "Ngày giờ không hợp lệ"),
        ("@timestamp:2024-01-0*", "is a date", "là ngày giờ"),
    ],
)
def test_errors_are_bilingual(text: str, english: str, vietnamese: str) -> None:
    message = _rejects(text)
    assert english in message
    assert vietnamese in message


def test_error_position_points_into_the_original_text() -> None:
    # Slashes are escaped before luqum sees the text; the position must not shift.
    message = _rejects("url.path:/a/b x:)")
    assert "character 17" in message


def test_too_long_and_too_deep() -> None:
    assert "too long" in _rejects("a " * 20_000)
    assert "nested too deeply" in _rejects("(" * 3000 + "a" + ")" * 3000)


def test_time_bounds_whole_days() -> None:
    day = 86_400_000
    jan1 = 1_704_067_200_000
    assert time_bounds("2024-01-01", "2024-01-02") == (jan1, jan1 + 2 * day - 1)
    assert time_bounds("2024-01-01", "2024-01-02", False, False) == (jan1 + day, jan1 + day - 1)
    assert time_bounds("2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", True, False) == (jan1, jan1 + 999)
    assert time_bounds("2024-01-01T07:00:00+07:00", None) == (jan1, None)

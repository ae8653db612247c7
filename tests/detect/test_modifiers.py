"""The Sigma detection language, one behaviour per test, on ECS events (examples in
the manner of the Sigma specification)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from soc.detect.engine import Engine
from soc.detect.loader import load_rules


def fires(tmp_path: Path, detection: str, event: dict[str, Any], placeholders: dict[str, list[str]] | None = None
          ) -> bool:
    rule = tmp_path / "rule.yml"
    rule.write_text(
        "title: t\nid: 8d2c8f0e-0000-4000-8000-000000000001\nstatus: test\n"
        "logsource: {product: linux, service: sshd}\n"
        "detection:\n" + "\n".join("  " + line for line in detection.strip().splitlines()) + "\n",
        encoding="utf-8")
    ruleset = load_rules([rule], placeholders=placeholders)
    assert ruleset.rules and not ruleset.skipped, [s.reason for s in ruleset.skipped]
    doc = {**event, "process": {**event.get("process", {}), "name": "sshd"}}
    return bool(Engine(ruleset).match(doc))


def ev(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        node = out
        parts = name.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def test_plain_value_matches_case_insensitively(tmp_path: Path) -> None:
    rule = "sel: {user.name: Administrator}\ncondition: sel"
    assert fires(tmp_path, rule, ev(user__name="administrator"))
    assert not fires(tmp_path, rule, ev(user__name="administrators"))


def test_list_of_values_is_any_of(tmp_path: Path) -> None:
    rule = "sel:\n  user.name: [root, admin]\ncondition: sel"
    assert fires(tmp_path, rule, ev(user__name="admin"))
    assert not fires(tmp_path, rule, ev(user__name="guest"))


def test_map_is_all_of_its_fields(tmp_path: Path) -> None:
    rule = "sel:\n  user.name: root\n  event.outcome: failure\ncondition: sel"
    assert fires(tmp_path, rule, ev(user__name="root", event__outcome="failure"))
    assert not fires(tmp_path, rule, ev(user__name="root", event__outcome="success"))


def test_list_of_maps_is_any_map(tmp_path: Path) -> None:
    rule = "sel:\n  - user.name: root\n  - source.ip: 203.0.113.7\ncondition: sel"
    assert fires(tmp_path, rule, ev(source__ip="203.0.113.7"))


def test_wildcards_star_and_question_mark(tmp_path: Path) -> None:
    rule = "sel: {url.original: '/adm?n/*.php'}\ncondition: sel"
    assert fires(tmp_path, rule, ev(url__original="/admin/index.php"))
    assert not fires(tmp_path, rule, ev(url__original="/admn/index.php"))


def test_escaped_wildcard_is_literal(tmp_path: Path) -> None:
    rule = "sel: {message: 'a\\*b'}\ncondition: sel"
    assert fires(tmp_path, rule, ev(message="a*b"))
    assert not fires(tmp_path, rule, ev(message="axxb"))


@pytest.mark.parametrize(("modifier", "value", "hit", "miss"), [
    ("contains", "union", "1 UNION select", "unio"),
    ("startswith", "/wp-", "/wp-login.php", "/a/wp-"),
    ("endswith", ".aspx", "/shell.ASPX", "/shell.aspx.txt"),
])
def test_string_position_modifiers(tmp_path: Path, modifier: str, value: str, hit: str, miss: str) -> None:
    rule = f"sel: {{url.original|{modifier}: '{value}'}}\ncondition: sel"
    assert fires(tmp_path, rule, ev(url__original=hit))
    assert not fires(tmp_path, rule, ev(url__original=miss))


def test_all_modifier_needs_every_value(tmp_path: Path) -> None:
    rule = "sel:\n  process.command_line|contains|all: [-nop, -enc]\ncondition: sel"
    assert fires(tmp_path, rule, ev(process__command_line="powershell -nop -w hidden -enc AAA"))
    assert not fires(tmp_path, rule, ev(process__command_line="powershell -nop"))


def test_re_modifier_is_case_sensitive_without_flags(tmp_path: Path) -> None:
    rule = "sel: {message|re: 'Failed pass\\w+'}\ncondition: sel"
    assert fires(tmp_path, rule, ev(message="Failed password for root"))
    assert not fires(tmp_path, rule, ev(message="failed password for root"))


def test_re_i_flag_ignores_case(tmp_path: Path) -> None:
    rule = "sel: {message|re|i: 'failed pass\\w+'}\ncondition: sel"
    assert fires(tmp_path, rule, ev(message="FAILED PASSWORD"))


def test_re_s_flag_lets_dot_match_newlines(tmp_path: Path) -> None:
    rule = "sel: {message|re|s: 'begin.*end'}\ncondition: sel"
    assert fires(tmp_path, rule, ev(message="begin\nend"))


def test_re_m_flag_anchors_lines(tmp_path: Path) -> None:
    rule = "sel: {message|re|m: '^second$'}\ncondition: sel"
    assert fires(tmp_path, rule, ev(message="first\nsecond\nthird"))


def test_cidr_modifier(tmp_path: Path) -> None:
    rule = "sel: {source.ip|cidr: [10.0.0.0/8, '2001:db8::/32']}\ncondition: sel"
    assert fires(tmp_path, rule, ev(source__ip="10.20.30.40"))
    assert fires(tmp_path, rule, ev(source__ip="2001:db8::1"))
    assert not fires(tmp_path, rule, ev(source__ip="11.0.0.1"))


def test_base64_modifier_matches_the_encoded_value(tmp_path: Path) -> None:
    rule = "sel: {message|base64: 'http://'}\ncondition: sel"
    assert fires(tmp_path, rule, ev(message=base64.b64encode(b"http://").decode()))


def test_base64offset_matches_at_every_offset(tmp_path: Path) -> None:
    rule = "sel: {message|base64offset|contains: 'Invoke-Mimikatz'}\ncondition: sel"
    for prefix in (b"", b"x", b"xy"):
        encoded = base64.b64encode(prefix + b"Invoke-Mimikatz -Dump").decode()
        assert fires(tmp_path, rule, ev(message=encoded)), prefix


@pytest.mark.parametrize(("modifier", "codec"), [("utf16le", "utf-16-le"), ("wide", "utf-16-le"),
                                                 ("utf16be", "utf-16-be")])
def test_utf16_modifiers_with_base64(tmp_path: Path, modifier: str, codec: str) -> None:
    rule = f"sel: {{process.command_line|{modifier}|base64offset|contains: 'IEX'}}\ncondition: sel"
    encoded = base64.b64encode("x IEX(New-Object)".encode(codec)).decode()
    assert fires(tmp_path, rule, ev(process__command_line=encoded))


def test_windash_matches_every_dash_form(tmp_path: Path) -> None:
    rule = "sel: {process.command_line|windash|contains: ' -enc '}\ncondition: sel"
    for dash in ("-", "/", "\u2013", "\u2014", "\u2015"):
        assert fires(tmp_path, rule, ev(process__command_line=f"powershell {dash}enc AAA")), dash


def test_exists_modifier(tmp_path: Path) -> None:
    rule = "sel: {user.name|exists: true}\ncondition: sel"
    assert fires(tmp_path, rule, ev(user__name="x"))
    assert not fires(tmp_path, rule, ev(source__ip="1.2.3.4"))


def test_fieldref_compares_two_fields(tmp_path: Path) -> None:
    rule = "sel: {user.name|fieldref: user.target.name}\ncondition: sel"
    assert fires(tmp_path, rule, ev(user__name="bob", user__target={"name": "bob"}))
    assert not fires(tmp_path, rule, ev(user__name="bob", user__target={"name": "alice"}))


@pytest.mark.parametrize(("modifier", "hit", "miss"), [("gt", 501, 500), ("gte", 500, 499),
                                                       ("lt", 499, 500), ("lte", 500, 501)])
def test_numeric_comparisons(tmp_path: Path, modifier: str, hit: int, miss: int) -> None:
    rule = f"sel: {{http.response.status_code|{modifier}: 500}}\ncondition: sel"
    assert fires(tmp_path, rule, ev(http__response={"status_code": hit}))
    assert not fires(tmp_path, rule, ev(http__response={"status_code": miss}))


def test_expand_fills_a_placeholder_from_config(tmp_path: Path) -> None:
    rule = "sel: {destination.ip|expand: '%bad_ips%'}\ncondition: sel"
    assert fires(tmp_path, rule, ev(destination__ip="192.0.2.66"), {"bad_ips": ["192.0.2.66", "192.0.2.67"]})


def test_number_matches_its_text(tmp_path: Path) -> None:
    rule = "sel: {winlog.event_id: 4625}\ncondition: sel"
    assert fires(tmp_path, rule, ev(winlog__event_id="4625"))
    assert fires(tmp_path, rule, ev(winlog__event_id=4625))


def test_null_value_means_field_absent(tmp_path: Path) -> None:
    rule = "sel: {user.name: null}\ncondition: sel"
    assert fires(tmp_path, rule, ev(source__ip="1.2.3.4"))
    assert not fires(tmp_path, rule, ev(user__name="x"))


def test_list_field_matches_when_any_element_does(tmp_path: Path) -> None:
    rule = "sel: {event.category: iam}\ncondition: sel"
    assert fires(tmp_path, rule, ev(event__category=["iam", "configuration"]))


def test_keywords_search_the_original_event(tmp_path: Path) -> None:
    rule = "keywords:\n  - 'POSSIBLE BREAK-IN'\ncondition: keywords"
    assert fires(tmp_path, rule, ev(event__original="reverse mapping failed - possible break-in attempt!"))


def test_and_not_condition(tmp_path: Path) -> None:
    rule = "sel: {event.outcome: failure}\nfilter: {user.name: backup}\ncondition: sel and not filter"
    assert fires(tmp_path, rule, ev(event__outcome="failure", user__name="root"))
    assert not fires(tmp_path, rule, ev(event__outcome="failure", user__name="backup"))


def test_one_of_pattern(tmp_path: Path) -> None:
    rule = ("sel_a: {user.name: a}\nsel_b: {user.name: b}\nother: {source.ip: 1.1.1.1}\n"
            "condition: 1 of sel_*")
    assert fires(tmp_path, rule, ev(user__name="b"))
    assert not fires(tmp_path, rule, ev(source__ip="1.1.1.1"))


def test_all_of_pattern(tmp_path: Path) -> None:
    rule = "sel_a: {user.name: a}\nsel_b: {source.ip: 1.1.1.1}\ncondition: all of sel_*"
    assert fires(tmp_path, rule, ev(user__name="a", source__ip="1.1.1.1"))
    assert not fires(tmp_path, rule, ev(user__name="a"))


def test_one_of_them(tmp_path: Path) -> None:
    rule = "x: {user.name: a}\ny: {user.name: b}\ncondition: 1 of them"
    assert fires(tmp_path, rule, ev(user__name="a"))


def test_all_of_them(tmp_path: Path) -> None:
    rule = "x: {user.name: a}\ny: {source.ip: 1.1.1.1}\ncondition: all of them"
    assert not fires(tmp_path, rule, ev(user__name="a"))


def test_parentheses_and_or(tmp_path: Path) -> None:
    rule = ("a: {user.name: a}\nb: {user.name: b}\nc: {event.outcome: failure}\n"
            "condition: (a or b) and c")
    assert fires(tmp_path, rule, ev(user__name="b", event__outcome="failure"))
    assert not fires(tmp_path, rule, ev(user__name="b", event__outcome="success"))


def test_cased_modifier_is_case_sensitive(tmp_path: Path) -> None:
    rule = "sel: {user.name|cased: Admin}\ncondition: sel"
    assert fires(tmp_path, rule, ev(user__name="Admin"))
    assert not fires(tmp_path, rule, ev(user__name="admin"))

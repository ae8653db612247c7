"""The Elasticsearch translation of the analyst query language: the clause built for
every query form, what cannot be searched in Elasticsearch, and that user text only
ever lands in structured clauses. (Results against a server: tests/elastic/test_dsl_search.py.)"""

from __future__ import annotations

import json
import random
import string
from datetime import UTC, datetime, timedelta, timezone
from ipaddress import ip_network
from typing import Any

import pytest

from soc.query.ast import And, Cidr, Exists, MatchAll, Not, Or, Range, Term
from soc.query.dsl import MAX_BOOL_DEPTH, MAX_LISTED_NUMBERS, MAX_REGEXP_CHARS, query_body, to_dsl
from soc.query.parse import parse_query
from soc.store.base import QueryError


def dsl(query: str) -> dict[str, Any]:
    return to_dsl(parse_query(query))


def ci_term(field: str, value: str) -> dict[str, Any]:
    return {"term": {field: {"value": value, "case_insensitive": True}}}


def rejects(query: str, **kwargs: Any) -> str:
    with pytest.raises(QueryError) as info:
        to_dsl(parse_query(query), **kwargs)
    message = str(info.value)
    assert " / " in message  # English / Vietnamese
    return message


FAILED_IN_TEXT: list[dict[str, Any]] = [{"match_phrase": {"message": {"query": "failed"}}},
                                         {"match_phrase": {"event.original": {"query": "failed"}}}]
BARE_FAILED = {"bool": {"should": FAILED_IN_TEXT, "minimum_should_match": 1}}


# --- keyword fields -----------------------------------------------------------------


def test_keyword_value_is_a_case_insensitive_term() -> None:
    assert dsl("user.name:Admin") == ci_term("user.name", "Admin")


def test_quoted_keyword_value_is_the_whole_value_too() -> None:
    assert dsl('user.name:"john smith"') == ci_term("user.name", "john smith")


def test_keyword_wildcard_keeps_escaped_metacharacters_literal() -> None:
    assert dsl("user.name:adm\\*n*") == {"wildcard": {"user.name": {"value": "adm\\*n*", "case_insensitive": True}}}
    assert dsl("http.request.method:P?ST") == {
        "wildcard": {"http.request.method": {"value": "P?ST", "case_insensitive": True}}}


def test_keyword_value_with_escaped_wildcard_is_an_exact_term() -> None:
    assert dsl("user.name:adm\\*") == ci_term("user.name", "adm*")


def test_vietnamese_value_becomes_a_regexp_of_case_classes() -> None:
    # Elasticsearch's case_insensitive folds ASCII letters only.
    assert dsl('gov.system.name:"cổng dịch"') == {"regexp": {"gov.system.name": {
        "value": "c[Ổổ]ng\\ d[Ịị]ch", "flags": "NONE", "case_insensitive": True}}}


def test_vietnamese_pattern_keeps_its_wildcards_in_the_regexp() -> None:
    assert dsl("gov.system.name:CỔNG*C?NG")["regexp"]["gov.system.name"]["value"] == "C[Ổổ]NG.*C.NG"


def test_regexp_escapes_every_ascii_metacharacter() -> None:
    value = 'Đ.+|(){}[]"#@&<>~\\x'
    pattern = to_dsl(Term("user.name", value))["regexp"]["user.name"]["value"]
    assert pattern == "[Đđ]" + "".join("\\" + ch for ch in '.+|(){}[]"#@&<>~\\') + "x"


def test_regexp_decomposed_input_is_composed_first() -> None:
    decomposed = "co\u0302\u0309ng"  # cổng typed as base letters and combining marks
    assert to_dsl(Term("user.name", decomposed))["regexp"]["user.name"]["value"] == "c[Ổổ]ng"


def test_very_long_vietnamese_value_falls_back_to_ascii_case_folding() -> None:
    value = "đ" * MAX_REGEXP_CHARS
    assert to_dsl(Term("user.name", value)) == ci_term("user.name", value)


def test_letters_without_case_need_no_regexp() -> None:
    assert dsl("user.name:用户") == ci_term("user.name", "用户")


def test_numeric_text_in_a_keyword_field_is_a_term() -> None:
    assert dsl("winlog.event_id:4625") == ci_term("winlog.event_id", "4625")


def test_keyword_range_with_text_bounds_compares_as_text() -> None:
    assert dsl("user.name:[a TO m}") == {"range": {"user.name": {"gte": "a", "lt": "m"}}}


def test_keyword_range_with_numbers_lists_the_numbers() -> None:
    assert dsl("winlog.event_id:{4624 TO 4626]") == {"terms": {"winlog.event_id": ["4625", "4626"]}}
    assert dsl("winlog.event_id:{4624 TO 4625}") == {"match_none": {}}


def test_keyword_range_with_open_or_wide_numeric_bounds_is_refused() -> None:
    assert "at most" in rejects("winlog.event_id:>=4600")
    assert "at most" in rejects(f"winlog.event_id:[0 TO {MAX_LISTED_NUMBERS}]")
    assert "at most" in rejects("winlog.event_id:[1.5 TO 3]")
    assert dsl(f"winlog.event_id:[1 TO {MAX_LISTED_NUMBERS}]")["terms"]["winlog.event_id"][-1] == "1024"


# --- text fields and bare terms ---------------------------------------------------


def test_text_value_and_phrase_are_match_phrase() -> None:
    assert dsl("message:invalid") == {"match_phrase": {"message": {"query": "invalid"}}}
    assert dsl('message:"Invalid User"') == {"match_phrase": {"message": {"query": "Invalid User"}}}


def test_text_wildcard_applies_to_one_lowercased_word() -> None:
    assert dsl("message:FAIL*") == {"wildcard": {"message": {"value": "fail*", "case_insensitive": True}}}
    assert dsl("message:ĐĂNG*")["wildcard"]["message"]["value"] == "đăng*"


def test_text_wildcard_over_several_words_is_an_ordered_gapless_interval() -> None:
    assert dsl("message:/wp-log*") == {"intervals": {"message": {"all_of": {
        "ordered": True, "max_gaps": 0,
        "intervals": [{"match": {"query": "wp", "ordered": True, "max_gaps": 0}},
                      {"wildcard": {"pattern": "log*"}}],
    }}}}


def test_text_pattern_pieces_of_only_stars_are_dropped() -> None:
    assert dsl("message:failed\\ *") == {"match_phrase": {"message": {"query": "failed"}}}
    assert dsl("message:*\\ *") == {"exists": {"field": "message"}}


def test_bare_term_searches_the_default_text_fields() -> None:
    assert dsl("failed") == BARE_FAILED


def test_bare_wildcard_searches_words_of_the_default_text_fields() -> None:
    assert dsl("fail*") == {"bool": {"should": [
        {"wildcard": {"message": {"value": "fail*", "case_insensitive": True}}},
        {"wildcard": {"event.original": {"value": "fail*", "case_insensitive": True}}},
    ], "minimum_should_match": 1}}


def test_range_on_a_text_field_is_refused() -> None:
    assert "full-text" in rejects("message:[a TO b]")


# --- flattened fields ---------------------------------------------------------------


def test_flattened_key_and_root_are_terms() -> None:
    assert dsl("winlog.event_data.TargetUserName:administrator") == ci_term(
        "winlog.event_data.TargetUserName", "administrator")
    assert dsl("fortinet.firewall:port1") == ci_term("fortinet.firewall", "port1")


def test_flattened_key_takes_a_trailing_star_as_a_prefix() -> None:
    assert dsl("fortinet.firewall.srcintf:Port*") == {
        "prefix": {"fortinet.firewall.srcintf": {"value": "Port", "case_insensitive": True}}}


def test_flattened_key_refuses_other_wildcards_and_points_to_the_root() -> None:
    message = rejects("fortinet.firewall.srcintf:*ort1")
    assert "fortinet.firewall:*ort1" in message


def test_flattened_root_takes_any_wildcard() -> None:
    assert dsl("fortinet.firewall:*ort1") == {
        "wildcard": {"fortinet.firewall": {"value": "*ort1", "case_insensitive": True}}}


def test_flattened_key_range_always_has_both_bounds() -> None:
    assert dsl("fortinet.firewall.action:>=d") == {
        "range": {"fortinet.firewall.action": {"gte": "d", "lte": "\U0010ffff"}}}
    assert dsl("fortinet.firewall.action:<d") == {"range": {"fortinet.firewall.action": {"gte": "", "lt": "d"}}}


def test_flattened_fields_are_unsearchable_when_only_stored() -> None:
    assert "unknown_fields: stored" in rejects("fortinet.firewall.srcintf:port1", flattened=False)
    assert "unknown_fields: stored" in rejects("_exists_:winlog.event_data", flattened=False)
    assert to_dsl(parse_query("user.name:root"), flattened=False) == ci_term("user.name", "root")


# --- numbers, booleans -----------------------------------------------------------


def test_number_is_a_numeric_term() -> None:
    assert dsl("http.response.status_code:404") == {"term": {"http.response.status_code": 404}}
    assert dsl("http.response.status_code:4.04e2") == {"term": {"http.response.status_code": 404}}
    assert dsl("amavis.hits:2.5") == {"term": {"amavis.hits": 2.5}}


def test_number_a_long_cannot_hold_matches_nothing() -> None:
    assert dsl("source.port:22.5") == {"match_none": {}}
    assert dsl(f"source.port:{1 << 63}") == {"match_none": {}}
    assert dsl("amavis.hits:1e999") == {"match_none": {}}


def test_long_range_bounds_become_inclusive_integers() -> None:
    assert dsl("http.response.status_code:{404 TO 500}") == {
        "range": {"http.response.status_code": {"gte": 405, "lte": 499}}}
    assert dsl("source.port:[1.5 TO 2.5]") == {"range": {"source.port": {"gte": 2, "lte": 2}}}
    assert dsl("source.port:{10 TO 11}") == {"match_none": {}}


def test_long_range_beyond_a_long_is_clamped_or_empty() -> None:
    assert dsl("source.bytes:>=1e30") == {"match_none": {}}
    assert dsl("source.bytes:[-1e30 TO 5]") == {"range": {"source.bytes": {"lte": 5}}}
    assert dsl("source.bytes:[-1e30 TO 1e30]") == {"exists": {"field": "source.bytes"}}


def test_double_range_keeps_exclusive_bounds() -> None:
    assert dsl("amavis.hits:{1.5 TO *]") == {"range": {"amavis.hits": {"gt": 1.5}}}


def test_boolean_field_takes_true_or_false_only() -> None:
    assert dsl("tls.resumed:TRUE") == {"term": {"tls.resumed": True}}
    assert dsl("tls.resumed:false") == {"term": {"tls.resumed": False}}
    assert "true or false" in rejects("tls.resumed:yes")


# --- time -----------------------------------------------------------------------------


def test_date_alone_is_the_whole_day() -> None:
    assert dsl("@timestamp:2024-01-03") == {"range": {"@timestamp": {
        "gte": "2024-01-03T00:00:00.000Z", "lte": "2024-01-03T23:59:59.999Z",
        "format": "strict_date_optional_time"}}}


def test_datetime_range_is_exact_to_the_millisecond_in_utc() -> None:
    assert dsl("event.ingested:{2024-01-01T17:00:00+07:00 TO *]") == {"range": {"event.ingested": {
        "gte": "2024-01-01T10:00:00.001Z", "format": "strict_date_optional_time"}}}


def test_empty_time_range_matches_nothing() -> None:
    assert dsl("@timestamp:{2024-01-01T00:00:00Z TO 2024-01-01T00:00:00.001Z}") == {"match_none": {}}


def test_open_timestamp_range_is_everything_and_other_open_ranges_are_existence() -> None:
    assert dsl("@timestamp:[* TO *]") == {"match_all": {}}
    assert dsl("http.response.status_code:[* TO *]") == {"exists": {"field": "http.response.status_code"}}


# --- IP addresses ---------------------------------------------------------------------


def test_ip_address_and_network_are_terms() -> None:
    assert dsl("source.ip:10.1.2.3") == {"term": {"source.ip": "10.1.2.3"}}
    assert dsl('source.ip:"2001:0db8:0:0::7"') == {"term": {"source.ip": "2001:db8::7"}}
    assert dsl("source.ip:10.1.2.3/8") == {"term": {"source.ip": "10.0.0.0/8"}}
    assert dsl("related.ip:192.168.*") == {"term": {"related.ip": "192.168.0.0/16"}}


def test_ip_range_bounds_are_inclusive_addresses() -> None:
    assert dsl("source.ip:{10.0.0.0 TO 10.0.1.0}") == {
        "range": {"source.ip": {"gte": "10.0.0.1", "lte": "10.0.0.255"}}}
    assert dsl("source.ip:[2001\\:db8\\:\\:1 TO *]") == {"range": {"source.ip": {"gte": "2001:db8::1"}}}
    assert dsl("source.ip:{10.0.0.1 TO 10.0.0.2}") == {"match_none": {}}


def test_text_that_is_not_an_address_matches_nothing_in_an_ip_field() -> None:
    assert to_dsl(Term("source.ip", "web01")) == {"match_none": {}}


def test_network_on_a_field_that_is_not_an_ip_is_refused() -> None:
    with pytest.raises(QueryError):
        to_dsl(Cidr("user.name", ip_network("10.0.0.0/8")))


# --- fields ---------------------------------------------------------------------------


def test_exists() -> None:
    assert dsl("_exists_:user.name") == {"exists": {"field": "user.name"}}
    assert dsl("user.name:*") == {"exists": {"field": "user.name"}}


def test_object_path_holds_no_value_but_exists() -> None:
    assert dsl("user:admin") == {"match_none": {}}
    assert dsl("winlog:*Administrator*") == {"match_none": {}}
    assert dsl("_exists_:winlog") == {"exists": {"field": "winlog"}}


def test_unmapped_field_is_refused_with_close_matches() -> None:
    message = rejects("usr.name:root")
    assert "usr.name is not searchable in Elasticsearch" in message
    assert "không tìm kiếm được trên Elasticsearch" in message
    assert "user.name" in message


def test_unmapped_field_without_close_match_says_where_fields_are_listed() -> None:
    assert "collectors/ecs_fields.py" in rejects("_exists_:zzqx")


def test_field_below_a_plain_field_is_unmapped() -> None:
    assert "not searchable" in rejects("user.name.first:x")


# --- boolean structure -----------------------------------------------------------------


def test_and_is_a_filter_and_its_negations_join_must_not() -> None:
    assert dsl("user.name:root AND NOT failed") == {"bool": {
        "filter": [ci_term("user.name", "root")], "must_not": [BARE_FAILED]}}


def test_not_alone_is_must_not() -> None:
    assert dsl("NOT user.name:root") == {"bool": {"must_not": [ci_term("user.name", "root")]}}


def test_or_is_one_should_list() -> None:
    assert dsl("user.name:a OR user.name:b OR failed") == {"bool": {"should": [
        ci_term("user.name", "a"), ci_term("user.name", "b"), *FAILED_IN_TEXT,
    ], "minimum_should_match": 1}}


def test_match_all_and_empty_boolean_nodes() -> None:
    assert dsl("*") == {"match_all": {}}
    assert to_dsl(And(())) == {"match_all": {}}
    assert to_dsl(Or(())) == {"match_none": {}}
    assert to_dsl(And((MatchAll(), Exists("user.name")))) == {"exists": {"field": "user.name"}}


def test_nesting_deeper_than_elasticsearch_allows_is_refused() -> None:
    node: Any = Term("user.name", "x")
    for i in range(MAX_BOOL_DEPTH + 1):
        node = Or((node, Term("user.name", str(i)))) if i % 2 else And((node, Not(Term("user.name", str(i)))))
    with pytest.raises(QueryError, match="nested too deeply"):
        to_dsl(node)


# --- the search body ---------------------------------------------------------------------


def test_body_is_filter_context_with_a_half_open_time_window() -> None:
    since = datetime(2024, 1, 1, 7, tzinfo=timezone(timedelta(hours=7)))
    until = datetime(2024, 1, 2)  # naive is UTC
    assert query_body("user.name:root", since, until) == {"query": {"bool": {"filter": [
        {"range": {"@timestamp": {"gte": "2024-01-01T00:00:00.000Z", "lt": "2024-01-02T00:00:00.000Z",
                                  "format": "strict_date_optional_time"}}},
        ci_term("user.name", "root"),
    ]}}}


def test_body_without_window_or_query_matches_everything() -> None:
    assert query_body("") == {"query": {"match_all": {}}}
    assert query_body("*", since=datetime(2024, 1, 1, tzinfo=UTC)) == {"query": {"bool": {"filter": [
        {"range": {"@timestamp": {"gte": "2024-01-01T00:00:00.000Z", "format": "strict_date_optional_time"}}},
    ]}}}


def test_body_merges_the_window_into_an_and() -> None:
    body = query_body("user.name:root -failed", until=datetime(2024, 1, 1, tzinfo=UTC))
    assert body == {"query": {"bool": {
        "filter": [{"range": {"@timestamp": {"lt": "2024-01-01T00:00:00.000Z",
                                             "format": "strict_date_optional_time"}}},
                   ci_term("user.name", "root")],
        "must_not": [BARE_FAILED],
    }}}


def test_body_keeps_an_or_whole_under_the_window() -> None:
    body = query_body("user.name:a OR user.name:b", since=datetime(2024, 1, 1, tzinfo=UTC))
    assert body["query"]["bool"]["filter"][1]["bool"]["minimum_should_match"] == 1


def test_body_reports_parse_errors_as_query_errors() -> None:
    with pytest.raises(QueryError):
        query_body("user.name:(")


# --- security -------------------------------------------------------------------------------

HOSTILE = [
    'user.name:"x\\" OR *:*"',
    'message:"\\"}}, {\\"match_all\\": {}}"',
    "user.name:x\\\\*",
    'gov.system.name:"Đ\\" OR 1=1"',
    "url.path:/a/b/../*",
    "message:a\\ AND\\ b*",
    "winlog.event_data.query_string:x",
]
DSL_KEYS = {"query", "bool", "filter", "must_not", "should", "minimum_should_match", "term", "terms", "wildcard",
            "prefix", "regexp", "match_phrase", "intervals", "all_of", "ordered", "max_gaps", "match", "pattern",
            "range", "exists", "field", "value", "case_insensitive", "flags", "gte", "gt", "lte", "lt", "format",
            "match_all", "match_none"}


def _keys(clause: Any) -> set[str]:
    if isinstance(clause, list):
        return set().union(*(_keys(c) for c in clause))
    if isinstance(clause, dict):
        return set(clause).union(*(_keys(v) for v in clause.values()))
    return set()


@pytest.mark.parametrize("query", HOSTILE)
def test_user_text_never_becomes_query_structure(query: str) -> None:
    node = parse_query(query)
    fields = {n.field for n in (node.items if isinstance(node, And | Or) else (node,)) if isinstance(n, Term)}
    assert _keys(query_body(query)) <= DSL_KEYS | fields


def test_quoted_json_stays_one_phrase() -> None:
    assert dsl('message:"\\"}}, {\\"match_all\\": {}}"') == {
        "match_phrase": {"message": {"query": '"}}, {"match_all": {}}'}}}


def test_every_field_type_translates_a_sample_value() -> None:
    from collectors.ecs_fields import FIELD_TYPES

    samples = {"keyword": "x", "text": "x", "flattened": "x", "ip": "10.0.0.1", "long": "1", "double": "1.5",
               "date": "2024-01-01", "boolean": "true"}
    for field, ftype in FIELD_TYPES.items():
        clause = to_dsl(Term(field, samples[ftype]))
        assert field in json.dumps(clause)


def test_random_queries_give_a_clause_or_a_query_error() -> None:
    rng = random.Random(5)
    alphabet = string.ascii_letters + string.digits + ' :*?"\\()[]{}<>=/-+!^~.@_đĐ'
    fields = ["user.name", "message", "source.ip", "source.port", "@timestamp", "winlog.event_data.X",
              "fortinet.firewall", "tls.resumed", "amavis.hits", "user"]
    for _ in range(2000):
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        query = f"{rng.choice(fields)}:{word}" if rng.random() < 0.7 else word
        try:
            clause = to_dsl(parse_query(query))
        except QueryError:
            continue
        assert isinstance(clause, dict)
        json.dumps(clause)  # always serialisable (no NaN/infinity, no odd objects)


def test_range_node_built_by_hand_is_validated() -> None:
    with pytest.raises(QueryError):
        to_dsl(Range("source.port", "abc", None))
    with pytest.raises(QueryError):
        to_dsl(Range("source.ip", "abc", None))

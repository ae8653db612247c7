"""Translate the query AST into the Elasticsearch query DSL.

Only structured clauses are built (``term``, ``wildcard``, ``prefix``, ``regexp``,
``match_phrase``, ``intervals``, ``range``, ``exists``, ``bool``); the analyst's text
is a value inside them, never part of a ``query_string``, so no query can change the
shape of the search. Wildcard and regexp values are rebuilt character by character
with every metacharacter escaped.

Semantics follow :mod:`soc.query.sql` wherever Elasticsearch can express them, for
the index mapping built from :data:`collectors.ecs_fields.FIELD_TYPES`
(``dynamic: false``):

* **Keyword fields**: whole value, case-insensitive (``case_insensitive: true``).
  Elasticsearch folds only ASCII letters there, so a value with other cased
  letters (``Cổng Dịch vụ công``) becomes a ``regexp`` whose non-ASCII letters are
  classes of their case forms (``C[ổỔ]ng``).
* **Flattened fields** (``winlog.event_data``, ``fortinet.firewall`` …): the root
  matches any leaf value, a dotted key (``winlog.event_data.TargetUserName``) that
  key's values. Elasticsearch refuses wildcards and regexps on keys, so a key
  takes a trailing ``*`` only (a ``prefix`` query) and folds ASCII letters only.
* **Text fields** and bare terms: analysed words, not substrings. A value is a
  ``match_phrase``; a wildcard applies to single words, and a pattern spanning
  several words is an ordered, gap-free ``intervals`` query.
* **Numbers, IPs, dates** compare as such: ``term`` and ``range`` on the typed
  field (an IP ``term`` takes a CIDR too); date ranges are computed to the
  millisecond with :func:`soc.query.values.time_bounds`, as in SQLite.
* A field outside the mapping is not indexed, so a query on it raises a
  :class:`~soc.store.base.QueryError` naming close matches instead of silently
  matching nothing. An object path (``user``) holds no value: it matches nothing,
  as in SQLite, and exists when any of its fields does.

Where results still differ from the SQLite store, docs/query-language.md says so
("On Elasticsearch").
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Address, IPv6Network
from typing import Any, Final

from collectors.ecs_fields import DEFAULT_SEARCH_FIELDS, FIELD_TYPES
from soc.query.ast import And, Cidr, Exists, MatchAll, Node, Not, Or, Range, Term, TermKind
from soc.query.parse import parse_query
from soc.query.values import (
    IP_KEY_MAX,
    check_field,
    ip_key,
    iso_from_ms,
    parse_ip,
    parse_number,
    query_error,
    time_bounds,
)
from soc.store.base import QueryError

Clause = dict[str, Any]

DATE_FORMAT: Final = "strict_date_optional_time"
LONG_MIN: Final = -(1 << 63)
LONG_MAX: Final = (1 << 63) - 1
MAX_REGEXP_CHARS: Final = 1000
"""Elasticsearch's default ``index.max_regex_length``: a longer value falls back to
the ASCII-only case folding of ``term``/``wildcard``."""
MAX_LISTED_NUMBERS: Final = 1024
"""The widest numeric range on a text-typed field, sent as a ``terms`` list."""
MAX_BOOL_DEPTH: Final = 30
"""Elasticsearch's ``indices.query.bool.max_nested_depth``."""
_TOP_STRING: Final = "\U0010ffff"
"""Above every string in UTF-8 order: the open end of a range on a flattened key,
which Elasticsearch requires to have both bounds."""
_SPLIT_PUNCTUATION: Final = frozenset("!\"#$%&()+-/<=>@[]^`{|}~")
"""ASCII characters the standard tokenizer always breaks words at (UAX #29 keeps
``.``, ``'``, ``:``, ``,``, ``;`` and ``_`` inside a word in some contexts)."""

_STAR: Final = object()
_ONE: Final = object()
Token = str | object


def to_dsl(node: Node, *, flattened: bool = True) -> Clause:
    """One query clause for ``node``; raises QueryError for what Elasticsearch cannot
    search. ``flattened`` is False when vendor objects are only kept in ``_source``
    (``unknown_fields: stored``), which makes them unsearchable."""
    try:
        clause = _Translator(flattened).node(node)
        depth = _bool_depth(clause)
    except RecursionError:
        raise query_error("Query is nested too deeply", "Truy vấn lồng nhau quá sâu") from None
    if depth > MAX_BOOL_DEPTH:
        raise query_error(
            f"Query is nested too deeply for Elasticsearch (more than {MAX_BOOL_DEPTH} levels of "
            "AND/OR/NOT); remove parentheses",
            f"Truy vấn lồng nhau quá sâu với Elasticsearch (quá {MAX_BOOL_DEPTH} mức AND/OR/NOT); "
            "hãy bớt dấu ngoặc",
        )
    return clause


def query_body(query: str, since: datetime | None = None, until: datetime | None = None, *,
               flattened: bool = True, agencies: frozenset[str] | None = None) -> dict[str, Any]:
    """A search body ``{"query": …}`` for an analyst query, in filter context (no
    scoring), limited to ``since <= @timestamp < until`` (naive datetimes are UTC)
    and, when ``agencies`` is not None, to events whose ``gov.agency.id`` is one of
    them (a ``terms`` filter beside the query: the ids are never query text)."""
    clause = to_dsl(parse_query(query), flattened=flattened)
    window: dict[str, Any] = {}
    if since is not None:
        window["gte"] = iso_from_ms(_datetime_ms(since))
    if until is not None:
        window["lt"] = iso_from_ms(_datetime_ms(until))
    filters: list[Clause] = []
    if window:
        filters.append({"range": {"@timestamp": {**window, "format": DATE_FORMAT}}})
    if agencies is not None:
        filters.append({"terms": {"gov.agency.id": sorted(agencies)}} if agencies else _match_none())
    if clause == _match_all():
        return {"query": {"bool": {"filter": filters}} if filters else {"match_all": {}}}
    inner = clause.get("bool")
    if isinstance(inner, dict) and "should" not in inner:
        # An AND or NOT is already a bool in filter context: it takes the time
        # filter itself, one level less to run.
        merged = dict(inner)
        if filters or "filter" in inner:
            merged["filter"] = [*filters, *inner.get("filter", [])]
        return {"query": {"bool": merged}}
    return {"query": {"bool": {"filter": [*filters, clause]}}}


def _datetime_ms(dt: datetime) -> int:
    # The same rounding as the SQLite store's window, so both cut at the same instant.
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


def _bool_depth(clause: Any) -> int:
    if isinstance(clause, list):
        return max((_bool_depth(c) for c in clause), default=0)
    if not isinstance(clause, dict):
        return 0
    inner = max((_bool_depth(v) for v in clause.values()), default=0)
    return inner + 1 if "bool" in clause else inner


# --- fields -----------------------------------------------------------------------

def _prefixes(field: str) -> Iterator[str]:
    parts = field.split(".")
    for i in range(1, len(parts)):
        yield ".".join(parts[:i])


_OBJECTS: Final = frozenset(p for name in FIELD_TYPES for p in _prefixes(name))


def _field_kind(field: str, flattened: bool) -> str:
    """The field's type in the mapping, ``flattened_key`` under a flattened root,
    ``object`` for a path above mapped fields; raises QueryError for the rest."""
    check_field(field)
    kind: str | None = FIELD_TYPES.get(field)
    if kind is None:
        if any(FIELD_TYPES.get(p) == "flattened" for p in _prefixes(field)):
            kind = "flattened_key"
        elif field in _OBJECTS:
            kind = "object"
        else:
            raise _not_searchable(field)
    if not flattened and kind in ("flattened", "flattened_key"):
        raise query_error(
            f"{field} is not searchable in Elasticsearch: vendor objects are kept only in _source "
            "(elasticsearch.unknown_fields: stored); search message or a mapped field instead",
            f"{field} không tìm kiếm được trên Elasticsearch: đối tượng của hãng chỉ được lưu trong _source "
            "(elasticsearch.unknown_fields: stored); hãy tìm trong message hoặc một trường có ánh xạ",
        )
    return kind


def _not_searchable(field: str) -> QueryError:
    close = difflib.get_close_matches(field, list(FIELD_TYPES), n=5, cutoff=0.6)
    if close:
        hint_en = f"; did you mean {', '.join(close)}?"
        hint_vi = f"; có phải ý bạn là {', '.join(close)}?"
    else:
        hint_en = "; searchable fields are listed in collectors/ecs_fields.py, and a bare word searches message"
        hint_vi = ("; các trường tìm kiếm được liệt kê trong collectors/ecs_fields.py, và một từ không kèm "
                   "trường sẽ tìm trong message")
    return query_error(
        f"Field {field} is not searchable in Elasticsearch (it is not in the index mapping and is "
        f"only kept in _source){hint_en}",
        f"Trường {field} không tìm kiếm được trên Elasticsearch (không có trong ánh xạ chỉ mục, "
        f"chỉ được lưu trong _source){hint_vi}",
    )


# --- values -----------------------------------------------------------------------

def _nfc(text: str) -> str:
    # SQLite compares NFC-folded text; Elasticsearch compares bytes, and stored
    # text is almost always NFC.
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _tokens(value: str, kind: TermKind) -> list[Token]:
    """Characters and wildcards of a value; in a pattern ``\\x`` is a literal ``x``."""
    value = _nfc(value)
    if kind != "wildcard":
        return list(value)
    out: list[Token] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
            continue
        out.append(_STAR if ch == "*" else _ONE if ch == "?" else ch)
        i += 1
    return out


def _literal(tokens: list[Token]) -> str:
    return "".join(t for t in tokens if isinstance(t, str))


def _wildcard_text(tokens: list[Token]) -> str:
    """Elasticsearch wildcard syntax: literal ``*``, ``?`` and ``\\`` escaped."""
    out: list[str] = []
    for token in tokens:
        if token is _STAR:
            out.append("*")
        elif token is _ONE:
            out.append("?")
        elif isinstance(token, str):
            out.append("\\" + token if token in "*?\\" else token)
    return "".join(out)


def _case_variants(ch: str) -> str:
    forms = {ch, ch.lower(), ch.upper(), ch.title()}
    return "".join(sorted(f for f in forms if len(f) == 1))


def _needs_unicode_fold(text: str) -> bool:
    """Whether the text has a letter with case forms Elasticsearch's ASCII-only
    ``case_insensitive`` does not fold."""
    return any(not ch.isascii() and len(_case_variants(ch)) > 1 for ch in text)


def _regexp_text(tokens: list[Token]) -> str:
    """A Lucene regular expression matching ``tokens`` case-insensitively beyond
    ASCII (used with ``case_insensitive: true`` for the ASCII letters). Every ASCII
    character but letters and digits is escaped; those two never are, since
    ``\\d``, ``\\w`` … are classes."""
    out: list[str] = []
    for token in tokens:
        if token is _STAR:
            out.append(".*")
        elif token is _ONE:
            out.append(".")
        elif isinstance(token, str):
            if token.isascii():
                out.append(token if token.isalnum() else "\\" + token)
            else:
                variants = _case_variants(token)
                out.append(f"[{variants}]" if len(variants) > 1 else token)
    return "".join(out)


def _regexp(field: str, tokens: list[Token]) -> Clause | None:
    pattern = _regexp_text(tokens)
    if len(pattern) > MAX_REGEXP_CHARS:
        return None
    return {"regexp": {field: {"value": pattern, "flags": "NONE", "case_insensitive": True}}}


def _trailing_star_prefix(tokens: list[Token]) -> str | None:
    """The literal before a single final ``*``, or None for any other pattern."""
    if not tokens or tokens[-1] is not _STAR:
        return None
    head = tokens[:-1]
    if any(not isinstance(t, str) for t in head):
        return None
    return _literal(head)


def _match_all() -> Clause:
    return {"match_all": {}}


def _match_none() -> Clause:
    return {"match_none": {}}


def _any(clauses: list[Clause]) -> Clause:
    if len(clauses) == 1:
        return clauses[0]
    flat: list[Clause] = []
    for clause in clauses:
        inner = clause.get("bool")
        if isinstance(inner, dict) and set(inner) == {"should", "minimum_should_match"} \
                and inner["minimum_should_match"] == 1:
            flat.extend(inner["should"])  # (a OR b) OR c: one bool, as the parser flattens the AST
        else:
            flat.append(clause)
    return {"bool": {"should": flat, "minimum_should_match": 1}}


def _exists(field: str) -> Clause:
    return {"exists": {"field": field}}


# --- translation ------------------------------------------------------------------

class _Translator:
    def __init__(self, flattened: bool) -> None:
        self.flattened = flattened

    def node(self, node: Node) -> Clause:
        if isinstance(node, MatchAll):
            return _match_all()
        if isinstance(node, And):
            return self._and(node)
        if isinstance(node, Or):
            if not node.items:
                return _match_none()
            return _any([self.node(item) for item in node.items])
        if isinstance(node, Not):
            return {"bool": {"must_not": [self.node(node.item)]}}
        if isinstance(node, Exists):
            self.kind(node.field)
            return _exists(node.field)
        if isinstance(node, Cidr):
            return self._cidr(node.field, node.network)
        if isinstance(node, Range):
            return self._range(node)
        return self._term(node)

    def kind(self, field: str) -> str:
        return _field_kind(field, self.flattened)

    def _and(self, node: And) -> Clause:
        filters: list[Clause] = []
        must_not: list[Clause] = []
        for item in node.items:
            if isinstance(item, Not):
                # NOT items join the same bool: one level less for the engine.
                must_not.append(self.node(item.item))
            elif not isinstance(item, MatchAll):
                filters.append(self.node(item))
        if not filters and not must_not:
            return _match_all()
        if len(filters) == 1 and not must_not:
            return filters[0]
        body: dict[str, Any] = {}
        if filters:
            body["filter"] = filters
        if must_not:
            body["must_not"] = must_not
        return {"bool": body}

    # --- terms ----------------------------------------------------------------

    def _term(self, node: Term) -> Clause:
        if node.field is None:
            return _any([self._contains(f, node.value, node.kind) for f in DEFAULT_SEARCH_FIELDS])
        field, value, kind = node.field, node.value, node.kind
        ftype = self.kind(field)
        if ftype == "object":
            return _match_none()  # an object is not its members (user:admin), as in SQLite
        if ftype == "text":
            return _text(field, value, kind)
        if ftype == "ip":
            return _ip_term(field, value, kind)
        if ftype in ("long", "double"):
            return _number_term(field, value, kind, ftype)
        if ftype == "date":
            if kind == "wildcard":
                raise query_error(f"{field} is a date: use a range such as {field}:[2024-05-01 TO 2024-05-02]",
                                  f"{field} là ngày giờ: hãy dùng khoảng, ví dụ {field}:[2024-05-01 TO 2024-05-02]")
            return self._range(Range(field, value, value))
        if ftype == "boolean":
            return _boolean_term(field, value, kind)
        return _keyword(field, value, kind, keyed=ftype == "flattened_key")

    def _contains(self, field: str, value: str, kind: TermKind) -> Clause:
        """A bare term in one default search field."""
        if self.kind(field) == "text":
            return _text(field, value, kind)
        tokens = [_STAR, *_tokens(value, kind), _STAR]
        return _keyword_pattern(field, tokens, keyed=False)

    def _cidr(self, field: str, network: IPv4Network | IPv6Network) -> Clause:
        if self.kind(field) != "ip":
            raise query_error(f"{field} is not an IP field: a network ({network}) only applies to IP fields",
                              f"{field} không phải trường IP: dải mạng ({network}) chỉ dùng cho trường IP")
        return {"term": {field: str(network)}}

    # --- ranges ---------------------------------------------------------------

    def _range(self, node: Range) -> Clause:
        field, low, high = node.field, node.low, node.high
        ftype = self.kind(field)
        if low is None and high is None:
            return _match_all() if field == "@timestamp" else _exists(field)
        if ftype == "object":
            return _match_none()
        if ftype == "date":
            lo_ms, hi_ms = time_bounds(low, high, node.include_low, node.include_high)
            if lo_ms is not None and hi_ms is not None and lo_ms > hi_ms:
                return _match_none()
            bounds: dict[str, Any] = {}
            if lo_ms is not None:
                bounds["gte"] = iso_from_ms(lo_ms)
            if hi_ms is not None:
                bounds["lte"] = iso_from_ms(hi_ms)
            return {"range": {field: {**bounds, "format": DATE_FORMAT}}}
        if ftype == "ip":
            return _ip_range(node)
        if ftype == "long":
            return _long_range(node)
        if ftype == "double":
            return _double_range(node)
        if ftype in ("text", "boolean"):
            what_en = "a full-text field" if ftype == "text" else "true/false"
            what_vi = "trường văn bản" if ftype == "text" else "đúng/sai"
            raise query_error(f"{field} is {what_en}: ranges do not apply to it in Elasticsearch",
                              f"{field} là {what_vi}: không dùng khoảng giá trị với trường này trên Elasticsearch")
        if all(parse_number(b) is not None for b in (low, high) if b is not None):
            return _numeric_text_range(node)
        bounds = {}
        if ftype == "flattened_key":
            # Elasticsearch refuses an open range on a flattened key.
            low = "" if low is None else low
            high = _TOP_STRING if high is None else high
        if low is not None:
            bounds["gte" if node.include_low else "gt"] = low
        if high is not None:
            bounds["lte" if node.include_high else "lt"] = high
        return {"range": {field: bounds}}


def _numeric_text_range(node: Range) -> Clause:
    """Numbers kept as text (``winlog.event_id``, ``fortinet.firewall.policyid``):
    SQLite compares them as numbers, Elasticsearch only as text ("9" > "10"), so the
    whole numbers of a small closed span are listed instead."""
    field = node.field
    lo = None if node.low is None else parse_number(node.low)
    hi = None if node.high is None else parse_number(node.high)
    whole = all(isinstance(n, int) or (isinstance(n, float) and n.is_integer()) for n in (lo, hi))
    if lo is not None and hi is not None and whole:
        first = int(lo) + (0 if node.include_low else 1)
        last = int(hi) - (0 if node.include_high else 1)
        if last < first:
            return _match_none()
        if last - first < MAX_LISTED_NUMBERS:
            return {"terms": {field: [str(n) for n in range(first, last + 1)]}}
    raise query_error(
        f"{field} holds numbers as text in Elasticsearch, which compares them as text: a numeric range on it "
        f"must be two whole numbers at most {MAX_LISTED_NUMBERS} apart ({field}:[4600 TO 4700]), or use a "
        "numeric field (source.bytes, destination.port …)",
        f"{field} lưu số dưới dạng văn bản trên Elasticsearch nên chỉ so sánh được như văn bản: khoảng số trên "
        f"trường này phải là hai số nguyên cách nhau tối đa {MAX_LISTED_NUMBERS} ({field}:[4600 TO 4700]), "
        "hoặc hãy dùng một trường số (source.bytes, destination.port …)",
    )


def _keyword(field: str, value: str, kind: TermKind, keyed: bool) -> Clause:
    if kind == "wildcard":
        return _keyword_pattern(field, _tokens(value, kind), keyed)
    text = _nfc(value)
    if not keyed and _needs_unicode_fold(text):
        regexp = _regexp(field, list(text))
        if regexp is not None:
            return regexp
    return {"term": {field: {"value": text, "case_insensitive": True}}}


def _keyword_pattern(field: str, tokens: list[Token], keyed: bool) -> Clause:
    if all(t is _STAR for t in tokens):
        return _exists(field)
    if keyed:
        prefix = _trailing_star_prefix(tokens)
        if prefix is None:
            root = field.rsplit(".", 1)[0]
            raise query_error(
                f"Elasticsearch cannot match wildcards inside the flattened field {field} except one * "
                f"at the end ({field}:abc*); {root}:{_wildcard_text(tokens)} matches any value of {root}",
                f"Elasticsearch không hỗ trợ ký tự đại diện trong trường flattened {field}, trừ một dấu * "
                f"ở cuối ({field}:abc*); {root}:{_wildcard_text(tokens)} tìm trong mọi giá trị của {root}",
            )
        return {"prefix": {field: {"value": prefix, "case_insensitive": True}}}
    if _needs_unicode_fold(_literal(tokens)):
        regexp = _regexp(field, tokens)
        if regexp is not None:
            return regexp
    return {"wildcard": {field: {"value": _wildcard_text(tokens), "case_insensitive": True}}}


def _text(field: str, value: str, kind: TermKind) -> Clause:
    """Words of an analysed field: a phrase, a one-word pattern, or an ordered,
    gap-free sequence of words and patterns."""
    if kind != "wildcard":
        return {"match_phrase": {field: {"query": _nfc(value)}}}
    pieces = _word_pieces(_tokens(value, kind))
    if not pieces:
        return _exists(field)
    if len(pieces) == 1:
        piece = pieces[0]
        if all(isinstance(t, str) for t in piece):
            return {"match_phrase": {field: {"query": _literal(piece)}}}
        # Indexed words are lower case; the analyser's own normalising of a pattern
        # is not applied by every server.
        return {"wildcard": {field: {"value": _wildcard_text(piece).lower(), "case_insensitive": True}}}
    rules: list[Clause] = []
    for piece in pieces:
        if all(isinstance(t, str) for t in piece):
            rules.append({"match": {"query": _literal(piece), "ordered": True, "max_gaps": 0}})
        else:
            rules.append({"wildcard": {"pattern": _wildcard_text(piece).lower()}})
    return {"intervals": {field: {"all_of": {"ordered": True, "max_gaps": 0, "intervals": rules}}}}


def _word_pieces(tokens: list[Token]) -> list[list[Token]]:
    """Split a pattern where the standard tokenizer splits words; pieces that are
    only ``*`` say nothing about a word and are dropped."""
    pieces: list[list[Token]] = [[]]
    for token in tokens:
        if isinstance(token, str) and (token.isspace() or token in _SPLIT_PUNCTUATION):
            pieces.append([])
        else:
            pieces[-1].append(token)
    return [p for p in pieces if p and not all(t is _STAR for t in p)]


def _ip_term(field: str, value: str, kind: TermKind) -> Clause:
    if kind == "wildcard":
        raise query_error(f"{field} is an IP field: use CIDR ({field}:10.0.0.0/8)",
                          f"{field} là trường IP: hãy dùng CIDR ({field}:10.0.0.0/8)")
    addr = parse_ip(value)
    if addr is None:
        return _match_none()  # as in SQLite: text that is not an address never matches
    if isinstance(addr, IPv6Address):
        addr = IPv6Address(int(addr))  # without a %scope, which Elasticsearch does not read
    return {"term": {field: str(addr)}}


def _number_term(field: str, value: str, kind: TermKind, ftype: str) -> Clause:
    number = parse_number(value) if kind != "wildcard" else None
    if number is None:
        raise query_error(f"{field} is numeric: {value!r} is not a number (for a span use {field}:[500 TO 599])",
                          f"{field} là trường số: {value!r} không phải là số (khoảng giá trị: {field}:[500 TO 599])")
    if ftype == "double":
        real = _as_float(number)
        return {"term": {field: real}} if math.isfinite(real) else _match_none()
    if isinstance(number, float):
        if not number.is_integer():
            return _match_none()  # a long holds no fraction
        number = int(number)
    if not LONG_MIN <= number <= LONG_MAX:
        return _match_none()
    return {"term": {field: number}}


def _boolean_term(field: str, value: str, kind: TermKind) -> Clause:
    text = value.strip().lower()
    if kind == "wildcard" or text not in ("true", "false"):
        raise query_error(f"{field} is true or false: {value!r} cannot match it in Elasticsearch",
                          f"{field} chỉ nhận true hoặc false: {value!r} không thể khớp trên Elasticsearch")
    return {"term": {field: text == "true"}}


def _ip_range(node: Range) -> Clause:
    """Inclusive bounds in the one 128-bit space SQLite uses, sent as addresses."""
    lo = 0 if node.low is None else _ip_bound(node.field, node.low) + (0 if node.include_low else 1)
    hi = IP_KEY_MAX if node.high is None else _ip_bound(node.field, node.high) - (0 if node.include_high else 1)
    if lo > hi:
        return _match_none()
    bounds: dict[str, str] = {}
    if node.low is not None:
        bounds["gte"] = _key_ip(lo)
    if node.high is not None:
        bounds["lte"] = _key_ip(hi)
    return {"range": {node.field: bounds}}


def _ip_bound(field: str, text: str) -> int:
    addr = parse_ip(text)
    if addr is None:
        raise query_error(f"{field} is an IP field: range bound {text!r} is not an IP address",
                          f"{field} là trường IP: cận {text!r} không phải là địa chỉ IP")
    return ip_key(addr)


def _key_ip(key: int) -> str:
    addr = IPv6Address(key)
    return str(addr.ipv4_mapped or addr)


def _number_bound(field: str, text: str) -> int | float:
    number = parse_number(text)
    if number is None:
        raise query_error(f"{field} is numeric: range bound {text!r} is not a number",
                          f"{field} là trường số: cận {text!r} không phải là số")
    return number


def _as_float(number: int | float) -> float:
    try:
        return float(number)
    except OverflowError:  # an integer literal beyond any double
        return math.inf if number > 0 else -math.inf


def _long_range(node: Range) -> Clause:
    """Inclusive integer bounds, clamped to a long (Elasticsearch rejects a bound
    outside it, SQLite simply compares)."""
    lo: int | None = None
    hi: int | None = None
    if node.low is not None:
        x = _number_bound(node.field, node.low)
        if x == math.inf:
            return _match_none()
        if x != -math.inf:
            lo = math.ceil(x) if node.include_low else math.floor(x) + 1
    if node.high is not None:
        y = _number_bound(node.field, node.high)
        if y == -math.inf:
            return _match_none()
        if y != math.inf:
            hi = math.floor(y) if node.include_high else math.ceil(y) - 1
    if (lo is not None and lo > LONG_MAX) or (hi is not None and hi < LONG_MIN) or \
            (lo is not None and hi is not None and lo > hi):
        return _match_none()
    bounds: dict[str, int] = {}
    if lo is not None and lo > LONG_MIN:
        bounds["gte"] = lo
    if hi is not None and hi < LONG_MAX:
        bounds["lte"] = hi
    return {"range": {node.field: bounds}} if bounds else _exists(node.field)


def _double_range(node: Range) -> Clause:
    bounds: dict[str, float] = {}
    if node.low is not None:
        x = _as_float(_number_bound(node.field, node.low))
        if x == math.inf:
            return _match_none()
        if x != -math.inf:
            bounds["gte" if node.include_low else "gt"] = x
    if node.high is not None:
        y = _as_float(_number_bound(node.field, node.high))
        if y == -math.inf:
            return _match_none()
        if y != math.inf:
            bounds["lte" if node.include_high else "lt"] = y
    return {"range": {node.field: bounds}} if bounds else _exists(node.field)

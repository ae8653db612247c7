"""Translate the query AST into a SQLite WHERE clause over ``events(ts, doc)``.

Only bound parameters carry user input: values and JSON paths alike
(``json_each(doc, ?)`` with ``$."source"."ip"`` built from a validated field name),
so no query can change the SQL that runs. The functions named ``soc_*`` must be
registered on the connection with :func:`register_functions`.

Semantics (the Elasticsearch translator follows the same ones):

* **Lists.** A field matches when any of its values matches: ``event.category:
  authentication`` finds ``["authentication", "iam"]``. Every leaf is written as
  ``EXISTS (SELECT 1 FROM json_each(doc, ?) WHERE …)``, which yields the one value
  of a scalar and each element of an array, so there is one code path. Flattened
  fields (``winlog.event_data``, ``labels`` …) match any leaf value beneath them;
  any other object field matches nothing (``user:admin`` is not ``user.name``).
  Fields are addressed by their nested path; arrays of objects are not traversed.
* **Strings** (keyword and unlisted fields): whole-value match, case-insensitive;
  ``*`` and ``?`` are wildcards. A number or boolean stored in a keyword field
  matches its text (``winlog.event_id:4625`` finds ``4625`` and ``"4625"``).
* **Text fields** (``message``, ``event.original``, ``error.message`` …) and bare
  terms match as a case-insensitive substring; a phrase is a substring too. A bare
  term looks in :data:`~collectors.ecs_fields.DEFAULT_SEARCH_FIELDS`.
* **Case.** ASCII letters compare case-insensitively in SQLite's LIKE (the fast
  path). A value with other letters (Vietnamese ``Đăng nhập``) is compared after
  ``soc_fold`` (NFC + ``str.lower``) on both sides, behind a LIKE pre-filter made of
  the value's ASCII runs so the Python function only sees candidate rows.
* **Numbers** (``long``/``double`` fields) compare numerically (the parser rejects
  anything that is not a number); ranges on other fields compare numerically when
  every bound is a number (numeric text included), else as strings (binary order,
  case-sensitive, as Elasticsearch keyword ranges).
* **IP fields**: a plain address is an exact match, a network is ``soc_in_cidr``,
  a range compares addresses in one 128-bit space with IPv4 at ``::ffff:0:0/96``
  (IPv4-mapped IPv6 addresses equal their IPv4 form; ``0.0.0.0/0`` is all of
  IPv4 and no IPv6). Text that is not an address never matches.
* **Time.** ``@timestamp`` conditions use the indexed ``ts`` column (epoch ms). A
  date without a time is the whole day (see :func:`soc.query.values.time_bounds`).
  Other date fields compare as canonical ISO strings.
* ``_exists_:f`` / ``f:*``: the field is present with a non-null value (an empty
  list does not exist). ``NOT f:x`` also matches events without ``f``.
* Every leaf is first tested with ``doc LIKE '%…%'`` on the raw JSON text: the
  value's printable ASCII runs, or else the field's keys in path order, appear
  verbatim in orjson output. Being a necessary condition, it leaves the result
  unchanged (negation stays exact) and spares the JSON parse for most events.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from socket import AF_INET, AF_INET6, inet_pton
from typing import Any

from collectors.ecs_fields import DEFAULT_SEARCH_FIELDS, field_type
from soc.query.ast import And, Cidr, Exists, MatchAll, Node, Not, Or, Range, Term, TermKind
from soc.query.values import (
    IP_KEY_MAX,
    V4_MAPPED,
    check_field,
    ip_key,
    iso_from_ms,
    parse_ip,
    parse_number,
    time_bounds,
)

Sql = tuple[str, list[Any]]


class _Wild:
    __slots__ = ("like",)

    def __init__(self, like: str) -> None:
        self.like = like


_ANY = _Wild("%")
_ONE = _Wild("_")
Token = str | _Wild


def to_sql(node: Node) -> Sql:
    """``(where_clause, params)`` for a query AST; the clause uses ``ts`` and ``doc``."""
    return _node(node)


def register_functions(conn: sqlite3.Connection) -> None:
    """Register the ``soc_*`` SQL functions the translated clauses call."""
    conn.create_function("soc_fold", 1, fold, deterministic=True)
    conn.create_function("soc_in_cidr", 2, _in_cidr, deterministic=True)
    conn.create_function("soc_ip_key", 1, _ip_key_blob, deterministic=True)
    conn.create_function("soc_num", 1, _num, deterministic=True)


def json_path(field: str) -> str:
    """``$."a"."b"`` for ``a.b``; segments are quoted so ``@`` and ``-`` are literal."""
    check_field(field)
    return "$" + "".join(f'."{part}"' for part in field.split("."))


# --- SQL functions ----------------------------------------------------------------

def fold(value: Any) -> Any:
    """Case-fold a string the way queries are folded; other values pass through."""
    if not isinstance(value, str):
        return value
    if value.isascii():
        return value.lower()
    return unicodedata.normalize("NFC", value).lower()


def _value_key(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    # A SQL function must never raise: inet_pton also rejects NUL and non-ASCII
    # text with ValueError.
    try:
        return V4_MAPPED | int.from_bytes(inet_pton(AF_INET, value), "big")
    except (OSError, ValueError):
        pass
    try:
        # An IPv4-mapped address lands on the same key as its IPv4 form.
        return int.from_bytes(inet_pton(AF_INET6, value), "big")
    except (OSError, ValueError):
        return None


@lru_cache(maxsize=256)
def _network_keys(network: str) -> tuple[int, int]:
    net = ip_network(network, strict=False)
    return ip_key(net.network_address), ip_key(net.broadcast_address)


def _in_cidr(value: Any, network: str) -> int:
    key = _value_key(value)
    if key is None:
        return 0
    try:
        first, last = _network_keys(network)
    except ValueError:
        return 0
    return int(first <= key <= last)


def _ip_key_blob(value: Any) -> bytes | None:
    key = _value_key(value)
    return None if key is None else key.to_bytes(16, "big")


def _num(value: Any) -> int | float | None:
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        return parse_number(value.strip())
    return None


# --- translation ------------------------------------------------------------------

def _node(node: Node) -> Sql:
    if isinstance(node, MatchAll):
        return "1", []
    if isinstance(node, And | Or):
        if not node.items:
            return ("1" if isinstance(node, And) else "0"), []
        joiner = " AND " if isinstance(node, And) else " OR "
        parts = [_node(item) for item in node.items]
        return "(" + joiner.join(p[0] for p in parts) + ")", [v for p in parts for v in p[1]]
    if isinstance(node, Not):
        sql, params = _node(node.item)
        return f"(NOT {sql})", params
    if isinstance(node, Exists):
        return _any_value(node.field, "type <> 'null'", [], leaves=False)
    if isinstance(node, Cidr):
        return _cidr(node.field, node.network)
    if isinstance(node, Range):
        return _range(node)
    return _term(node)


def _any_value(field: str, pred: str, params: list[Any], doc_hint: str | list[str] | None = None,
               leaves: bool = True) -> Sql:
    """``pred`` (over the json_each columns ``value`` and ``type``) holds for some
    value of ``field``: the scalar itself or an array element, or with ``leaves``
    off (Exists) also a member of an object. Flattened fields look at every leaf
    beneath them."""
    if field_type(field) == "flattened":
        source, pred = "json_tree(doc, ?)", f"type NOT IN ('object', 'array') AND {pred}"
    else:
        source = "json_each(doc, ?)"
        if leaves:
            # Not the JSON text of a nested object, nor the members of an object
            # field: ``user:admin`` must not match ``{"user": {"name": "admin"}}``.
            pred = f"type NOT IN ('object', 'array') AND typeof(key) <> 'text' AND {pred}"
    sql = f"EXISTS (SELECT 1 FROM {source} WHERE {pred})"
    hints = [_key_hint(field)] if doc_hint is None else [doc_hint] if isinstance(doc_hint, str) else doc_hint
    like = " OR ".join(["doc LIKE ? ESCAPE '\\'"] * len(hints))
    return f"(({like}) AND {sql})", [*hints, json_path(field), *params]


def _term(node: Term) -> Sql:
    if node.field is None:
        parts = [_string(f, node.value, node.kind, substring=True, hinted=False)
                 for f in DEFAULT_SEARCH_FIELDS]
        sql = "(" + " OR ".join(p[0] for p in parts) + ")"
        params = [v for p in parts for v in p[1]]
        hint = _doc_hint(_tokens(node.value, node.kind))
        if hint is None:
            return sql, params
        return f"(doc LIKE ? ESCAPE '\\' AND {sql})", [hint, *params]
    ftype = field_type(node.field)
    if ftype == "ip" and node.kind != "wildcard":
        return _ip_equals(node.field, node.value)
    if ftype in ("long", "double") and node.kind != "wildcard":
        number = parse_number(node.value)
        if number is not None:
            hint = _doc_hint(list(node.value)) if str(number) == node.value else None
            return _any_value(node.field, "value IN (?, ?)", [number, node.value], hint)
    if ftype == "date" and node.kind != "wildcard":
        return _range(Range(node.field, node.value, node.value))
    return _string(node.field, node.value, node.kind, substring=ftype == "text")


def _string(field: str, value: str, kind: TermKind, substring: bool, hinted: bool = True) -> Sql:
    tokens = _tokens(value, kind)
    if substring:
        tokens = [_ANY, *tokens, _ANY]
    literals = "".join(t for t in tokens if isinstance(t, str))
    if literals.isascii():
        pred, params = "value LIKE ? ESCAPE '\\'", [_like(tokens)]
        if kind != "wildcard" and not substring and value.lower() in ("true", "false"):
            # A JSON boolean reaches SQL as 1/0; its type column still says which.
            pred, params = f"({pred} OR type = ?)", [*params, value.lower()]
    else:
        pred = "(value LIKE ? ESCAPE '\\' AND soc_fold(value) LIKE ? ESCAPE '\\')"
        params = [_ascii_hint(tokens), _like(tokens, folded=True)]
    return _any_value(field, pred, params, _doc_hint(tokens) if hinted else None)


def _ip_equals(field: str, value: str) -> Sql:
    addr = parse_ip(value)
    if addr is None:
        return "0", []
    host = f"{addr}/{addr.max_prefixlen}"
    if addr.version == 4:
        # Canonical text compares directly; only IPv6 spellings need the function.
        pred = "(value = ? OR (value LIKE '%:%' AND soc_in_cidr(value, ?)))"
        return _any_value(field, pred, [str(addr), host], _v4_doc_hints(str(addr)))
    return _any_value(field, "soc_in_cidr(value, ?)", [host])


def _cidr(field: str, network: IPv4Network | IPv6Network) -> Sql:
    """``soc_in_cidr`` behind a LIKE on the address text, so the Python function
    only sees candidates: the leading whole octets of an IPv4 network (IPv6 text,
    which may be IPv4-mapped, always passes), or the first group of an IPv6 one."""
    if network.version == 4:
        octets = network.prefixlen // 8
        if not octets:
            return _any_value(field, "soc_in_cidr(value, ?)", [str(network)])
        prefix = ".".join(str(network.network_address).split(".")[:octets]) + "."
        pred = "((value LIKE ? OR value LIKE '%:%') AND soc_in_cidr(value, ?))"
        return _any_value(field, pred, [prefix + "%", str(network)], _v4_doc_hints(prefix))
    first = int(network.network_address) >> 112
    if network.prefixlen < 16 or first == 0:
        return _any_value(field, "(value LIKE '%:%' AND soc_in_cidr(value, ?))", [str(network)])
    # Leading zeros of the group may or may not be written, so match it as a suffix.
    group = f"%{first:x}:%"
    pred = "(value LIKE ? AND soc_in_cidr(value, ?))"
    return _any_value(field, pred, [group, str(network)], group)


def _v4_doc_hints(text: str) -> list[str]:
    # An IPv4-mapped address may be written in hex (::ffff:a01:203), without the
    # dotted text; every spelling of it contains "ffff:".
    return ["%" + _escape_like(text) + "%", "%ffff:%"]


def _range(node: Range) -> Sql:
    field, low, high = node.field, node.low, node.high
    if low is None and high is None:
        return ("1", []) if field == "@timestamp" else _node(Exists(field))
    ftype = field_type(field)
    if ftype == "date":
        lo_ms, hi_ms = time_bounds(low, high, node.include_low, node.include_high)
        if field == "@timestamp":
            return _between("ts", lo_ms, hi_ms, True, True)
        lo = None if lo_ms is None else iso_from_ms(lo_ms)
        hi = None if hi_ms is None else iso_from_ms(hi_ms)
        cmp, params = _between("value", lo, hi, True, True)
        return _any_value(field, f"type = 'text' AND {cmp}", params)
    if ftype == "ip":
        lo_key = 0 if low is None else _bound_key(low) + (0 if node.include_low else 1)
        hi_key = IP_KEY_MAX if high is None else _bound_key(high) - (0 if node.include_high else 1)
        if lo_key > hi_key:
            return "0", []
        return _any_value(field, "soc_ip_key(value) BETWEEN ? AND ?",
                          [lo_key.to_bytes(16, "big"), hi_key.to_bytes(16, "big")])
    numbers = [parse_number(b) for b in (low, high) if b is not None]
    if all(n is not None for n in numbers):
        lo_n = None if low is None else parse_number(low)
        hi_n = None if high is None else parse_number(high)
        value = "(CASE WHEN type IN ('integer', 'real') THEN value " \
                "WHEN type = 'text' THEN soc_num(value) END)"
        cmp, params = _between(value, lo_n, hi_n, node.include_low, node.include_high)
        return _any_value(field, cmp, params)
    cmp, params = _between("value", low, high, node.include_low, node.include_high)
    return _any_value(field, f"type = 'text' AND {cmp}", params)


def _bound_key(text: str) -> int:
    addr = parse_ip(text)
    if addr is None:
        raise ValueError(text)  # the parser validated IP bounds
    return ip_key(addr)


def _between(expr: str, low: Any, high: Any, include_low: bool, include_high: bool) -> Sql:
    parts: list[str] = []
    params: list[Any] = []
    if low is not None:
        parts.append(f"{expr} {'>=' if include_low else '>'} ?")
        params.append(low)
    if high is not None:
        parts.append(f"{expr} {'<=' if include_high else '<'} ?")
        params.append(high)
    return "(" + " AND ".join(parts or ["1"]) + ")", params


# --- LIKE patterns ----------------------------------------------------------------

def _tokens(value: str, kind: TermKind) -> list[Token]:
    """Characters and wildcards of a value; a wildcard pattern's ``\\`` escapes."""
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
        out.append(_ANY if ch == "*" else _ONE if ch == "?" else ch)
        i += 1
    return out


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _runs(tokens: list[Token]) -> list[str | _Wild]:
    """Consecutive literal characters joined into strings."""
    out: list[str | _Wild] = []
    for token in tokens:
        if isinstance(token, str) and out and isinstance(out[-1], str):
            out[-1] += token
        else:
            out.append(token)
    return out


def _like(tokens: list[Token], folded: bool = False) -> str:
    return "".join(
        (_escape_like(fold(run) if folded else run) if isinstance(run, str) else run.like)
        for run in _runs(tokens)
    )


def _loose(tokens: list[Token], keep: Any) -> list[Token]:
    """Tokens where every literal ``keep`` rejects (and every ``?``) widens to ``*``.

    ``?`` widens because one character of the folded value may be several in the
    stored text (NFD, JSON escapes)."""
    out: list[Token] = []
    for token in tokens:
        if isinstance(token, str) and keep(token):
            out.append(token)
        elif not out or out[-1] is not _ANY:
            out.append(_ANY)
    return out


def _ascii_hint(tokens: list[Token]) -> str:
    """A LIKE pattern any raw value whose folded form matches ``tokens`` matches."""
    return _like(_loose(tokens, str.isascii))


def _key_hint(field: str) -> str:
    """``%a":{%b":%`` for ``a.b``: the keys of a nested path appear in this order
    in the raw text, so events of sources that never have the field skip the JSON
    parse. (No opening quote: LIKE scans ahead for a segment's first character,
    and ``"`` is everywhere in JSON.)"""
    parts = field.split(".")
    keys = [f'{part}":{{' for part in parts[:-1]] + [f'{parts[-1]}":']
    return "%" + "%".join(_escape_like(key) for key in keys) + "%"


def _doc_hint(tokens: list[Token]) -> str | None:
    """``%…%`` over the raw JSON document, or None when it would not narrow anything."""
    loose = _loose([_ANY, *tokens, _ANY], lambda ch: " " <= ch <= "~" and ch not in '"\\')
    if all(isinstance(t, _Wild) for t in loose):
        return None
    return _like(loose)

"""Parse the analyst query language (Lucene ``query_string`` with KQL conveniences)
into the AST of :mod:`soc.query.ast`.

Accepted: ``field:value``, bare terms, ``*`` / ``*:*`` / empty (everything),
wildcards ``*`` ``?``, ``"phrases"``, ``AND`` ``OR`` ``NOT`` (any case; ``to`` in
ranges too), implicit AND between terms (as in KQL), ``-term`` ``+term``,
parentheses, ``field:(a OR b)``, ``_exists_:field`` and ``field:*``, ranges
``[a TO b]`` ``{a TO b}`` with ``*`` for an open end, ``field:>=v`` ``>`` ``<``
``<=``, CIDR on IP fields (``source.ip:10.0.0.0/8``, also quoted, and
``source.ip:10.0.*`` for whole octets), and ``/`` inside values
(``url.path:/wp-login.php``: only a whole ``/…/`` value is a regular expression).
Boosts (``^2``) are ignored; fuzzy (``~``), proximity and regular expressions are
rejected. Every error is a
:class:`~soc.store.base.QueryError` with an English and a Vietnamese message.

Values are validated against the field's type here (a number for a numeric field,
an IP or network for an IP field, an ISO date for a date field) so that a mistake
is reported before any store sees the query.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from luqum import tree
from luqum.exceptions import ParseError
from luqum.thread import parse as _luqum_parse

from collectors.ecs_fields import field_type
from soc.query.ast import And, Cidr, Exists, MatchAll, Node, Not, Or, Range, Term, TermKind
from soc.query.values import check_field, parse_ip, parse_number, parse_when, query_error
from soc.store.base import QueryError

MAX_QUERY_CHARS = 20_000

_OPERATORS = frozenset(("and", "or", "not"))
_DELIMITERS = frozenset('()[]{}"')
_UNESCAPED_WILDCARD = re.compile(r"(?<!\\)(?:\\\\)*[*?]")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_POSITION = re.compile(r"position (\d+)")
_IP_OCTET_WILDCARD = re.compile(r"^((?:\d{1,3}\.){1,3})\*$")
_FIELD_PREFIX = re.compile(r'[+-]?[^\s:/\\()\[\]{}"]+:')
_REGEX_SPAN = re.compile(r"/(?:[^\\/]|\\.)*/")
_OFFSET_COLON = re.compile(r"T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?[+-]\d{2}(:)\d{2}")


def parse_query(text: str) -> Node:
    """Parse an analyst query; raises QueryError with a bilingual message."""
    if len(text) > MAX_QUERY_CHARS:
        raise query_error(
            f"Query too long ({len(text)} characters, at most {MAX_QUERY_CHARS})",
            f"Truy vấn quá dài ({len(text)} ký tự, tối đa {MAX_QUERY_CHARS})",
        )
    if not text.strip():
        return MatchAll()
    prepared, inserted = _prepare(text)
    try:
        parsed = _luqum_parse(prepared)
    except ParseError as exc:
        raise _syntax_error(str(exc), text, inserted) from None
    except Exception as exc:  # luqum fails in other ways too, e.g. Decimal("1.2.3") for ^1.2.3
        raise query_error(f"Invalid query syntax ({type(exc).__name__})",
                          f"Lỗi cú pháp truy vấn ({type(exc).__name__})") from None
    try:
        return _simplify(_convert(parsed, None))
    except RecursionError:
        raise query_error("Query is nested too deeply", "Truy vấn lồng nhau quá sâu") from None


def _syntax_error(detail: str, text: str, inserted: list[int]) -> QueryError:
    """Restate luqum's error in both languages, pointing into the analyst's text."""
    found = _POSITION.search(detail)
    if found is None:
        return query_error(
            "Invalid query syntax: the query ends too early (unclosed parenthesis, bracket "
            "or quote, or an operator without a right-hand side?)",
            "Lỗi cú pháp truy vấn: truy vấn kết thúc đột ngột (thiếu dấu đóng ngoặc, "
            "dấu nháy, hoặc toán tử thiếu vế phải?)",
        )
    out_pos = int(found.group(1))
    pos = out_pos - bisect_left(inserted, out_pos)
    where = pos + 1
    token = text[pos:pos + 20].split()[0] if text[pos:].strip() else ""
    hint_en = hint_vi = ""
    if token.startswith('"'):
        hint_en, hint_vi = " (unclosed quote?)", " (thiếu dấu nháy đóng?)"
    elif token.startswith("/"):
        hint_en = ' (a value like /…/ is a regular expression; quote it: url.path:"/admin/")'
        hint_vi = ' (giá trị dạng /…/ là biểu thức chính quy; hãy đặt trong dấu nháy: url.path:"/admin/")'
    return query_error(
        f"Invalid query syntax at character {where}: unexpected {token!r}{hint_en}",
        f"Lỗi cú pháp truy vấn tại ký tự thứ {where}: không mong đợi {token!r}{hint_vi}",
    )


def _unsupported(en: str, vi: str) -> QueryError:
    return query_error(f"Unsupported query syntax: {en}", f"Cú pháp truy vấn không được hỗ trợ: {vi}")


def _prepare(text: str) -> tuple[str, list[int]]:
    """Rewrite KQL habits into what luqum reads; returns the text and the output
    positions of inserted characters (to map error positions back).

    * ``and``/``or``/``not`` written as separate words (and ``to`` inside a range)
      are upper-cased; a word right after ``:`` is a value and stays as it is.
    * ``/`` is escaped unless the value is a whole ``/regex/``: Lucene would start
      a regular expression at ``url.path:/wp-login.php`` or ``/etc/passwd``.
    * The colon of a time-zone offset (``2024-05-01T10:00:00+07:00``) is escaped.

    Phrases and escaped characters are left alone.
    """
    out: list[str] = []
    inserted: list[int] = []
    size = 0
    i, n = 0, len(text)
    in_range = False
    prev = ""  # last non-space character before the current word
    while i < n:
        ch = text[i]
        start = i
        if ch == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            prev = '"'
        elif ch.isspace() or ch in _DELIMITERS:
            if ch in "[{":
                in_range = True
            elif ch in "]}":
                in_range = False
            prev = prev if ch.isspace() else ch
            i += 1
        elif regex := _regex_at(text, i):
            i = regex
            prev = "/"
        else:
            while i < n and not text[i].isspace() and text[i] not in _DELIMITERS:
                i += 2 if text[i] == "\\" else 1
            i = min(i, n)  # a trailing lone backslash
            word = text[start:i]
            if prev != ":" and (word.lower() in _OPERATORS or (in_range and word.lower() == "to")):
                word = word.upper()
            elif "/" in word or ":" in word:
                word = _escape_literals(word, size, inserted)
            prev = text[i - 1]
            out.append(word)
            size += len(word)
            continue
        out.append(text[start:i])
        size += i - start
    return "".join(out), inserted


def _regex_at(text: str, i: int) -> int:
    """End of a ``[field:]/regex/`` starting at ``i`` (as luqum would lex it), or 0."""
    prefix = _FIELD_PREFIX.match(text, i)
    start = prefix.end() if prefix else i
    found = _REGEX_SPAN.match(text, start)
    if found is None:
        return 0
    end = found.end()
    return end if end == len(text) or text[end].isspace() or text[end] in ")^" else 0


def _escape_literals(word: str, offset: int, inserted: list[int]) -> str:
    """Escape every ``/`` and the colon of a time-zone offset (``T10:00:00+07:00``),
    which luqum would otherwise read as a regex start and a field separator."""
    targets = {m.start(1) for m in _OFFSET_COLON.finditer(word)}
    pieces: list[str] = []
    size = 0
    i = 0
    while i < len(word):
        if word[i] == "\\":
            pieces.append(word[i:i + 2])
            size += len(pieces[-1])
            i += 2
            continue
        if word[i] == "/" or i in targets:
            inserted.append(offset + size)
            pieces.append("\\")
            size += 1
        pieces.append(word[i])
        size += 1
        i += 1
    return "".join(pieces)


def _convert(item: Any, field: str | None) -> Node:
    if isinstance(item, tree.SearchField):
        return _search_field(item, field)
    if isinstance(item, tree.BaseGroup | tree.Boost):
        return _convert(item.expr, field)
    if isinstance(item, tree.AndOperation | tree.UnknownOperation):
        return And(tuple(_convert(child, field) for child in item.children))
    if isinstance(item, tree.OrOperation):
        return Or(tuple(_convert(child, field) for child in item.children))
    if isinstance(item, tree.Not | tree.Prohibit):
        return Not(_convert(item.a, field))
    if isinstance(item, tree.Plus):
        return _convert(item.a, field)
    if isinstance(item, tree.Fuzzy):
        raise _unsupported("fuzzy search (~)", "tìm kiếm mờ (~)")
    if isinstance(item, tree.Proximity):
        raise _unsupported("proximity search (\"…\"~N)", "tìm kiếm lân cận (\"…\"~N)")
    if isinstance(item, tree.Regex):
        raise _unsupported('regular expressions (/…/); to search a path, quote it: url.path:"/admin/"',
                           'biểu thức chính quy (/…/); để tìm đường dẫn, hãy đặt trong dấu nháy: '
                           'url.path:"/admin/"')
    if isinstance(item, tree.Range):
        return _range(_need_field(field), _bound(item.low), _bound(item.high),
                      item.include_low, item.include_high)
    if isinstance(item, tree.From):
        return _range(_need_field(field), _bound(item.a), None, item.include, True)
    if isinstance(item, tree.To):
        return _range(_need_field(field), None, _bound(item.a), True, item.include)
    if isinstance(item, tree.Phrase):
        return _value(field, _unescape(item.value[1:-1]), "phrase")
    if isinstance(item, tree.Word):
        return _word(item.value, field)
    raise _unsupported(type(item).__name__, type(item).__name__)


def _search_field(item: tree.SearchField, outer: str | None) -> Node:
    if outer is not None:
        raise query_error(
            f"A field cannot be nested inside another field ({outer}:…{item.name}:…)",
            f"Không thể lồng trường trong trường khác ({outer}:…{item.name}:…)",
        )
    name = item.name
    expr = item.expr
    if name == "_exists_":
        if not isinstance(expr, tree.Word | tree.Phrase):
            raise query_error("_exists_ needs a field name: _exists_:user.name",
                              "_exists_ cần một tên trường: _exists_:user.name")
        target = expr.value[1:-1] if isinstance(expr, tree.Phrase) else expr.value
        return Exists(check_field(_unescape(target)))
    if name == "*":
        if isinstance(expr, tree.Word) and expr.value == "*":
            return MatchAll()
        raise query_error(
            "'*:' only works as '*:*'; search a bare term to look in every message",
            "'*:' chỉ dùng dạng '*:*'; hãy tìm từ khóa không kèm trường để tìm trong thông điệp",
        )
    return _convert(expr, check_field(_unescape(name)))


def _need_field(field: str | None) -> str:
    if field is None:
        raise query_error("A range or comparison needs a field, e.g. http.response.status_code:>=500",
                          "Khoảng hoặc phép so sánh cần một trường, ví dụ http.response.status_code:>=500")
    return field


def _bound(item: Any) -> str | None:
    if isinstance(item, tree.Word):
        return None if item.value == "*" else _unescape(item.value)
    if isinstance(item, tree.Phrase):
        return _unescape(item.value[1:-1])
    if isinstance(item, tree.Prohibit) and isinstance(item.a, tree.Word):
        return "-" + _unescape(item.a.value)
    raise query_error("A range bound must be a value or *", "Cận của khoảng phải là một giá trị hoặc *")


def _unescape(raw: str) -> str:
    return _ESCAPE.sub(r"\1", raw)


def _word(raw: str, field: str | None) -> Node:
    if raw == "*":
        return MatchAll() if field is None else Exists(field)
    if _UNESCAPED_WILDCARD.search(raw):
        # Keep escapes only where they still mean something in a pattern.
        pattern = _ESCAPE.sub(lambda m: "\\" + m.group(1) if m.group(1) in "*?\\" else m.group(1), raw)
        return _value(field, pattern, "wildcard")
    return _value(field, _unescape(raw), "exact")


def _value(field: str | None, value: str, kind: TermKind) -> Node:
    if field is None:
        return Term(None, value, kind)
    ftype = field_type(field)
    if ftype == "ip":
        return _ip_value(field, value, kind)
    if ftype in ("long", "double"):
        if kind == "wildcard" or parse_number(value) is None:
            raise query_error(
                f"{field} is numeric: {value!r} is not a number (for a span use {field}:[500 TO 599])",
                f"{field} là trường số: {value!r} không phải là số (khoảng giá trị: {field}:[500 TO 599])",
            )
    elif ftype == "date":
        if kind == "wildcard":
            raise query_error(
                f"{field} is a date: use a range such as {field}:[2024-05-01 TO 2024-05-02]",
                f"{field} là ngày giờ: hãy dùng khoảng, ví dụ {field}:[2024-05-01 TO 2024-05-02]",
            )
        parse_when(value)
    return Term(field, value, kind)


def _ip_value(field: str, value: str, kind: TermKind) -> Node:
    if kind == "wildcard":
        octets = _IP_OCTET_WILDCARD.fullmatch(value)
        if octets:
            prefix = octets.group(1).rstrip(".").split(".")
            padded = ".".join(prefix + ["0"] * (4 - len(prefix)))
            return Cidr(field, _network(field, f"{padded}/{8 * len(prefix)}"))
        raise query_error(
            f"{field} is an IP field: wildcards only replace whole trailing octets (10.0.*); "
            f"otherwise use CIDR ({field}:10.0.0.0/8)",
            f"{field} là trường IP: ký tự đại diện chỉ thay cho các octet cuối (10.0.*); "
            f"hoặc dùng CIDR ({field}:10.0.0.0/8)",
        )
    if "/" in value:
        return Cidr(field, _network(field, value))
    if parse_ip(value) is None:
        raise query_error(f"{field} is an IP field: {value!r} is not an IP address",
                          f"{field} là trường IP: {value!r} không phải là địa chỉ IP")
    return Term(field, value.strip(), "exact")


def _network(field: str, value: str) -> IPv4Network | IPv6Network:
    try:
        return ip_network(value.strip(), strict=False)
    except ValueError:
        raise query_error(f"{field}: {value!r} is not a network in CIDR notation",
                          f"{field}: {value!r} không phải là dải mạng CIDR") from None


def _range(field: str, low: str | None, high: str | None, include_low: bool, include_high: bool) -> Node:
    ftype = field_type(field)
    for bound in (low, high):
        if bound is None:
            continue
        if ftype in ("long", "double") and parse_number(bound) is None:
            raise query_error(f"{field} is numeric: range bound {bound!r} is not a number",
                              f"{field} là trường số: cận {bound!r} không phải là số")
        if ftype == "ip" and parse_ip(bound) is None:
            raise query_error(f"{field} is an IP field: range bound {bound!r} is not an IP address",
                              f"{field} là trường IP: cận {bound!r} không phải là địa chỉ IP")
        if ftype == "date":
            parse_when(bound)
    return Range(field, low, high, include_low, include_high)


def _simplify(node: Node) -> Node:
    """Flatten nested AND/OR, drop match-all from AND, and unwrap singletons."""
    if isinstance(node, And | Or):
        kind = type(node)
        items: list[Node] = []
        for child in (_simplify(c) for c in node.items):
            if isinstance(child, kind):
                items.extend(child.items)
            elif isinstance(node, And) and isinstance(child, MatchAll):
                continue
            else:
                items.append(child)
        if isinstance(node, Or) and any(isinstance(i, MatchAll) for i in items):
            return MatchAll()
        if not items:
            return MatchAll()
        return items[0] if len(items) == 1 else kind(tuple(items))
    if isinstance(node, Not):
        inner = _simplify(node.item)
        return inner.item if isinstance(inner, Not) else Not(inner)
    return node

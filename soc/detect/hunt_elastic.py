"""Retro-hunts on Elasticsearch / OpenSearch: the cluster finds candidates, our engine decides.

:class:`ElasticHuntSource` hands the hunt core (:mod:`soc.detect.hunt`) the events of the
SOC's own event streams (``logs-*-<namespace>.*``, :func:`soc.store.elastic.names.events_pattern`:
every level, not the dead letters) in the hunt's range that can matter to the hunted rules,
oldest first. The engine re-checks every event it is handed, so the cluster's query is a
pre-filter that may be broader than the rule, never narrower: an event the cluster does not
return is an event the hunt cannot find.

**Single-event rules** (:func:`rule_prefilter`). The query is built from the compiled
rule's own predicate tree (:func:`soc.detect.compiler.rule_node`: the condition the engine
evaluates, after our pipelines, filters and placeholders, with our ECS field names), each
test translated by our query DSL (:func:`soc.query.dsl.to_dsl`): strings compare
case-insensitively as Sigma does (``case_insensitive`` term/wildcard/prefix, regexp
classes for non-ASCII letters), numbers as numbers, networks as ``ip`` terms. Not from
pySigma's Lucene output: ``query_string`` compares keywords case-sensitively, cannot
express most patterns on flattened keys, and ORs alternative fields where the engine
tests the one the event has (see below), so it can be narrower than the engine.

Every node gets two clauses: an *upper* bound (holds for every event the node matches) and
a *lower* bound (holds only for events it matches); ``not x`` takes ``not lower(x)`` as its
upper bound. A test the cluster cannot search exactly is "anything" as an upper bound and
"nothing" as a lower one, so a filter the cluster cannot evaluate (``selection and not
filter``) drops out of the query instead of hiding events. Where it matters:

- Field types come from ``_field_caps`` and must be what :data:`collectors.ecs_fields.FIELD_TYPES`
  says. ``text`` fields (keywords search ``event.original`` and ``message``) hold words, not
  the substrings a rule tests: not searchable; a rule on them alone reads the whole range.
- Keys of flattened objects (``winlog.event_data.Image``) take ``term`` and ``prefix`` only
  on Elasticsearch; other patterns search the object's root (any of its values matches)
  together with the key's existence.
- One Sigma field mapped to alternatives (``Image``: Sysmon's ``Image`` or Security 4688's
  ``NewProcessName``) is tested by the engine on whichever field the event has: its upper
  bound is any alternative, its lower bound all of them.
- Values the cluster did not index (a keyword longer than ``ignore_above``, a malformed IP
  or number under ``ignore_malformed``) match no query. Elasticsearch lists such keyword
  and number fields in ``_ignored``, which is searched alongside. Skipped long strings
  OpenSearch does not list, nor Elasticsearch in flattened objects (over
  ``index.mapping.ignore_above``: 8,191 characters in Elasticsearch 9's ``logsdb``
  indices): there an event with no indexed value of the field is fetched, when a length
  limit is set and the test can match a longer value.
- ``long`` fields drop fractions when indexing, so numeric bounds on them are widened to
  whole numbers; numbers kept as keywords match any way of writing the number
  (``04624``, ``4624.0``).
- ``re`` (regular expressions) searches for the literal text every match must contain;
  field references, timestamp parts, CIDR on non-IP fields and more than
  :data:`MAX_PATTERNS` patterns on one field (lists of hashes, paths) are left to the
  engine.

A rule whose query ends up "anything" reads every event of the range and the output's
notes say why.

**``event_count`` / ``value_count`` correlations** with ``gt``/``gte``/``eq`` conditions
first ask a ``composite`` aggregation over the base rules' query: per group-by key and per
fixed bucket of ``timespan`` (plus the distinct values, for ``value_count``). A sliding
window of ``timespan`` covers at most two adjacent buckets, so a group whose best pair of
adjacent buckets stays below the threshold can never fire; only the other groups' events
are fetched, and the correlation engine decides on them exactly as live. Other correlation
types (temporal, ordered, value sums …), upper-bound conditions and aliased group-by
fields fetch every hit of their base rules and run the correlation engine over them.

Events come in ``@timestamp`` order through a point in time and ``search_after`` (sorted
on ``@timestamp`` then ``event.id``, the SQLite store's order): Elasticsearch opens it at
``/<index>/_pit``, OpenSearch (the Wazuh indexer) at ``/<index>/_search/point_in_time``
(:meth:`ClusterInfo.pit_path`).

Known limits: on OpenSearch, a keyword field holding a *list* whose elements are partly
longer than ``ignore_above`` is fetched only through its short elements; a few Unicode
letters share a lower case with another letter (the Kelvin sign K and ``k``, the Ohm
sign Ω, ``ẞ`` and ``ß``, ``İ``) and Python folds them where the cluster does not; a number
written with non-ASCII digits in a keyword field; and a ``value_count`` over a field
holding lists is bounded by the distinct list *elements* (the engine counts distinct
lists). ``--full-scan`` reads every event of the range and avoids all of them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any

from elasticsearch import ApiError, Elasticsearch
from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule, SigmaCorrelationType
from sigma.types import CompareOperators

from collectors.ecs_fields import FIELD_TYPES
from collectors.event import Event
from soc.detect import compiler as C
from soc.detect.compiler import CompiledRule, canonical_number, regex_literals, rule_node
from soc.detect.correlation import RANGE_ATTRIBUTE, CorrelationEngine
from soc.detect.hunt import DEFAULT_BATCH, HuntPlan, HuntSource, HuntWindow, say
from soc.detect.model import RuleInfo
from soc.query.ast import Cidr, Term, TermKind
from soc.query.dsl import MAX_BOOL_DEPTH, to_dsl
from soc.query.values import parse_number
from soc.store.base import QueryError
from soc.store.elastic.connection import ClusterInfo
from soc.store.elastic.names import events_pattern

DEFAULT_INDEX = events_pattern("soc")
"""The event streams of the default namespace; :func:`soc.detect.hunt.open_hunt_source`
passes the configured one."""
TRUSTED_TYPES = frozenset({
    "keyword", "constant_keyword", "wildcard", "ip", "long", "integer", "short", "byte", "unsigned_long",
    "double", "float", "half_float", "scaled_float", "date", "date_nanos", "boolean", "version",
})
"""Field types whose values aggregate as stored (no analysis): correlation group-by fields."""
FLAT_TYPES = frozenset({"flattened", "flat_object"})
"""Object types whose keys are searchable as keywords (Elasticsearch, OpenSearch)."""
CLUSTER_TYPES: dict[str, frozenset[str]] = {
    "keyword": frozenset({"keyword", "constant_keyword", "wildcard"}),
    "ip": frozenset({"ip"}),
    "long": frozenset({"long", "integer", "short", "byte", "unsigned_long"}),
    "double": frozenset({"double", "float", "half_float", "scaled_float"}),
    "date": frozenset({"date", "date_nanos"}),
    "boolean": frozenset({"boolean"}),
    "text": frozenset({"text", "match_only_text"}),
    "flattened": FLAT_TYPES,
}
"""Cluster field types that index a field the way its ``FIELD_TYPES`` type says."""
MAX_GROUPS = 10_000
"""Candidate groups above this are not listed in the fetch query: everything is fetched."""
MAX_MULTI_GROUPS = 500
"""The same for multi-field group-by (one boolean clause per group)."""
MAX_RULE_DEPTH = MAX_BOOL_DEPTH - 6
"""Nested bool levels one rule's query may use; the hunt's own structure (range, rules,
correlation candidates) adds the rest below Elasticsearch's limit."""
MAX_PATTERNS = 64
"""Wildcard tests one field test may send (a list of file hashes or paths with
``contains``): beyond it the test is left to the engine, as each pattern scans the
field's terms."""
MAX_TERMS = 1024
"""Exact values one field test may send."""
MAX_RULE_CLAUSES = 2048
"""Clauses one rule's query may hold (below Elasticsearch's default clause limit)."""
NO_LIMIT = 2**31 - 1
"""``ignore_above`` at or above this is no limit (Elasticsearch's default)."""
LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1
COMPOSITE_PAGE = 1000
FIELD_CAPS_CHUNK = 50
_JSON = {"accept": "application/json", "content-type": "application/json"}
_MATCH_ALL: dict[str, Any] = {"match_all": {}}
_MATCH_NONE: dict[str, Any] = {"match_none": {}}
_T = SigmaCorrelationType
_NON_CANONICAL_NUMBER = (r"[+\-]?[0-9]*\.[0-9]*([eE][+\-]?[0-9]+)?|[+\-]?[0-9]+[eE][+\-]?[0-9]+"
                         r"|\+[0-9]+|-?0[0-9]+|-0")
"""Every way to write a number in text other than its canonical form (``4624``, ``-5``,
``1.5``): a decimal point, an exponent, a plus sign, leading zeros, ``-0`` (Lucene
regular expression syntax; the compiler's ``_number`` reads all of them)."""
_OCTETS = re.compile(r"(?:\d{1,3}\.){1,3}")

Clause = dict[str, Any]


def _any_of(clauses: Sequence[Clause]) -> Clause:
    clauses = [c for c in clauses if c is not _MATCH_NONE]
    if not clauses:
        return _MATCH_NONE
    if any(c is _MATCH_ALL for c in clauses):
        return _MATCH_ALL
    if len(clauses) == 1:
        return clauses[0]
    return {"bool": {"should": list(clauses), "minimum_should_match": 1}}


def _all_of(clauses: Sequence[Clause]) -> Clause:
    kept = [c for c in clauses if c is not _MATCH_ALL]
    if any(c is _MATCH_NONE for c in kept):
        return _MATCH_NONE
    if not kept:
        return _MATCH_ALL
    return kept[0] if len(kept) == 1 else {"bool": {"filter": kept}}


def _none_of(clause: Clause) -> Clause:
    if clause is _MATCH_ALL:
        return _MATCH_NONE
    if clause is _MATCH_NONE:
        return _MATCH_ALL
    return {"bool": {"must_not": [clause]}}


def _exists(name: str) -> Clause:
    return {"exists": {"field": name}}


def _ignored(name: str) -> Clause:
    return {"term": {"_ignored": name}}


def _canonical(clause: Clause) -> Clause:
    """The sentinel objects for clauses that match everything or nothing."""
    if clause == _MATCH_ALL:
        return _MATCH_ALL
    if clause == _MATCH_NONE:
        return _MATCH_NONE
    return clause


def _depth(clause: Any) -> int:
    if isinstance(clause, list):
        return max((_depth(c) for c in clause), default=0)
    if not isinstance(clause, dict):
        return 0
    inner = max((_depth(v) for v in clause.values()), default=0)
    return inner + 1 if "bool" in clause else inner


def _leaves(clause: Any) -> int:
    """Leaf query clauses (term, wildcard, range …) inside a query."""
    if isinstance(clause, list):
        return sum(_leaves(c) for c in clause)
    if not isinstance(clause, dict):
        return 0
    if "bool" in clause:
        return sum(_leaves(v) for v in clause["bool"].values())
    return 1


# --- how the cluster indexes the fields the rules read ---------------------------

@dataclass(frozen=True, slots=True)
class SearchField:
    """How the cluster indexes one field a rule reads."""

    kind: str
    """Its ``FIELD_TYPES`` type (keyword, text, ip, long, double, date, boolean) or
    ``flattened_key`` for a key of a flattened object."""
    root: str | None = None
    """The flattened object a key belongs to."""
    limit: int | None = None
    """The longest string the cluster indexes in it (``ignore_above``); None: no limit."""


@dataclass(slots=True)
class ClusterFields:
    """The fields a hunt reads, as the cluster indexes them (see :meth:`ElasticHuntSource.cluster_fields`)."""

    fields: dict[str, SearchField]
    """Searchable fields; a field missing here is not indexed the way ``FIELD_TYPES`` says."""
    caps: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``_field_caps``: field → type → capabilities (for correlation aggregations)."""
    records_ignored: bool = False
    """Skipped long strings are listed in ``_ignored`` (Elasticsearch since 7.14; not OpenSearch)."""

    def get(self, name: str) -> SearchField | None:
        return self.fields.get(name)


def _flattened_root(name: str) -> str | None:
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        root = ".".join(parts[:i])
        if FIELD_TYPES.get(root) == "flattened":
            return root
    return None


def _kind(name: str, caps: dict[str, dict[str, Any]]) -> tuple[str, str | None] | None:
    """The field's kind and flattened root when the cluster indexes it as ``FIELD_TYPES`` says."""

    def indexed(types: dict[str, Any] | None, allowed: frozenset[str]) -> bool:
        return bool(types) and all(t in allowed and c.get("searchable", True) for t, c in (types or {}).items())

    ftype = FIELD_TYPES.get(name)
    if ftype is not None:
        return (ftype, None) if ftype != "flattened" and indexed(caps.get(name), CLUSTER_TYPES[ftype]) else None
    root = _flattened_root(name)
    if root is not None and indexed(caps.get(root), FLAT_TYPES):
        return "flattened_key", root
    return None


def _limits(mapping: dict[str, Any]) -> dict[str, int]:
    """Field → the smallest ``ignore_above`` any index sets on it (``_mapping/field``)."""
    out: dict[str, int] = {}
    for index in mapping.values():
        for name, entry in ((index or {}).get("mappings") or {}).items():
            for leaf in ((entry or {}).get("mapping") or {}).values():
                limit = (leaf or {}).get("ignore_above")
                if isinstance(limit, int | str) and str(limit).isdigit() and int(limit) < NO_LIMIT:
                    out[name] = min(out.get(name, NO_LIMIT), int(limit))
    return out


def _index_limit(settings: dict[str, Any]) -> int | None:
    """The smallest ``index.mapping.ignore_above`` of any index (Elasticsearch 8.16+,
    8,191 by default in ``logsdb`` mode), None when no index sets one."""
    found: int | None = None
    for index in settings.values():
        for part in ("settings", "defaults"):
            value = ((index or {}).get(part) or {}).get("index.mapping.ignore_above")
            if value is not None and str(value).isdigit() and int(value) < NO_LIMIT:
                found = int(value) if found is None else min(found, int(value))
                break
    return found


# --- single-event rules as cluster queries ----------------------------------------

@dataclass(slots=True)
class Prefilter:
    """A rule's pre-filter query and why parts of it could not be searched exactly."""

    query: Clause
    """Holds for every event the rule matches (``match_all`` when nothing narrower is known)."""
    reasons: list[tuple[str, str]] = field(default_factory=list)
    """(Vietnamese, English) reasons for the parts that became "anything" or "nothing"."""

    @property
    def reads_everything(self) -> bool:
        return self.query is _MATCH_ALL


def rule_prefilter(compiled: CompiledRule, fields: ClusterFields) -> Prefilter:
    """The cluster query that returns at least every event ``compiled`` matches (see the
    module docstring). Never raises for what the cluster cannot search: that part of the
    rule matches anything, and ``reasons`` says so."""
    translator = _Prefilter(fields)
    try:
        upper, _ = translator.bounds(rule_node(compiled.rule))
    except Exception as exc:  # it compiled at load time; a failure here must not stop the hunt
        return Prefilter(_MATCH_ALL, [(f"không dựng lại được điều kiện ({exc})",
                                       f"the condition could not be rebuilt ({exc})")])
    if _depth(upper) > MAX_RULE_DEPTH:
        translator.reasons.append(("điều kiện lồng nhau quá sâu", "the condition is nested too deeply"))
        upper = _MATCH_ALL
    elif _leaves(upper) > MAX_RULE_CLAUSES:
        translator.reasons.append(("điều kiện quá nhiều giá trị", "the condition has too many values"))
        upper = _MATCH_ALL
    return Prefilter(upper, list(dict.fromkeys(translator.reasons)))


_STAR = object()
_ONE = object()


def _glob_tokens(pattern: re.Pattern[str]) -> list[str | object] | None:
    """The wildcard pattern a compiled Sigma glob was built from (literal characters,
    ``*``, ``?``), or None when the regex is not of that form."""
    text = pattern.pattern
    tokens: list[str | object] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            tokens.append(text[i + 1])
            i += 2
        elif text.startswith(".*", i):
            tokens.append(_STAR)
            i += 2
        elif ch == ".":
            tokens.append(_ONE)
            i += 1
        else:
            tokens.append(ch)
            i += 1
    rebuilt = "".join(".*" if t is _STAR else "." if t is _ONE else re.escape(str(t)) for t in tokens)
    if rebuilt != text or pattern.flags & ~(re.DOTALL | re.UNICODE):
        return None
    return tokens


def _wildcard(tokens: Iterable[str | object]) -> str:
    """Tokens in the analyst query's wildcard syntax (``\\`` escapes ``*``, ``?``, ``\\``)."""
    return "".join("*" if t is _STAR else "?" if t is _ONE else
                   "\\" + str(t) if str(t) in "*?\\" else str(t) for t in tokens)


def _folds_fully(clause: Any) -> bool:
    """Whether every case-insensitive clause inside compares all its letters without
    case: ``case_insensitive`` folds ASCII letters only, and the DSL gives up its
    regexp classes for very long values."""
    if isinstance(clause, list):
        return all(_folds_fully(c) for c in clause)
    if not isinstance(clause, dict):
        return True
    for key, inner in clause.items():
        if key in ("term", "wildcard", "prefix") and isinstance(inner, dict):
            for spec in inner.values():
                value = spec.get("value") if isinstance(spec, dict) else spec
                if isinstance(value, str) and any(not ch.isascii() and (ch.lower() != ch or ch.upper() != ch)
                                                  for ch in value):
                    return False
        elif not _folds_fully(inner):
            return False
    return True


def _float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond any double
        return math.inf if value > 0 else -math.inf


def _utf16(text: str) -> int:
    """Length as Elasticsearch counts it for ``ignore_above`` (Java chars)."""
    return max(len(v.encode("utf-16-le")) // 2 for v in (text, text.lower(), text.upper()))


class _Prefilter:
    """Upper and lower bound clauses of compiled predicate nodes (see the module docstring)."""

    def __init__(self, fields: ClusterFields) -> None:
        self.fields = fields
        self.reasons: list[tuple[str, str]] = []

    def bounds(self, node: C.Node) -> tuple[Clause, Clause]:
        if isinstance(node, C.Const):
            return (_MATCH_ALL, _MATCH_ALL) if node.value else (_MATCH_NONE, _MATCH_NONE)
        if isinstance(node, C.And | C.Or):
            combine = _all_of if isinstance(node, C.And) else _any_of
            pairs = [self.bounds(child) for child in node.children]
            return combine([p[0] for p in pairs]), combine([p[1] for p in pairs])
        if isinstance(node, C.Not):
            upper, lower = self.bounds(node.child)
            return _none_of(lower), _none_of(upper)
        if isinstance(node, C.Coalesce):
            # The engine tests whichever alternative the event has: that one holds, so
            # some alternative does; and when all hold, the one tested does.
            pairs = [self.bounds(option) for _, option in node.options]
            return _any_of([p[0] for p in pairs]), _all_of([p[1] for p in pairs])
        if isinstance(node, C.NullPred):
            # Absent or null: then no value is indexed (the converse fails for [null]).
            return _none_of(_exists(node.field)), _MATCH_NONE
        if isinstance(node, C.ExistsPred):
            # Present includes a null value, which the cluster does not index.
            if not node.exists:
                return _none_of(_exists(node.field)), _MATCH_NONE
            upper, _ = self._anything(f"{node.field}: có mặt kể cả khi null", f"{node.field}: present, even as null")
            return upper, _exists(node.field)
        if isinstance(node, C.StrPred):
            return self._strings(node)
        if isinstance(node, C.NumPred):
            return self._numbers(node)
        if isinstance(node, C.ComparePred):
            return self._compare(node)
        if isinstance(node, C.RegexPred):
            return self._regex(node)
        if isinstance(node, C.CidrPred):
            return self._cidr(node)
        name = ", ".join(sorted(node.fields())) or type(node).__name__
        return self._anything(f"{name}: phép so sánh này không tìm được trên cụm",
                              f"{name}: this comparison cannot be searched on the cluster")

    # -- helpers ---------------------------------------------------------------------
    def _anything(self, vi: str, en: str) -> tuple[Clause, Clause]:
        self.reasons.append((vi, en))
        return _MATCH_ALL, _MATCH_NONE

    def _too_many(self, name: str, count: int) -> tuple[Clause, Clause]:
        return self._anything(f"{name}: quá nhiều giá trị ({count})", f"{name}: too many values ({count})")

    def _field(self, name: str | None) -> SearchField | tuple[Clause, Clause]:
        """The field, or the bounds of a test on a field the cluster cannot search."""
        if name is None:
            return self._anything("tìm từ khóa trong event.original/message (văn bản)",
                                  "keyword search in event.original/message (full text)")
        found = self.fields.get(name)
        if found is None:
            return self._anything(f"{name}: không được đánh chỉ mục để so khớp chính xác trên cụm",
                                  f"{name}: not indexed for exact matching on the cluster")
        if found.kind in ("text", "date"):
            what_vi, what_en = ("trường văn bản", "full-text field") if found.kind == "text" else ("ngày giờ", "a date")
            return self._anything(f"{name}: {what_vi}", f"{name}: {what_en}")
        return found

    def _unindexed(self, name: str, sf: SearchField, longest: int | None) -> Clause:
        """Events whose value of ``name`` the cluster may have skipped when indexing (so
        no query on the field finds it): malformed numbers and IPs, strings over the
        length limit. ``longest``: the longest value the test can match (None: any)."""
        if sf.kind in ("ip", "long", "double"):
            return _ignored(name)
        if sf.kind not in ("keyword", "flattened_key") or sf.limit is None:
            return _MATCH_NONE
        if longest is not None and longest <= sf.limit:
            return _MATCH_NONE
        if sf.kind == "keyword" and self.fields.records_ignored:
            return _ignored(name)
        return _none_of(_exists(name))

    def _string_test(self, name: str, sf: SearchField, value: str, kind: TermKind) -> tuple[Clause, bool] | None:
        """One case-insensitive string test on a keyword field or flattened key: the
        clause and whether it searches the field itself (False: the flattened object's
        root, any of its values; to be joined with the key's existence). None when the
        cluster cannot search it."""
        try:
            clause = _canonical(to_dsl(Term(name, value, kind)))
        except QueryError:
            clause = None
        if clause is not None and _folds_fully(clause):
            return clause, True
        if sf.root is None:
            return None
        try:
            clause = _canonical(to_dsl(Term(sf.root, value, kind)))
        except QueryError:
            return None
        return (clause, False) if _folds_fully(clause) else None

    def _string_tests(self, name: str, sf: SearchField, tests: Iterable[tuple[str, TermKind]],
                      exact: Sequence[bool] | None = None) -> tuple[Clause, Clause] | None:
        """Any of several string tests: upper bound, and the lower bound made of the tests
        marked ``exact`` that search the field itself. None when one cannot be searched."""
        on_field: list[Clause] = []
        on_root: list[Clause] = []
        lower: list[Clause] = []
        for i, (value, kind) in enumerate(tests):
            found = self._string_test(name, sf, value, kind)
            if found is None:
                return None
            clause, direct = found
            (on_field if direct else on_root).append(clause)
            if direct and exact is not None and exact[i]:
                lower.append(clause)
        if on_root:
            on_field.append(_all_of([_exists(name), _any_of(on_root)]))
        return _any_of(on_field), _any_of(lower)

    # -- leaves ----------------------------------------------------------------------
    def _strings(self, node: C.StrPred) -> tuple[Clause, Clause]:
        sf = self._field(node.field)
        if not isinstance(sf, SearchField):
            return sf
        name = node.field
        assert name is not None
        if sf.kind == "ip":
            return self._ip_strings(node, name)
        if sf.kind in ("long", "double", "boolean"):
            return self._typed_strings(node, name, sf)
        if node.any_value:
            return _any_of([_exists(name), self._unindexed(name, sf, None)]), _exists(name)
        # (value, kind, longest value it matches, its literal text, whether the cluster's
        # match implies the engine's: case-insensitive ASCII does, "?" does not, as one
        # character of the stored text may be two once the engine lower-cases it)
        tests: list[tuple[str, TermKind, int | None, str, bool]] = []
        esc = _wildcard
        tests += [(s, "exact", _utf16(s), s, True) for s in node.eqs]
        tests += [(esc(p) + "*", "wildcard", None, p, True) for p in node.prefixes]
        tests += [("*" + esc(s), "wildcard", None, s, True) for s in node.suffixes]
        tests += [("*" + esc(s) + "*", "wildcard", None, s, True) for s in node.subs]
        for glob in node.globs:
            tokens = _glob_tokens(glob)
            if tokens is None:
                return self._anything(f"{name}: mẫu không chuyển được", f"{name}: pattern cannot be converted")
            literal = "".join(t for t in tokens if isinstance(t, str))
            tests.append((esc(tokens), "wildcard", None, literal, _ONE not in tokens))
        longest: int | None = 0
        for _, _, size, literal, _ in tests:
            if not unicodedata.is_normalized("NFC", literal):
                # The DSL compares NFC text; the engine compares the rule's text as written.
                return self._anything(f"{name}: giá trị không ở dạng NFC", f"{name}: value not in NFC form")
            longest = None if size is None or longest is None else max(longest, size)
        exact = [ok and not node.cased and literal.isascii() for _, _, _, literal, ok in tests]
        if len(tests) - len(node.eqs) > MAX_PATTERNS or len(node.eqs) > MAX_TERMS:
            return self._too_many(name, len(tests))
        found = self._string_tests(name, sf, [(test[0], test[1]) for test in tests], exact)
        if found is None:
            return self._anything(f"{name}: mẫu này không tìm được trên cụm",
                                  f"{name}: this pattern cannot be searched on the cluster")
        upper, lower = found
        return _any_of([upper, self._unindexed(name, sf, longest)]), lower

    def _ip_strings(self, node: C.StrPred, name: str) -> tuple[Clause, Clause]:
        """Text tests on an IP field: equal text is the same address; a prefix of whole
        octets (``10.``, ``192.168.``) is a network."""
        if node.suffixes or node.subs or node.globs or node.any_value:
            return self._anything(f"{name}: mẫu văn bản trên trường IP", f"{name}: text pattern on an IP field")
        clauses: list[Clause] = []
        try:
            clauses += [_canonical(to_dsl(Term(name, s, "exact"))) for s in node.eqs]
            for prefix in node.prefixes:
                if not _OCTETS.fullmatch(prefix):
                    return self._anything(f"{name}: tiền tố không trọn octet trên trường IP",
                                          f"{name}: prefix of partial octets on an IP field")
                octets = prefix.rstrip(".").split(".")
                network = ip_network(".".join(octets + ["0"] * (4 - len(octets))) + f"/{8 * len(octets)}")
                clauses.append(_canonical(to_dsl(Cidr(name, network))))
        except (QueryError, ValueError):
            return self._anything(f"{name}: giá trị không phải địa chỉ IP", f"{name}: not an IP address value")
        return _any_of([*clauses, _ignored(name)]), _MATCH_NONE

    def _typed_strings(self, node: C.StrPred, name: str, sf: SearchField) -> tuple[Clause, Clause]:
        """Text equality on a number or boolean field: the stored text is the value's."""
        if node.prefixes or node.suffixes or node.subs or node.globs or node.any_value:
            return self._anything(f"{name}: mẫu văn bản trên trường số", f"{name}: text pattern on a typed field")
        clauses: list[Clause] = []
        for s in node.eqs:
            if sf.kind == "boolean":
                if s.lower() in ("true", "false"):
                    clauses.append({"term": {name: s.lower() == "true"}})
                continue
            number = parse_number(s)
            if number is not None:
                clauses.append(self._number_range(name, sf, number, number))
        return _any_of([*clauses, self._unindexed(name, sf, None)]), _MATCH_NONE

    @staticmethod
    def _number_range(name: str, sf: SearchField, low: float | None, high: float | None) -> Clause:
        """Values in ``[low, high]`` (None: open). A ``long`` field drops the fraction of
        what it indexes, so its bounds widen to the whole numbers around them."""
        bounds: dict[str, int | float] = {}
        for key, value, whole in (("gte", low, math.floor), ("lte", high, math.ceil)):
            if value is None:
                continue
            if sf.kind != "long":
                value = _float(value)
            if isinstance(value, float) and not math.isfinite(value):
                if math.isnan(value) or (value > 0) == (key == "gte"):
                    return _MATCH_NONE  # nothing is above +inf or below -inf
                continue
            bounds[key] = whole(value) if sf.kind == "long" else value
        if sf.kind == "long":
            if int(bounds.get("gte", LONG_MIN)) > LONG_MAX or int(bounds.get("lte", LONG_MAX)) < LONG_MIN:
                return _MATCH_NONE
            bounds = {k: max(min(int(v), LONG_MAX), LONG_MIN) for k, v in bounds.items()}
        return {"range": {name: bounds}} if bounds else _exists(name)

    def _numbers(self, node: C.NumPred) -> tuple[Clause, Clause]:
        sf = self._field(node.field)
        if not isinstance(sf, SearchField):
            return sf
        name = node.field
        if sf.kind == "boolean":
            return _MATCH_NONE, _MATCH_NONE  # booleans are never numbers to the engine
        if sf.kind == "ip":
            return _ignored(name), _MATCH_NONE  # an indexed IP is never a number
        if sf.kind in ("long", "double"):
            ranges = [self._number_range(name, sf, n, n) for n in node.numbers]
            return _any_of([*ranges, _ignored(name)]), _MATCH_NONE
        texts = [canonical_number(n) for n in node.numbers]
        if any(not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", t) for t in texts):
            return self._anything(f"{name}: số dạng mũ", f"{name}: number in exponent form")
        exact = _any_of([{"term": {name: t}} for t in texts])
        # Keys of a flattened object take no regexp: the object's root does.
        regexp: Clause = {"regexp": {sf.root or name: {"value": _NON_CANONICAL_NUMBER, "flags": "NONE"}}}
        if sf.root is not None:
            regexp = _all_of([_exists(name), regexp])
        return _any_of([exact, regexp]), exact

    def _compare(self, node: C.ComparePred) -> tuple[Clause, Clause]:
        sf = self._field(node.field)
        if not isinstance(sf, SearchField):
            return sf
        name = node.field
        if sf.kind == "boolean":
            return _MATCH_NONE, _MATCH_NONE
        if sf.kind == "ip":
            return _ignored(name), _MATCH_NONE
        if sf.kind in ("keyword", "flattened_key"):
            # Numbers kept as text compare as text on the cluster: any value may do.
            return _any_of([_exists(name), self._unindexed(name, sf, None)]), _MATCH_NONE
        n = node.number
        op = node.op
        if op is CompareOperators.NEQ:
            clause = _exists(name)
        elif op in (CompareOperators.GT, CompareOperators.GTE):
            clause = self._number_range(name, sf, n, None)
        else:
            clause = self._number_range(name, sf, None, n)
        return _any_of([clause, _ignored(name)]), _MATCH_NONE

    def _regex(self, node: C.RegexPred) -> tuple[Clause, Clause]:
        sf = self._field(node.field)
        if not isinstance(sf, SearchField):
            return sf
        name = node.field
        assert name is not None
        if sf.kind not in ("keyword", "flattened_key"):
            return self._anything(f"{name}: biểu thức chính quy trên trường không phải văn bản",
                                  f"{name}: regular expression on a non-string field")
        tests: list[tuple[str, TermKind]] = []
        for pattern in node.patterns:
            literals = regex_literals(pattern)
            if not literals:
                return self._anything(f"{name}: biểu thức chính quy không có đoạn chữ bắt buộc",
                                      f"{name}: regular expression without required text")
            tests += [("*" + _wildcard(literal) + "*", "wildcard") for literal in sorted(literals)]
        if len(tests) > MAX_PATTERNS:
            return self._too_many(name, len(tests))
        found = self._string_tests(name, sf, tests)
        if found is None:
            return self._anything(f"{name}: mẫu này không tìm được trên cụm",
                                  f"{name}: this pattern cannot be searched on the cluster")
        return _any_of([found[0], self._unindexed(name, sf, None)]), _MATCH_NONE

    def _cidr(self, node: C.CidrPred) -> tuple[Clause, Clause]:
        sf = self._field(node.field)
        if not isinstance(sf, SearchField):
            return sf
        name = node.field
        if sf.kind != "ip":
            return self._anything(f"{name}: dải mạng trên trường không phải IP", f"{name}: network on a non-IP field")
        clauses = [_canonical(to_dsl(Cidr(name, network))) for network in node.networks]
        return _any_of([*clauses, _ignored(name)]), _MATCH_NONE


def _epoch_ms(window: HuntWindow) -> tuple[int, int]:
    return round(window.since.timestamp() * 1000), round(window.until.timestamp() * 1000)


@dataclass(slots=True)
class _Counting:
    """What the aggregation pre-filter needs of an event_count/value_count correlation."""

    group: tuple[str, ...]
    span_ms: int
    need: int
    value: str | None


@dataclass(slots=True)
class _Strategy:
    query: dict[str, Any]
    count: int
    notes: list[str] = field(default_factory=list)


class ElasticHuntSource(HuntSource):
    """Events of a hunt from the SOC's event streams (see the module docstring)."""

    name = "elasticsearch"

    def __init__(self, client: Elasticsearch, info: ClusterInfo, *, index: str = DEFAULT_INDEX,
                 full_scan: bool = False, keep_alive: str = "5m", owned: bool = False) -> None:
        """``index``: the event streams to read (:func:`soc.store.elastic.names.events_pattern`);
        ``full_scan``: no pre-filter, every event of the range goes to the engine;
        ``owned``: :meth:`close` closes the client too."""
        self.client = client
        self.owned = owned
        self.info = info
        self.index = index
        self.full_scan = full_scan
        self.keep_alive = keep_alive
        self._cache: tuple[tuple[int, HuntWindow], _Strategy] | None = None
        self._notes: list[str] = []

    @property
    def notes(self) -> list[str]:
        return list(self._notes)

    # -- HuntSource -------------------------------------------------------------------
    def count(self, plan: HuntPlan, window: HuntWindow) -> int:
        return self._strategy(plan, window).count

    def iter_events(self, plan: HuntPlan, window: HuntWindow, batch: int = DEFAULT_BATCH) -> Iterator[list[Event]]:
        strategy = self._strategy(plan, window)
        if strategy.count == 0 or strategy.query is _MATCH_NONE:
            return
        yield from self._scroll(strategy.query, max(1, min(batch, 10_000)))

    def close(self) -> None:
        if self.owned:
            self.client.close()

    # -- the plan ---------------------------------------------------------------------
    def _strategy(self, plan: HuntPlan, window: HuntWindow) -> _Strategy:
        key = (id(plan), window)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        scope = self._scope(window)
        notes: list[str] = []
        try:
            if self.full_scan:
                notes.append(say("đọc mọi sự kiện trong khoảng (--full-scan)",
                                 "reading every event of the range (--full-scan)"))
                query = scope
            else:
                query = _all_of([scope, self._wanted(plan, scope, notes)])
            count = self._count(query)
        except ApiError as exc:
            if exc.meta.status != 400:
                raise
            # A converted query the cluster refuses (a wildcard on a numeric field …):
            # the engine can still decide on every event.
            notes.append(say(f"cụm từ chối truy vấn lọc trước ({exc.message}): đọc mọi sự kiện trong khoảng",
                             f"the cluster refused the pre-filter query ({exc.message}): "
                             "reading every event of the range"))
            query = scope
            count = self._count(query)
        strategy = _Strategy(query, count, notes)
        self._cache = (key, strategy)
        self._notes = notes
        return strategy

    def _scope(self, window: HuntWindow) -> dict[str, Any]:
        since, until = _epoch_ms(window)
        scope: list[dict[str, Any]] = [
            {"range": {"@timestamp": {"gte": since, "lt": until, "format": "epoch_millis"}}}]
        if window.systems:
            scope.append({"terms": {"gov.system.id": list(window.systems)}})
        return _all_of(scope)

    def _wanted(self, plan: HuntPlan, scope: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        """What to fetch: the hits of rules that alert alone, and for each correlation
        the hits of its base rules (of candidate groups only, where aggregations tell)."""
        active = [r for r in plan.ruleset.rules if r.active]
        fields = self.cluster_fields(self._fields_of(plan, active))
        rule_query = {r.info.id: self._rule_query(r, fields, notes) for r in active}
        by_name: dict[str, CompiledRule] = {}
        for r in active:
            for name in (r.info.id, r.info.name):
                if name:
                    by_name.setdefault(name, r)
        silenced = CorrelationEngine(plan.ruleset.correlations).base_rules_silenced()
        clauses: list[dict[str, Any]] = [rule_query[r.info.id] for r in active if r.info.id not in silenced]
        for rule, info in plan.ruleset.correlations:
            bases = _base_rules(rule, by_name)
            base_query = _any_of([rule_query[r.info.id] for r in bases])
            if base_query is _MATCH_NONE:
                continue
            counting = _counting(rule, fields.caps)
            if counting is None:
                notes.append(say(
                    f"tương quan {info.title} ({rule.type.name.lower()}): lấy mọi kết quả của các luật cơ sở, "
                    "bộ máy tương quan của SOC quyết định",
                    f"correlation {info.title} ({rule.type.name.lower()}): fetching every hit of its base "
                    "rules; the SOC correlation engine decides"))
                clauses.append(base_query)
                continue
            if base_query is _MATCH_ALL:
                clauses.append(base_query)
                continue
            clauses.append(self._candidates(info, counting, _all_of([scope, base_query]), base_query, notes))
        return _any_of(clauses)

    @staticmethod
    def _fields_of(plan: HuntPlan, active: Sequence[CompiledRule]) -> list[str]:
        names: set[str] = set()
        for r in active:
            names |= r.fields
        for rule, _ in plan.ruleset.correlations:
            names.update(rule.group_by or ())
            cond = rule.condition
            if isinstance(cond, SigmaCorrelationCondition) and isinstance(cond.fieldref, str):
                names.add(cond.fieldref)
        return sorted(names)

    @staticmethod
    def _rule_query(compiled: CompiledRule, fields: ClusterFields, notes: list[str]) -> Clause:
        prefilter = rule_prefilter(compiled, fields)
        title = compiled.info.title
        why_vi = "; ".join(vi for vi, _ in prefilter.reasons[:4])
        why_en = "; ".join(en for _, en in prefilter.reasons[:4])
        if prefilter.reads_everything:
            notes.append(say(
                f"luật {title}: không lọc trước được trên cụm" + (f" ({why_vi})" if why_vi else "")
                + ": đọc mọi sự kiện trong khoảng",
                f"rule {title}: no pre-filter on the cluster" + (f" ({why_en})" if why_en else "")
                + ": reading every event of the range"))
        elif prefilter.reasons:
            notes.append(say(
                f"luật {title}: chỉ lọc trước theo phần còn lại của điều kiện ({why_vi}): "
                "bộ máy kiểm tra phần đó trên mọi sự kiện lấy về",
                f"rule {title}: pre-filtered on the rest of its condition only ({why_en}): "
                "the engine checks that part on every fetched event"))
        return prefilter.query

    def _candidates(self, info: RuleInfo, counting: _Counting, agg_query: dict[str, Any],
                    base_query: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        """The base rules' hits of the groups that can reach the threshold."""
        tallies = self._tally(counting, agg_query)
        span = counting.span_ms
        candidates = [group for group, buckets in tallies.items()
                      if max(n + buckets.get(start - span, 0) for start, n in buckets.items()) >= counting.need]
        notes.append(say(
            f"tương quan {info.title}: tổng hợp trên cụm, {len(candidates)}/{len(tallies)} nhóm có thể đạt ngưỡng",
            f"correlation {info.title}: aggregated on the cluster, {len(candidates)} of {len(tallies)} groups "
            "can reach the threshold"))
        if not candidates:
            return _MATCH_NONE
        if not counting.group:
            return base_query
        limit = MAX_GROUPS if len(counting.group) == 1 else MAX_MULTI_GROUPS
        if len(candidates) > limit:
            notes.append(say(f"tương quan {info.title}: quá nhiều nhóm để liệt kê, lấy mọi kết quả của luật cơ sở",
                             f"correlation {info.title}: too many groups to list; fetching every base-rule hit"))
            return base_query
        return _all_of([base_query, _group_filter(counting.group, candidates)])

    def _tally(self, counting: _Counting, query: dict[str, Any]) -> dict[tuple[Any, ...], dict[int, int]]:
        """Per group, per bucket start: events (event_count) or distinct values (value_count)."""
        sources: list[dict[str, Any]] = [{f"g{i}": {"terms": {"field": f, "missing_bucket": True}}}
                                         for i, f in enumerate(counting.group)]
        sources.append({"t": {"date_histogram": {"field": "@timestamp",
                                                 "fixed_interval": f"{counting.span_ms // 1000}s"}}})
        if counting.value is not None:
            # Events without the value are not counted by the engine either.
            sources.append({"v": {"terms": {"field": counting.value}}})
        tallies: dict[tuple[Any, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": COMPOSITE_PAGE, "sources": sources}
            if after is not None:
                composite["after"] = after
            body = self.client.search(index=self.index, size=0, query=query, aggs={"c": {"composite": composite}},
                                      ignore_unavailable=True, allow_no_indices=True).body
            agg = (body.get("aggregations") or {}).get("c") or {}
            buckets = agg.get("buckets") or []
            for bucket in buckets:
                key = bucket["key"]
                group = tuple(key.get(f"g{i}") for i in range(len(counting.group)))
                tallies[group][int(key["t"])] += 1 if counting.value is not None else int(bucket["doc_count"])
            after = agg.get("after_key")
            if not buckets or after is None:
                return tallies

    # -- the fields as the cluster indexes them ----------------------------------------
    def cluster_fields(self, names: Iterable[str]) -> ClusterFields:
        """How the cluster indexes these fields: types (``_field_caps``) and the length
        limits of string fields (``_mapping/field``; on Elasticsearch also the index-wide
        ``index.mapping.ignore_above``). A limit that cannot be read counts as the
        strictest (every string may be unindexed)."""
        wanted = sorted(set(names))
        caps = self._field_caps(wanted)
        kinds = {name: found for name in wanted if (found := _kind(name, caps)) is not None}
        strings = sorted({root or name for name, (kind, root) in kinds.items() if kind in ("keyword", "flattened_key")})
        try:
            limits = self._mapping_limits(strings)
            index_limit = self._index_limit() if self.info.is_elasticsearch else None
        except ApiError:
            limits, index_limit = dict.fromkeys(strings, 0), None
        fields: dict[str, SearchField] = {}
        for name, (kind, root) in kinds.items():
            limit: int | None = None
            if kind in ("keyword", "flattened_key"):
                limit = limits.get(root or name, index_limit)
            fields[name] = SearchField(kind, root, limit)
        return ClusterFields(fields, caps, records_ignored=self.info.is_elasticsearch)

    # -- cluster requests -------------------------------------------------------------
    def _count(self, query: dict[str, Any]) -> int:
        if query is _MATCH_NONE:
            return 0
        body = self.client.count(index=self.index, query=query, ignore_unavailable=True,
                                 allow_no_indices=True).body
        return int(body.get("count", 0))

    def _field_caps(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Field → type → capabilities, for the fields and their parent objects."""
        wanted: set[str] = set()
        for name in names:
            parts = name.split(".")
            wanted.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        out: dict[str, dict[str, Any]] = {}
        ordered = sorted(wanted)
        for start in range(0, len(ordered), FIELD_CAPS_CHUNK):
            chunk = ordered[start:start + FIELD_CAPS_CHUNK]
            # GET with the fields as a parameter: the form Elasticsearch and OpenSearch share.
            body = self.client.perform_request(
                "GET", f"/{self.index}/_field_caps", headers={"accept": "application/json"},
                params={"fields": ",".join(chunk), "ignore_unavailable": "true", "allow_no_indices": "true"}).body
            out.update(body.get("fields") or {})
        return out

    def _mapping_limits(self, names: Sequence[str]) -> dict[str, int]:
        limits: dict[str, int] = {}
        for start in range(0, len(names), FIELD_CAPS_CHUNK):
            chunk = ",".join(names[start:start + FIELD_CAPS_CHUNK])
            body = self.client.perform_request(
                "GET", f"/{self.index}/_mapping/field/{chunk}", headers={"accept": "application/json"},
                params={"ignore_unavailable": "true", "allow_no_indices": "true"}).body
            for name, limit in _limits(dict(body or {})).items():
                limits[name] = min(limit, limits.get(name, limit))
        return limits

    def _index_limit(self) -> int | None:
        body = self.client.perform_request(
            "GET", f"/{self.index}/_settings/index.mapping.ignore_above", headers={"accept": "application/json"},
            params={"include_defaults": "true", "flat_settings": "true", "ignore_unavailable": "true",
                    "allow_no_indices": "true"}).body
        return _index_limit(dict(body or {}))

    def _scroll(self, query: dict[str, Any], size: int) -> Iterator[list[Event]]:
        pit = self._open_pit()
        sort = [{"@timestamp": {"order": "asc"}}, {"event.id": {"order": "asc", "unmapped_type": "keyword"}}]
        after: list[Any] | None = None
        try:
            while True:
                kwargs: dict[str, Any] = {"pit": {"id": pit, "keep_alive": self.keep_alive}, "query": query,
                                          "sort": sort, "size": size, "track_total_hits": False}
                if after is not None:
                    kwargs["search_after"] = after
                body = self.client.search(**kwargs).body
                pit = body.get("pit_id") or pit  # Elasticsearch may hand back a new id
                hits = body["hits"]["hits"]
                if not hits:
                    return
                yield [hit["_source"] for hit in hits]
                if len(hits) < size:
                    return
                after = hits[-1]["sort"]
        finally:
            self._close_pit(pit)

    def _open_pit(self) -> str:
        body = self.client.perform_request("POST", self.info.pit_path(self.index), headers=_JSON,
                                           params={"keep_alive": self.keep_alive}).body
        return str(body.get("id") or body.get("pit_id"))

    def _close_pit(self, pit: str) -> None:
        body: dict[str, Any] = {"id": pit} if self.info.is_elasticsearch else {"pit_id": [pit]}
        with suppress(ApiError):  # it expires after keep_alive anyway
            self.client.perform_request("DELETE", self.info.close_pit_path(), headers=_JSON, body=body)


def _aggregatable(name: str, caps: dict[str, dict[str, Any]]) -> bool:
    types = caps.get(name)
    if not types:
        return False
    return all(t in TRUSTED_TYPES and c.get("aggregatable", False) for t, c in types.items())


def _base_rules(rule: SigmaCorrelationRule, by_name: dict[str, CompiledRule]) -> list[CompiledRule]:
    """The detection rules a correlation references directly (inner correlations
    bring their own base rules as entries of the plan)."""
    out: dict[str, CompiledRule] = {}
    for ref in rule.rules or []:
        target = getattr(ref, "rule", None)  # unresolved references have no .rule
        names = [ref.reference, *(str(n) for n in (getattr(target, "id", None), getattr(target, "name", None)) if n)]
        found = next((by_name[n] for n in names if n in by_name), None)
        if found is not None:
            out[found.info.id] = found
    return list(out.values())


def _counting(rule: SigmaCorrelationRule, caps: dict[str, dict[str, Any]]) -> _Counting | None:
    """The aggregation pre-filter of a correlation, or ``None`` when it has none: not a
    counting type, a condition with an upper bound (any group may fire), aliases (the
    group-by field differs per rule), an inner correlation, fields not aggregatable."""
    if rule.type not in (_T.EVENT_COUNT, _T.VALUE_COUNT):
        return None
    cond = rule.condition
    if not isinstance(cond, SigmaCorrelationCondition):
        return None
    if rule.aliases is not None and rule.aliases.aliases:
        return None
    if any(isinstance(getattr(ref, "rule", None), SigmaCorrelationRule) for ref in rule.rules or []):
        return None
    ops: dict[str, Any] = rule.custom_attributes.get(RANGE_ATTRIBUTE) or {cond.op.name.lower(): cond.count}
    if not ops or any(op not in ("gt", "gte", "eq") for op in ops):
        return None
    need = max(math.floor(float(t)) + 1 if op == "gt" else math.ceil(float(t)) for op, t in ops.items())
    value: str | None = None
    if rule.type is _T.VALUE_COUNT:
        if not isinstance(cond.fieldref, str):
            return None
        value = cond.fieldref
    group = tuple(rule.group_by or ())
    if not all(_aggregatable(f, caps) for f in (*group, *([value] if value else []))):
        return None
    span_ms = int(rule.timespan.seconds) * 1000
    if span_ms <= 0:
        return None
    return _Counting(group, span_ms, need, value)


def _group_filter(fields: Sequence[str], groups: Iterable[tuple[Any, ...]]) -> dict[str, Any]:
    """Events of these group-by keys (``None``: the field is missing, as the engine groups)."""
    groups = list(groups)
    if len(fields) == 1:
        name = fields[0]
        values = [g[0] for g in groups if g[0] is not None]
        clauses: list[dict[str, Any]] = []
        if values:
            clauses.append({"terms": {name: values}})
        if any(g[0] is None for g in groups):
            clauses.append({"bool": {"must_not": [{"exists": {"field": name}}]}})
        return _any_of(clauses)
    per_group: list[dict[str, Any]] = []
    for group in groups:
        parts: list[dict[str, Any]] = [
            {"term": {name: value}} if value is not None else {"bool": {"must_not": [{"exists": {"field": name}}]}}
            for name, value in zip(fields, group, strict=True)]
        per_group.append({"bool": {"filter": parts}})
    return _any_of(per_group)

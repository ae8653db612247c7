"""Sigma detection rules compiled into Python matchers.

A rule is compiled once, after the processing pipelines have renamed its fields: the
condition tree pySigma parses (``rule.detection.parsed_condition[i].parse()``, with
``1 of``/``all of``/``them`` and selection names already resolved) becomes a small
tree of predicates and boolean nodes, which is then turned into nested closures.
Nothing is re-parsed per event and no query string is built.

Matchers read an :class:`EventView`: the event's field values looked up once per event
and kept in the forms the predicates compare (lower-cased strings, numbers, IPs), so
the hundreds of rules that test ``CommandLine`` lower-case it once.

Semantics (Sigma specification, rules and modifiers appendices):

* strings match case-insensitively, except ``re`` and ``cased``; ``*`` and ``?`` are
  wildcards (``\\*``, ``\\?``, ``\\\\`` escape them), a plain value must equal the whole
  field value;
* a number matches the number or a numeric string (``EventID: 4625`` matches ``4625``
  and ``"4625"``);
* a list-valued field matches when any element matches;
* ``null`` matches a field that is absent or null; ``exists`` only looks at presence;
* values without a field (keywords) are searched in ``event.original`` and ``message``;
* ``re`` searches (it is not anchored: rules write ``^``/``$`` when they mean it).

Each compiled rule also carries *clauses* for the engine's index: sets of simple
string tests (field equals / starts with / ends with / contains a literal) of which
at least one must hold whenever the rule matches. They are derived from the same
predicate tree, so the index can only skip rules that cannot match.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
    TimestampPart,
)

from collectors.event import Event, get_field
from soc.detect.model import RuleInfo

KEYWORD_FIELDS = ("event.original", "message")
"""Where values without a field are searched (docs/detection-logsources.md)."""

NEEDLE_SET_MIN = 8
"""Longer substring lists are searched through a :class:`NeedleSet`."""

MISSING: Any = object()
"""An absent field (``None`` is a present field whose value is null)."""

Matcher = Callable[["EventView"], bool]
Atom = tuple[str, str, str]
"""An index test ``(kind, field, literal)``: kind is ``eq``, ``prefix``, ``suffix`` or
``contains``; the literal is lower-case (``eq`` literals are :func:`index_keys` keys)."""
Clause = frozenset[Atom]
"""Atoms of which at least one holds whenever the rule matches."""


class CompileError(ValueError):
    """The rule uses something the engine cannot evaluate."""


# --- the event as matchers see it -------------------------------------------------

_PATHS: dict[str, tuple[str, ...]] = {}


def lookup(event: Event, path: str) -> Any:
    """Value at a dotted path, :data:`MISSING` when absent (``None`` stays ``None``).

    The nested walk is the fast path; documents with literal dotted keys (flat
    ``"a.b"`` keys, as :func:`collectors.event.get_field` accepts) take the slow one."""
    if path in event:
        return event[path]
    parts = _PATHS.get(path)
    if parts is None:
        parts = _PATHS[path] = tuple(path.split("."))
    node: Any = event
    last = len(parts) - 1
    for i, part in enumerate(parts):
        if type(node) is not dict:
            return get_field(event, path, MISSING)
        node = node.get(part, MISSING)
        if node is MISSING:
            # Missing leaf of an existing object: absent. Missing object on the way:
            # a flat dotted key may still hold it.
            return MISSING if i == last else get_field(event, path, MISSING)
    return node


def _scalars(value: Any) -> list[Any]:
    if type(value) is list:
        out: list[Any] = []
        for item in value:
            out.extend(_scalars(item))
        return out
    if value is None or type(value) is dict:
        return []
    return [value]


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if type(value) is str else str(value)


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _number(value: Any) -> int | float | None:
    if type(value) is int or type(value) is float:
        return value
    if type(value) is str:
        s = value.strip()
        if s.isdigit():
            return int(s)
        if _NUMBER.fullmatch(s):
            try:
                f = float(s)
            except ValueError:  # pragma: no cover - the pattern only admits floats
                return None
            return int(f) if f.is_integer() and "." not in s and "e" not in s.lower() else f
    return None


def canonical_number(n: float) -> str:
    """Index key of a number: ``4625`` and ``4625.0`` give the same key."""
    if isinstance(n, float) and n.is_integer():
        return str(int(n))
    return str(n)


class _Raw(dict[str, Any]):
    __slots__ = ("event",)
    event: Event

    def __missing__(self, path: str) -> Any:
        value = self[path] = lookup(self.event, path)
        return value


class _Strings(dict[str, tuple[str, ...]]):
    __slots__ = ("raw",)
    raw: _Raw

    def __missing__(self, path: str) -> tuple[str, ...]:
        value = self.raw[path]
        out = () if value is MISSING else tuple(_text(v) for v in _scalars(value))
        self[path] = out
        return out


class _Folded(dict[str, tuple[str, ...]]):
    __slots__ = ("strings",)
    strings: _Strings

    def __missing__(self, path: str) -> tuple[str, ...]:
        out = tuple(s.lower() for s in self.strings[path])
        self[path] = out
        return out


class _Numbers(dict[str, tuple[float, ...]]):
    __slots__ = ("raw",)
    raw: _Raw

    def __missing__(self, path: str) -> tuple[float, ...]:
        value = self.raw[path]
        out: tuple[float, ...] = ()
        if value is not MISSING:
            nums = [_number(v) for v in _scalars(value) if type(v) is not bool]
            out = tuple(n for n in nums if n is not None)
        self[path] = out
        return out


class _Keys(dict[str, tuple[str, ...]]):
    __slots__ = ("folded", "numbers")
    folded: _Folded
    numbers: _Numbers

    def __missing__(self, path: str) -> tuple[str, ...]:
        keys = list(self.folded[path])
        for n in self.numbers[path]:
            key = canonical_number(n)
            if key not in keys:
                keys.append(key)
        out = tuple(keys)
        self[path] = out
        return out


class _Ips(dict[str, tuple[Any, ...]]):
    __slots__ = ("strings",)
    strings: _Strings

    def __missing__(self, path: str) -> tuple[Any, ...]:
        out = []
        for s in self.strings[path]:
            try:
                out.append(ipaddress.ip_address(s.strip().split("%", 1)[0]))
            except ValueError:
                continue
        value = self[path] = tuple(out)
        return value


GRAM = 3
"""Length of the character n-grams that find substrings (see :class:`NeedleSet`)."""
STEP = 3
"""Event text is sampled for n-grams every STEP characters."""
LONG_NEEDLE = GRAM + STEP - 1
"""Needles at least this long always contain one of the sampled n-grams of a text
that contains them, at one of their first STEP offsets."""


class _Grams(dict[str, frozenset[str]]):
    __slots__ = ("folded",)
    folded: _Folded

    def __missing__(self, path: str) -> frozenset[str]:
        grams: set[str] = set()
        for x in self.folded[path]:
            grams.update(x[i:i + GRAM] for i in range(0, len(x) - GRAM + 1, STEP))
        out = self[path] = frozenset(grams)
        return out


class _Chars(dict[str, frozenset[str]]):
    __slots__ = ("folded",)
    folded: _Folded

    def __missing__(self, path: str) -> frozenset[str]:
        values = self.folded[path]
        out = self[path] = frozenset(values[0]) if len(values) == 1 else frozenset("".join(values))
        return out


class EventView:
    """An event with per-field caches: ``raw`` (value or :data:`MISSING`),
    ``strings`` (text of each scalar element), ``folded`` (the same, lower-cased),
    ``numbers`` (numeric elements and numeric strings), ``keys`` (index keys:
    folded strings plus canonical numbers), ``ips``, and for substring search
    ``grams`` (sampled n-grams of the folded text) and ``chars``."""

    __slots__ = ("chars", "event", "folded", "grams", "ips", "keys", "numbers", "raw", "strings")

    def __init__(self, event: Event) -> None:
        self.event = event
        raw = self.raw = _Raw()
        raw.event = event
        strings = self.strings = _Strings()
        strings.raw = raw
        folded = self.folded = _Folded()
        folded.strings = strings
        numbers = self.numbers = _Numbers()
        numbers.raw = raw
        keys = self.keys = _Keys()
        keys.folded = folded
        keys.numbers = numbers
        ips = self.ips = _Ips()
        ips.strings = strings
        grams = self.grams = _Grams()
        grams.folded = folded
        chars = self.chars = _Chars()
        chars.folded = folded


# Characters by how common they are in log text: a short needle is filed under its
# least common character, so that few needles are tried on a typical value.
_COMMON = " e.tia\\osrnlcmdp-/:_x0w1u2hg3ybf\"45k6=789v,'j()q[]z&%$@#!*+;?<>|{}^`~"
_RANK = {c: i for i, c in enumerate(_COMMON)}


class NeedleSet:
    """Which of many lower-case substrings occur in a field, without trying each.

    A needle of at least :data:`LONG_NEEDLE` characters is filed under its n-grams at
    offsets ``0..STEP-1``; a text containing it has one of those among its n-grams
    sampled every ``STEP`` characters (``EventView.grams``). A shorter needle is filed
    under its least common character (``EventView.chars``). Only needles reached that
    way are tested with ``in``.
    """

    __slots__ = ("_by_char", "_by_gram", "_char_keys", "_gram_keys", "always")

    def __init__(self, needles: Iterable[str]) -> None:
        by_gram: dict[str, list[str]] = {}
        by_char: dict[str, list[str]] = {}
        self.always = False
        for needle in dict.fromkeys(needles):
            if not needle:
                self.always = True
            elif len(needle) >= LONG_NEEDLE:
                for gram in {needle[o:o + GRAM] for o in range(STEP)}:
                    by_gram.setdefault(gram, []).append(needle)
            else:
                rare = min(needle, key=lambda c: _RANK.get(c, -1))
                by_char.setdefault(rare, []).append(needle)
        self._by_gram = {k: tuple(v) for k, v in by_gram.items()}
        self._by_char = {k: tuple(v) for k, v in by_char.items()}
        self._gram_keys = frozenset(by_gram)
        self._char_keys = frozenset(by_char)

    def candidates(self, view: EventView, fname: str) -> list[str]:
        """Needles that may occur (each still to be tested)."""
        out: list[str] = []
        if self._gram_keys:
            by_gram = self._by_gram
            for gram in self._gram_keys & view.grams[fname]:
                out.extend(by_gram[gram])
        if self._char_keys:
            by_char = self._by_char
            for c in self._char_keys & view.chars[fname]:
                out.extend(by_char[c])
        return out

    def found(self, view: EventView, fname: str) -> set[str]:
        """The needles that occur in the field's folded values."""
        values = view.folded[fname]
        if not values:
            return set()
        if len(values) == 1:
            x = values[0]
            return {n for n in self.candidates(view, fname) if n in x}
        return {n for n in self.candidates(view, fname) if any(n in x for x in values)}

    def any(self, view: EventView, fname: str) -> bool:
        values = view.folded[fname]
        if not values:
            return False
        if self.always:
            return True
        for n in self.candidates(view, fname):
            for x in values:
                if n in x:
                    return True
        return False


def index_keys(value: Any) -> tuple[str, ...]:
    """The index keys :class:`EventView` gives this value (used for rule literals)."""
    return EventView({"v": value}).keys["v"]


# --- predicate tree ----------------------------------------------------------------

class Node:
    """A node of the compiled condition."""

    def weight(self) -> float:
        """Relative evaluation cost, to test cheap operands of and/or first."""
        return 1.0

    def matcher(self) -> Matcher:
        raise NotImplementedError

    def clauses(self) -> list[Clause]:
        """Necessary clauses (empty: nothing is known to be required)."""
        return []

    def fields(self) -> set[str]:
        return set()


@dataclass(eq=False)
class StrPred(Node):
    """A field (or, for keywords, :data:`KEYWORD_FIELDS`) against string patterns: any
    of equals / starts with / ends with / contains / wildcard pattern."""

    field: str | None
    cased: bool
    eqs: set[str] = dataclasses.field(default_factory=set)
    prefixes: set[str] = dataclasses.field(default_factory=set)
    suffixes: set[str] = dataclasses.field(default_factory=set)
    subs: set[str] = dataclasses.field(default_factory=set)
    globs: list[re.Pattern[str]] = dataclasses.field(default_factory=list)
    glob_atoms: list[Atom | None] = dataclasses.field(default_factory=list)
    any_value: bool = False

    def weight(self) -> float:
        return 1 + (2 if self.prefixes or self.suffixes else 0) + len(self.subs) * 0.3 + len(self.globs) * 4

    def merge(self, other: StrPred) -> None:
        self.eqs |= other.eqs
        self.prefixes |= other.prefixes
        self.suffixes |= other.suffixes
        self.subs |= other.subs
        self.globs += other.globs
        self.glob_atoms += other.glob_atoms
        self.any_value = self.any_value or other.any_value

    def fields(self) -> set[str]:
        return {self.field} if self.field is not None else set(KEYWORD_FIELDS)

    def clauses(self) -> list[Clause]:
        if self.any_value or None in self.glob_atoms:
            return []
        names = [self.field] if self.field is not None else list(KEYWORD_FIELDS)
        fold = str.lower
        atoms: set[Atom] = set()
        for name in names:
            if self.field is None:  # keywords are searched anywhere in the text
                for s in (*self.eqs, *self.prefixes, *self.suffixes, *self.subs):
                    atoms.add(("contains", name, fold(s)))
            else:
                for s in self.eqs:
                    atoms.update(("eq", name, key) for key in index_keys(s))
                atoms.update(("prefix", name, fold(s)) for s in self.prefixes)
                atoms.update(("suffix", name, fold(s)) for s in self.suffixes)
                atoms.update(("contains", name, fold(s)) for s in self.subs)
            for atom in self.glob_atoms:
                assert atom is not None
                kind = "contains" if self.field is None else atom[0]
                atoms.add((kind, name, atom[2]))
        return [frozenset(atoms)] if atoms else []

    def matcher(self) -> Matcher:
        fname = self.field
        if not self.cased:
            eqs = frozenset(s.lower() for s in self.eqs)
            pres = tuple(s.lower() for s in self.prefixes)
            sufs = tuple(s.lower() for s in self.suffixes)
            subs = tuple(sorted({s.lower() for s in self.subs}, key=len, reverse=True))
        else:
            eqs, pres, sufs = frozenset(self.eqs), tuple(self.prefixes), tuple(self.suffixes)
            subs = tuple(sorted(self.subs, key=len, reverse=True))
        globs = tuple(self.globs)
        cache = "strings" if self.cased else "folded"
        if fname is None:
            return _keyword_matcher(cache, (*eqs, *pres, *sufs, *subs), globs, self.any_value)
        return _string_matcher(fname, cache, eqs, pres, sufs, subs, globs, self.any_value)


def _string_matcher(fname: str, cache: str, eqs: frozenset[str], pres: tuple[str, ...], sufs: tuple[str, ...],
                    subs: tuple[str, ...], globs: tuple[re.Pattern[str], ...], any_value: bool) -> Matcher:
    # Specialised closures for the shapes that dominate real rule sets; the general
    # one handles the rest.
    folded = cache == "folded"
    if any_value:
        if folded:
            return lambda v: bool(v.folded[fname])
        return lambda v: bool(v.strings[fname])
    only = [bool(eqs), bool(pres), bool(sufs), bool(subs), bool(globs)]
    if folded and only == [True, False, False, False, False]:
        if len(eqs) == 1:
            (one,) = eqs

            def eq_one(v: EventView) -> bool:
                return one in v.folded[fname]
            return eq_one

        def eq_set(v: EventView) -> bool:
            return any(x in eqs for x in v.folded[fname])
        return eq_set
    if folded and only == [False, False, True, False, False]:
        def suffix(v: EventView) -> bool:
            for x in v.folded[fname]:  # noqa: SIM110 (hot path: a loop beats any()+generator)
                if x.endswith(sufs):
                    return True
            return False
        return suffix
    if folded and only == [False, True, False, False, False]:
        def prefix(v: EventView) -> bool:
            for x in v.folded[fname]:  # noqa: SIM110 (hot path: a loop beats any()+generator)
                if x.startswith(pres):
                    return True
            return False
        return prefix
    if folded and only == [False, False, False, True, False]:
        if len(subs) == 1:
            (sub,) = subs

            def contains_one(v: EventView) -> bool:
                for x in v.folded[fname]:  # noqa: SIM110 (hot path: a loop beats any()+generator)
                    if sub in x:
                        return True
                return False
            return contains_one

        if len(subs) > NEEDLE_SET_MIN:
            return _needle_matcher(fname, NeedleSet(subs))

        def contains(v: EventView) -> bool:
            for x in v.folded[fname]:
                for s in subs:
                    if s in x:
                        return True
            return False
        return contains

    def general(v: EventView) -> bool:
        values = v.folded[fname] if folded else v.strings[fname]
        for x in values:
            if x in eqs or (pres and x.startswith(pres)) or (sufs and x.endswith(sufs)):
                return True
            for s in subs:
                if s in x:
                    return True
            for g in globs:
                if g.fullmatch(x):
                    return True
        return False
    return general


def _needle_matcher(fname: str, needles: NeedleSet) -> Matcher:
    test = needles.any
    return lambda v: test(v, fname)


def _keyword_matcher(cache: str, needles: tuple[str, ...], globs: tuple[re.Pattern[str], ...],
                     any_value: bool) -> Matcher:
    folded = cache == "folded"
    names = KEYWORD_FIELDS

    def keyword(v: EventView) -> bool:
        table = v.folded if folded else v.strings
        for name in names:
            for x in table[name]:
                if any_value:
                    return True
                for s in needles:
                    if s in x:
                        return True
                for g in globs:
                    if g.search(x):
                        return True
        return False
    return keyword


@dataclass(eq=False)
class NumPred(Node):
    """A field equals one of these numbers (numbers and numeric strings)."""

    field: str
    numbers: set[float]

    def fields(self) -> set[str]:
        return {self.field}

    def clauses(self) -> list[Clause]:
        return [frozenset(("eq", self.field, canonical_number(n)) for n in self.numbers)]

    def matcher(self) -> Matcher:
        fname, nums = self.field, frozenset(self.numbers)
        if len(nums) == 1:
            (one,) = nums
            return lambda v: one in v.numbers[fname]
        return lambda v: any(n in nums for n in v.numbers[fname])


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


@dataclass(eq=False)
class ComparePred(Node):
    field: str
    op: CompareOperators
    number: float

    def fields(self) -> set[str]:
        return {self.field}

    def matcher(self) -> Matcher:
        fname, op, ref = self.field, _COMPARE[self.op], self.number
        return lambda v: any(op(n, ref) for n in v.numbers[fname])


@dataclass(eq=False)
class NullPred(Node):
    """Absent or null (an empty list counts as null)."""

    field: str

    def fields(self) -> set[str]:
        return {self.field}

    def matcher(self) -> Matcher:
        fname = self.field

        def null(v: EventView) -> bool:
            value = v.raw[fname]
            return value is MISSING or value is None or value == []
        return null


@dataclass(eq=False)
class ExistsPred(Node):
    field: str
    exists: bool

    def fields(self) -> set[str]:
        return {self.field}

    def matcher(self) -> Matcher:
        fname = self.field
        if self.exists:
            return lambda v: v.raw[fname] is not MISSING
        return lambda v: v.raw[fname] is MISSING


@dataclass(eq=False)
class RegexPred(Node):
    """Regular expressions, searched in the original text (field or keywords)."""

    field: str | None
    patterns: list[re.Pattern[str]]

    def fields(self) -> set[str]:
        return {self.field} if self.field is not None else set(KEYWORD_FIELDS)

    def weight(self) -> float:
        return 5.0 * len(self.patterns)

    def matcher(self) -> Matcher:
        names = (self.field,) if self.field is not None else KEYWORD_FIELDS
        pats = tuple(self.patterns)

        def regex(v: EventView) -> bool:
            for name in names:
                for x in v.strings[name]:
                    for p in pats:
                        if p.search(x):
                            return True
            return False
        return regex


@dataclass(eq=False)
class CidrPred(Node):
    field: str
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]

    def fields(self) -> set[str]:
        return {self.field}

    def matcher(self) -> Matcher:
        fname, nets = self.field, tuple(self.networks)
        return lambda v: any(ip in net for ip in v.ips[fname] for net in nets)


@dataclass(eq=False)
class FieldRefPred(Node):
    """A field compared with another field of the same event (case-insensitive)."""

    field: str
    other: str
    starts: bool
    ends: bool

    def fields(self) -> set[str]:
        return {self.field, self.other}

    def weight(self) -> float:
        return 2.0

    def matcher(self) -> Matcher:
        fname, other = self.field, self.other
        if self.starts and self.ends:
            def test(x: str, y: str) -> bool:
                return y in x
        elif self.starts:  # fieldref|startswith: the field starts with the other's value
            def test(x: str, y: str) -> bool:
                return x.startswith(y)
        elif self.ends:
            def test(x: str, y: str) -> bool:
                return x.endswith(y)
        else:
            def test(x: str, y: str) -> bool:
                return x == y

        def fieldref(v: EventView) -> bool:
            ys = v.folded[other]
            return any(test(x, y) for x in v.folded[fname] for y in ys)
        return fieldref


def _time_part(value: Any, part: TimestampPart) -> int | None:
    dt: datetime | None = None
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        while seconds > 1e11:  # milliseconds / microseconds since the epoch
            seconds /= 1000.0
        dt = datetime.fromtimestamp(seconds, UTC)
    if dt is None:
        return None
    if part is TimestampPart.MINUTE:
        return dt.minute
    if part is TimestampPart.HOUR:
        return dt.hour
    if part is TimestampPart.DAY:
        return dt.day
    if part is TimestampPart.WEEK:
        return dt.isocalendar().week
    if part is TimestampPart.MONTH:
        return dt.month
    return dt.year


@dataclass(eq=False)
class TimePartPred(Node):
    """``minute``/``hour``/``day``/``week``/``month``/``year`` of a date field."""

    field: str
    part: TimestampPart
    number: int

    def fields(self) -> set[str]:
        return {self.field}

    def weight(self) -> float:
        return 3.0

    def matcher(self) -> Matcher:
        fname, part, ref = self.field, self.part, self.number

        def time_part(v: EventView) -> bool:
            value = v.raw[fname]
            if value is MISSING:
                return False
            return any(_time_part(x, part) == ref for x in _scalars(value))
        return time_part


@dataclass(eq=False)
class Const(Node):
    value: bool

    def matcher(self) -> Matcher:
        result = self.value
        return lambda v: result


@dataclass(eq=False)
class And(Node):
    children: list[Node]

    def weight(self) -> float:
        return sum(c.weight() for c in self.children)

    def fields(self) -> set[str]:
        return set().union(*(c.fields() for c in self.children))

    def clauses(self) -> list[Clause]:
        out: list[Clause] = []
        for child in self.children:
            out.extend(child.clauses())
        return out

    def matcher(self) -> Matcher:
        # Cheap tests first: the result is the same, the misses are found sooner.
        ms = [c.matcher() for c in sorted(self.children, key=lambda c: c.weight())]
        if len(ms) == 1:
            return ms[0]
        if len(ms) == 2:
            a, b = ms
            return lambda v: a(v) and b(v)
        if len(ms) == 3:
            a, b, c = ms
            return lambda v: a(v) and b(v) and c(v)
        seq = tuple(ms)

        def all_of(v: EventView) -> bool:
            for m in seq:  # noqa: SIM110 (hot path: a loop beats any()+generator)
                if not m(v):
                    return False
            return True
        return all_of


@dataclass(eq=False)
class Or(Node):
    children: list[Node]

    def weight(self) -> float:
        return sum(c.weight() for c in self.children)

    def fields(self) -> set[str]:
        return set().union(*(c.fields() for c in self.children))

    def clauses(self) -> list[Clause]:
        # One clause per branch is necessary for the branch; their union is necessary
        # for the disjunction. Each branch contributes its most specific clause.
        atoms: set[Atom] = set()
        for child in self.children:
            options = child.clauses()
            if not options:
                return []
            best: Clause = min(options, key=clause_cost)
            atoms |= best
        return [frozenset(atoms)]

    def matcher(self) -> Matcher:
        ms = [c.matcher() for c in sorted(self.children, key=lambda c: c.weight())]
        if len(ms) == 1:
            return ms[0]
        if len(ms) == 2:
            a, b = ms
            return lambda v: a(v) or b(v)
        seq = tuple(ms)

        def any_of(v: EventView) -> bool:
            for m in seq:  # noqa: SIM110 (hot path: a loop beats any()+generator)
                if m(v):
                    return True
            return False
        return any_of


@dataclass(eq=False)
class Not(Node):
    child: Node

    def weight(self) -> float:
        return self.child.weight()

    def fields(self) -> set[str]:
        return self.child.fields()

    def matcher(self) -> Matcher:
        m = self.child.matcher()
        return lambda v: not m(v)


_KIND_WEIGHT = {"eq": 1.0, "prefix": 2.0, "suffix": 2.0, "contains": 3.0}


def atom_cost(atom: Atom) -> float:
    """Rough chance that an atom holds: short literals and substring tests are weak."""
    kind, _, literal = atom
    return _KIND_WEIGHT[kind] * (1.0 + 8.0 / (1 + len(literal)))


def clause_cost(clause: Clause) -> float:
    return sum(atom_cost(a) for a in clause)


# --- pySigma condition tree → predicate tree ---------------------------------------

def _parts(value: SigmaString) -> list[str | SpecialChars]:
    """Merged string parts; placeholders left by ``expand`` are an error here."""
    out: list[str | SpecialChars] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            raise CompileError(f"placeholder %{part.name}% has no value (configure it in detect placeholders)")
        if isinstance(part, str):
            if out and isinstance(out[-1], str):
                out[-1] += part
            elif part:
                out.append(part)
        elif part is SpecialChars.WILDCARD_MULTI and out and out[-1] is SpecialChars.WILDCARD_MULTI:
            continue
        else:
            out.append(part)
    return out


def _glob(parts: Sequence[str | SpecialChars], cased: bool, anchored: bool) -> tuple[re.Pattern[str], Atom | None]:
    """A wildcard pattern as a regex (on folded text unless cased) and the best index
    atom it implies (leading literal, trailing literal or longest literal)."""
    rx = []
    for p in parts:
        if isinstance(p, str):
            rx.append(re.escape(p if cased else p.lower()))
        else:
            rx.append(".*" if p is SpecialChars.WILDCARD_MULTI else ".")
    pattern = re.compile("".join(rx), re.DOTALL)
    literals = [p.lower() for p in parts if isinstance(p, str)]
    atom: Atom | None = None
    if anchored and parts and isinstance(parts[0], str):
        atom = ("prefix", "", parts[0].lower())
    if anchored and parts and isinstance(parts[-1], str):
        candidate: Atom = ("suffix", "", parts[-1].lower())
        if atom is None or len(candidate[2]) > len(atom[2]):
            atom = candidate
    if literals:
        longest = max(literals, key=len)
        if atom is None or len(longest) > len(atom[2]) + 2:
            atom = ("contains", "", longest)
    return pattern, atom


def _string_pred(fname: str | None, value: SigmaString) -> StrPred:
    cased = isinstance(value, SigmaCasedString)
    pred = StrPred(fname, cased)
    parts = _parts(value)
    multi = SpecialChars.WILDCARD_MULTI
    if not parts:
        if fname is None:
            pred.any_value = True
        else:
            pred.eqs.add("")
        return pred
    if fname is None:  # keyword: a search anywhere in the text
        inner = list(parts)
        while inner and inner[0] is multi:
            inner.pop(0)
        while inner and inner[-1] is multi:
            inner.pop()
        if not inner:
            pred.any_value = True
        elif len(inner) == 1 and isinstance(inner[0], str):
            pred.subs.add(inner[0])
        else:
            pattern, atom = _glob(inner, cased, anchored=False)
            pred.globs.append(pattern)
            pred.glob_atoms.append(atom)
        return pred
    if all(isinstance(p, str) for p in parts):
        pred.eqs.add("".join(p for p in parts if isinstance(p, str)))
    elif parts == [multi]:
        pred.any_value = True
    elif len(parts) == 2 and parts[0] is multi and isinstance(parts[1], str):
        pred.suffixes.add(parts[1])
    elif len(parts) == 2 and isinstance(parts[0], str) and parts[1] is multi:
        pred.prefixes.add(parts[0])
    elif len(parts) == 3 and parts[0] is multi and parts[2] is multi and isinstance(parts[1], str):
        pred.subs.add(parts[1])
    else:
        pattern, atom = _glob(parts, cased, anchored=True)
        pred.globs.append(pattern)
        pred.glob_atoms.append(atom)
    return pred


_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


def _regex(value: SigmaRegularExpression) -> re.Pattern[str]:
    if value.regexp.contains_placeholder():
        names = ", ".join(f"%{p.name}%" for p in value.regexp.s if isinstance(p, Placeholder))
        raise CompileError(f"placeholder {names} has no value (configure it in detect placeholders)")
    flags = 0
    for flag in value.flags:
        flags |= _REGEX_FLAGS[flag]
    try:
        return re.compile(str(value.regexp), flags)
    except re.error as exc:
        raise CompileError(f"invalid regular expression {str(value.regexp)!r}: {exc}") from None


def _value_node(fname: str | None, value: SigmaType) -> Node:
    """One field/value pair (or keyword value) of the condition."""
    if isinstance(value, SigmaExpansion):  # windash, base64offset: alternatives
        return Or([_value_node(fname, v) for v in value.values])
    if isinstance(value, SigmaString):
        return _string_pred(fname, value)
    if isinstance(value, SigmaRegularExpression):
        return RegexPred(fname, [_regex(value)])
    if fname is None:
        if isinstance(value, SigmaNumber | SigmaBool):
            pred = StrPred(None, False)
            pred.subs.add(str(value.number if isinstance(value, SigmaNumber) else value.boolean).lower())
            return pred
        raise CompileError(f"{type(value).__name__} values need a field")
    if isinstance(value, SigmaTimestampPart):
        return TimePartPred(fname, value.timestamp_part, int(value.number))
    if isinstance(value, SigmaNumber):
        return NumPred(fname, {value.number})
    if isinstance(value, SigmaBool):
        pred = StrPred(fname, False)
        pred.eqs.add("true" if value.boolean else "false")
        return pred
    if isinstance(value, SigmaNull):
        return NullPred(fname)
    if isinstance(value, SigmaExists):
        return ExistsPred(fname, bool(value.exists))
    if isinstance(value, SigmaCIDRExpression):
        return CidrPred(fname, [value.network])
    if isinstance(value, SigmaCompareExpression):
        return ComparePred(fname, value.op, value.number.number)
    if isinstance(value, SigmaFieldReference):
        return FieldRefPred(fname, value.field, value.starts_with, value.ends_with)
    raise CompileError(f"value type {type(value).__name__} is not supported ({value})")


def _merge_or(children: list[Node]) -> list[Node]:
    """Fold alternatives on one field into one predicate (``x|endswith: [a, b, c]``
    becomes one ``str.endswith`` call with a tuple)."""
    out: list[Node] = []
    strs: dict[tuple[str | None, bool], StrPred] = {}
    nums: dict[str, NumPred] = {}
    regexes: dict[str | None, RegexPred] = {}
    cidrs: dict[str, CidrPred] = {}
    for child in children:
        if isinstance(child, StrPred):
            key = (child.field, child.cased)
            if key in strs:
                strs[key].merge(child)
                continue
            strs[key] = child
        elif isinstance(child, NumPred):
            if child.field in nums:
                nums[child.field].numbers |= child.numbers
                continue
            nums[child.field] = child
        elif isinstance(child, RegexPred):
            if child.field in regexes:
                regexes[child.field].patterns += child.patterns
                continue
            regexes[child.field] = child
        elif isinstance(child, CidrPred):
            if child.field in cidrs:
                cidrs[child.field].networks += child.networks
                continue
            cidrs[child.field] = child
        out.append(child)
    return out


def _simplify(node: Node) -> Node:
    if isinstance(node, And | Or):
        kind = type(node)
        flat: list[Node] = []
        for child in (_simplify(c) for c in node.children):
            if isinstance(child, kind):
                flat.extend(child.children)
            else:
                flat.append(child)
        if kind is Or:
            flat = _merge_or(flat)
            if any(isinstance(c, Const) and c.value for c in flat):
                return Const(True)
            flat = [c for c in flat if not isinstance(c, Const)] or [Const(False)]
        else:
            if any(isinstance(c, Const) and not c.value for c in flat):
                return Const(False)
            flat = [c for c in flat if not isinstance(c, Const)] or [Const(True)]
        return flat[0] if len(flat) == 1 else kind(flat)
    if isinstance(node, Not):
        inner = _simplify(node.child)
        if isinstance(inner, Not):
            return inner.child
        if isinstance(inner, Const):
            return Const(not inner.value)
        return Not(inner)
    return node


def condition_node(tree: Any) -> Node:
    """Predicate tree of one parsed pySigma condition."""
    if isinstance(tree, ConditionAND):
        return And([condition_node(a) for a in tree.args if a is not None])
    if isinstance(tree, ConditionOR):
        return Or([condition_node(a) for a in tree.args if a is not None])
    if isinstance(tree, ConditionNOT):
        args = [a for a in tree.args if a is not None]
        if len(args) != 1:
            raise CompileError("'not' needs exactly one operand")
        return Not(condition_node(args[0]))
    if isinstance(tree, ConditionFieldEqualsValueExpression):
        return _value_node(tree.field, tree.value)
    if isinstance(tree, ConditionValueExpression):
        return _value_node(None, tree.value)
    if isinstance(tree, ConditionItem):
        raise CompileError(f"unsupported condition element {type(tree).__name__}")
    raise CompileError(f"unsupported condition element {type(tree).__name__}")


def rule_node(rule: SigmaRule) -> Node:
    """The whole detection: a rule with several conditions matches when any does."""
    branches: list[Node] = []
    for condition in rule.detection.parsed_condition:
        tree = condition.parse()
        if tree is None:
            raise CompileError(f"condition {condition.condition!r} selects nothing")
        branches.append(condition_node(tree))
    if not branches:
        raise CompileError("the rule has no condition")
    return _simplify(Or(branches))


# --- compiled rules ----------------------------------------------------------------

@dataclass(eq=False, slots=True)
class CompiledRule:
    """A detection rule ready for the engine."""

    info: RuleInfo
    match: Matcher
    clauses: list[Clause]
    """Necessary index clauses (see the module docstring)."""
    fields: frozenset[str]
    """Event fields the rule reads."""
    rule: SigmaRule
    """The pipeline-processed pySigma rule."""
    active: bool = True
    """False when the rule's log source selects no events we parse (it never runs)."""

    def __call__(self, event: Event) -> bool:
        return self.match(EventView(event))


def compile_rule(rule: SigmaRule, info: RuleInfo, *, active: bool = True) -> CompiledRule:
    """Compile a pipeline-processed rule; raises :class:`CompileError` (or pySigma's
    errors for broken conditions)."""
    node = rule_node(rule)
    return CompiledRule(info=info, match=node.matcher(), clauses=_dedupe(node.clauses()),
                        fields=frozenset(node.fields()), rule=rule, active=active)


def _dedupe(clauses: Iterable[Clause]) -> list[Clause]:
    seen: list[Clause] = []
    for clause in clauses:
        if clause and clause not in seen:
            seen.append(clause)
    return seen


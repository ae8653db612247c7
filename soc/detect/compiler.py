"""Sigma detection rules compiled into Python matchers.

A rule is compiled once, after the processing pipelines have renamed its fields: the
condition pySigma parses (``rule.detection.parsed_condition[i].parse()``), with its
selection names and ``1 of``/``all of``/``them`` resolved to the rule's detections,
becomes a small tree of predicates and boolean nodes, which is then generated as one Python function
(:func:`generate`; closures where that is not possible). Nothing is re-parsed per
event and no query string is built.

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
import math
import re
import re._constants as _sre
import re._parser as _sre_parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from sigma.conditions import (
    ConditionAND,
    ConditionIdentifier,
    ConditionNOT,
    ConditionOR,
    ConditionSelector,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaDetections, SigmaRule
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
FEW_NEEDLES = 6
"""A :class:`NeedleSet` this small tries its needles one by one."""
NEEDLE_MEMO = 4096
"""Values a :class:`NeedleSet` remembers the result for."""

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


def lookup(event: Event, path: str, flat: bool = True) -> Any:
    """Value at a dotted path, :data:`MISSING` when absent (``None`` stays ``None``).

    The nested walk is the fast path. Documents with literal dotted keys (``"a.b"``,
    which :func:`collectors.event.get_field` accepts) also take the slow one; *flat*
    False says the event has no dotted top-level key, so a miss is final."""
    node: Any = event.get(path, MISSING)
    if node is not MISSING:
        return node
    parts = _PATHS.get(path)
    if parts is None:
        parts = _PATHS[path] = tuple(path.split("."))
    node = event
    for part in parts:
        if type(node) is not dict:
            return get_field(event, path, MISSING) if flat else MISSING
        node = node.get(part, MISSING)
        if node is MISSING:
            return get_field(event, path, MISSING) if flat else MISSING
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
NUMERIC_START = frozenset("0123456789+-.")
"""A string starting otherwise is not a number (see :func:`_number`)."""


def _number(value: Any) -> int | float | None:
    """A number, or the number a string spells exactly (no spaces, decimal). Infinite
    and NaN floats are not numbers here (their text is not either)."""
    if type(value) is int:
        return value
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is str and value and value[0] in NUMERIC_START:
        if value.isdigit():
            return int(value)
        if _NUMBER.fullmatch(value):
            f = float(value)
            return int(f) if f.is_integer() and "." not in value and "e" not in value.lower() else f
    return None


def plain_key(text: str) -> bool:
    """Whether a string's only index key is its folded text: not a number, or a
    decimal integer already in canonical form (``4688``, not ``04688``)."""
    if not text or text[0] not in NUMERIC_START:
        return True
    return text.isdigit() and (text[0] != "0" or text == "0")


def canonical_number(n: float) -> str:
    """Index key of a number: ``4625`` and ``4625.0`` give the same key."""
    if isinstance(n, float) and n.is_integer():
        return str(int(n))
    return str(n)


# Each cache computes a field's value on first use (dict.__missing__) and keeps it for
# the other rules: one C-level dict lookup on the hot path.

class _Raw(dict[str, Any]):
    __slots__ = ("event", "flat")
    event: Event
    flat: bool

    def __missing__(self, path: str) -> Any:
        value = self[path] = lookup(self.event, path, self.flat)
        return value


class _Strings(dict[str, tuple[str, ...]]):
    __slots__ = ("view",)
    view: EventView

    def __missing__(self, path: str) -> tuple[str, ...]:
        value = self.view.raw[path]
        if type(value) is str:
            out: tuple[str, ...] = (value,)
        elif value is MISSING or value is None:
            out = ()
        else:
            out = tuple(_text(v) for v in _scalars(value))
        self[path] = out
        return out


class _Folded(dict[str, tuple[str, ...]]):
    __slots__ = ("view",)
    view: EventView

    def __missing__(self, path: str) -> tuple[str, ...]:
        value = self.view.raw[path]
        if type(value) is str:
            out: tuple[str, ...] = (value.lower(),)
        elif value is MISSING or value is None:
            out = ()
        else:
            out = tuple(s.lower() for s in self.view.strings[path])
        self[path] = out
        return out


class _Numbers(dict[str, tuple[float, ...]]):
    __slots__ = ("view",)
    view: EventView

    def __missing__(self, path: str) -> tuple[float, ...]:
        value = self.view.raw[path]
        out: tuple[float, ...] = ()
        if type(value) is str:
            n = _number(value)
            out = () if n is None else (n,)
        elif value is not MISSING and value is not None:
            nums = [_number(v) for v in _scalars(value) if type(v) is not bool]
            out = tuple(n for n in nums if n is not None)
        self[path] = out
        return out


class _Keys(dict[str, tuple[str, ...]]):
    __slots__ = ("view",)
    view: EventView

    def __missing__(self, path: str) -> tuple[str, ...]:
        view = self.view
        out = view.folded[path]
        raw = view.raw[path]
        if type(raw) is str and plain_key(raw):
            self[path] = out  # the folded text is the only key
            return out
        nums = view.numbers[path]
        if nums:
            extra = tuple(k for k in dict.fromkeys(canonical_number(n) for n in nums) if k not in out)
            out = out + extra
        self[path] = out
        return out


class _Ips(dict[str, tuple[Any, ...]]):
    __slots__ = ("view",)
    view: EventView

    def __missing__(self, path: str) -> tuple[Any, ...]:
        out = []
        for s in self.view.strings[path]:
            try:
                out.append(ipaddress.ip_address(s.strip().split("%", 1)[0]))
            except ValueError:
                continue
        value = self[path] = tuple(out)
        return value


GRAM = 3
"""Length of the character n-grams that find substrings (see :class:`NeedleSet`)."""
LONG_NEEDLE = 2 * GRAM - 1
"""Needles this long hold an n-gram at every offset residue (see :class:`NeedleSet`)."""
_CHUNKS = re.compile("." * GRAM, re.DOTALL).findall


class _Grams(dict[str, frozenset[str]]):
    """The folded text cut into consecutive n-grams (positions 0, GRAM, 2·GRAM …)."""

    __slots__ = ("view",)
    view: EventView

    def __missing__(self, path: str) -> frozenset[str]:
        values = self.view.folded[path]
        chunks = _CHUNKS(values[0]) if len(values) == 1 else [g for x in values for g in _CHUNKS(x)]
        out = self[path] = frozenset(chunks)
        return out


class _Chars(dict[str, frozenset[str]]):
    __slots__ = ("view",)
    view: EventView

    def __missing__(self, path: str) -> frozenset[str]:
        values = self.view.folded[path]
        out = self[path] = frozenset(values[0]) if len(values) == 1 else frozenset("".join(values))
        return out


class EventView:
    """An event with per-field caches: ``raw`` (value or :data:`MISSING`),
    ``strings`` (text of each scalar element), ``folded`` (the same, lower-cased),
    ``numbers`` (numeric elements and numeric strings), ``keys`` (index keys:
    folded strings plus canonical numbers), ``ips``, and for substring search
    ``grams`` (consecutive n-grams of the folded text) and ``chars``."""

    __slots__ = ("chars", "event", "folded", "grams", "ips", "keys", "numbers", "raw", "strings")

    def __init__(self, event: Event) -> None:
        self.event = event
        raw = self.raw = _Raw()
        raw.event = event
        try:
            raw.flat = "." in "\x00".join(event)
        except TypeError:  # a key that is not text: take the careful path
            raw.flat = True
        folded = self.folded = _Folded()
        folded.view = self
        keys = self.keys = _Keys()
        keys.view = self

    _LAZY: ClassVar[dict[str, type[dict[str, Any]]]] = {}  # filled below the class

    def __getattr__(self, name: str) -> Any:
        # The caches most events never need are made on first use (unset slots
        # land here).
        factory = EventView._LAZY.get(name)
        if factory is None:
            raise AttributeError(name)
        cache = factory()
        cache.view = self  # type: ignore[attr-defined]
        setattr(self, name, cache)
        return cache

    def prime(self, path: str, value: Any) -> tuple[str, ...]:
        """Folded values of a field whose raw value the caller already holds (the index
        enumerates an object's keys): fills the caches without a path lookup."""
        folded = self.folded.get(path)
        if folded is not None:
            return folded
        self.raw[path] = value
        if type(value) is str:
            out = (value.lower(),)
            self.folded[path] = out
            if plain_key(value):
                self.keys[path] = out
            return out
        return self.folded[path]


EventView._LAZY.update(strings=_Strings, numbers=_Numbers, ips=_Ips, grams=_Grams, chars=_Chars)

# Characters by how common they are in log text: a short needle is filed under its
# least common character, so that few needles are tried on a typical value.
_COMMON = " e.tia\\osrnlcmdp-/:_x0w1u2hg3ybf\"45k6=789v,'j()q[]z&%$@#!*+;?<>|{}^`~"
_RANK = {c: i for i, c in enumerate(_COMMON)}


class NeedleSet:
    """Which of many lower-case substrings occur in a field, without trying each.

    The field's text is cut into consecutive n-grams (``EventView.grams``). A needle
    of at least :data:`LONG_NEEDLE` characters found at position *p* covers whole
    n-grams at its offsets *o* with ``(p + o) % GRAM == 0`` — and then at every such
    offset. So it is filed under one n-gram per offset residue (the one fewest other
    needles share there); a text containing it holds at least one of them. A shorter
    needle is filed under its least common character (``EventView.chars``). Only
    needles reached that way are tested with ``in``.
    """

    __slots__ = ("_by_char", "_by_gram", "_char_keys", "_few", "_gram_keys", "_memo", "always")

    def __init__(self, needles: Iterable[str]) -> None:
        unique = list(dict.fromkeys(needles))
        self.always = "" in unique
        self._memo: dict[tuple[str, ...], frozenset[str]] = {}
        # A handful of needles are tried directly: cheaper than cutting the text.
        self._few: tuple[str, ...] | None = tuple(unique) if len(unique) <= FEW_NEEDLES else None
        counts: dict[str, int] = {}
        for needle in unique:
            for gram in {needle[i:i + GRAM] for i in range(len(needle) - GRAM + 1)}:
                counts[gram] = counts.get(gram, 0) + 1

        def rarity(gram: str) -> tuple[int, int]:
            return counts[gram], sum(_RANK.get(c, -1) for c in gram)

        by_gram: dict[str, list[str]] = {}
        by_char: dict[str, list[str]] = {}
        for needle in unique:
            if len(needle) >= LONG_NEEDLE:
                for residue in range(GRAM):
                    grams = [needle[o:o + GRAM] for o in range(residue, len(needle) - GRAM + 1, GRAM)]
                    entries = by_gram.setdefault(min(grams, key=rarity), [])
                    if needle not in entries:
                        entries.append(needle)
            elif needle:
                by_char.setdefault(min(needle, key=lambda c: _RANK.get(c, -1)), []).append(needle)
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

    def found(self, view: EventView, fname: str) -> frozenset[str]:
        """The needles that occur in the field's folded values (remembered per value:
        command lines, paths and hashes recur)."""
        values = view.folded[fname]
        if not values:
            return frozenset()
        hit = self._memo.get(values)
        if hit is not None:
            return hit
        candidates = self._few if self._few is not None else self.candidates(view, fname)
        if len(values) == 1:
            x = values[0]
            hit = frozenset(n for n in candidates if n in x)
        else:
            hit = frozenset(n for n in candidates if any(n in x for x in values))
        if self.always:
            hit |= {""}
        if len(self._memo) >= NEEDLE_MEMO:
            self._memo.clear()
        self._memo[values] = hit
        return hit

    def any(self, view: EventView, fname: str) -> bool:
        values = view.folded[fname]
        if not values:
            return False
        if self.always:
            return True
        for n in self._few if self._few is not None else self.candidates(view, fname):
            for x in values:
                if n in x:
                    return True
        return False


def index_keys(value: Any) -> tuple[str, ...]:
    """The index keys :class:`EventView` gives this value (used for rule literals)."""
    return EventView({"v": value}).keys["v"]


# --- predicate tree ----------------------------------------------------------------

class Node(ABC):
    """A node of the compiled condition."""

    late = False
    """Tested after its siblings: the log source condition a pipeline added holds for
    nearly every event the index lets through, so it rarely decides anything."""

    def is_late(self) -> bool:
        return self.late

    def order(self) -> tuple[bool, bool, float]:
        """Sort key among and/or operands: log source conditions last, then negated
        filters (they seldom reject an event), cheap tests first."""
        return self.is_late(), isinstance(self, Not), self.weight()

    def weight(self) -> float:
        """Relative evaluation cost, to test cheap operands of and/or first."""
        return 1.0

    @abstractmethod
    def matcher(self) -> Matcher:
        """A closure over the event view: does this node hold?"""

    def expr(self, gen: _Source) -> str:
        """A Python expression over ``v`` (the view), ``F`` (``v.folded``) and ``R``
        (``v.raw``) for :func:`generate`; by default a call of :meth:`matcher`."""
        return f"{gen.const(self.matcher())}(v)"

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

    def expr(self, gen: _Source) -> str:
        simple = not self.cased and self.field is not None and not self.any_value and not self.globs
        if not simple:
            return super().expr(gen)
        kinds = [bool(self.eqs), bool(self.prefixes), bool(self.suffixes), bool(self.subs)]
        if sum(kinds) != 1 or len(self.subs) > NEEDLE_SET_MIN:
            return super().expr(gen)
        path = gen.const(self.field)
        if self.eqs:
            eqs = {s.lower() for s in self.eqs}
            if len(eqs) == 1:
                return f"({gen.const(next(iter(eqs)))} in F[{path}])"
            return f"(not {gen.const(frozenset(eqs))}.isdisjoint(F[{path}]))"
        if self.prefixes:
            return f"_starts(F[{path}], {gen.const(tuple(s.lower() for s in self.prefixes))})"
        if self.suffixes:
            return f"_ends(F[{path}], {gen.const(tuple(s.lower() for s in self.suffixes))})"
        subs = sorted({s.lower() for s in self.subs}, key=len, reverse=True)
        if len(subs) == 1:
            return f"_has(F[{path}], {gen.const(subs[0])})"
        return f"_has_any(F[{path}], {gen.const(tuple(subs))})"

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
            for x in v.folded[fname]:  # noqa: SIM110 (hot path: a loop beats any()+generator)
                if x in eqs:
                    return True
            return False
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

    needles = NeedleSet(subs) if folded and len(subs) > NEEDLE_SET_MIN else None
    loop_subs = () if needles is not None else subs

    def general(v: EventView) -> bool:
        values = v.folded[fname] if folded else v.strings[fname]
        for x in values:
            if x in eqs or (pres and x.startswith(pres)) or (sufs and x.endswith(sufs)):
                return True
            for s in loop_subs:
                if s in x:
                    return True
            for g in globs:
                if g.fullmatch(x):
                    return True
        return needles is not None and needles.any(v, fname)
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

    def expr(self, gen: _Source) -> str:
        op = "is not" if self.exists else "is"
        return f"(R[{gen.const(self.field)}] {op} MISSING)"

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

    def clauses(self) -> list[Clause]:
        # Literal text every match contains (``re`` on the original text implies the
        # lower-cased literal in the folded text): one alternative per pattern.
        literals: set[str] = set()
        for pattern in self.patterns:
            option = regex_literals(pattern)
            if not option:
                return []
            literals |= option
        names = [self.field] if self.field is not None else list(KEYWORD_FIELDS)
        return [frozenset(("contains", name, lit) for name in names for lit in literals)]

    def matcher(self) -> Matcher:
        names = (self.field,) if self.field is not None else KEYWORD_FIELDS
        # A pattern only runs on text holding one of its required literals: cheap
        # substring tests spare most searches (and their backtracking). Patterns that
        # are only literals joined by ``.*`` are not run at all.
        pats = tuple((_ordered_search(p) or p.search, tuple(regex_literals(p) or ())) for p in self.patterns)

        def regex(v: EventView) -> bool:
            for name in names:
                strings = v.strings[name]
                if not strings:
                    continue
                folded = v.folded[name]
                for x, fx in zip(strings, folded, strict=True):
                    for search, needs in pats:
                        if needs and not any(n in fx for n in needs):
                            continue
                        if search(x):
                            return True
            return False
        return regex


_MIN_LITERAL = 1


def _ordered_search(pattern: re.Pattern[str]) -> Callable[[str], bool] | None:
    """For a pattern that is literals joined by ``.*`` (``\\+.*\\+.*\\+``), a search
    without backtracking: each literal found after the previous one, on one line
    (``.`` does not cross newlines without the s flag). None for other patterns."""
    if pattern.flags & re.IGNORECASE:
        return None
    try:
        parsed = _sre_parse.parse(pattern.pattern, pattern.flags)
    except (re.error, RecursionError, OverflowError):
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    literals: list[str] = []
    run: list[str] = []
    for op, av in parsed:
        if op is _sre.LITERAL:
            run.append(chr(av))
        elif (op is _sre.MAX_REPEAT or op is _sre.MIN_REPEAT) and av[0] == 0 and av[1] == _sre.MAXREPEAT \
                and list(av[2]) == [(_sre.ANY, None)] and run:
            literals.append("".join(run))
            run = []
        else:
            return None
    if not run or not literals:
        return None
    literals.append("".join(run))
    parts = tuple(literals)
    dotall = bool(parsed.state.flags & re.DOTALL)

    def search(text: str) -> bool:
        for line in (text,) if dotall else text.split("\n"):
            pos = 0
            for literal in parts:
                found = line.find(literal, pos)
                if found < 0:
                    break
                pos = found + len(literal)
            else:
                return True
        return False
    return search


def regex_literals(pattern: re.Pattern[str]) -> set[str] | None:
    """Lower-case ASCII strings of which every match of *pattern* contains at least
    one (None when no such set is found). Under IGNORECASE, letters that also match
    non-ASCII characters (``s`` ~ ``ſ``, ``i`` ~ ``ı``) end a literal."""
    try:
        parsed = _sre_parse.parse(pattern.pattern, pattern.flags)
    except (re.error, RecursionError, OverflowError):
        return None
    options = _required(parsed, bool(parsed.state.flags & re.IGNORECASE))
    return max(options, key=_option_strength, default=None)


def _option_strength(option: AbstractSet[str]) -> tuple[int, int, int]:
    # Longer literals first, then rarer characters (a lone backquote says more than
    # a lone space), then fewer alternatives.
    shortest = min(option, key=len)
    return len(shortest), -min(_RANK.get(c, -1) for c in shortest), -len(option)


def _required(items: Any, icase: bool) -> list[set[str]]:
    """Necessary alternatives (sets of literals) of a parsed regex sequence."""
    options: list[set[str]] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) >= _MIN_LITERAL:
            options.append({"".join(run).lower()})
        run.clear()

    for op, av in items:
        if op is _sre.LITERAL:
            ch = chr(av)
            if ch.isascii() and not (icase and ch.lower() in "is"):
                run.append(ch)
            else:
                flush()
        elif op is _sre.SUBPATTERN:
            flush()
            _, add_flags, del_flags, sub = av
            sub_icase = (icase or bool(add_flags & re.IGNORECASE)) and not del_flags & re.IGNORECASE
            options += _required(sub, sub_icase)
        elif op is _sre.MAX_REPEAT or op is _sre.MIN_REPEAT or op is _sre.POSSESSIVE_REPEAT:
            flush()
            low, _, sub = av
            if low >= 1:
                options += _required(sub, icase)
        elif op is _sre.ATOMIC_GROUP:
            flush()
            options += _required(av, icase)
        elif op is _sre.BRANCH:
            flush()
            alternatives = [_required(alt, icase) for alt in av[1]]
            if all(alternatives):
                merged: set[str] = set()
                for alt in alternatives:
                    merged |= max(alt, key=_option_strength)
                options.append(merged)
        else:
            flush()
    flush()
    return options


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
            if not ys:
                return False
            for x in v.folded[fname]:
                for y in ys:
                    if test(x, y):
                        return True
            return False
        return fieldref

    def expr(self, gen: _Source) -> str:
        if self.starts or self.ends:
            return super().expr(gen)
        a, b = gen.const(self.field), gen.const(self.other)
        return f"(not frozenset(F[{a}]).isdisjoint(F[{b}]))"


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

    def expr(self, gen: _Source) -> str:
        return "True" if self.value else "False"

    def matcher(self) -> Matcher:
        result = self.value
        return lambda v: result


@dataclass(eq=False)
class _Group(Node):
    """What ``and`` and ``or`` share: operands, and cost and fields summed over them."""

    children: list[Node]

    def is_late(self) -> bool:
        return self.late or all(c.is_late() for c in self.children)

    def weight(self) -> float:
        return sum(c.weight() for c in self.children)

    def fields(self) -> set[str]:
        return set().union(*(c.fields() for c in self.children))



@dataclass(eq=False)
class And(_Group):
    def clauses(self) -> list[Clause]:
        out: list[Clause] = []
        for child in self.children:
            out.extend(child.clauses())
        return out

    def expr(self, gen: _Source) -> str:
        ordered = sorted(self.children, key=lambda c: c.order())
        return "(" + " and ".join(c.expr(gen) for c in ordered) + ")"

    def matcher(self) -> Matcher:
        # Cheap tests first: the result is the same, the misses are found sooner.
        ms = [c.matcher() for c in sorted(self.children, key=lambda c: c.order())]
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
class Or(_Group):
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

    def expr(self, gen: _Source) -> str:
        ordered = sorted(self.children, key=lambda c: c.order())
        return "(" + " or ".join(c.expr(gen) for c in ordered) + ")"

    def matcher(self) -> Matcher:
        ms = [c.matcher() for c in sorted(self.children, key=lambda c: c.order())]
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

    def is_late(self) -> bool:
        return self.late or self.child.is_late()

    def weight(self) -> float:
        return self.child.weight()

    def fields(self) -> set[str]:
        return self.child.fields()

    def expr(self, gen: _Source) -> str:
        return f"(not {self.child.expr(gen)})"

    def matcher(self) -> Matcher:
        m = self.child.matcher()
        return lambda v: not m(v)


@dataclass(eq=False)
class Coalesce(Node):
    """One Sigma field mapped to alternative ECS fields that an event has one of
    (Sysmon's ``Image`` is Security 4688's ``NewProcessName``): the test applies to the
    first field the event has. An ``or`` over the fields would be wrong for tests that
    hold on an absent field (``ParentImage: null``, ``not … endswith``)."""

    options: list[tuple[str, Node]]

    def weight(self) -> float:
        return max(n.weight() for _, n in self.options)

    def fields(self) -> set[str]:
        return set().union(*(n.fields() for _, n in self.options))

    def clauses(self) -> list[Clause]:
        return Or([n for _, n in self.options]).clauses()

    def expr(self, gen: _Source) -> str:
        out = self.options[0][1].expr(gen)  # none present: the first field (absent)
        for fname, node in reversed(self.options):
            out = f"({node.expr(gen)} if R[{gen.const(fname)}] is not MISSING else {out})"
        return out

    def matcher(self) -> Matcher:
        options = [(fname, node.matcher()) for fname, node in self.options]
        fallback = options[0][1]

        def coalesce(v: EventView) -> bool:
            raw = v.raw
            for fname, m in options:
                if raw[fname] is not MISSING:
                    return m(v)
            return fallback(v)
        return coalesce


_KIND_CHANCE = {"prefix": 0.2, "suffix": 0.2, "contains": 0.5}
_PER_CHARACTER = 0.6
_EQ_CHANCE = 0.03
"""Equality: a long value is not a rare one (``Microsoft Corporation``), so its length
says nothing."""


def atom_cost(atom: Atom) -> float:
    """Rough chance that an atom holds for an event: a prefix or suffix is rarer than a
    substring, and every character of it makes it rarer."""
    kind, _, literal = atom
    if kind == "eq":
        return _EQ_CHANCE
    return _KIND_CHANCE[kind] * _PER_CHARACTER ** len(literal)


def clause_cost(clause: Clause) -> float:
    """Rough chance that a clause holds (capped at 1)."""
    return min(1.0, sum(atom_cost(a) for a in clause))


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


LOGSOURCE_ITEM_PREFIX = "logsource-"
"""Pipeline items that add a log source's selecting condition have ids starting with
this (rules/pipelines/*.yml)."""


def _mark_late(node: Node) -> None:
    node.late = True
    if isinstance(node, And | Or):
        for child in node.children:
            _mark_late(child)


def _item_node(item: SigmaDetectionItem) -> Node:
    """One ``field|modifiers: values`` entry (values or-linked, or and-linked by
    ``all``; ``neq`` negates), as pySigma's SigmaDetectionItem.postprocess reads it."""
    if not item.value:
        if item.field is None:
            raise CompileError("a null value needs a field")
        node: Node = NullPred(item.field)
    else:
        leaves = [_value_node(item.field, value) for value in item.value]
        linking = And if item.value_linking is ConditionAND else Or
        node = leaves[0] if len(leaves) == 1 else linking(leaves)
    if item.negated:
        node = Not(node)
    if any(i.startswith(LOGSOURCE_ITEM_PREFIX) for i in item.applied_processing_items):
        _mark_late(node)
    return node


def _mapped_alternatives(detection: SigmaDetection) -> list[str] | None:
    """The fields of copies of one item that a field mapping to several names made
    (pySigma links them with ``or`` and they share the value list), else None."""
    items = detection.detection_items
    if detection.item_linking is not ConditionOR or len(items) < 2:
        return None
    if not all(isinstance(i, SigmaDetectionItem) and i.field is not None for i in items):
        return None
    first = items[0]
    assert isinstance(first, SigmaDetectionItem)
    fields = [i.field for i in items if isinstance(i, SigmaDetectionItem) and i.value is first.value]
    if len(fields) != len(items) or len(set(fields)) != len(fields) or not first.applied_processing_items:
        return None
    return [f for f in fields if f is not None]


def _detection_node(detection: SigmaDetection) -> Node | None:
    """A named detection (map: and, list: or), as pySigma's postprocess reads it."""
    alternatives = _mapped_alternatives(detection)
    if alternatives is not None:
        nodes = [_item_node(i) for i in detection.detection_items if isinstance(i, SigmaDetectionItem)]
        return Coalesce(list(zip(alternatives, nodes, strict=True)))
    children = [n for n in (
        _detection_node(i) if isinstance(i, SigmaDetection) else _item_node(i) for i in detection.detection_items
    ) if n is not None]
    if not children:
        return None
    linking = And if detection.item_linking is ConditionAND else Or
    return children[0] if len(children) == 1 else linking(children)


def condition_node(tree: Any, detections: SigmaDetections) -> Node | None:
    """Predicate tree of one condition parse tree (``parse(postprocess=False)``):
    selection names and ``1 of``/``all of``/``them`` resolved to their detections. As
    in pySigma, a quantifier that names no detection drops out (``… and not 1 of
    filter_*`` without filters is ``…``)."""
    if isinstance(tree, ConditionIdentifier):
        try:
            detection = detections[tree.identifier]
        except KeyError:
            raise CompileError(f"detection {tree.identifier!r} is not defined") from None
        return _detection_node(detection)
    if isinstance(tree, ConditionSelector):
        parts = [condition_node(i, detections) for i in tree.resolve_referenced_detections(detections)]
        kept = [p for p in parts if p is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else (And if tree.cond_class is ConditionAND else Or)(kept)
    if isinstance(tree, ConditionAND | ConditionOR):
        kept = [n for n in (condition_node(a, detections) for a in tree.args if a is not None) if n is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else (And if isinstance(tree, ConditionAND) else Or)(kept)
    if isinstance(tree, ConditionNOT):
        inner = [n for n in (condition_node(a, detections) for a in tree.args if a is not None) if n is not None]
        if len(inner) > 1:
            raise CompileError("'not' takes one operand")
        return Not(inner[0]) if inner else None
    raise CompileError(f"unsupported condition element {type(tree).__name__}")


def rule_node(rule: SigmaRule) -> Node:
    """The whole detection: a rule with several conditions matches when any does."""
    branches: list[Node] = []
    for condition in rule.detection.parsed_condition:
        tree = condition.parse(postprocess=False)
        node = condition_node(tree, rule.detection)
        if node is None:
            raise CompileError(f"condition {condition.condition!r} selects nothing")
        branches.append(node)
    if not branches:
        raise CompileError("the rule has no condition")
    return _simplify(Or(branches))


# --- code generation ---------------------------------------------------------------
# A rule's predicate tree becomes one Python function: and/or/not are Python's own
# short-circuit operators and the commonest tests are inlined, instead of a call per
# node. Rule values never enter the source text: they are bound as constants.

def _starts(values: tuple[str, ...], prefixes: tuple[str, ...]) -> bool:
    for x in values:  # noqa: SIM110 (hot path: a loop beats any()+generator)
        if x.startswith(prefixes):
            return True
    return False


def _ends(values: tuple[str, ...], suffixes: tuple[str, ...]) -> bool:
    for x in values:  # noqa: SIM110 (hot path: a loop beats any()+generator)
        if x.endswith(suffixes):
            return True
    return False


def _has(values: tuple[str, ...], needle: str) -> bool:
    for x in values:  # noqa: SIM110 (hot path: a loop beats any()+generator)
        if needle in x:
            return True
    return False


def _has_any(values: tuple[str, ...], needles: tuple[str, ...]) -> bool:
    for x in values:
        for needle in needles:
            if needle in x:
                return True
    return False


class _Source:
    """Constants of a generated function."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {
            "MISSING": MISSING, "_starts": _starts, "_ends": _ends, "_has": _has, "_has_any": _has_any}

    def const(self, value: Any) -> str:
        name = f"k{len(self.names)}"
        self.names[name] = value
        return name


def generate(node: Node) -> Matcher:
    """One function for the whole tree (the closures when that cannot be compiled,
    e.g. a tree too deep for Python's parser)."""
    gen = _Source()
    try:
        source = f"def match(v):\n    F = v.folded\n    R = v.raw\n    return {node.expr(gen)}\n"
        code = compile(source, "<sigma-rule>", "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return node.matcher()
    namespace = dict(gen.names)
    exec(code, namespace)  # the source is ours; rule values are bound constants
    match: Matcher = namespace["match"]
    return match


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
    return CompiledRule(info=info, match=generate(node), clauses=_dedupe(node.clauses()),
                        fields=frozenset(node.fields()), rule=rule, active=active)


def _dedupe(clauses: Iterable[Clause]) -> list[Clause]:
    seen: list[Clause] = []
    for clause in clauses:
        if clause and clause not in seen:
            seen.append(clause)
    return seen


"""The detection engine: every event against the compiled rules, through an index.

Trying thousands of rules on every event would be far too slow, so the rules are
indexed by what they require (:attr:`CompiledRule.clauses`: sets of simple string tests
of which at least one holds whenever the rule matches):

1. dispatch on fields the rules require to *equal* a value — for Windows the channel,
   then the event id: the ``winlog.channel=Security AND winlog.event_id=4625`` rules
   sit in one bucket, reached with two dict lookups. A rule goes under the most widely
   required of its fields; rules without such a requirement go on to the node's
   ``rest`` branch;
2. at each leaf every rule is filed under its most selective remaining clause, per
   field: equals (dict), starts/ends with (dicts by literal length, or by last path
   component for ``\\name.exe``), contains (a :class:`NeedleSet`). Literals many
   rules share (``\\cmd.exe``) lead to a sub-leaf where those rules are filed again
   under their next clause (their command line). Rules without a usable clause are
   tried on every event reaching the leaf.

An event collects the rules its values lead to, and only those are evaluated, so the
cost per event grows with the rules that can match it, not with the rule set. Field
indexes remember the result per value (logs repeat values). The index only skips
rules that cannot match: results are those of trying every rule (the tests check it).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from collectors.event import Event
from soc.detect.compiler import Atom, Clause, CompiledRule, EventView, NeedleSet, clause_cost, plain_key
from soc.detect.loader import RuleSet
from soc.detect.model import Detection, RuleInfo

MIN_SPLIT = 8
"""Below this many rules a node is not split further."""
MAX_DEPTH = 4
"""Levels of dispatch at most."""
DISPATCH_SHARE = 0.2
"""A field is dispatched on when at least this share of a node's rules require it."""
MEMO_SIZE = 4096
"""Values remembered per field index (then the memory starts over)."""
GENERIC_SHARE = 0.25
"""An atom that this share of a leaf's rules also require says little about an event."""
GENERIC_MIN = 4
"""…and at least this many rules."""
SUB_MIN = 6
"""A literal this many rules are filed under gets a sub-leaf."""
SUB_DEPTH = 2
"""Levels of sub-leaves at most."""
MAX_CLAUSE_CHANCE = 1.0
"""A clause likelier than this to hold (see :func:`clause_cost`) is not worth indexing."""


Target = tuple[tuple[int, ...], tuple["_Leaf", ...]]
"""What an index entry leads to: rules to evaluate, and sub-indexes to consult (the
rules filed under a common literal, filed again under their next best clause)."""
_NOTHING: Target = ((), ())


@dataclass(slots=True)
class _FieldIndex:
    """One field's index in a leaf: literal → :data:`Target`."""

    eq: dict[str, Target] = field(default_factory=dict)
    prefix: dict[int, dict[str, Target]] = field(default_factory=dict)
    """By literal length: one slice and one lookup per length."""
    suffix: dict[int, dict[str, Target]] = field(default_factory=dict)
    tails: dict[str, tuple[tuple[str, Target], ...]] = field(default_factory=dict)
    """Suffixes holding a backslash, by their last path component (``\\cmd.exe``): one
    lookup with the value's own last component instead of one per suffix length."""
    contains: dict[str, Target] = field(default_factory=dict)
    needles: NeedleSet | None = None
    prefix_lengths: tuple[int, ...] = ()
    suffix_lengths: tuple[int, ...] = ()
    memo: dict[tuple[str, ...], Target] = field(default_factory=dict)
    """Results for recent values: logs repeat values (images, parents, hashes, user
    names) all the time, and the result depends on the folded values only."""

    @classmethod
    def build(cls, targets: dict[tuple[str, str], Target]) -> _FieldIndex:
        index = cls()
        tails: dict[str, list[tuple[str, Target]]] = {}
        for (kind, literal), target in targets.items():
            if kind == "eq":
                index.eq[literal] = target
            elif kind == "prefix":
                index.prefix.setdefault(len(literal), {})[literal] = target
            elif kind == "suffix":
                cut = literal.rfind("\\")
                if cut >= 0:
                    tails.setdefault(literal[cut:], []).append((literal, target))
                else:
                    index.suffix.setdefault(len(literal), {})[literal] = target
            else:
                index.contains[literal] = target
        index.tails = {k: tuple(v) for k, v in tails.items()}
        index.prefix_lengths = tuple(sorted(index.prefix))
        index.suffix_lengths = tuple(sorted(index.suffix))
        if index.contains:
            index.needles = NeedleSet(index.contains)
        return index

    def targets(self) -> list[Target]:
        return [*self.eq.values(), *self.contains.values(),
                *(t for m in (*self.prefix.values(), *self.suffix.values()) for t in m.values()),
                *(t for entries in self.tails.values() for _, t in entries)]

    def collect(self, fname: str, view: EventView, out: set[int]) -> None:
        values = view.folded[fname]
        if values:
            ids, leaves = self.memo.get(values) or self.lookup(fname, view, values)
            out.update(ids)
            for leaf in leaves:
                leaf.collect(view, out)

    def lookup(self, fname: str, view: EventView, values: tuple[str, ...]) -> Target:
        """What these values lead to (and remember it for them)."""
        hits: list[Target] = []
        if self.eq:
            eq = self.eq
            for key in view.keys[fname]:
                hit = eq.get(key)
                if hit is not None:
                    hits.append(hit)
        for x in values:
            n = len(x)
            for length in self.prefix_lengths:
                if length > n:
                    break
                hit = self.prefix[length].get(x[:length])
                if hit is not None:
                    hits.append(hit)
            for length in self.suffix_lengths:
                if length > n:
                    break
                hit = self.suffix[length].get(x[n - length:])
                if hit is not None:
                    hits.append(hit)
            if self.tails:
                cut = x.rfind("\\")
                if cut >= 0:
                    for literal, target in self.tails.get(x[cut:], ()):
                        if x.endswith(literal):
                            hits.append(target)
        if self.needles is not None:
            contains = self.contains
            hits.extend(contains[needle] for needle in self.needles.found(view, fname))
        if not hits:
            result = _NOTHING
        elif len(hits) == 1:
            result = hits[0]
        else:
            ids: set[int] = set()
            leaves: dict[int, _Leaf] = {}
            for rules, subs in hits:
                ids.update(rules)
                for sub in subs:
                    leaves[id(sub)] = sub
            result = (tuple(ids), tuple(leaves.values()))
        if len(self.memo) >= MEMO_SIZE:
            self.memo.clear()
        self.memo[values] = result
        return result


@dataclass(slots=True)
class _Leaf:
    """Rules filed under their best clause, per field; ``residual`` rules are tried on
    every event that reaches the leaf."""

    residual: tuple[int, ...]
    fields: tuple[tuple[str, _FieldIndex], ...]
    groups: tuple[tuple[str, frozenset[str], dict[str, tuple[str, _FieldIndex]]], ...] = ()
    """The fields by parent object: only the names an event's object has are probed
    (a Windows event has a few dozen of the hundreds of EventData names rules use)."""

    def __post_init__(self) -> None:
        grouped: dict[str, dict[str, tuple[str, _FieldIndex]]] = {}
        for fname, index in self.fields:
            parent, _, name = fname.rpartition(".")
            grouped.setdefault(parent, {})[name] = (fname, index)
        self.groups = tuple((parent, frozenset(table), table) for parent, table in grouped.items())

    def collect(self, view: EventView, out: set[int]) -> None:
        out.update(self.residual)
        if view.raw.flat:  # literal dotted keys: no object to enumerate, probe every field
            for fname, index in self.fields:
                index.collect(fname, view, out)
            return
        # The engine's hot loop: a remembered value costs a few dict lookups.
        prime = view.prime
        folded = view.folded
        raw = view.raw
        for parent, names, table in self.groups:
            obj = raw[parent] if parent else view.event
            if type(obj) is not dict:
                continue
            for name in obj.keys() & names:
                fname, index = table[name]
                values = folded.get(fname)
                if values is None:
                    value = obj[name]
                    if type(value) is str:  # EventView.prime, inlined for the common case
                        raw[fname] = value
                        values = folded[fname] = (value.lower(),)
                        if plain_key(value):
                            view.keys[fname] = values
                    else:
                        values = prime(fname, value)
                if values:
                    ids, leaves = index.memo.get(values) or index.lookup(fname, view, values)
                    out.update(ids)
                    for leaf in leaves:
                        leaf.collect(view, out)


@dataclass(slots=True)
class _Dispatch:
    """Rules filed by a value some field must equal: field → value → sub-index. Every
    rule sits under one field (or in ``rest``); an event follows the values it has."""

    fields: tuple[tuple[str, dict[str, _Dispatch | _Leaf]], ...]
    rest: _Dispatch | _Leaf
    groups: tuple[tuple[str, tuple[tuple[str, str, dict[str, _Dispatch | _Leaf]], ...]], ...] = ()
    """The fields by parent object, so that absent ones cost a key test."""

    def __post_init__(self) -> None:
        grouped: dict[str, list[tuple[str, str, dict[str, _Dispatch | _Leaf]]]] = {}
        for fname, buckets in self.fields:
            parent, _, name = fname.rpartition(".")
            grouped.setdefault(parent, []).append((name, fname, buckets))
        self.groups = tuple((parent, tuple(entries)) for parent, entries in grouped.items())

    def collect(self, view: EventView, out: set[int]) -> None:
        keys = view.keys
        if view.raw.flat:
            for fname, buckets in self.fields:
                for key in keys[fname]:
                    child = buckets.get(key)
                    if child is not None:
                        child.collect(view, out)
        else:
            for parent, entries in self.groups:
                obj = view.raw[parent] if parent else view.event
                if type(obj) is not dict:
                    continue
                for name, fname, buckets in entries:
                    if name in obj:
                        view.prime(fname, obj[name])
                        for key in keys[fname]:
                            child = buckets.get(key)
                            if child is not None:
                                child.collect(view, out)
        self.rest.collect(view, out)


def _eq_clause_on(clauses: list[Clause], fname: str) -> Clause | None:
    """The rule's smallest clause made only of equalities on one field."""
    best: Clause | None = None
    for clause in clauses:
        if all(kind == "eq" and f == fname for kind, f, _ in clause) and (best is None or len(clause) < len(best)):
            best = clause
    return best


def _build(rules: list[int], clauses: list[list[Clause]], used: frozenset[str], depth: int) -> _Dispatch | _Leaf:
    """Dispatch on required equalities while that narrows the rules down, then a leaf."""
    if len(rules) < MIN_SPLIT or depth >= MAX_DEPTH:
        return _leaf(rules, clauses, used)
    # Fields some rules require to equal a value, most widely required first: each rule
    # goes under the first of its fields, so few fields are looked up per event.
    coverage: dict[str, int] = defaultdict(int)
    for r in rules:
        for fname in _eq_fields(clauses[r]) - used:
            coverage[fname] += 1
    # A field only a few rules require is better probed in a leaf than dispatched on:
    # dispatching splits the other rules' leaf into several that all probe again.
    enough = max(2, int(DISPATCH_SHARE * len(rules)))
    order = sorted((f for f, n in coverage.items() if n >= enough), key=lambda f: (-coverage[f], f))
    if not order:
        return _leaf(rules, clauses, used)
    grouped: dict[str, dict[str, list[int]]] = {}
    rest: list[int] = []
    for r in rules:
        mine = _eq_fields(clauses[r])
        chosen = next((f for f in order if f in mine), None)
        clause = _eq_clause_on(clauses[r], chosen) if chosen is not None else None
        if chosen is None or clause is None:
            rest.append(r)
            continue
        buckets = grouped.setdefault(chosen, defaultdict(list))
        for _, _, key in clause:
            buckets[key].append(r)
    if len(rest) == len(rules):
        return _leaf(rules, clauses, used)
    fields = tuple(
        (fname, {key: _build(members, clauses, used | {fname}, depth + 1) for key, members in buckets.items()})
        for fname, buckets in grouped.items())
    return _Dispatch(fields, _build(rest, clauses, used, depth + 1))


def _eq_fields(clauses: list[Clause]) -> set[str]:
    """Fields with a clause made only of equalities on that one field."""
    out: set[str] = set()
    for clause in clauses:
        fields = {f for _, f, _ in clause}
        if len(fields) == 1 and all(kind == "eq" for kind, _, _ in clause):
            out |= fields
    return out


def _leaf(rules: list[int], clauses: list[list[Clause]], used: frozenset[str],
          excluded: dict[int, frozenset[Clause]] | None = None, depth: int = 0) -> _Leaf:
    """File each rule under its most selective clause (not on a field dispatched on
    above, nor one it is already filed under). A literal many rules share leads to a
    sub-leaf where they are filed again under their next clause: ``\\cmd.exe`` rules
    are told apart by their command line instead of all being tried."""
    excluded = excluded or {}
    share: dict[Atom, int] = defaultdict(int)
    for r in rules:
        for atom in {a for clause in clauses[r] for a in clause}:
            share[atom] += 1
    generic = max(GENERIC_MIN, int(GENERIC_SHARE * len(rules)))

    def cost(clause: Clause) -> float:
        if any(share[atom] >= generic for atom in clause):
            return 1.0
        return clause_cost(clause)

    def rank(clause: Clause) -> tuple[float, int]:
        # Between equally likely clauses, the one fewer other rules require (a rule's
        # own value rather than its log source's).
        return cost(clause), sum(share[atom] for atom in clause)

    residual: list[int] = []
    chosen: dict[int, Clause] = {}
    for r in rules:
        skip = excluded.get(r, frozenset())
        options = [c for c in clauses[r] if c not in skip and any(f not in used for _, f, _ in c)]
        best = min(options, key=rank, default=None)
        if best is None or cost(best) > MAX_CLAUSE_CHANCE:
            residual.append(r)
        else:
            chosen[r] = best
    filed: dict[str, dict[tuple[str, str], list[int]]] = {}
    for r, clause in chosen.items():
        for kind, fname, literal in clause:
            filed.setdefault(fname, {}).setdefault((kind, literal), []).append(r)
    fields: list[tuple[str, _FieldIndex]] = []
    for fname, table in sorted(filed.items()):
        targets: dict[tuple[str, str], Target] = {}
        for key, members in table.items():
            if depth < SUB_DEPTH and len(members) >= SUB_MIN:
                sub = _leaf(members, clauses, used,
                            {r: excluded.get(r, frozenset()) | {chosen[r]} for r in members}, depth + 1)
                if len(sub.residual) < len(members):
                    targets[key] = ((), (sub,))
                    continue
            targets[key] = (tuple(members), ())
        fields.append((fname, _FieldIndex.build(targets)))
    return _Leaf(tuple(residual), tuple(fields))


class Engine:
    """Matches events against the active detection rules of a :class:`RuleSet`."""

    def __init__(self, ruleset: RuleSet, *, profile: bool = False) -> None:
        self.rules: list[CompiledRule] = ruleset.active
        self._matchers = [r.match for r in self.rules]
        self._infos = [r.info for r in self.rules]
        clauses = [r.clauses for r in self.rules]
        self._root: _Dispatch | _Leaf = _build(list(range(len(self.rules))), clauses, frozenset(), 0)
        self.profile = profile
        self._seconds = [0.0] * len(self.rules)
        self._evaluations = [0] * len(self.rules)
        self._matches = [0] * len(self.rules)

    def candidates(self, event: Event) -> list[int]:
        """Positions (in :attr:`rules`) of the rules the index lets through."""
        found: set[int] = set()
        self._root.collect(EventView(event), found)
        return sorted(found)

    def match(self, event: Event) -> list[RuleInfo]:
        """The rules that fire on this event, in rule order."""
        view = EventView(event)
        found: set[int] = set()
        self._root.collect(view, found)
        if not found:
            return []
        if self.profile:
            return self._match_profiled(view, found)
        matchers, infos = self._matchers, self._infos
        return [infos[i] for i in sorted(found) if matchers[i](view)]

    def _match_profiled(self, view: EventView, found: set[int]) -> list[RuleInfo]:
        out: list[RuleInfo] = []
        clock = time.perf_counter
        for i in sorted(found):
            start = clock()
            hit = self._matchers[i](view)
            self._seconds[i] += clock() - start
            self._evaluations[i] += 1
            if hit:
                self._matches[i] += 1
                out.append(self._infos[i])
        return out

    def detect(self, events: Iterable[Event]) -> Iterator[Detection]:
        """One :class:`Detection` per matching rule and event."""
        for event in events:
            rules = self.match(event)
            if not rules:
                continue
            ts = event.get("@timestamp") or datetime.now(UTC).isoformat()
            event_id = (event.get("event") or {}).get("id")
            ids = [str(event_id)] if event_id else []
            for info in rules:
                yield Detection(rule=info, events=[event], event_ids=list(ids), first_seen=ts, last_seen=ts)

    def profile_report(self) -> list[tuple[RuleInfo, float, int, int]]:
        """(rule, seconds, evaluations, matches) per evaluated rule, costliest first
        (collected when the engine was built with ``profile=True``)."""
        rows = [(self._infos[i], self._seconds[i], self._evaluations[i], self._matches[i])
                for i in range(len(self.rules)) if self._evaluations[i]]
        rows.sort(key=lambda row: row[1], reverse=True)
        return rows

    def index_stats(self) -> dict[str, int]:
        """Shape of the index (for tests and tuning)."""
        stats = {"rules": len(self.rules), "dispatches": 0, "leaves": 0, "residual": 0}

        def walk(node: _Dispatch | _Leaf) -> None:
            if isinstance(node, _Dispatch):
                stats["dispatches"] += 1
                for _, buckets in node.fields:
                    for child in buckets.values():
                        walk(child)
                walk(node.rest)
                return
            stats["leaves"] += 1
            stats["residual"] += len(node.residual)
            for _, index in node.fields:
                for _, subs in index.targets():
                    for sub in subs:
                        walk(sub)
        walk(self._root)
        return stats

"""The detection engine: every event against the compiled rules, through an index.

Trying thousands of rules on every event would be far too slow, so the rules are
indexed by what they require (:attr:`CompiledRule.clauses`: sets of simple string tests
of which at least one holds whenever the rule matches):

1. a decision tree over fields the rules require to *equal* a value — for Windows the
   channel, then the event id: ``winlog.channel=Security AND winlog.event_id=4625``
   rules sit in one bucket, reached with two dict lookups. At each node the field that
   splits the rules into the smallest buckets is chosen; rules without such a
   requirement go on to the node's "rest" branch;
2. at each leaf, every rule is filed under its most selective remaining clause: field
   equals (dict), starts/ends with (dicts by literal length) or contains a literal.
   Rules without a usable clause are tried on every event reaching the leaf.

An event collects the rules of the buckets its values lead to, and only those are
evaluated, so the cost per event grows with the rules that can match it. The index
only skips rules that cannot match: results are those of trying every rule.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from collectors.event import Event
from soc.detect.compiler import Atom, Clause, CompiledRule, EventView, NeedleSet, atom_cost
from soc.detect.loader import RuleSet
from soc.detect.model import Detection, RuleInfo

MIN_SPLIT = 8
"""Below this many rules a node is not split further."""
MAX_DEPTH = 4
GENERIC_SHARE = 0.25
"""An atom that this share of a leaf's rules also require says little about an event."""
MAX_CLAUSE_COST = 10_000.0
"""Clauses costlier than this (long lists of short substrings) are not worth indexing."""


@dataclass(slots=True)
class _FieldIndex:
    eq: dict[str, list[int]] = field(default_factory=dict)
    prefix: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    suffix: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    contains: dict[str, list[int]] = field(default_factory=dict)
    prefix_lengths: tuple[int, ...] = ()
    suffix_lengths: tuple[int, ...] = ()
    needles: NeedleSet | None = None

    def add(self, kind: str, literal: str, rule: int) -> None:
        if kind == "eq":
            self.eq.setdefault(literal, []).append(rule)
        elif kind == "prefix":
            self.prefix.setdefault(len(literal), {}).setdefault(literal, []).append(rule)
        elif kind == "suffix":
            self.suffix.setdefault(len(literal), {}).setdefault(literal, []).append(rule)
        else:
            self.contains.setdefault(literal, []).append(rule)

    def freeze(self) -> None:
        self.prefix_lengths = tuple(sorted(self.prefix))
        self.suffix_lengths = tuple(sorted(self.suffix))
        self.needles = NeedleSet(self.contains) if self.contains else None

    def collect(self, fname: str, view: EventView, out: set[int]) -> None:
        values = view.folded[fname]
        if not values:
            return
        if self.eq:
            eq = self.eq
            for key in view.keys[fname]:
                hit = eq.get(key)
                if hit is not None:
                    out.update(hit)
        for x in values:
            n = len(x)
            for length in self.prefix_lengths:
                if length > n:
                    break
                hit = self.prefix[length].get(x[:length])
                if hit is not None:
                    out.update(hit)
            for length in self.suffix_lengths:
                if length > n:
                    break
                hit = self.suffix[length].get(x[n - length:])
                if hit is not None:
                    out.update(hit)
        if self.needles is not None:
            contains = self.contains
            for needle in self.needles.found(view, fname):
                out.update(contains[needle])


@dataclass(slots=True)
class _Leaf:
    residual: tuple[int, ...]
    fields: tuple[tuple[str, _FieldIndex], ...]

    def collect(self, view: EventView, out: set[int]) -> None:
        out.update(self.residual)
        for fname, index in self.fields:
            index.collect(fname, view, out)


@dataclass(slots=True)
class _Split:
    field: str
    buckets: dict[str, _Split | _Leaf]
    rest: _Split | _Leaf

    def collect(self, view: EventView, out: set[int]) -> None:
        node: _Split | _Leaf = self
        while isinstance(node, _Split):
            buckets = node.buckets
            for key in view.keys[node.field]:
                child = buckets.get(key)
                if child is not None:
                    child.collect(view, out)
            node = node.rest
        node.collect(view, out)


def _eq_clause_on(clauses: list[Clause], fname: str) -> Clause | None:
    """The rule's smallest clause made only of equalities on one field."""
    best: Clause | None = None
    for clause in clauses:
        if all(kind == "eq" and f == fname for kind, f, _ in clause) and (best is None or len(clause) < len(best)):
            best = clause
    return best


def _build(rules: list[int], clauses: list[list[Clause]], used: frozenset[str], depth: int) -> _Split | _Leaf:
    if len(rules) >= MIN_SPLIT and depth < MAX_DEPTH:
        split = _best_split(rules, clauses, used)
        if split is not None:
            fname, buckets, rest = split
            return _Split(
                fname,
                {key: _build(members, clauses, used | {fname}, depth + 1) for key, members in buckets.items()},
                _build(rest, clauses, used, depth + 1),
            )
    return _leaf(rules, clauses, used)


def _best_split(rules: list[int], clauses: list[list[Clause]], used: frozenset[str]
                ) -> tuple[str, dict[str, list[int]], list[int]] | None:
    candidates: set[str] = set()
    for r in rules:
        for clause in clauses[r]:
            fields = {f for kind, f, _ in clause if kind == "eq"}
            if len(fields) == 1 and len(fields) == len({f for _, f, _ in clause}):
                candidates |= fields - used
    best: tuple[float, str, dict[str, list[int]], list[int]] | None = None
    for fname in sorted(candidates):
        buckets: dict[str, list[int]] = defaultdict(list)
        rest: list[int] = []
        for r in rules:
            clause = _eq_clause_on(clauses[r], fname)
            if clause is None:
                rest.append(r)
                continue
            for _, _, key in clause:
                buckets[key].append(r)
        covered = len(rules) - len(rest)
        if covered < 2:
            continue
        # Expected rules reached by an event: the rest always, plus one bucket, drawn
        # as often as rules sit in it.
        cost = len(rest) + sum(len(b) ** 2 for b in buckets.values()) / covered
        if best is None or cost < best[0]:
            best = (cost, fname, dict(buckets), rest)
    if best is None or best[0] > 0.8 * len(rules):
        return None
    return best[1], best[2], best[3]


def _leaf(rules: list[int], clauses: list[list[Clause]], used: frozenset[str]) -> _Leaf:
    share: dict[Atom, int] = defaultdict(int)
    for r in rules:
        for atom in {a for clause in clauses[r] for a in clause}:
            share[atom] += 1
    generic = max(2, int(GENERIC_SHARE * len(rules)))

    def cost(clause: Clause) -> float:
        total = 0.0
        for atom in clause:
            total += atom_cost(atom) + (100.0 if share[atom] >= generic else 0.0)
        return total

    residual: list[int] = []
    indexes: dict[str, _FieldIndex] = {}
    for r in rules:
        options = [c for c in clauses[r] if any(f not in used for _, f, _ in c)]
        best = min(options, key=cost, default=None)
        if best is None or cost(best) > MAX_CLAUSE_COST:
            residual.append(r)
            continue
        for kind, fname, literal in best:
            indexes.setdefault(fname, _FieldIndex()).add(kind, literal, r)
    for index in indexes.values():
        index.freeze()
    return _Leaf(tuple(residual), tuple(sorted(indexes.items())))


class Engine:
    """Matches events against the active detection rules of a :class:`RuleSet`."""

    def __init__(self, ruleset: RuleSet, *, profile: bool = False) -> None:
        self.rules: list[CompiledRule] = ruleset.active
        self._matchers = [r.match for r in self.rules]
        self._infos = [r.info for r in self.rules]
        clauses = [r.clauses for r in self.rules]
        self._root = _build(list(range(len(self.rules))), clauses, frozenset(), 0)
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
        stats = {"rules": len(self.rules), "splits": 0, "leaves": 0, "residual": 0, "indexed": 0}

        def walk(node: _Split | _Leaf) -> None:
            if isinstance(node, _Split):
                stats["splits"] += 1
                for child in node.buckets.values():
                    walk(child)
                walk(node.rest)
            else:
                stats["leaves"] += 1
                stats["residual"] += len(node.residual)
                stats["indexed"] += sum(len(v) for _, fi in node.fields for v in fi.eq.values())
                stats["indexed"] += sum(len(v) for _, fi in node.fields for m in (*fi.prefix.values(),
                                        *fi.suffix.values()) for v in m.values())
                stats["indexed"] += sum(len(v) for _, fi in node.fields for v in fi.contains.values())
        walk(self._root)
        return stats

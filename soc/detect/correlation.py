"""Sigma correlation rules over the detection stream, in event time.

The engine is fed every (base rule, event) match of the single-event engine through
:meth:`CorrelationEngine.observe` and answers with the correlation :class:`Detection`
objects that match completed. Every correlation type of the Sigma specification is
supported — ``event_count``, ``value_count``, ``temporal``, ``temporal_ordered`` —
plus pySigma's value aggregations ``value_sum``, ``value_avg``, ``value_percentile``
and ``value_median``.

Time
    Windows are in event time (``@timestamp``). The watermark is the newest event
    time seen minus ``lateness``: an event older than the watermark is counted in
    ``stats["late_events"]`` and ignored; anything newer, even out of order, is
    counted. Only events of rules some correlation references move the watermark.
    An event without a valid ``@timestamp`` is taken as arriving "now" (the newest
    time seen, or the wall clock before any event). With ``lateness`` above a
    ``timespan``, an event older than its group's sliding window is late as well.

Groups
    ``group-by`` values are read from each event, through the rule's ``aliases`` for
    the rule that matched it (an alias names one logical field that is a different
    ECS field per referenced rule). An event missing a group-by field is grouped
    under ``None`` — its own group, as SQL's GROUP BY treats NULL — rather than
    dropped, so e.g. failures without a parsed ``source.ip`` are still counted
    together.

Conditions
    ``gt``/``gte``/``lt``/``lte``/``eq``/``neq``; the specification's ranges
    (``gt: 100`` with ``lte: 200``) are all required to hold. pySigma 1.5.1 accepts a
    single operator only, so the loader passes raw documents through
    :func:`split_range_condition`, which keeps the full range in a custom attribute
    this engine reads.

    - Conditions made only of ``gt``/``gte``/``eq`` (and temporal expressions without
      ``not``) use a sliding window of ``timespan`` per group, anchored at the
      group's newest event: they fire as soon as the condition holds — on the
      event that completes it — and the group's state is then reset, so the next
      alert needs a fresh set of events (the alert store deduplicates repeats).
    - Conditions with an upper bound or ``neq`` (and temporal expressions with
      ``not``) can only be judged once the window is complete: a window opens at a
      group's first event, lasts ``timespan``, and is evaluated when it closes —
      when the watermark passes its end (:meth:`~CorrelationEngine.advance`), when
      an event of the same group beyond its end arrives, or at
      :meth:`~CorrelationEngine.flush`. Only groups that had an event can fire: the
      absence of any event of a never-seen group is not detectable here.

Aggregates
    ``event_count`` counts matching events (or firings of a referenced correlation;
    an event matched by two of its rules counts once, as in ``r1 or r2 | count``);
    ``value_count`` counts distinct values of ``condition.field``; the value
    aggregations take the numeric values of that field (non-numeric and missing
    values are ignored; percentile interpolates linearly, median is percentile 50);
    ``temporal`` counts the distinct referenced rules seen in the window (default
    condition: all of them) or evaluates the extended boolean condition over rule
    names; ``temporal_ordered`` takes the longest chain of referenced rules matched
    in their listed order (ties in time count as ordered). In an ordered extended
    condition the positive names must form such a chain and ``not x`` means ``x``
    was not seen in the window at all.

Chaining
    A correlation may reference another correlation by ``name`` or id: each firing
    of the inner one feeds the outer one as an occurrence at the inner detection's
    ``last_seen``. Outer group-by fields are read from the inner detection's group
    first, then from its newest contributing event. Reference cycles are ignored
    with a warning.

``generate``
    Rules (base or correlation) referenced only by correlations with
    ``generate: false`` (Sigma's default) do not alert on their own:
    :meth:`~CorrelationEngine.base_rules_silenced` lists the ids for the alert layer,
    and silenced inner correlations' detections are not returned (they still feed
    the outer one).

Bounds
    At most ``max_keys`` open group windows over all correlations; the least
    recently updated is evicted first (``stats["evictions"]``), without firing. A
    window holds at most ``max(10_000, 2 × count threshold)`` values; under a flood beyond
    that the oldest drop out of sliding windows (the window shortens) and tumbling
    windows stop sampling distinct values, percentiles and chains. Detections list at
    most ``max_events_per_alert`` contributing events and ids (the newest), while
    ``event_count`` carries the true number.

Wall clock
    :meth:`~CorrelationEngine.advance` with ``now`` (epoch seconds, from the live
    pipeline's ticker) also closes windows whose end is older than ``now - lateness``
    when their group got no event since the previous such tick, so ``lt`` windows
    close in a quiet live stream while a backlog replayed with old timestamps is not
    cut into pieces by the clock.

Cost: O(1) amortised per observed event for the counting and value types (a dict
lookup, a deque append and pops, a heap push per new window); percentiles add an
sorted insert (bisect); ``temporal_ordered`` evaluates a chain search over at most
2^(number of rules) subsets only when enough distinct rules are present.
"""

from __future__ import annotations

import heapq
import logging
import math
import operator
import time
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime
from itertools import count
from typing import Any

from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionItem,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaCorrelationType,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)

from collectors.event import Event, get_field, iso_from_epoch, parse_iso
from soc.detect.model import Detection, RuleInfo

log = logging.getLogger("soc.detect.correlation")

RANGE_ATTRIBUTE = "x-soc-condition"
"""Custom rule attribute holding the full ``{operator: threshold}`` condition mapping
(see :func:`split_range_condition`)."""

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt, "gte": operator.ge, "lt": operator.lt,
    "lte": operator.le, "eq": operator.eq, "neq": operator.ne,
}
_IMMEDIATE_OPS = frozenset({"gt", "gte", "eq"})
_MIN_WINDOW_CAP = 10_000
_T = SigmaCorrelationType
_VALUE_TYPES = frozenset({_T.VALUE_SUM, _T.VALUE_AVG, _T.VALUE_PERCENTILE, _T.VALUE_MEDIAN})
_TEMPORAL_TYPES = frozenset({_T.TEMPORAL, _T.TEMPORAL_ORDERED})


def split_range_condition(doc: dict[str, Any]) -> dict[str, Any]:
    """A raw rule document pySigma 1.5.1 accepts even when its correlation condition
    is a range (``{gt: 100, lte: 200}``): pySigma keeps the first operator, and the
    whole mapping goes to the :data:`RANGE_ATTRIBUTE` custom attribute that the
    engine enforces. Other documents are returned unchanged."""
    corr = doc.get("correlation")
    if not isinstance(corr, dict) or not isinstance(corr.get("condition"), dict):
        return doc
    cond: dict[str, Any] = corr["condition"]
    ops = {k: v for k, v in cond.items() if k in _OPERATORS}
    if len(ops) <= 1:
        return doc
    first = next(iter(ops))
    single = {k: v for k, v in cond.items() if k not in _OPERATORS or k == first}
    return {**doc, "correlation": {**corr, "condition": single}, RANGE_ATTRIBUTE: ops}


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _hashable(value: Any) -> Hashable:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, Hashable):
        return value
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            return None
    else:
        return None
    return out if math.isfinite(out) else None


def _percentile(values: Sequence[float], p: float) -> float:
    pos = (len(values) - 1) * p / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def _chains(times: Sequence[Sequence[float]]) -> dict[int, float]:
    """Every set of slots (bit mask) whose rules matched in slot order, with the
    earliest time such a chain can end. Slots are added in increasing order, so a
    mask only ever grows by a higher slot than all of its members."""
    best: dict[int, float] = {0: -math.inf}
    for slot, seq in enumerate(times):
        if not seq:
            continue
        bit = 1 << slot
        for mask, end in list(best.items()):
            i = bisect_left(seq, end)
            if i < len(seq) and seq[i] < best.get(mask | bit, math.inf):
                best[mask | bit] = seq[i]
    return best


def _ref_names(ref: SigmaRuleReference) -> set[str]:
    """Every string a referenced rule may be known by: the reference as written, the
    resolved rule's id and name."""
    names = {ref.reference}
    target = getattr(ref, "rule", None)  # unresolved references have no .rule at all
    if target is not None:
        if target.id:
            names.add(str(target.id))
        if target.name:
            names.add(target.name)
    return names


_Expr = Callable[[int, int], bool]


def _compile(item: CorrelationConditionItem | SigmaRuleReference, slot_of: dict[str, int]) -> tuple[_Expr, bool]:
    """Closure ``(chain_mask, present_mask) -> bool`` for an extended condition, and
    whether it uses ``not``. Positive names test the chain; ``not`` tests presence."""
    if isinstance(item, SigmaRuleReference):
        slot = slot_of.get(item.reference)
        bit = 0 if slot is None else 1 << slot
        return (lambda chain, present: bool(chain & bit)), False
    parts = [_compile(arg, slot_of) for arg in item.args]
    fns = [fn for fn, _ in parts]
    negated = any(neg for _, neg in parts)
    if isinstance(item, CorrelationConditionNOT):
        inner = fns[0]
        return (lambda chain, present: not inner(present, present)), True
    if isinstance(item, CorrelationConditionAND):
        return (lambda chain, present: all(fn(chain, present) for fn in fns)), negated
    if isinstance(item, CorrelationConditionOR):
        return (lambda chain, present: any(fn(chain, present) for fn in fns)), negated
    raise ValueError(f"unsupported correlation condition item {type(item).__name__}")


_Field = tuple[str, tuple[str, ...]]
"""A dotted ECS name and its parts, split once."""


def _read(source: Event, group: dict[str, Any] | None, field: _Field) -> Any:
    """A field of an occurrence: an inner correlation's group value first, then the
    event (nested walk first, as that is how events are stored; get_field also
    finds literally dotted keys)."""
    path, parts = field
    if group is not None and path in group:
        return group[path]
    node: Any = source
    for part in parts:
        if type(node) is dict and part in node:
            node = node[part]
        else:
            return get_field(source, path)
    return node


class _Slot:
    """One referenced rule of a correlation: which fields to read from its events."""

    __slots__ = ("group_fields", "index", "names", "value_fields")

    def __init__(self, index: int, names: set[str], group_fields: tuple[str, ...],
                 value_fields: tuple[str, ...]) -> None:
        self.index = index
        self.names = names
        self.group_fields: tuple[_Field, ...] = tuple((f, tuple(f.split("."))) for f in group_fields)
        self.value_fields: tuple[_Field, ...] = tuple((f, tuple(f.split("."))) for f in value_fields)


class _Node:
    """A compiled correlation rule."""

    def __init__(self, index: int, rule: SigmaCorrelationRule, info: RuleInfo) -> None:
        self.index = index
        self.rule = rule
        self.info = info
        self.type: SigmaCorrelationType = rule.type
        self.span = float(rule.timespan.seconds)
        self.group_names: tuple[str, ...] = tuple(rule.group_by or ())
        self.refs: list[SigmaRuleReference] = list(rule.referenced_rules or rule.rules or [])
        cond = rule.condition
        if not self.refs and isinstance(cond, SigmaExtendedCorrelationCondition):
            self.refs = [SigmaRuleReference(name) for name in cond.get_referenced_rules()]
        self.parents: list[tuple[_Node, int]] = []
        self.silenced = False
        self.ordered = self.type is _T.TEMPORAL_ORDERED
        self.temporal = self.type in _TEMPORAL_TYPES

        # Bounds: pySigma's single operator, or the full range kept aside by the loader.
        self.bounds: list[tuple[str, Callable[[float, float], bool], float]] = []
        self.expr: _Expr | None = None
        negated = False
        fieldref: str | list[str] | None = None
        self.percentile = 50.0
        if isinstance(cond, SigmaCorrelationCondition):
            ops = rule.custom_attributes.get(RANGE_ATTRIBUTE) or {cond.op.name.lower(): cond.count}
            for op, threshold in ops.items():
                if op not in _OPERATORS:
                    raise ValueError(f"{info.id}: unknown correlation operator {op!r}")
                self.bounds.append((op, _OPERATORS[op], float(threshold)))
            fieldref = cond.fieldref
            if self.type is _T.VALUE_PERCENTILE and cond.percentile is not None:
                self.percentile = min(max(float(cond.percentile), 0.0), 100.0)
        else:
            slot_of: dict[str, int] = {}
            for i, ref in enumerate(self.refs):
                for name in _ref_names(ref):
                    slot_of.setdefault(name, i)
            self.expr, negated = _compile(cond.parsed, slot_of)
        self.immediate = all(op in _IMMEDIATE_OPS for op, _, _ in self.bounds) and not negated
        # Least chain length an immediate ordered condition needs: skip the chain search below it.
        self.need = max((t + 1 if op == "gt" else t for op, _, t in self.bounds), default=0.0)
        # A count threshold beyond the default cap must stay reachable; sums may be any size.
        counted = self.type in (_T.EVENT_COUNT, _T.VALUE_COUNT)
        top = max((t for _, _, t in self.bounds), default=0.0) if counted else 0.0
        self.cap = int(max(_MIN_WINDOW_CAP, 2 * top))

        fields = [fieldref] if isinstance(fieldref, str) else list(fieldref or [])
        aliases = {a.alias: a.mapping for a in rule.aliases}
        self.slots: list[_Slot] = []
        for i, ref in enumerate(self.refs):
            names = _ref_names(ref)

            def resolve(name: str, names: set[str] = names) -> str:
                mapping = aliases.get(name)
                if mapping:
                    for alias_ref, target in mapping.items():
                        if alias_ref.reference in names:
                            return target
                return name

            self.slots.append(_Slot(i, names, tuple(resolve(g) for g in self.group_names),
                                    tuple(resolve(f) for f in fields)))
        self.has_value = self.type is _T.VALUE_COUNT or self.type in _VALUE_TYPES


class _Window:
    """One group key's state for one correlation."""

    __slots__ = ("alive", "deadline", "distinct", "end", "entries", "first", "key", "mask", "n", "newest", "node",
                 "present", "recent", "skey", "slot_n", "slot_times", "tick", "total", "values", "weight")

    def __init__(self, node: _Node, skey: tuple[int, Hashable], key: tuple[Hashable, ...], ts: float,
                 max_events: int, tick: int) -> None:
        self.node = node
        self.skey = skey
        self.key = key
        self.alive = True
        self.first = ts
        self.newest = ts
        self.end = ts + node.span
        self.deadline = self.end
        self.tick = tick
        # Sliding windows keep (ts, weight, value, slot, first seen) to undo them on expiry.
        self.entries: deque[tuple[float, int, Any, int, float]] = deque()
        self.recent: deque[tuple[float, Event, str]] = deque(maxlen=max_events)
        self.n = 0
        self.weight = 0
        self.total = 0.0
        self.distinct: dict[Hashable, int] = {}
        self.values: list[float] = []
        n_slots = len(node.slots) if node.temporal else 0
        self.slot_n = [0] * n_slots
        self.slot_times: list[deque[float]] = [deque() for _ in range(n_slots)] if node.ordered else []
        self.mask = 0
        self.present = 0

    def add(self, ts: float, weight: int, value: Any, slot: int) -> None:
        node = self.node
        tumbling = not node.immediate  # nothing is ever undone there, so sample up to the cap
        self.n += 1
        self.weight += weight
        t = node.type
        if t is _T.VALUE_COUNT:
            if value in self.distinct:
                self.distinct[value] += 1
            elif not tumbling or len(self.distinct) < node.cap:
                self.distinct[value] = 1
        elif t is _T.VALUE_SUM or t is _T.VALUE_AVG:
            self.total += value
        elif t is _T.VALUE_PERCENTILE or t is _T.VALUE_MEDIAN:
            if not tumbling or len(self.values) < node.cap:
                insort(self.values, value)
        elif node.temporal:
            self.slot_n[slot] += 1
            if self.slot_n[slot] == 1:
                self.mask |= 1 << slot
                self.present += 1
            if node.ordered:
                times = self.slot_times[slot]
                if not times or ts >= times[-1]:
                    times.append(ts)
                elif not tumbling or len(times) < node.cap:
                    times.insert(bisect_right(times, ts), ts)

    def remove(self, entry: tuple[float, int, Any, int, float]) -> None:
        """Undo the oldest entry (sliding windows only)."""
        _, weight, value, slot, _ = entry
        node = self.node
        self.n -= 1
        self.weight -= weight
        t = node.type
        if t is _T.VALUE_COUNT:
            left = self.distinct[value] - 1
            if left:
                self.distinct[value] = left
            else:
                del self.distinct[value]
        elif t is _T.VALUE_SUM or t is _T.VALUE_AVG:
            # Reset at empty so float drift from add/subtract cannot accumulate forever.
            self.total = self.total - value if self.n else 0.0
        elif t is _T.VALUE_PERCENTILE or t is _T.VALUE_MEDIAN:
            del self.values[bisect_left(self.values, value)]
        elif node.temporal:
            self.slot_n[slot] -= 1
            if not self.slot_n[slot]:
                self.mask &= ~(1 << slot)
                self.present -= 1
            if node.ordered:
                self.slot_times[slot].popleft()

    def holds(self) -> float | None:
        """The aggregate when the condition holds, else None."""
        node = self.node
        t = node.type
        if node.expr is not None:
            if not node.ordered:
                return float(self.present) if node.expr(self.mask, self.mask) else None
            if node.immediate and not node.expr(self.mask, self.mask):
                return None  # monotone expression: false on everything present, false on any chain
            chains = _chains(self.slot_times)
            ok = any(node.expr(chain, self.mask) for chain in chains)
            return float(self.present) if ok else None
        value: float
        if t is _T.EVENT_COUNT:
            value = self.n
        elif t is _T.VALUE_COUNT:
            value = len(self.distinct)
        elif t is _T.VALUE_SUM:
            value = self.total
        elif t is _T.VALUE_AVG:
            value = self.total / self.n if self.n else 0.0
        elif t is _T.VALUE_PERCENTILE or t is _T.VALUE_MEDIAN:
            if not self.values:
                return None
            value = _percentile(self.values, node.percentile)
        elif node.ordered:
            if node.immediate and self.present < node.need:
                return None
            value = max(mask.bit_count() for mask in _chains(self.slot_times))
        else:
            value = self.present
        for _, test, threshold in node.bounds:
            if not test(value, threshold):
                return None
        return float(value)


class CorrelationEngine:
    """Streaming evaluation of Sigma correlation rules (see the module docstring)."""

    def __init__(self, correlations: Sequence[tuple[SigmaCorrelationRule, RuleInfo]], *, max_keys: int = 100_000,
                 lateness: float = 60.0, max_events_per_alert: int = 100) -> None:
        if max_keys < 1 or max_events_per_alert < 1 or lateness < 0:
            raise ValueError("max_keys and max_events_per_alert must be positive, lateness not negative")
        self.max_keys = max_keys
        self.lateness = float(lateness)
        self.max_events_per_alert = max_events_per_alert
        self._nodes: list[_Node] = []
        for rule, info in correlations:
            try:
                self._nodes.append(_Node(len(self._nodes), rule, info))
            except ValueError as exc:
                log.warning("correlation %s skipped: %s", info.id, exc)
        self._targets: dict[str, list[tuple[_Node, int]]] = {}
        self._silenced: set[str] = set()
        self._order: list[_Node] = []
        self._outer: set[int] = set()
        """Correlations fed by other correlations."""
        self._link()
        self._states: OrderedDict[tuple[int, Hashable], _Window] = OrderedDict()
        self._heap: list[tuple[float, int, _Window]] = []
        self._seq = count()
        self._resolved: dict[tuple[str, str | None], list[tuple[_Node, int]]] = {}
        self._max_ts = -math.inf
        self._tick = 0
        self._last_event: Event | None = None
        self._last_nodes: set[int] = set()
        self._evictions = 0
        self._late = 0
        self._fired = 0

    # -- set-up ---------------------------------------------------------------------
    def _link(self) -> None:
        """Wire references: base rules to slots, inner correlations to outer ones;
        drop correlations caught in reference cycles; decide what is silenced."""
        by_object = {id(node.rule): node for node in self._nodes}
        by_name: dict[str, _Node] = {}
        for node in self._nodes:
            for name in (node.info.id, node.info.name, node.rule.name, node.rule.id):
                if name:
                    by_name.setdefault(str(name), node)
        inner: dict[tuple[int, int], _Node] = {}
        for node in self._nodes:
            for slot in node.slots:
                target = getattr(node.refs[slot.index], "rule", None)
                child = None
                if isinstance(target, SigmaCorrelationRule):
                    child = by_object.get(id(target))
                if child is None and (target is None or isinstance(target, SigmaCorrelationRule)):
                    # Unresolved, or a copy of the rule object: match by id or name.
                    child = next((by_name[n] for n in sorted(slot.names) if n in by_name), None)
                if child is not None:
                    inner[(node.index, slot.index)] = child

        # Depth-first topological order (inner before outer); a cycle disables its members.
        mark: dict[int, int] = {}
        cyclic: set[int] = set()

        def visit(node: _Node, path: list[_Node]) -> None:
            if mark.get(node.index) == 2:
                return
            if mark.get(node.index) == 1:
                cyclic.update(n.index for n in path[path.index(node):])
                return
            mark[node.index] = 1
            for slot in node.slots:
                child = inner.get((node.index, slot.index))
                if child is not None:
                    visit(child, [*path, child])
            mark[node.index] = 2
            self._order.append(node)

        for node in self._nodes:
            visit(node, [node])
        for node in self._nodes:
            if node.index in cyclic:
                log.warning("correlation %s ignored: its rule references form a cycle", node.info.id)
        self._order = [n for n in self._order if n.index not in cyclic]

        # A rule is silenced when the correlations using it all say generate: false
        # (one that asks for its stand-alone alerts wins).
        base_wanted: dict[str, bool] = {}
        inner_wanted: dict[int, bool] = {}
        for node in self._order:
            generate = bool(node.rule.generate)
            for slot in node.slots:
                child = inner.get((node.index, slot.index))
                if child is not None:
                    child.parents.append((node, slot.index))
                    self._outer.add(node.index)
                    inner_wanted[child.index] = inner_wanted.get(child.index, False) or generate
                    continue
                for name in slot.names:
                    self._targets.setdefault(name, []).append((node, slot.index))
                target = getattr(node.refs[slot.index], "rule", None)
                ids = {str(target.id)} if target is not None and target.id else slot.names
                for rule_id in ids:
                    base_wanted[rule_id] = base_wanted.get(rule_id, False) or generate
        self._silenced = {rule_id for rule_id, generate in base_wanted.items() if not generate}
        for node in self._order:
            if node.index in inner_wanted and not inner_wanted[node.index]:
                node.silenced = True
                self._silenced.add(node.info.id)

    def base_rules_silenced(self) -> set[str]:
        """Ids of rules that only feed correlations with ``generate: false``: their own
        matches must not become alerts."""
        return set(self._silenced)

    @property
    def stats(self) -> dict[str, int]:
        return {"keys": len(self._states), "evictions": self._evictions, "late_events": self._late,
                "fired": self._fired}

    # -- input ------------------------------------------------------------------------
    def _targets_for(self, rule: RuleInfo) -> list[tuple[_Node, int]]:
        cache_key = (rule.id, rule.name)
        found = self._resolved.get(cache_key)
        if found is None:
            seen: set[tuple[int, int]] = set()
            found = []
            for name in (rule.id, rule.name):
                for node, slot in self._targets.get(name or "", ()):
                    if (node.index, slot) not in seen:
                        seen.add((node.index, slot))
                        found.append((node, slot))
            self._resolved[cache_key] = found
        return found

    def _event_time(self, event: Event) -> float:
        ts = event.get("@timestamp")
        if isinstance(ts, str):
            try:
                # The canonical "…Z" form parses natively; parse_iso covers the rest.
                parsed = datetime.fromisoformat(ts)
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=UTC)
                return parsed.timestamp()
            except ValueError:
                pass
            try:
                return parse_iso(ts).timestamp()
            except ValueError:
                pass
        return self._max_ts if self._max_ts > -math.inf else time.time()

    def observe(self, rule: RuleInfo, event: Event) -> list[Detection]:
        """A base rule matched ``event``: the correlation detections it completes."""
        targets = self._targets_for(rule)
        if not targets:
            return []
        new_event = event is not self._last_event
        if new_event:
            self._last_event = event
            self._last_nodes.clear()
        ts = self._event_time(event)
        if ts < self._max_ts - self.lateness:
            if new_event:
                self._late += 1
            return []
        if ts > self._max_ts:
            # The watermark never passes the wall clock: a device clock far ahead (or a
            # log read in the wrong time zone) must not make every real event late.
            self._max_ts = min(ts, time.time())
        meta = event.get("event")
        event_id = meta.get("id") if isinstance(meta, dict) else None
        ids = (str(event_id),) if event_id else ()
        out: list[Detection] = []
        for node, slot in targets:
            # One event matched by two rules of the same counting correlation counts once,
            # as in the backends' "rule1 OR rule2 | count"; temporal types want each rule.
            if not node.temporal:
                if node.index in self._last_nodes:
                    continue
                self._last_nodes.add(node.index)
            self._feed(node, slot, ts, ts, 1, (event,), ids, event, None, out)
        return out

    def _feed(self, node: _Node, slot_index: int, ts: float, first: float, weight: int, events: Sequence[Event],
              ids: Sequence[str], source: Event, group: dict[str, Any] | None, out: list[Detection]) -> None:
        """One occurrence for a slot: a base event, or an inner correlation's firing
        (at its ``last_seen`` = ``ts``, spanning back to ``first``, standing for
        ``weight`` events)."""
        slot = node.slots[slot_index]
        value: Any = None
        if node.has_value:
            if node.type is _T.VALUE_COUNT:
                raw = [_read(source, group, f) for f in slot.value_fields]
                if all(v is None for v in raw):
                    return
                value = _hashable(raw[0] if len(raw) == 1 else raw)
            else:
                value = _number(_read(source, group, slot.value_fields[0])) if slot.value_fields else None
                if value is None:
                    return
        key = tuple([_hashable(_read(source, group, f)) for f in slot.group_fields])
        skey = (node.index, key)
        win = self._states.get(skey)
        if win is not None:
            self._states.move_to_end(skey)
            if node.immediate:
                if ts < win.newest - node.span:
                    self._late += 1  # before this group's window: only possible when lateness > timespan
                    return
            elif ts > win.end:
                self._close(win, out)
                win = None
        if win is None:
            win = self._open(node, skey, key, ts)
        win.tick = self._tick
        if len(events) == 1:
            win.recent.append((ts, events[0], ids[0] if ids else ""))
        else:
            for i, event in enumerate(events):
                win.recent.append((ts, event, ids[i] if i < len(ids) else ""))
        if not node.immediate:
            win.first = min(win.first, first)
            win.newest = max(win.newest, ts)
            win.add(ts, weight, value, slot_index)
            return
        entry = (ts, weight, value, slot_index, first)
        entries = win.entries
        if not entries or ts >= entries[-1][0]:
            entries.append(entry)
        else:
            entries.insert(bisect_right(entries, ts, key=lambda e: e[0]), entry)
        win.add(ts, weight, value, slot_index)
        win.newest = max(win.newest, ts)
        start = win.newest - node.span
        while entries[0][0] < start or len(entries) > node.cap:
            win.remove(entries.popleft())
        win.deadline = win.newest + node.span
        result = win.holds()
        if result is not None:
            self._fire(win, result, out)

    # -- window life cycle ------------------------------------------------------------
    def _open(self, node: _Node, skey: tuple[int, Hashable], key: tuple[Hashable, ...], ts: float) -> _Window:
        while len(self._states) >= self.max_keys:
            _, old = self._states.popitem(last=False)
            old.alive = False
            self._evictions += 1
        win = _Window(node, skey, key, ts, self.max_events_per_alert, self._tick)
        self._states[skey] = win
        # Stale heap entries of evicted or fired windows are skipped when popped; rebuild
        # once they outnumber the live ones so a key flood cannot grow the heap.
        if len(self._heap) > 2 * len(self._states) + 1024:
            self._heap = [(w.deadline, next(self._seq), w) for w in self._states.values()]
            heapq.heapify(self._heap)
        else:
            heapq.heappush(self._heap, (win.deadline, next(self._seq), win))
        return win

    def _drop(self, win: _Window) -> None:
        if win.alive:
            win.alive = False
            del self._states[win.skey]

    def _close(self, win: _Window, out: list[Detection]) -> None:
        """The window is complete: judge a tumbling one, forget a sliding one."""
        self._drop(win)
        if not win.node.immediate and win.n:
            result = win.holds()
            if result is not None:
                self._fire(win, result, out)

    def _fire(self, win: _Window, value: float, out: list[Detection]) -> None:
        node = win.node
        self._drop(win)
        self._fired += 1
        if win.entries:
            start = win.entries[0][0]
            first = min(e[4] for e in win.entries)
        else:
            start = first = win.first
        recent = sorted((r for r in win.recent if r[0] >= start), key=lambda r: r[0])
        events = [r[1] for r in recent]
        ids = [r[2] for r in recent if r[2]]
        detection = Detection(rule=node.info, events=events, event_ids=ids, first_seen=iso_from_epoch(first),
                              last_seen=iso_from_epoch(win.newest), group=dict(zip(node.group_names, win.key,
                                                                                   strict=True)),
                              value=value, event_count=win.weight)
        if not node.silenced:
            out.append(detection)
        source = events[-1] if events else {}
        for parent, slot in node.parents:
            self._feed(parent, slot, win.newest, first, win.weight, events, ids, source, detection.group, out)

    def advance(self, now: float | None = None) -> list[Detection]:
        """Close the windows that are complete by the watermark — or, given ``now``
        (epoch seconds), by the wall clock for groups idle since the previous tick —
        and return what ``lt``/``lte``/``neq`` conditions raise."""
        watermark = self._max_ts - self.lateness
        limit = watermark if now is None else max(watermark, now - self.lateness)
        out: list[Detection] = []
        busy: list[tuple[float, int, _Window]] = []
        heap = self._heap
        while heap and heap[0][0] < limit:
            item = heapq.heappop(heap)
            deadline, _, win = item
            if not win.alive:
                continue
            if win.deadline > deadline:
                heapq.heappush(heap, (win.deadline, next(self._seq), win))
            elif deadline >= watermark and win.tick >= self._tick:
                busy.append(item)  # due by the clock only, but still receiving events
            else:
                self._close(win, out)
        for item in busy:
            heapq.heappush(heap, item)
        if now is not None:
            self._tick += 1
        return out

    def flush(self) -> list[Detection]:
        """End of input: judge every open window, inner correlations first so their
        firings still reach the outer ones."""
        out: list[Detection] = []
        buckets: dict[int, list[_Window]] = {}
        for win in self._states.values():
            buckets.setdefault(win.node.index, []).append(win)
        for node in self._order:
            wins = buckets.pop(node.index, [])
            if node.index in self._outer:
                # Inner firings during this flush may have opened windows here.
                wins = [w for w in self._states.values() if w.node is node]
            for win in wins:
                self._close(win, out)
        self._states.clear()
        self._heap.clear()
        return out

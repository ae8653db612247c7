"""The detector: single-event rules and correlations over a stream of events.

One class serves the pipeline's ``detect`` stage, ``soc rules scan`` (offline, over
evidence files) and ``soc rules test`` (each rule's sample events), so all three
apply exactly the same semantics.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from collectors.event import Event
from soc.detect.correlation import CorrelationEngine
from soc.detect.engine import Engine
from soc.detect.loader import RuleSet
from soc.detect.model import Detection, RuleInfo


def single(rule: RuleInfo, event: Event) -> Detection:
    ts = event.get("@timestamp") or datetime.now(UTC).isoformat()
    event_id = (event.get("event") or {}).get("id") or ""
    return Detection(rule=rule, events=[event], event_ids=[event_id] if event_id else [],
                     first_seen=ts, last_seen=ts)


class Detector:
    def __init__(self, ruleset: RuleSet, *, profile: bool = False, max_keys: int = 100_000,
                 lateness: float = 60.0, max_events_per_alert: int = 100) -> None:
        self.ruleset = ruleset
        self.engine = Engine(ruleset, profile=profile)
        self.correlation = CorrelationEngine(ruleset.correlations, max_keys=max_keys, lateness=lateness,
                                             max_events_per_alert=max_events_per_alert)
        # Base rules of a correlation with ``generate: false`` feed it but never alert alone.
        self.silenced = self.correlation.base_rules_silenced()

    def process(self, events: Iterable[Event]) -> list[Detection]:
        """Detections raised by these events, in order: each matching rule, then
        whatever correlations they complete."""
        out: list[Detection] = []
        match = self.engine.match
        observe = self.correlation.observe
        silenced = self.silenced
        for event in events:
            for rule in match(event):
                if rule.id not in silenced:
                    out.append(single(rule, event))
                out.extend(observe(rule, event))
        out.extend(self.correlation.advance())
        return out

    def tick(self, now: float | None = None) -> list[Detection]:
        """Close correlation windows that are due by the clock (``lt`` conditions)."""
        return self.correlation.advance(now)

    def flush(self) -> list[Detection]:
        """End of input: evaluate every open correlation window."""
        return self.correlation.flush()

"""Each rule's own sample events: ``rules/tests/<rule-id>/match.jsonl`` must make the
rule fire, ``nomatch.jsonl`` (near misses) must not.

A line is ``{"raw": "<log line>", "format": "…", "system": "…"}`` — parsed, normalized
and enriched exactly as the pipeline does — or ``{"event": {<ECS document>}}``. The
lines of a file are one stream in order, so correlation rules see their windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from collectors.batch import Batch, Origin
from collectors.event import Event, stable_id
from collectors.parsers import JsonMapping
from soc.detect.loader import RuleSet
from soc.detect.runner import Detector
from soc.pipeline.stages import EnrichStage, ParseStage
from soc.systems import SystemRegistry


@dataclass(slots=True)
class RuleTestResult:
    rule_id: str
    title: str
    kind: str
    """``match`` or ``nomatch``."""
    passed: bool
    fired: list[str] = field(default_factory=list)
    """Rule ids that fired on the file."""
    error: str | None = None


class SampleReader:
    """Turns sample lines into pipeline-normalized events."""

    def __init__(self, registry: SystemRegistry, tz: Any, json_mappings: dict[str, JsonMapping] | None = None) -> None:
        self._parse = ParseStage(tz, json_mappings or {})
        self._enrich = EnrichStage(registry)

    def events(self, path: Path) -> list[Event]:
        out: list[Event] = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            item = orjson.loads(line)
            if "event" in item:
                event = dict(item["event"])
                event.setdefault("event", {}).setdefault("id", stable_id(str(path), n))
                out.append(event)
                continue
            origin = Origin(source="rules-test", kind="cli", path=str(path), format=item.get("format"),
                            system_id=item.get("system"))
            batch = Batch(origin, [item["raw"]], ids=[stable_id(str(path), n)])
            events, _ = self._parse.run(batch)
            out.extend(self._enrich.apply(events, origin))
        return out


def run_rule_tests(ruleset: RuleSet, tests_dir: Path, reader: SampleReader,
                   only: str | None = None) -> list[RuleTestResult]:
    """Run every rule's samples (or one rule's, by id or title) with a fresh
    detector per file. Base rules that only feed a correlation (``generate: false``)
    never alert alone: their correlation's samples test them."""
    silenced = Detector(ruleset).silenced
    infos = {r.id: r for r in ruleset.infos() if r.id not in silenced}
    results: list[RuleTestResult] = []
    for rule_id, info in sorted(infos.items(), key=lambda item: item[1].title):
        if only is not None and only not in (rule_id, info.title):
            continue
        directory = tests_dir / rule_id
        for kind in ("match", "nomatch"):
            path = directory / f"{kind}.jsonl"
            if not path.exists():
                if info.path and tests_dir.parent in Path(info.path).parents:
                    results.append(RuleTestResult(rule_id, info.title, kind, False, error=f"missing {path}"))
                continue
            try:
                detector = Detector(ruleset)
                detections = detector.process(reader.events(path))
                detections += detector.flush()
            except Exception as exc:  # a broken sample must fail its test, not the run
                results.append(RuleTestResult(rule_id, info.title, kind, False, error=f"{type(exc).__name__}: {exc}"))
                continue
            fired = sorted({d.rule.id for d in detections})
            passed = (rule_id in fired) == (kind == "match")
            results.append(RuleTestResult(rule_id, info.title, kind, passed, fired))
    return results

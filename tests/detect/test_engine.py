"""The engine: its index never hides a match, detections carry what alerts need,
profiling, and the throughput with the whole SigmaHQ Windows rule set."""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from collectors.event import Event
from collectors.parsers import Dispatcher, ParseContext
from soc.detect import engine as engine_module
from soc.detect.compiler import EventView
from soc.detect.engine import Engine
from soc.detect.loader import RuleSet, load_rules
from tests.conftest import DATASETS
from tests.detect.test_loader import sigmahq


@cache
def evtx_events() -> list[Event]:
    """Every record of the EVTX-ATTACK-SAMPLES conversions, parsed once."""
    dispatcher = Dispatcher()
    events: list[Event] = []
    for path in sorted((DATASETS / "evtx").rglob("*.jsonl")):
        if path.name != "index.jsonl":
            lines = path.read_text(encoding="utf-8").splitlines()
            events += [dispatcher.parse(line, None, ParseContext()) for line in lines if line.strip()]
    return events


def write_rules(root: Path, docs: list[str]) -> Path:
    for n, doc in enumerate(docs):
        (root / f"r{n}.yml").write_text(doc, encoding="utf-8")
    return root


def ioffice_rule(n: int, detection: str) -> str:
    return (f"title: rule {n}\nid: 00000000-0000-4000-8000-{n:012d}\nlogsource: {{product: ioffice}}\n"
            f"detection:\n{detection}")


def test_the_index_never_hides_a_match_on_real_events() -> None:
    """Every active SigmaHQ rule tried on every EVTX-ATTACK-SAMPLES event by brute force
    gives exactly what the indexed engine gives."""
    engine = Engine(sigmahq())
    events = evtx_events()
    for event in events:
        view = EventView(event)
        brute = [rule.info.id for rule in engine.rules if rule.match(view)]
        assert [info.id for info in engine.match(event)] == brute
    assert len(events) > 1500


def test_only_rules_an_event_can_match_are_evaluated(tmp_path: Path) -> None:
    docs = [ioffice_rule(n, f"  sel:\n    event.code: '{n}'\n    user.name|contains: x\n  condition: sel\n")
            for n in range(200)]
    engine = Engine(load_rules([write_rules(tmp_path, docs)]))
    event = {"event": {"dataset": "ioffice.audit", "code": "7"}, "user": {"name": "xavier"}}
    assert [engine.rules[i].info.title for i in engine.candidates(event)] == ["rule 7"]
    assert [r.title for r in engine.match(event)] == ["rule 7"]


def test_rules_without_an_indexable_requirement_still_run(tmp_path: Path) -> None:
    docs = [ioffice_rule(1, "  sel:\n    user.name|re: '^adm[0-9]+$'\n  condition: sel\n"),
            ioffice_rule(2, "  filter:\n    user.name: bob\n  condition: not filter\n")]
    engine = Engine(load_rules([write_rules(tmp_path, docs)]))
    event = {"event": {"dataset": "ioffice.audit"}, "user": {"name": "adm42"}}
    assert sorted(r.title for r in engine.match(event)) == ["rule 1", "rule 2"]
    assert [r.title for r in engine.match({**event, "user": {"name": "bob"}})] == []


def test_remembered_values_give_the_same_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "MEMO_SIZE", 2)  # forget often
    docs = [ioffice_rule(n, f"  sel:\n    url.path|endswith: '/f{n}'\n  condition: sel\n") for n in range(20)]
    engine = Engine(load_rules([write_rules(tmp_path, docs)]))
    for _ in range(3):
        for n in range(20):
            event = {"event": {"dataset": "ioffice.audit"}, "url": {"path": f"/a/b/F{n}"}}
            assert [r.title for r in engine.match(event)] == [f"rule {n}"]


def test_detect_yields_detections_with_event_time_and_id(tmp_path: Path) -> None:
    engine = Engine(load_rules([write_rules(tmp_path, [
        ioffice_rule(1, "  sel:\n    event.action: delete\n  condition: sel\n")])]))
    events: list[dict[str, Any]] = [
        {"@timestamp": "2024-05-01T10:00:00.000Z", "event": {"dataset": "ioffice.audit", "action": "delete",
                                                             "id": "e1"}},
        {"@timestamp": "2024-05-01T10:00:01.000Z", "event": {"dataset": "ioffice.audit", "action": "read"}},
    ]
    (detection,) = engine.detect(events)
    assert detection.rule.title == "rule 1"
    assert detection.first_seen == detection.last_seen == "2024-05-01T10:00:00.000Z"
    assert detection.event_ids == ["e1"] and detection.events == [events[0]]


def test_profiling_reports_time_evaluations_and_matches(tmp_path: Path) -> None:
    engine = Engine(load_rules([write_rules(tmp_path, [
        ioffice_rule(1, "  sel:\n    event.action: delete\n  condition: sel\n"),
        ioffice_rule(2, "  sel:\n    event.action: read\n  condition: sel\n")])]), profile=True)
    for action in ("delete", "delete", "read", "write"):
        engine.match({"event": {"dataset": "ioffice.audit", "action": action}})
    report = {info.title: (seconds, evaluations, matches) for info, seconds, evaluations, matches
              in engine.profile_report()}
    assert report["rule 1"][1:] == (2, 2) and report["rule 2"][1:] == (1, 1)
    assert all(seconds >= 0 for seconds, _, _ in report.values())


def test_inactive_rules_are_not_run() -> None:
    ruleset = sigmahq()
    engine = Engine(ruleset)
    assert len(engine.rules) == len(ruleset.active) < len(ruleset.rules)


def test_throughput_with_every_sigmahq_windows_rule(capsys: pytest.CaptureFixture[str]) -> None:
    """Events/s of Engine.match on the EVTX-ATTACK-SAMPLES events (parsed beforehand)
    with every active SigmaHQ Windows rule, on one core: a first pass over the
    events on a fresh engine, then steady state (values already seen)."""
    windows = RuleSet(rules=[r for r in sigmahq().rules if r.info.logsource.get("product") == "windows"])
    events = evtx_events()
    first = steady = 0.0
    for _ in range(3):
        engine = Engine(windows)
        start = time.perf_counter()
        for event in events:
            engine.match(event)
        first = max(first, len(events) / (time.perf_counter() - start))
        for _ in range(2):
            start = time.perf_counter()
            for event in events:
                engine.match(event)
            steady = max(steady, len(events) / (time.perf_counter() - start))
    with capsys.disabled():
        print(f"\nengine throughput with {len(engine.rules)} SigmaHQ Windows rules on {len(events)} events: "
              f"{first:,.0f} events/s first pass, {steady:,.0f} events/s steady state")
    assert first > 5_000  # a floor far below the measured rate: CI machines vary

"""Conformance on data nobody here wrote: SigmaHQ's own regression samples, each with
the rule it must trigger, read through our Windows parser and our engine."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from collectors.parsers import Dispatcher, ParseContext
from soc.detect.engine import Engine
from soc.detect.loader import load_rules
from tests.conftest import DATASETS

EXPECTED = [json.loads(line) for line in (DATASETS / "sigma-regression" / "expected.jsonl").read_text().splitlines()]


def _events(item: dict[str, Any]) -> list[dict[str, Any]]:
    source = DATASETS / item.get("sample_jsonl", item["sample"])
    dispatcher = Dispatcher()
    return [dispatcher.parse(line, None, ParseContext())
            for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]


@cache
def _all_regression_rules() -> Engine:
    paths = sorted({DATASETS / item["rule_path"] for item in EXPECTED})
    return Engine(load_rules(paths))


@pytest.mark.parametrize("item", EXPECTED, ids=[item["rule_title"][:60] for item in EXPECTED])
def test_expected_rule_fires_on_its_regression_sample(item: dict[str, Any]) -> None:
    ruleset = load_rules([DATASETS / item["rule_path"]])
    assert ruleset.rules, [s.reason for s in ruleset.skipped]
    engine = Engine(ruleset)
    fired = [i for i, event in enumerate(_events(item)) if engine.match(event)]
    assert fired, f"{item['rule_title']} did not fire on {item.get('sample_jsonl', item['sample'])}"


def test_recall_over_all_samples_with_all_rules_loaded_together(capsys: pytest.CaptureFixture[str]) -> None:
    engine = _all_regression_rules()
    hits = 0
    others: dict[str, int] = {}
    for item in EXPECTED:
        fired = {rule.id for event in _events(item) for rule in engine.match(event)}
        hits += item["rule_id"] in fired
        for rule_id in fired - {item["rule_id"]}:
            others[rule_id] = others.get(rule_id, 0) + 1
    with capsys.disabled():
        print(f"\nsigma-regression recall: {hits}/{len(EXPECTED)}; other rules fired on samples: {len(others)}")
    assert hits == len(EXPECTED)


def test_reference_hits_of_attack_recordings_fire(capsys: pytest.CaptureFixture[str]) -> None:
    """The EVTX-ATTACK-SAMPLES reference run's hits are 'at least these' for the rules
    we load from the SigmaHQ corpus."""
    index = [json.loads(line) for line in (DATASETS / "evtx" / "index.jsonl").read_text().splitlines()]
    chosen = [entry for entry in index if entry["sigma_reference_hits"]][:12]
    ruleset = load_rules([DATASETS / "sigma-rules" / "sigmahq-rules.zip"])
    engine = Engine(ruleset)
    loaded = {info.id for info in ruleset.infos()}
    expected = found = 0
    dispatcher = Dispatcher()
    for entry in chosen:
        lines = (DATASETS / entry["jsonl"]).read_text(encoding="utf-8").splitlines()
        events = [dispatcher.parse(line, None, ParseContext()) for line in lines if line.strip()]
        fired = {rule.id for event in events for rule in engine.match(event)}
        for hit in entry["sigma_reference_hits"]:
            if hit["rule_id"] in loaded:
                expected += 1
                found += hit["rule_id"] in fired
    with capsys.disabled():
        print(f"\nEVTX-ATTACK-SAMPLES reference hits found: {found}/{expected} over {len(chosen)} files")
    assert found >= 0.95 * expected

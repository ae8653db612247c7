"""Retro-hunts on Elasticsearch/OpenSearch (osmem) find exactly what the SQLite path
finds on the same events: the cluster pre-selects candidates (Lucene queries,
aggregations for counting correlations), the engine decides.

The events are those of tests/detect/test_hunt.py (the loghub OpenSSH log spread over
four days), indexed into ``logs-linux.auth-soc.l3`` with a mapping for the fields the
rules read, and written to a SQLite store for comparison.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from osmem_server import OsmemServer
from typer.testing import CliRunner

from collectors.ecs_fields import FIELD_TYPES
from collectors.event import Event
from soc.cli.main import app
from soc.detect.hunt import HuntPlan, HuntResult, HuntWindow, SqliteHuntSource, plan_hunt, run_hunt, select_rules
from soc.detect.hunt_elastic import ElasticHuntSource
from soc.detect.loader import RuleSet, load_rules
from soc.store.elastic.connection import ClusterInfo, cluster_info
from soc.store.sqlite import SqliteEventStore
from tests.conftest import REPO
from tests.detect.test_hunt import (
    BRUTE_FORCE,
    DAY,
    EVERYTHING,
    FAILURE_BASE,
    FIRST_DAY,
    SPRAY,
    hunt_events,
    signature,
)
from tests.elastic.osmem import OsmemNode

INDEX = "logs-linux.auth-soc.l3"
MAPPED = ("@timestamp", "event.id", "event.kind", "event.module", "event.dataset", "event.action", "event.outcome",
          "event.original", "message", "process.name", "process.pid", "host.hostname", "source.ip", "source.port",
          "user.name", "gov.system.id", "gov.classification")
"""What the rules read and the hunt sorts and filters on; the rest stays in _source only."""
FEW_FAILURES = "3f0c1d2e-0000-4000-8000-000000000002"
KEYWORD_RULE = "3f0c1d2e-0000-4000-8000-000000000003"
TEST_RULES = """\
title: Hunt Test SSH Failure
name: hunt_test_ssh_failure
id: 3f0c1d2e-0000-4000-8000-000000000001
status: test
logsource: {product: linux, service: sshd}
detection:
  selection: {event.action: ssh_login, event.outcome: failure}
  condition: selection
level: informational
---
title: Hunt Test Few SSH Failures Per Source
id: 3f0c1d2e-0000-4000-8000-000000000002
status: test
correlation:
  type: event_count
  rules: [hunt_test_ssh_failure]
  group-by: [source.ip]
  timespan: 10m
  condition: {lt: 3}
level: low
---
title: Hunt Test Invalid User Keyword
id: 3f0c1d2e-0000-4000-8000-000000000003
status: test
logsource: {product: linux, service: sshd}
detection:
  keywords: ['Failed password for invalid user']
  condition: keywords
level: low
"""
"""An upper-bound correlation (no aggregation pre-filter) and a keyword rule (reads text fields)."""


def mapping(info: ClusterInfo) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for name in MAPPED:
        *parents, leaf = name.split(".")
        level = root
        for part in parents:
            level = level.setdefault(part, {"properties": {}})["properties"]
        ftype = FIELD_TYPES[name]
        level[leaf] = {"type": info.flattened_type if ftype == "flattened" else ftype}
    return {"dynamic": False, "properties": root}


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return hunt_events()


@pytest.fixture(scope="module")
def cluster(osmem_server: OsmemServer, events: list[Event]) -> Iterator[tuple[Elasticsearch, str]]:
    """One osmem clone holding the events, for the module (indexing is the slow part)."""
    clone = osmem_server.clone()
    es = Elasticsearch([clone.url], node_class=OsmemNode, request_timeout=30)
    es.indices.create(index=INDEX, mappings=mapping(cluster_info(es)))
    for start in range(0, len(events), 500):
        operations: list[dict[str, Any]] = []
        for event in events[start:start + 500]:
            operations += [{"index": {"_index": INDEX, "_id": event["event"]["id"]}}, event]
        assert not es.bulk(operations=operations).body["errors"]
    es.indices.refresh(index=INDEX)
    yield es, clone.url
    clone.close()


@pytest.fixture(scope="module")
def store(events: list[Event], tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteEventStore]:
    db = SqliteEventStore(tmp_path_factory.mktemp("hunt-es") / "events.db")
    db.write([dict(e) for e in events])
    yield db
    db.close()


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    extra = tmp_path_factory.mktemp("rules") / "hunt_test.yml"
    extra.write_text(TEST_RULES, encoding="utf-8")
    return load_rules([REPO / "rules", extra], placeholders={"ioc_bad_ips": ["198.51.100.1"]})


def plan(ruleset: RuleSet, selector: str) -> HuntPlan:
    return plan_hunt(ruleset, select_rules(ruleset, selector))


def source(cluster: tuple[Elasticsearch, str], **kwargs: Any) -> ElasticHuntSource:
    es = cluster[0]
    return ElasticHuntSource(es, cluster_info(es), **kwargs)


def both(ruleset: RuleSet, selector: str, cluster: tuple[Elasticsearch, str], store: SqliteEventStore,
         window: HuntWindow = EVERYTHING, **kwargs: Any) -> tuple[HuntResult, HuntResult]:
    """The same hunt on the cluster and on the SQLite store."""
    hunt = plan(ruleset, selector)
    return (run_hunt(hunt, source(cluster, **kwargs), window),
            run_hunt(hunt, SqliteHuntSource(store), window))


@pytest.mark.parametrize("selector", [FAILURE_BASE, BRUTE_FORCE, SPRAY, FEW_FAILURES, KEYWORD_RULE])
def test_the_cluster_hunt_finds_what_the_sqlite_hunt_finds(
        ruleset: RuleSet, cluster: tuple[Elasticsearch, str], store: SqliteEventStore, selector: str) -> None:
    on_cluster, on_sqlite = both(ruleset, selector, cluster, store)
    assert on_sqlite.detections
    assert signature(on_cluster.detections) == signature(on_sqlite.detections)


@pytest.mark.parametrize("window", [HuntWindow(FIRST_DAY + DAY, FIRST_DAY + 3 * DAY),
                                    HuntWindow(EVERYTHING.since, EVERYTHING.until, ("ioffice",))],
                         ids=["two-days", "one-system"])
def test_the_cluster_hunt_keeps_to_the_range_and_systems(
        ruleset: RuleSet, cluster: tuple[Elasticsearch, str], store: SqliteEventStore, window: HuntWindow) -> None:
    on_cluster, on_sqlite = both(ruleset, BRUTE_FORCE, cluster, store, window)
    assert on_sqlite.detections
    assert signature(on_cluster.detections) == signature(on_sqlite.detections)


def test_a_single_event_rule_fetches_only_its_lucene_hits(
        ruleset: RuleSet, cluster: tuple[Elasticsearch, str], store: SqliteEventStore) -> None:
    on_cluster, on_sqlite = both(ruleset, FAILURE_BASE, cluster, store)
    assert on_cluster.scanned == on_cluster.hits == 218
    assert on_sqlite.scanned == 1000


def test_a_counting_correlation_fetches_only_groups_that_can_reach_its_threshold(
        ruleset: RuleSet, cluster: tuple[Elasticsearch, str]) -> None:
    result = run_hunt(plan(ruleset, BRUTE_FORCE), source(cluster), EVERYTHING)
    assert any("aggregated on the cluster" in note for note in result.notes)
    assert 0 < result.scanned < 218


def test_a_correlation_without_an_aggregation_runs_on_every_base_rule_hit_and_says_so(
        ruleset: RuleSet, cluster: tuple[Elasticsearch, str]) -> None:
    result = run_hunt(plan(ruleset, FEW_FAILURES), source(cluster), EVERYTHING)
    assert any("fetching every hit of its base rules" in note for note in result.notes)
    assert result.scanned == 218


def test_a_rule_searching_text_is_pre_filtered_on_its_log_source_only_and_says_so(
        ruleset: RuleSet, cluster: tuple[Elasticsearch, str]) -> None:
    result = run_hunt(plan(ruleset, KEYWORD_RULE), source(cluster), EVERYTHING)
    assert any("keyword search in event.original/message" in note and "pre-filtered on the rest" in note
               for note in result.notes)
    assert result.scanned == 1000  # every event is an sshd event


def test_a_full_scan_reads_every_event_and_finds_the_same(
        ruleset: RuleSet, cluster: tuple[Elasticsearch, str], store: SqliteEventStore) -> None:
    on_cluster, on_sqlite = both(ruleset, SPRAY, cluster, store, full_scan=True)
    assert on_cluster.scanned == 1000
    assert signature(on_cluster.detections) == signature(on_sqlite.detections)


def test_a_hunt_stopped_at_its_limit_leaves_no_point_in_time_open(
        ruleset: RuleSet, cluster: tuple[Elasticsearch, str]) -> None:
    result = run_hunt(plan(ruleset, FAILURE_BASE), source(cluster), EVERYTHING, limit=1, batch=50)
    assert result.limited
    pits = cluster[0].perform_request("GET", "/_search/point_in_time/_all",
                                      headers={"accept": "application/json"}).body
    assert pits["pits"] == []


def test_the_command_hunts_on_the_configured_cluster(
        ruleset: RuleSet, cluster: tuple[Elasticsearch, str], store: SqliteEventStore, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_CONFIG", str(REPO / "config" / "soc.yaml"))
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SOC_ELASTICSEARCH_URL", cluster[1])
    monkeypatch.setenv("SOC_LANG", "en")
    monkeypatch.delenv("SOC_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["rules", "hunt", BRUTE_FORCE, "--since", EVERYTHING.since.isoformat(),
                                      "--until", EVERYTHING.until.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    summary = rows[-1]
    expected = run_hunt(plan(ruleset, BRUTE_FORCE), SqliteHuntSource(store), EVERYTHING)
    assert summary["source"] == "elasticsearch" and summary["hits"] == expected.hits > 0
    assert summary["alerts_created"] > 0

"""Retro-hunts on Elasticsearch/OpenSearch (osmem) find exactly what the SQLite path
finds on the same events: the cluster pre-selects candidates (each rule's condition as a
case-insensitive query never narrower than the rule, aggregations for counting
correlations), the engine decides.

The sshd events are those of tests/detect/test_hunt.py (the loghub OpenSSH log spread
over four days), indexed into ``logs-linux.auth-soc.l3``; the Windows events are the
process creations of EVTX-ATTACK-SAMPLES with their image names upper-cased, indexed into
``logs-windows.sysmon_operational-soc.l3``. Both use a mapping for the fields the rules
read (keywords with the templates' ``ignore_above``) and are written to a SQLite store
for comparison.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from osmem_server import OsmemServer
from typer.testing import CliRunner

from collectors.ecs_fields import FIELD_TYPES
from collectors.event import Event, get_field, set_field, stable_id
from soc.cli.main import app
from soc.config import ElasticsearchConfig, SocConfig, StoreConfig
from soc.detect.engine import Engine
from soc.detect.hunt import (
    HuntPlan,
    HuntResult,
    HuntWindow,
    SqliteHuntSource,
    open_hunt_source,
    plan_hunt,
    run_hunt,
    select_rules,
)
from soc.detect.hunt_elastic import ClusterFields, ElasticHuntSource, SearchField, rule_prefilter
from soc.detect.loader import RuleSet, load_rules
from soc.store.elastic.connection import ClusterInfo, cluster_info
from soc.store.elastic.names import dead_letter_name, events_pattern
from soc.store.elastic.templates import KEYWORD_IGNORE_ABOVE, event_mappings
from soc.store.sqlite import SqliteEventStore
from tests.conftest import REPO
from tests.detect.test_engine import evtx_events
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
from tests.detect.test_loader import sigmahq
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


def mapping(info: ClusterInfo, names: Sequence[str] = MAPPED) -> dict[str, Any]:
    """These fields typed as the templates type them (keywords longer than
    ``ignore_above`` are not indexed); anything else in ``_source`` only."""
    root: dict[str, Any] = {}
    for name in names:
        *parents, leaf = name.split(".")
        level = root
        for part in parents:
            level = level.setdefault(part, {"properties": {}})["properties"]
        ftype = FIELD_TYPES[name]
        level[leaf] = {"type": info.flattened_type if ftype == "flattened" else ftype}
        if ftype == "keyword":
            level[leaf]["ignore_above"] = KEYWORD_IGNORE_ABOVE
    return {"dynamic": False, "properties": root}


def index(es: Elasticsearch, name: str, events: Sequence[Event]) -> None:
    for start in range(0, len(events), 500):
        operations: list[dict[str, Any]] = []
        for event in events[start:start + 500]:
            operations += [{"index": {"_index": name, "_id": event["event"]["id"]}}, event]
        assert not es.bulk(operations=operations).body["errors"]
    es.indices.refresh(index=name)


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return hunt_events()


@pytest.fixture(scope="module")
def cluster(osmem_server: OsmemServer, events: list[Event]) -> Iterator[tuple[Elasticsearch, str]]:
    """One osmem clone holding the events, for the module (indexing is the slow part)."""
    clone = osmem_server.clone()
    es = Elasticsearch([clone.url], node_class=OsmemNode, request_timeout=30)
    es.indices.create(index=INDEX, mappings=mapping(cluster_info(es)))
    index(es, INDEX, events)
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


# --- Windows: values in another case than the rule's, long values, every rule ------------

WINDOWS_INDEX = "logs-windows.sysmon_operational-soc.l3"
WINDOWS_MAPPED = ("@timestamp", "event.id", "winlog.channel", "winlog.event_id", "winlog.event_data",
                  "process.name", "process.executable")
CMD_IMAGE = "3f0c1d2e-0000-4000-8000-000000000011"
CMD_NAME = "3f0c1d2e-0000-4000-8000-000000000012"
CMD_EXECUTABLE = "3f0c1d2e-0000-4000-8000-000000000013"
CMD_NOT_STARTED_BY_EXPLORER = "3f0c1d2e-0000-4000-8000-000000000014"
WINDOWS_RULES = """\
title: Hunt Test Cmd Image
id: 3f0c1d2e-0000-4000-8000-000000000011
status: test
logsource: {product: windows, category: process_creation}
detection:
  selection: {Image|endswith: '\\\\cmd.exe'}
  condition: selection
level: low
---
title: Hunt Test Cmd Process Name
id: 3f0c1d2e-0000-4000-8000-000000000012
status: test
logsource: {product: windows, category: process_creation}
detection:
  selection: {process.name: cmd.exe}
  condition: selection
level: low
---
title: Hunt Test Cmd Executable
id: 3f0c1d2e-0000-4000-8000-000000000013
status: test
logsource: {product: windows, category: process_creation}
detection:
  selection: {process.executable|endswith: '\\\\cmd.exe'}
  condition: selection
level: low
---
title: Hunt Test Cmd Not Started By Explorer
id: 3f0c1d2e-0000-4000-8000-000000000014
status: test
logsource: {product: windows, category: process_creation}
detection:
  selection: {Image|endswith: '\\\\cmd.exe'}
  filter: {ParentCommandLine|endswith: '\\\\explorer.exe'}
  condition: selection and not filter
level: low
"""
"""One test each on a flattened key (Sigma's Image: Sysmon's Image or 4688's
NewProcessName), a keyword's whole value and a keyword's end, and a filter on a
flattened key (searched on the object's root, so not exactly)."""
WINDOWS_WINDOW = HuntWindow(datetime(2019, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC))
LONG_PATH = "C:\\" + "\\".join(["LONGDIRECTORY"] * 80) + "\\CMD.EXE"
"""Longer than the keyword ``ignore_above``: the cluster does not index it."""
STARTS_EXPLORER = "CMD.EXE /C START C:\\WINDOWS\\EXPLORER.EXE"
"""A command line ending like the filter's parent command line, on a cmd.exe explorer did not start."""


def shout(event: Event) -> Event:
    """The event with its image paths and names upper-cased (``C:\\WINDOWS\\SYSTEM32\\CMD.EXE``)."""
    loud = copy.deepcopy(event)
    for name in ("winlog.event_data.Image", "winlog.event_data.NewProcessName", "process.executable",
                 "process.name"):
        value = get_field(loud, name)
        if isinstance(value, str):
            set_field(loud, name, value.upper())
    return loud


def shout_everything(event: Event) -> Event:
    """Every string of the event upper-cased but its timestamp."""
    def up(value: Any) -> Any:
        if isinstance(value, str):
            return value.upper()
        if isinstance(value, list):
            return [up(v) for v in value]
        if isinstance(value, dict):
            return {k: v if k == "@timestamp" else up(v) for k, v in value.items()}
        return value
    loud: Event = up(event)
    return loud


@pytest.fixture(scope="module")
def windows_events() -> list[Event]:
    """The process creations of the EVTX recordings, image names upper-cased, plus two
    cmd.exe: one whose executable path is too long to be indexed, one starting explorer
    (:data:`STARTS_EXPLORER`); stable event ids."""
    found = [e for e in evtx_events() if get_field(e, "winlog.event_id") in ("1", "4688")]
    events = [shout(e) for e in found]
    for n, event in enumerate(events):
        set_field(event, "event.id", stable_id("hunt-windows", n))
    long = copy.deepcopy(next(e for e in events if get_field(e, "process.name") == "CMD.EXE"))
    set_field(long, "process.executable", LONG_PATH)
    set_field(long, "event.id", stable_id("hunt-windows", "long"))
    starter = copy.deepcopy(next(e for e in events if get_field(e, "process.name") == "CMD.EXE"
                                 and not str(get_field(e, "process.parent.command_line")).endswith("\\explorer.exe")))
    set_field(starter, "winlog.event_data.CommandLine", STARTS_EXPLORER)
    set_field(starter, "process.command_line", STARTS_EXPLORER)
    set_field(starter, "event.id", stable_id("hunt-windows", "starter"))
    return [*events, long, starter]


@pytest.fixture(scope="module")
def windows_cluster(osmem_server: OsmemServer, windows_events: list[Event]) -> Iterator[Elasticsearch]:
    clone = osmem_server.clone()
    es = Elasticsearch([clone.url], node_class=OsmemNode, request_timeout=30)
    es.indices.create(index=WINDOWS_INDEX, mappings=mapping(cluster_info(es), WINDOWS_MAPPED))
    index(es, WINDOWS_INDEX, windows_events)
    yield es
    clone.close()


@pytest.fixture(scope="module")
def windows_store(windows_events: list[Event], tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteEventStore]:
    db = SqliteEventStore(tmp_path_factory.mktemp("hunt-windows") / "events.db")
    db.write([dict(e) for e in windows_events])
    yield db
    db.close()


@pytest.fixture(scope="module")
def windows_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    path = tmp_path_factory.mktemp("windows-rules") / "hunt_windows.yml"
    path.write_text(WINDOWS_RULES, encoding="utf-8")
    return load_rules([path])


@pytest.mark.parametrize("selector", [CMD_IMAGE, CMD_NAME, CMD_EXECUTABLE, CMD_NOT_STARTED_BY_EXPLORER],
                         ids=["flattened-key", "keyword", "suffix", "negated-filter"])
def test_a_value_in_another_case_than_the_rule_is_found_as_on_sqlite(
        windows_rules: RuleSet, windows_cluster: Elasticsearch, windows_store: SqliteEventStore,
        selector: str) -> None:
    hunt = plan(windows_rules, selector)
    on_cluster = run_hunt(hunt, ElasticHuntSource(windows_cluster, cluster_info(windows_cluster)), WINDOWS_WINDOW)
    on_sqlite = run_hunt(hunt, SqliteHuntSource(windows_store), WINDOWS_WINDOW)
    assert on_sqlite.hits > 200
    assert all(get_field(d.events[0], "process.name") == "CMD.EXE" for d in on_sqlite.detections)
    assert signature(on_cluster.detections) == signature(on_sqlite.detections)
    assert on_cluster.scanned < on_sqlite.scanned  # pre-filtered, not a full read


def test_a_value_longer_than_the_cluster_indexes_is_still_fetched(
        windows_rules: RuleSet, windows_cluster: Elasticsearch) -> None:
    result = run_hunt(plan(windows_rules, CMD_EXECUTABLE),
                      ElasticHuntSource(windows_cluster, cluster_info(windows_cluster)), WINDOWS_WINDOW)
    assert any(get_field(d.events[0], "process.executable") == LONG_PATH for d in result.detections)


def test_on_elasticsearch_values_too_long_to_index_are_found_through_ignored(windows_rules: RuleSet) -> None:
    """Elasticsearch lists a keyword it skipped for ``ignore_above`` in ``_ignored``
    (osmem, like OpenSearch, does not: there the event without an indexed value is
    fetched, as the test above shows)."""
    rule = next(r for r in windows_rules.rules if r.info.id == CMD_EXECUTABLE)
    fields = ClusterFields({name: SearchField("keyword", limit=KEYWORD_IGNORE_ABOVE) for name in rule.fields},
                           records_ignored=True)
    query = json.dumps(rule_prefilter(rule, fields).query)
    assert '{"term": {"_ignored": "process.executable"}}' in query
    assert '"must_not"' not in query


def test_a_filter_the_cluster_cannot_search_exactly_hides_no_event(
        windows_rules: RuleSet, windows_cluster: Elasticsearch) -> None:
    """Searched on the object's root (any value of ``winlog.event_data``), the filter
    would also match the event's own command line ending in explorer.exe: it drops out
    of the query instead."""
    result = run_hunt(plan(windows_rules, CMD_NOT_STARTED_BY_EXPLORER),
                      ElasticHuntSource(windows_cluster, cluster_info(windows_cluster)), WINDOWS_WINDOW)
    assert any(get_field(d.events[0], "winlog.event_data.CommandLine") == STARTS_EXPLORER for d in result.detections)


def test_the_hunt_reads_the_soc_event_streams_only(es: Elasticsearch, es_config: ElasticsearchConfig,
                                                   windows_rules: RuleSet, windows_events: list[Event]) -> None:
    """Not the dead letters, not another product's ``logs-*`` stream."""
    cmd = next(e for e in windows_events if get_field(e, "process.name") == "CMD.EXE")
    for name in (WINDOWS_INDEX, dead_letter_name("soc"), "logs-windows.sysmon_operational-default"):
        es.indices.create(index=name, mappings=mapping(cluster_info(es), WINDOWS_MAPPED))
        index(es, name, [cmd])
    cfg = SocConfig(store=StoreConfig(type="elasticsearch"), elasticsearch=es_config)
    source = open_hunt_source(cfg)
    try:
        result = run_hunt(plan(windows_rules, CMD_NAME), source, WINDOWS_WINDOW)
    finally:
        source.close()
    assert isinstance(source, ElasticHuntSource) and source.index == events_pattern("soc")
    assert result.scanned == result.hits == 1


def test_every_rule_gets_a_prefilter_the_cluster_accepts_or_says_why_it_reads_everything(
        ruleset: RuleSet, es: Elasticsearch, capsys: pytest.CaptureFixture[str]) -> None:
    """Every active SigmaHQ rule and every rule of our pack, against the templates' mapping."""
    info = cluster_info(es)
    es.indices.create(index=WINDOWS_INDEX, mappings=event_mappings(info, "flattened"))
    rules = [r for r in [*sigmahq().rules, *ruleset.rules] if r.active]
    fields = ElasticHuntSource(es, info).cluster_fields(set().union(*(r.fields for r in rules)))
    prefilters = [rule_prefilter(r, fields) for r in rules]
    everything = [p for p in prefilters if p.reads_everything]
    assert all(p.reasons for p in everything)
    searches: list[dict[str, Any]] = []
    for p in prefilters:
        if not p.reads_everything:
            searches += [{"index": events_pattern("soc")}, {"query": p.query, "size": 0}]
    for start in range(0, len(searches), 400):
        responses = es.msearch(searches=searches[start:start + 400]).body["responses"]
        assert [r["error"] for r in responses if "error" in r] == []
    with capsys.disabled():
        print(f"\nhunt pre-filters: {len(rules) - len(everything)}/{len(rules)} rules searched on the cluster, "
              f"{len(everything)} read the whole range")
    assert len(everything) < len(rules) // 100


@pytest.mark.slow
def test_the_prefilter_fetches_every_event_a_rule_matches(osmem_server: OsmemServer) -> None:
    """Every EVTX-ATTACK-SAMPLES event some SigmaHQ rule matches, every other one with its
    strings upper-cased, in the templates' mapping: for each rule, the cluster's hits hold
    every event the engine matches."""
    rules = sigmahq()
    engine = Engine(rules)
    matched = [e for e in evtx_events() if engine.match(e)]
    events = [shout_everything(e) if n % 2 else copy.deepcopy(e) for n, e in enumerate(matched)]
    for n, event in enumerate(events):
        set_field(event, "event.id", str(n))
    clone = osmem_server.clone()
    try:
        es = Elasticsearch([clone.url], node_class=OsmemNode, request_timeout=60)
        info = cluster_info(es)
        es.indices.create(index=WINDOWS_INDEX, mappings=event_mappings(info, "flattened"))
        index(es, WINDOWS_INDEX, events)
        hits: dict[str, set[str]] = {}
        for event in events:
            for fired in engine.match(event):
                hits.setdefault(fired.id, set()).add(event["event"]["id"])
        active = [r for r in rules.rules if r.info.id in hits]
        fields = ElasticHuntSource(es, info).cluster_fields(set().union(*(r.fields for r in active)))
        missed: list[str] = []
        for rule in active:
            query = rule_prefilter(rule, fields).query
            found = {h["_id"] for h in es.search(index=events_pattern("soc"), query=query, size=len(events),
                                                 source=False).body["hits"]["hits"]}
            if not hits[rule.info.id] <= found:
                missed.append(f"{rule.info.title}: {sorted(hits[rule.info.id] - found)}")
    finally:
        clone.close()
    assert len(active) > 200
    assert missed == []

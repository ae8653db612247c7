"""Tailing existing indices (Winlogbeat, Wazuh alerts) on a real server (osmem): every
settled document arrives once, in timestamp order, across polls, restarts and crashes;
a redelivery carries the same ids; the documents become events our rules fire on."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from collectors.batch import Batch, RawRecord
from collectors.sources import es_tail
from collectors.sources.es_tail import ElasticTailSource, PitFlavour, start_position, tiebreaker
from soc.config import ElasticsearchConfig
from soc.pipeline.stages import ParseStage
from soc.store.elastic.connection import ClusterInfo, cluster_info, connect
from tests.parsers.test_ecs_doc import LOG_CLEARED, RULE_IDS, evtx_records, windows_engine, winlogbeat_doc
from tests.parsers.test_wazuh_alert import alert, wazuh_rows
from tests.sources.helpers import FakeSubmit, run

WINLOGBEAT = "winlogbeat-2026.11.24"
WAZUH = "wazuh-alerts-4.x-2026.11.24"
DAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, tzinfo=UTC)
WAZUH_MAPPING = {"properties": {"timestamp": {"type": "date", "format": "date_optional_time||epoch_millis"}}}


class Clock:
    def __init__(self, when: datetime = NOW) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.timestamp()


@dataclass(frozen=True)
class OldOpenSearch:
    """What an OpenSearch 2.x cluster (the Wazuh indexer) would say about itself."""

    real: ClusterInfo

    @property
    def is_elasticsearch(self) -> bool:
        return False

    @property
    def version(self) -> tuple[int, ...]:
        return (2, 19, 0)

    def pit_path(self, index: str) -> str:
        return self.real.pit_path(index)

    def close_pit_path(self) -> str:
        return self.real.close_pit_path()


# --- documents ---------------------------------------------------------------------------

def _iso(when: datetime, sep: str = "Z") -> str:
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}"
    return text + ("Z" if sep == "Z" else "+0000")


def winlogbeat_docs(count: int, start: datetime = DAY, first: int = 0) -> dict[str, dict[str, Any]]:
    """Real EVTX records as Winlogbeat documents, three to a millisecond (documents
    sharing a timestamp are what a boundary between pages or polls must not split
    wrongly)."""
    records = evtx_records(LOG_CLEARED)
    docs = {}
    for n in range(first, first + count):
        doc = winlogbeat_doc(records[n % len(records)])
        doc["@timestamp"] = _iso(start + timedelta(seconds=n // 3))
        docs[f"wlb-{n:04d}"] = doc
    return docs


def wazuh_docs(count: int, start: datetime = DAY) -> dict[str, dict[str, Any]]:
    rows = [row for name in ("sshd", "sudo", "pam", "su", "dovecot") for row in wazuh_rows(name)]
    docs = {}
    for n in range(count):
        row = rows[n % len(rows)]
        docs[f"wz-{n:04d}"] = alert(row, full_log=row["log"], timestamp=_iso(start + timedelta(seconds=n // 2), "+"))
    return docs


def index_docs(es: Elasticsearch, index: str, docs: dict[str, dict[str, Any]]) -> None:
    operations: list[dict[str, Any]] = []
    for doc_id, doc in docs.items():
        operations += [{"index": {"_index": index, "_id": doc_id}}, doc]
    response = es.bulk(operations=operations, refresh=True)
    assert not response["errors"]


# --- the source ------------------------------------------------------------------------

def make_source(es_config: ElasticsearchConfig, tmp_path: Path, index: str = "winlogbeat-*", *,
                clock: Clock | None = None, describe: Callable[[Any], PitFlavour] = cluster_info,
                client_factory: Callable[[], Any] | None = None, name: str = "tail",
                **options: Any) -> ElasticTailSource:
    settings: dict[str, Any] = {"start_from": "beginning", "page_size": 7, "settle_seconds": 60.0}
    settings.update(options)
    return ElasticTailSource(name, index=index, checkpoint_path=tmp_path / "checkpoints" / f"{name}.json",
                             client_factory=client_factory or (lambda: connect(es_config)), describe=describe,
                             clock=clock or Clock(), **settings)


def poll(source: ElasticTailSource, submit: FakeSubmit) -> int:
    return run(source.poll_once(submit))


def hit_id(record: RawRecord) -> str:
    assert isinstance(record, dict)
    return str(record["_id"])


def doc_ids(submit: FakeSubmit) -> list[str]:
    return [record["_id"] for record in submit.records]


def event_ids(submit: FakeSubmit) -> list[str]:
    return [i for batch in submit.acked for i in batch.ids or []]


# --- every document once ------------------------------------------------------------------

def test_every_document_arrives_once_in_timestamp_order(es_config: ElasticsearchConfig, es: Elasticsearch,
                                                       tmp_path: Path) -> None:
    docs = winlogbeat_docs(100)
    index_docs(es, WINLOGBEAT, docs)
    submit = FakeSubmit()
    assert poll(make_source(es_config, tmp_path), submit) == 100
    assert sorted(doc_ids(submit)) == sorted(docs)
    stamps = [record["_source"]["@timestamp"] for record in submit.records]
    assert stamps == sorted(stamps)
    assert len(set(event_ids(submit))) == 100


def test_a_second_poll_with_nothing_new_submits_nothing(es_config: ElasticsearchConfig, es: Elasticsearch,
                                                       tmp_path: Path) -> None:
    index_docs(es, WINLOGBEAT, winlogbeat_docs(30))
    source = make_source(es_config, tmp_path)
    submit = FakeSubmit()
    poll(source, submit)
    assert poll(source, submit) == 0
    assert len(doc_ids(submit)) == 30


def test_records_are_the_hits_and_batches_carry_the_source_and_format(es_config: ElasticsearchConfig,
                                                                     es: Elasticsearch, tmp_path: Path) -> None:
    docs = winlogbeat_docs(5)
    index_docs(es, WINLOGBEAT, docs)
    submit = FakeSubmit()
    poll(make_source(es_config, tmp_path, mapping="ecs", system_id="ad-so-noi-vu"), submit)
    first = submit.records[0]
    assert first == {"_index": WINLOGBEAT, "_id": "wlb-0000", "_source": docs["wlb-0000"]}
    origin = submit.acked[0].origin
    assert (origin.source, origin.kind, origin.format, origin.system_id) == (
        "tail", "elasticsearch", "ecs", "ad-so-noi-vu")


def test_wazuh_alerts_are_read_by_their_own_timestamp_field(es_config: ElasticsearchConfig, es: Elasticsearch,
                                                           tmp_path: Path) -> None:
    es.indices.create(index=WAZUH, mappings=WAZUH_MAPPING)
    docs = wazuh_docs(100)
    index_docs(es, WAZUH, docs)
    submit = FakeSubmit()
    source = make_source(es_config, tmp_path, "wazuh-alerts-4.x-*", timestamp_field="timestamp", mapping="wazuh")
    assert poll(source, submit) == 100
    assert sorted(doc_ids(submit)) == sorted(docs)
    assert submit.acked[0].origin.format == "wazuh"


def test_the_id_tiebreaker_of_older_opensearch_also_reads_everything_once(
        es_config: ElasticsearchConfig, es: Elasticsearch, tmp_path: Path) -> None:
    docs = winlogbeat_docs(40)
    index_docs(es, WINLOGBEAT, docs)
    submit = FakeSubmit()
    source = make_source(es_config, tmp_path, describe=lambda client: OldOpenSearch(cluster_info(client)))
    poll(source, submit)
    assert sorted(doc_ids(submit)) == sorted(docs)
    assert len(doc_ids(submit)) == 40


@pytest.mark.parametrize(("info", "key"), [
    (ClusterInfo("elasticsearch", (8, 15, 0)), "_shard_doc"),
    (ClusterInfo("opensearch", (3, 3, 0)), "_shard_doc"),
    (ClusterInfo("opensearch", (2, 19, 0)), "_id"),
])
def test_the_tiebreaker_is_one_the_cluster_can_sort_on(info: ClusterInfo, key: str) -> None:
    assert list(tiebreaker(info)) == [key]


# --- across polls and restarts --------------------------------------------------------------

def test_only_new_documents_arrive_including_one_at_the_checkpoint_millisecond(
        es_config: ElasticsearchConfig, es: Elasticsearch, tmp_path: Path) -> None:
    index_docs(es, WINLOGBEAT, winlogbeat_docs(31))  # the last millisecond holds one document
    source = make_source(es_config, tmp_path)
    submit = FakeSubmit()
    poll(source, submit)
    last = submit.records[-1]["_source"]["@timestamp"]
    newer = winlogbeat_docs(6, first=31)
    same_ms = {"wlb-late": {**winlogbeat_doc(evtx_records(LOG_CLEARED)[0]), "@timestamp": last}}
    index_docs(es, WINLOGBEAT, {**newer, **same_ms})
    later = FakeSubmit()
    poll(source, later)
    assert sorted(doc_ids(later)) == sorted([*newer, "wlb-late"])


def test_a_restarted_source_repeats_nothing(es_config: ElasticsearchConfig, es: Elasticsearch,
                                           tmp_path: Path) -> None:
    index_docs(es, WINLOGBEAT, winlogbeat_docs(50))
    first = FakeSubmit()
    poll(make_source(es_config, tmp_path), first)
    index_docs(es, WINLOGBEAT, winlogbeat_docs(10, first=50))
    second = FakeSubmit()
    poll(make_source(es_config, tmp_path), second)
    assert sorted(doc_ids(second)) == [f"wlb-{n:04d}" for n in range(50, 60)]
    assert not set(event_ids(first)) & set(event_ids(second))


def test_the_checkpoint_is_written_only_after_submit_returned(es_config: ElasticsearchConfig, es: Elasticsearch,
                                                             tmp_path: Path) -> None:
    index_docs(es, WINLOGBEAT, winlogbeat_docs(20))
    source = make_source(es_config, tmp_path)
    covered_when_submitted: list[bool] = []

    async def submit(batch: Batch) -> None:
        saved = json.loads(source.checkpoint_path.read_text(encoding="utf-8"))
        covered_when_submitted.append(any(i in saved["seen"] for i in batch.ids or []))

    run(source.poll_once(submit))
    saved = json.loads(source.checkpoint_path.read_text(encoding="utf-8"))
    assert covered_when_submitted and not any(covered_when_submitted)
    assert saved["ts"] == int((DAY + timedelta(seconds=19 // 3)).timestamp() * 1000)


class Crash(Exception):
    """The process died after the store kept the batch, before submit returned."""


def test_a_batch_redelivered_after_a_crash_carries_the_same_ids(es_config: ElasticsearchConfig,
                                                               es: Elasticsearch, tmp_path: Path) -> None:
    index_docs(es, WINLOGBEAT, winlogbeat_docs(30))
    stored: list[Batch] = []

    async def crashing(batch: Batch) -> None:
        stored.append(batch)
        if len(stored) == 2:
            raise Crash

    with pytest.raises(Crash):
        run(make_source(es_config, tmp_path).poll_once(crashing))
    after = FakeSubmit()
    poll(make_source(es_config, tmp_path), after)
    crashed = dict(zip(map(hit_id, stored[1].records), stored[1].ids or [], strict=True))
    redelivered = {hit_id(r): i for b in after.acked for r, i in zip(b.records, b.ids or [], strict=True)}
    assert {doc_id: redelivered[doc_id] for doc_id in crashed} == crashed
    assert not set(map(hit_id, stored[0].records)) & set(redelivered)
    assert len(redelivered) + len(stored[0]) == 30


# --- where to start and what to hold back ------------------------------------------------------

def test_settle_seconds_holds_back_recent_documents(es_config: ElasticsearchConfig, es: Elasticsearch,
                                                   tmp_path: Path) -> None:
    index_docs(es, WINLOGBEAT, winlogbeat_docs(60))  # DAY .. DAY + 19 s
    clock = Clock(DAY + timedelta(seconds=70))  # settled: before DAY + 10 s
    source = make_source(es_config, tmp_path, clock=clock)
    early = FakeSubmit()
    poll(source, early)
    assert sorted(doc_ids(early)) == [f"wlb-{n:04d}" for n in range(30)]
    clock.set(NOW)
    rest = FakeSubmit()
    poll(source, rest)
    assert sorted(doc_ids(rest)) == [f"wlb-{n:04d}" for n in range(30, 60)]


def test_start_from_now_skips_history(es_config: ElasticsearchConfig, es: Elasticsearch, tmp_path: Path) -> None:
    index_docs(es, WINLOGBEAT, winlogbeat_docs(20))
    clock = Clock(DAY + timedelta(hours=1))
    source = make_source(es_config, tmp_path, clock=clock, start_from="now")
    submit = FakeSubmit()
    assert poll(source, submit) == 0
    fresh = winlogbeat_docs(6, start=DAY + timedelta(hours=1, minutes=1), first=100)
    index_docs(es, WINLOGBEAT, fresh)
    clock.set(NOW)
    poll(source, submit)
    assert sorted(doc_ids(submit)) == sorted(fresh)


def test_the_start_of_a_first_run_survives_a_restart(es_config: ElasticsearchConfig, es: Elasticsearch,
                                                     tmp_path: Path) -> None:
    clock = Clock(DAY - timedelta(minutes=10))
    poll(make_source(es_config, tmp_path, clock=clock, start_from="now"), FakeSubmit())
    index_docs(es, WINLOGBEAT, winlogbeat_docs(9))  # after that start, before the restart
    clock.set(NOW)
    submit = FakeSubmit()
    poll(make_source(es_config, tmp_path, clock=clock, start_from="now"), submit)
    assert len(doc_ids(submit)) == 9


def test_start_from_an_age_reads_only_that_far_back(es_config: ElasticsearchConfig, es: Elasticsearch,
                                                     tmp_path: Path) -> None:
    index_docs(es, WINLOGBEAT, {**winlogbeat_docs(3, start=NOW - timedelta(hours=3)),
                                **winlogbeat_docs(3, start=NOW - timedelta(minutes=30), first=3)})
    submit = FakeSubmit()
    poll(make_source(es_config, tmp_path, start_from="2h"), submit)
    assert sorted(doc_ids(submit)) == ["wlb-0003", "wlb-0004", "wlb-0005"]


@pytest.mark.parametrize(("value", "expected"), [
    ("beginning", None), ("now", 1_000_000_000), ("7d", 1_000_000_000 - 7 * 86_400_000), ("30m", 998_200_000),
])
def test_start_positions(value: str, expected: int | None) -> None:
    assert start_position(value, 1_000_000.0) == expected


def test_an_unknown_start_is_refused_in_both_languages() -> None:
    with pytest.raises(ValueError, match="expected beginning, now"):
        start_position("yesterday", 0.0)


# --- waiting and failing --------------------------------------------------------------------

def test_a_pattern_that_matches_nothing_yet_is_waited_for_quietly(es_config: ElasticsearchConfig,
                                                                  es: Elasticsearch, tmp_path: Path) -> None:
    source = make_source(es_config, tmp_path)
    submit = FakeSubmit()
    assert poll(source, submit) == 0
    assert source.stats.errors == 0
    index_docs(es, WINLOGBEAT, winlogbeat_docs(4))
    assert poll(source, submit) == 4


def test_a_missing_concrete_index_is_waited_for_quietly(es_config: ElasticsearchConfig, tmp_path: Path) -> None:
    source = make_source(es_config, tmp_path, WINLOGBEAT)
    assert poll(source, FakeSubmit()) == 0
    assert source.stats.errors == 0


def test_an_unreachable_cluster_is_an_error_retried_until_it_answers(
        es_config: ElasticsearchConfig, es: Elasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(es_tail, "_RETRY_FIRST", 0.01)
    index_docs(es, WINLOGBEAT, winlogbeat_docs(5))
    down = ElasticsearchConfig(url=["http://127.0.0.1:9"], request_timeout=2.0)
    configs = iter([down, down, es_config])
    source = make_source(es_config, tmp_path, client_factory=lambda: connect(next(configs)))
    submit = FakeSubmit()

    async def submit_then_stop(batch: Batch) -> None:
        await source.stop()
        await submit(batch)

    run(source.run(submit_then_stop))
    assert source.stats.errors == 2
    assert sorted(doc_ids(submit)) == sorted(winlogbeat_docs(5))


def test_a_failed_submit_is_read_again_from_the_checkpoint(es_config: ElasticsearchConfig, es: Elasticsearch,
                                                           tmp_path: Path) -> None:
    index_docs(es, WINLOGBEAT, winlogbeat_docs(10))
    source = make_source(es_config, tmp_path)
    submit = FakeSubmit()
    submit.fail = True
    with pytest.raises(RuntimeError):
        poll(source, submit)
    submit.fail = False
    poll(source, submit)
    assert sorted(doc_ids(submit)) == sorted(winlogbeat_docs(10))


def test_stop_finishes_the_batch_being_submitted_and_returns(es_config: ElasticsearchConfig, es: Elasticsearch,
                                                             tmp_path: Path) -> None:
    index_docs(es, WINLOGBEAT, winlogbeat_docs(30))
    source = make_source(es_config, tmp_path)
    submit = FakeSubmit()

    async def stop_on_first(batch: Batch) -> None:
        await source.stop()
        await submit(batch)

    run(source.run(stop_on_first))
    assert len(submit.acked) == 1
    saved = json.loads(source.checkpoint_path.read_text(encoding="utf-8"))
    assert set(submit.acked[0].ids or []) >= set(saved["seen"])
    assert source.stats.active == 0


# --- through the pipeline ------------------------------------------------------------------

def test_tailed_documents_become_events_our_rules_fire_on(es_config: ElasticsearchConfig, es: Elasticsearch,
                                                          tmp_path: Path) -> None:
    docs = winlogbeat_docs(len(evtx_records(LOG_CLEARED)))
    index_docs(es, WINLOGBEAT, docs)
    es.indices.create(index=WAZUH, mappings=WAZUH_MAPPING)
    index_docs(es, WAZUH, wazuh_docs(20))
    submit = FakeSubmit()
    poll(make_source(es_config, tmp_path, page_size=50), submit)
    poll(make_source(es_config, tmp_path, "wazuh-alerts-*", name="wazuh", timestamp_field="timestamp"), submit)
    stage = ParseStage(UTC, {})
    events = [event for batch in submit.acked for event in stage.run(batch)[0]]
    assert len(events) == len(docs) + 20
    assert [e["event"]["id"] for e in events] == event_ids(submit)
    assert not [e for e in events if "_parse_failure" in e.get("tags", ())]
    fired = {info.id for event in events for info in windows_engine().match(event)}
    assert RULE_IDS[LOG_CLEARED] in fired
    assert sum("wazuh" in e for e in events) == 20

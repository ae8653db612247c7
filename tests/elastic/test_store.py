"""The Elasticsearch event store against a real server (osmem) through elasticsearch-py."""

from __future__ import annotations

from datetime import UTC, datetime

from elasticsearch import Elasticsearch

from soc.config import ElasticsearchConfig
from soc.store.base import TimeRange
from soc.store.elastic import names
from soc.store.elastic.store import ElasticEventStore
from tests.elastic.events import sshd_events


def _store(cfg: ElasticsearchConfig) -> ElasticEventStore:
    return ElasticEventStore(cfg, sleep=lambda _s: None)


def _ids(es: Elasticsearch, index: str = names.events_pattern("soc")) -> list[str]:
    es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
    resp = es.search(index=index, size=10_000, source=["event.id"], query={"match_all": {}})
    return [h["_source"]["event"]["id"] for h in resp["hits"]["hits"]]


def test_a_batch_is_stored_once_and_counted_as_new(es_config: ElasticsearchConfig, es: Elasticsearch) -> None:
    events = sshd_events(120)
    store = _store(es_config)
    assert store.write(events) == 120
    assert sorted(_ids(es)) == sorted(e["event"]["id"] for e in events)


def test_a_redelivered_batch_creates_no_duplicates(es_config: ElasticsearchConfig, es: Elasticsearch) -> None:
    events = sshd_events(80)
    store = _store(es_config)
    store.write(events[:50])
    assert store.write(events) == 30
    ids = _ids(es)
    assert len(ids) == len(set(ids)) == 80


def test_events_go_to_the_stream_of_their_dataset_and_security_level(es_config: ElasticsearchConfig,
                                                                     es: Elasticsearch) -> None:
    store = _store(es_config)
    store.write(sshd_events(10, level=4) + sshd_events(10, level=None, offset=10))
    es.indices.refresh(index="logs-*")
    indices = set(es.indices.get(index="logs-*"))
    dataset = names.clean_dataset(sshd_events(1)[0]["event"]["dataset"])
    assert f"logs-{dataset}-soc.l4" in indices
    assert f"logs-{dataset}-soc.unclassified" in indices


def test_a_document_the_cluster_refuses_goes_to_the_dead_letter_stream_with_its_reason(
        es_config: ElasticsearchConfig, es: Elasticsearch) -> None:
    # Malformed scalars are ignored by the mapping (ignore_malformed, value kept in
    # _source); an object where a keyword belongs is refused outright.
    events = sshd_events(5)
    events[2]["user"] = {"name": {"first": "not-a-keyword"}}
    store = _store(es_config)
    assert store.write(events) == 4
    dead = names.dead_letter_name("soc")
    es.indices.refresh(index=dead)
    hits = es.search(index=dead, query={"match_all": {}})["hits"]["hits"]
    assert len(hits) == 1
    letter = hits[0]["_source"]
    assert "not-a-keyword" in letter["event"]["original"]
    assert letter["error"]["type"]
    assert letter["dead_letter"]["index"].startswith("logs-")
    assert store.stats()["dead_lettered"] == 1


def test_redelivering_a_refused_document_does_not_dead_letter_it_twice(es_config: ElasticsearchConfig,
                                                                       es: Elasticsearch) -> None:
    events = sshd_events(3)
    events[0]["user"] = {"name": {"first": "bogus"}}
    store = _store(es_config)
    store.write(events)
    store.write(events)
    dead = names.dead_letter_name("soc")
    es.indices.refresh(index=dead)
    assert es.count(index=dead)["count"] == 1


def test_a_malformed_value_keeps_the_event_and_its_value(es_config: ElasticsearchConfig,
                                                         es: Elasticsearch) -> None:
    events = sshd_events(2)
    events[0]["source"] = {"ip": "not-an-ip-address"}
    store = _store(es_config)
    assert store.write(events) == 2
    kept = store.search(f"event.id:{events[0]['event']['id']}")
    assert kept[0]["source"]["ip"] == "not-an-ip-address"


def test_search_uses_the_analyst_query_language(es_config: ElasticsearchConfig) -> None:
    events = sshd_events(200)
    store = _store(es_config)
    store.write(events)
    store.refresh()
    failed = [e for e in events if e.get("event", {}).get("outcome") == "failure"]
    assert failed, "the sample has failed logins"
    found = store.search("event.outcome:failure", limit=1000)
    assert {e["event"]["id"] for e in found} == {e["event"]["id"] for e in failed}
    assert store.count("event.outcome:failure") == len(failed)


def test_search_honours_the_time_range_and_order(es_config: ElasticsearchConfig) -> None:
    events = sshd_events(60)
    store = _store(es_config)
    store.write(events)
    store.refresh()
    stamps = sorted(e["@timestamp"] for e in events)
    middle = datetime.fromisoformat(stamps[30].replace("Z", "+00:00"))
    newer = store.search("*", TimeRange(since=middle), limit=1000)
    assert newer and all(e["@timestamp"] >= stamps[30] for e in newer)
    assert [e["@timestamp"] for e in newer] == sorted((e["@timestamp"] for e in newer), reverse=True)
    oldest_first = store.search("*", limit=5, newest_first=False)
    assert oldest_first[0]["@timestamp"] == stamps[0]


def test_retention_without_ilm_deletes_per_security_level(es_config: ElasticsearchConfig,
                                                           es: Elasticsearch) -> None:
    # Level 2 keeps 90 days and level 5 keeps 365 days by default: at a point 200 days
    # after these events, only the level-5 copies must remain.
    store = _store(es_config)
    store.write(sshd_events(20, level=2) + sshd_events(20, level=5, offset=20))
    store.refresh()
    newest = max(e["@timestamp"] for e in sshd_events(40))
    later = datetime.fromisoformat(newest.replace("Z", "+00:00")).astimezone(UTC)
    from datetime import timedelta

    removed = store.apply_retention(later + timedelta(days=200))
    assert removed == 20
    store.refresh()
    assert store.count("*") == 20
    assert store.count("gov.classification:5") == 20

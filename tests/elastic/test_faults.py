"""Faults on the way to the cluster: it stops mid-stream, it answers 429/503, it
rejects single documents. Every event must arrive exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch, helpers
from osmem_server import OsmemServer

from collectors.event import Event
from soc.config import BulkConfig, ElasticsearchConfig
from soc.pipeline.sinks import SpoolingSink, StoreSink
from soc.pipeline.spool import DiskSpool
from soc.store.elastic import names, templates
from soc.store.elastic.connection import cluster_info, connect
from soc.store.elastic.store import ElasticEventStore
from tests.elastic.events import sshd_events
from tests.elastic.faultproxy import FaultProxy, fault_proxy, free_port


def _cfg(url: str, retries: int = 6) -> ElasticsearchConfig:
    return ElasticsearchConfig(url=[url], request_timeout=5.0,
                               bulk=BulkConfig(max_docs=50, max_retries=retries, initial_backoff=0.01))


def _sink(store: ElasticEventStore, spool_dir: Path) -> SpoolingSink:
    return SpoolingSink(StoreSink("store", store), DiskSpool(spool_dir), replay_interval=0.0)


def _ids(es: Elasticsearch) -> Counter[str]:
    es.indices.refresh(index=names.events_pattern("soc"), ignore_unavailable=True, allow_no_indices=True)
    resp = es.search(index=names.events_pattern("soc"), size=10_000, source=["event.id"], query={"match_all": {}})
    return Counter(h["_source"]["event"]["id"] for h in resp["hits"]["hits"])


def _batches(n: int, size: int) -> list[list[Event]]:
    events = sshd_events(n * size)
    return [events[i * size:(i + 1) * size] for i in range(n)]


@pytest.fixture
def proxy(osmem_url: str) -> Iterator[FaultProxy]:
    with fault_proxy(osmem_url) as p:
        yield p


def test_whole_requests_refused_with_503_are_retried_until_they_succeed(proxy: FaultProxy, es: Elasticsearch,
                                                                        tmp_path: Path) -> None:
    store = ElasticEventStore(_cfg(proxy.url), sleep=lambda _s: None)
    store.write(sshd_events(1))  # templates installed through the proxy first
    proxy.fail_requests(3, 503)
    events = sshd_events(150, offset=1)
    assert store.write(events) == 150
    assert proxy.counters.failed_requests == 3
    ids = _ids(es)
    assert len(ids) == 151 and max(ids.values()) == 1


def test_documents_rejected_with_429_inside_a_bulk_are_retried_alone(proxy: FaultProxy, es: Elasticsearch) -> None:
    store = ElasticEventStore(_cfg(proxy.url), sleep=lambda _s: None)
    store.write(sshd_events(1))
    proxy.reject_items(every=7, budget=40)
    assert store.write(sshd_events(200, offset=1)) == 200
    assert proxy.counters.rejected_items > 0
    assert store.stats()["retried"] == proxy.counters.rejected_items
    ids = _ids(es)
    assert len(ids) == 201 and max(ids.values()) == 1


def test_when_retries_run_out_the_batch_is_spooled_and_replayed_without_duplicates(
        proxy: FaultProxy, es: Elasticsearch, tmp_path: Path) -> None:
    store = ElasticEventStore(_cfg(proxy.url, retries=2), sleep=lambda _s: None)
    sink = _sink(store, tmp_path / "spool")
    batches = _batches(4, 50)
    assert sink.write(batches[0]).stored == 50
    # Half of the next batch gets in, then the cluster refuses everything.
    proxy.reject_items(every=2, budget=1_000_000)
    outcome = sink.write(batches[1])
    assert outcome.spooled == 50
    proxy.reject_items(every=0)
    proxy.fail_requests(1000, 429)
    assert sink.write(batches[2]).spooled == 50
    proxy.fail_requests(0)
    assert sink.replay() == 100
    assert sink.write(batches[3]).stored == 50
    ids = _ids(es)
    assert len(ids) == 200 and max(ids.values()) == 1


def test_the_cluster_stopping_mid_stream_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    port = free_port()
    first = OsmemServer.start(japanese=False, addr=f"127.0.0.1:{port}")
    url = first.url
    store = ElasticEventStore(_cfg(url, retries=1), sleep=lambda _s: None)
    sink = _sink(store, tmp_path / "spool")
    batches = _batches(6, 40)
    try:
        for batch in batches[:2]:
            assert sink.write(batch).stored == 40
        kept = _dump(connect(_cfg(url)))
    finally:
        first.close()
    # The cluster is gone: batches wait on disk, in order.
    for batch in batches[2:4]:
        assert sink.write(batch).spooled == 40
    assert sink.spool.pending_segments() == 2
    # It comes back (osmem keeps nothing across a restart: seed it with what it held).
    second = OsmemServer.start(japanese=False, addr=f"127.0.0.1:{port}")
    try:
        client = connect(_cfg(url))
        templates.install(client, cluster_info(client), _cfg(url))
        _restore(client, kept)
        assert sink.replay() == 80
        for batch in batches[4:]:
            assert sink.write(batch).stored == 40
        ids = _ids(client)
        assert len(ids) == 240 and max(ids.values()) == 1
        assert set(ids) == {e["event"]["id"] for b in batches for e in b}
    finally:
        second.close()


def _dump(client: Elasticsearch) -> list[dict[str, object]]:
    client.indices.refresh(index=names.events_pattern("soc"))
    hits = client.search(index=names.events_pattern("soc"), size=10_000, query={"match_all": {}})["hits"]["hits"]
    return [{"_op_type": "create", "_index": h["_index"], "_id": h["_id"], "_source": h["_source"]} for h in hits]


def _restore(client: Elasticsearch, docs: list[dict[str, object]]) -> None:
    helpers.bulk(client, docs, refresh=True)

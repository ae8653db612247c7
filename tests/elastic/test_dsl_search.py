"""The Elasticsearch translation of the query language finds the same events as the
SQLite store: real parsed OpenSSH, FortiGate and Apache lines, indexed in osmem with a
mapping built from FIELD_TYPES and written to a SQLite store, then searched both ways."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from osmem_server import OsmemServer

from collectors.ecs_fields import FIELD_TYPES
from collectors.event import Event
from collectors.parsers import ParseContext
from soc.query.dsl import query_body
from soc.store.base import TimeRange
from soc.store.elastic.connection import cluster_info
from soc.store.sqlite import SqliteEventStore
from tests.conftest import DATASETS
from tests.elastic.osmem import OsmemNode
from tests.parsers.helpers import failed, parse, wazuh_logs

INDEX = "dsl-parity"
CTX = ParseContext(now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))


def mapping_properties(flattened_type: str) -> dict[str, Any]:
    """Nested ``properties`` for every field of FIELD_TYPES (``a.b`` → ``a: {properties: {b: …}}``)."""
    root: dict[str, Any] = {}
    for name, ftype in sorted(FIELD_TYPES.items()):
        *parents, leaf = name.split(".")
        level = root
        for part in parents:
            level = level.setdefault(part, {"properties": {}})["properties"]
        level[leaf] = {"type": flattened_type if ftype == "flattened" else ftype}
    return root


def _lines(relative: str, count: int) -> list[str]:
    text = (DATASETS / relative).read_text(encoding="utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()][:count]


def _events() -> list[Event]:
    """About 200 events; the enricher's Vietnamese system names are added by hand."""
    groups = [
        (_lines("logs/loghub/OpenSSH/OpenSSH_2k.log.part1", 80), "Hệ thống Một cửa điện tử"),
        (_lines("firewall/elastic/test-fortinet.odd-lines.log", 15), None),
        (list(wazuh_logs(DATASETS / "firewall" / "wazuh" / "fortigate.jsonl")), None),
        (_lines("web/elastic-examples/apache_logs.part1", 40), "Cổng Dịch vụ công"),
        (_lines("web/apache-http-logs/acunetix.txt", 40), "CỔNG THÔNG TIN ĐIỆN TỬ"),
    ]
    events: list[Event] = []
    for lines, system in groups:
        for line in lines:
            event = parse(line, CTX)
            assert not failed(event), line
            if system is not None:
                event["gov"] = {"system": {"name": system}}
            events.append(event)
    return events


@pytest.fixture(scope="module")
def corpus(osmem_server: OsmemServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Elasticsearch, SqliteEventStore, set[str]]]:
    """One osmem clone and one SQLite store holding the same events, for the module."""
    events = _events()
    store = SqliteEventStore(Path(tmp_path_factory.mktemp("dsl")) / "e.db")
    assert store.write(events) == len(events)  # also gives each event its event.id
    clone = osmem_server.clone()
    es = Elasticsearch([clone.url], node_class=OsmemNode, request_timeout=30)
    props = mapping_properties(cluster_info(es).flattened_type)
    es.indices.create(index=INDEX, mappings={"dynamic": False, "properties": props})
    operations: list[dict[str, Any]] = []
    for event in events:
        operations += [{"index": {"_index": INDEX, "_id": event["event"]["id"]}}, copy.deepcopy(event)]
    result = es.bulk(operations=operations, refresh=True)
    assert not result["errors"], [i for i in result["items"] if "error" in i["index"]][:3]
    yield es, store, {e["event"]["id"] for e in events}
    store.close()
    clone.close()


def _es_ids(es: Elasticsearch, body: dict[str, Any]) -> set[str]:
    resp = es.search(index=INDEX, size=10_000, source=False, **body)
    return {hit["_id"] for hit in resp["hits"]["hits"]}


def _sqlite_ids(store: SqliteEventStore, query: str, time_range: TimeRange = TimeRange()) -> set[str]:
    return {e["event"]["id"] for e in store.search(query, time_range, limit=10_000)}


QUERIES = [
    # keyword terms: whole value, case-insensitive, lists
    "event.dataset:system.auth",
    "event.outcome:FAILURE",
    "user.name:admin",
    "event.category:authentication OR event.category:web",
    "event.type:denied",
    "host.hostname:labsz",
    # wildcards on keywords
    "user.name:web*",
    "user.name:?dmin",
    "url.path:/presentations/*",
    "user_agent.original:*Chrome*",
    "url.extension:(png OR jpg)",
    # Vietnamese letters fold case beyond ASCII
    'gov.system.name:"cổng dịch vụ công"',
    "gov.system.name:CỔNG*",
    "gov.system.name:*điện\\ tử",
    # text fields: words and phrases
    'message:"invalid user"',
    'message:"Failed password for root"',
    '"POSSIBLE BREAK-IN ATTEMPT"',
    "Invalid",
    "message:preauth",
    "fail*",
    "message:*ail*",
    "message:fail*\\ pass*",
    # boolean structure
    "NOT event.dataset:system.auth",
    "process.name:sshd AND NOT event.action:invalid_user",
    "NOT _exists_:user.name",
    "user.name:* AND NOT process.name:sshd",
    "destination.port:443 -source.ip:192.168.2.1",
    # numbers
    "http.response.status_code:[400 TO 499]",
    "http.response.status_code:>=500",
    "http.response.body.bytes:{1000 TO *]",
    "source.port:<1024",
    "log.syslog.priority:189",
    # time
    "@timestamp:2015-05-17",
    "@timestamp:[2025-12-10T00:00:00Z TO *]",
    "@timestamp:{2016-06-14 TO 2020-04-18T17:17:49Z}",
    # IP addresses
    "source.ip:192.168.0.0/16",
    "related.ip:173.234.*",
    "source.ip:[1.0.0.0 TO 100.0.0.0}",
    "destination.ip:67.43.156.13",
    # existence and flattened objects
    "_exists_:fortinet.firewall",
    "_exists_:source.domain",
    "fortinet.firewall.srcintf:PORT1",
    "fortinet.firewall.subtype:web*",
    "fortinet.firewall:wan1",
    "fortinet.firewall.policyid:[10 TO 50]",
    "user:admin",
]


@pytest.mark.parametrize("query", QUERIES)
def test_elasticsearch_finds_what_sqlite_finds(corpus: tuple[Elasticsearch, SqliteEventStore, set[str]],
                                               query: str) -> None:
    es, store, _ = corpus
    assert _es_ids(es, query_body(query)) == _sqlite_ids(store, query)


def test_the_queries_are_not_trivial(corpus: tuple[Elasticsearch, SqliteEventStore, set[str]]) -> None:
    """Most queries of the table select a proper, non-empty part of the corpus, so an
    equality above is evidence rather than two empty sets."""
    _, store, everything = corpus
    sizes = [len(_sqlite_ids(store, q)) for q in QUERIES]
    proper = [q for q, n in zip(QUERIES, sizes, strict=True) if 0 < n < len(everything)]
    assert len(proper) >= len(QUERIES) - 2, [q for q in QUERIES if q not in proper]


def test_time_window_is_the_same_as_sqlite(corpus: tuple[Elasticsearch, SqliteEventStore, set[str]]) -> None:
    es, store, _ = corpus
    since, until = datetime(2015, 5, 17, 10, 5, 43), datetime(2020, 4, 18, 17, 17, 49, 52000, tzinfo=UTC)
    for query in ("*", "event.kind:event", "NOT source.ip:83.149.9.216"):
        expected = _sqlite_ids(store, query, TimeRange(since, until))
        assert expected
        assert _es_ids(es, query_body(query, since, until)) == expected


def test_text_is_searched_by_whole_words_not_substrings(
        corpus: tuple[Elasticsearch, SqliteEventStore, set[str]]) -> None:
    """The documented difference: SQLite finds "ail" inside "failed", Elasticsearch
    looks for the word; a word pattern finds it in both."""
    es, store, _ = corpus
    assert _sqlite_ids(store, "ail")
    assert _es_ids(es, query_body("ail")) == set()
    assert _es_ids(es, query_body("*ail*")) == _sqlite_ids(store, "ail")

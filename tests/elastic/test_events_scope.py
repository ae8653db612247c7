"""The agency scope of event searches on the Elasticsearch path (osmem): a ``terms``
filter on ``gov.agency.id`` beside the analyst's query, never inside its text."""

from __future__ import annotations

import json

import pytest

from collectors.event import Event
from soc.config import ElasticsearchConfig
from soc.query.dsl import query_body
from soc.store.elastic.store import ElasticEventStore
from tests.elastic.events import sshd_events

HY_CUONG, CHU_HOA, THANH_SON = "xa-hy-cuong", "xa-chu-hoa", "xa-thanh-son"


def _events() -> list[Event]:
    """Real sshd events: 10 per agency, 5 that no system claims."""
    out: list[Event] = []
    for n, agency in enumerate((HY_CUONG, CHU_HOA, THANH_SON, None)):
        batch = sshd_events(10 if agency else 5, offset=10 * n, system=f"sys-{agency}" if agency else "unassigned")
        for event in batch:
            if agency:
                event["gov"]["agency"] = {"id": agency, "name": agency}
        out += batch
    return out


@pytest.fixture
def store(es_config: ElasticsearchConfig) -> ElasticEventStore:
    s = ElasticEventStore(es_config, sleep=lambda _s: None)
    assert s.write(_events()) == 35
    s.refresh()
    return s


def _agencies(found: list[Event]) -> dict[str | None, int]:
    counts: dict[str | None, int] = {}
    for event in found:
        agency = (event["gov"].get("agency") or {}).get("id")
        counts[agency] = counts.get(agency, 0) + 1
    return counts


def test_search_keeps_to_the_given_agencies(store: ElasticEventStore) -> None:
    found = store.search("*", limit=100, agencies=frozenset({HY_CUONG, CHU_HOA}))
    assert _agencies(found) == {HY_CUONG: 10, CHU_HOA: 10}
    assert store.count("*", agencies=frozenset({HY_CUONG, CHU_HOA})) == 20


def test_no_agencies_means_every_event_including_unassigned(store: ElasticEventStore) -> None:
    assert _agencies(store.search("*", limit=100)) == {HY_CUONG: 10, CHU_HOA: 10, THANH_SON: 10, None: 5}
    assert store.count("*", agencies=None) == 35


def test_an_empty_agency_set_matches_nothing(store: ElasticEventStore) -> None:
    assert store.search("*", agencies=frozenset()) == [] and store.count("*", agencies=frozenset()) == 0


@pytest.mark.parametrize("q", [f"gov.agency.id:{THANH_SON}", "* OR gov.agency.id:*", f"NOT gov.agency.id:{HY_CUONG}",
                               "gov.system.id:unassigned"])
def test_query_text_cannot_reach_outside_the_agencies(store: ElasticEventStore, q: str) -> None:
    found = store.search(q, limit=100, agencies=frozenset({HY_CUONG}))
    assert set(_agencies(found)) <= {HY_CUONG}
    assert store.count(q, agencies=frozenset({HY_CUONG})) == len(found)


def test_the_query_narrows_within_the_agencies(store: ElasticEventStore) -> None:
    everything = store.count("event.outcome:failure")
    scoped = store.count("event.outcome:failure", agencies=frozenset({HY_CUONG}))
    assert 0 < scoped < everything
    assert scoped == len([e for e in store.search("event.outcome:failure", limit=100, agencies=frozenset({HY_CUONG}))
                          if e["gov"]["agency"]["id"] == HY_CUONG])


def test_the_scope_is_a_terms_filter_beside_the_query() -> None:
    body = query_body("user.name:root", agencies=frozenset({"xa-b", "xa-a"}))
    assert {"terms": {"gov.agency.id": ["xa-a", "xa-b"]}} in body["query"]["bool"]["filter"]
    assert "query_string" not in json.dumps(body)

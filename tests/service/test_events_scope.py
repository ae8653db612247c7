"""``GET /api/v1/events`` returns only events of the caller's agencies (SQLite store);
the scope is a condition of its own that no query text can widen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from collectors.event import Event
from soc.pipeline.build import Topology
from soc.store.base import TimeRange
from soc.store.sqlite import SqliteEventStore
from tests.service.conftest import Caller

# Event counts per agency; None: no system claims them (unassigned).
PER_AGENCY: dict[str | None, int] = {"xa-hy-cuong": 3, "xa-chu-hoa": 2, "xa-thanh-son": 2, "huyen-thanh-son": 1,
                                     "so-khcn": 2, None: 2}


def events() -> list[Event]:
    out: list[Event] = []
    for agency, count in PER_AGENCY.items():
        for i in range(count):
            gov: dict[str, Any] = ({"system": {"id": "unassigned"}} if agency is None else
                                   {"system": {"id": f"sys-{agency}"}, "agency": {"id": agency, "name": agency}})
            out.append({"@timestamp": f"2026-11-24T01:{len(out):02d}:00.000Z",
                        "event": {"id": f"{agency or 'none'}-{i}", "dataset": "openssh", "outcome": "failure"},
                        "user": {"name": "root"}, "message": f"Failed password for root ({agency})", "gov": gov})
    return out


@pytest.fixture
def stored(topology: Topology) -> None:
    topology.store.write(events())


def _agencies(client: TestClient, caller: Caller, q: str = "*") -> tuple[list[str | None], int]:
    response = client.get("/api/v1/events", params={"q": q, "count": "true", "limit": 1000}, headers=caller.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    found = sorted(((e["gov"].get("agency") or {}).get("id") for e in body["events"]), key=str)
    return found, body["total"]


def _expected(*agencies: str | None) -> list[str | None]:
    return sorted((a for a in agencies for _ in range(PER_AGENCY[a])), key=str)


def test_a_commune_reader_sees_its_events_and_those_of_communes_merged_into_it(
        stored: None, client: TestClient, make_caller: Callable[..., Caller]) -> None:
    found, total = _agencies(client, make_caller("viewer", ["xa-hy-cuong"]))
    assert found == _expected("xa-hy-cuong", "xa-chu-hoa") and total == 5


def test_a_district_reader_sees_the_district_and_its_communes(
        stored: None, client: TestClient, make_caller: Callable[..., Caller]) -> None:
    found, total = _agencies(client, make_caller("analyst", ["huyen-thanh-son"]))
    assert found == _expected("huyen-thanh-son", "xa-thanh-son") and total == 3


def test_a_province_reader_sees_every_event_including_unassigned(
        stored: None, client: TestClient, make_caller: Callable[..., Caller]) -> None:
    found, total = _agencies(client, make_caller("viewer", ["tinh-phu-tho"]))
    assert found == _expected(*PER_AGENCY) and total == len(events())


def test_a_reader_bound_to_no_agency_sees_no_event(stored: None, client: TestClient,
                                                   make_caller: Callable[..., Caller]) -> None:
    assert _agencies(client, make_caller("viewer", [])) == ([], 0)


@pytest.mark.parametrize("q", ["gov.agency.id:so-khcn", "* OR gov.agency.id:*", "NOT gov.agency.id:xa-hy-cuong",
                               "gov.system.id:unassigned"])
def test_query_text_cannot_reach_outside_the_scope(stored: None, client: TestClient,
                                                   make_caller: Callable[..., Caller], q: str) -> None:
    found, total = _agencies(client, make_caller("viewer", ["xa-hy-cuong"]), q)
    assert set(found) <= {"xa-hy-cuong", "xa-chu-hoa"} and total == len(found)


def test_the_query_still_narrows_within_the_scope(stored: None, client: TestClient,
                                                  make_caller: Callable[..., Caller]) -> None:
    found, _ = _agencies(client, make_caller("viewer", ["xa-hy-cuong"]), "gov.agency.id:xa-chu-hoa")
    assert found == _expected("xa-chu-hoa")


# --- the store's own filter -------------------------------------------------------

@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteEventStore]:
    with SqliteEventStore(tmp_path / "events.db") as s:
        s.write(events())
        yield s


def _ids(found: list[Event]) -> set[str]:
    return {e["event"]["id"] for e in found}


def test_no_agencies_means_no_restriction(store: SqliteEventStore) -> None:
    assert len(store.search("*", limit=100, agencies=None)) == store.count("*") == len(events())


def test_an_empty_agency_set_matches_nothing(store: SqliteEventStore) -> None:
    assert store.search("*", agencies=frozenset()) == [] and store.count("*", agencies=frozenset()) == 0


def test_agencies_combine_with_the_query_and_time_range(store: SqliteEventStore) -> None:
    window = TimeRange(datetime(2026, 11, 24, 1, 1, tzinfo=UTC), datetime(2026, 11, 24, 1, 4, tzinfo=UTC))
    found = store.search("event.outcome:failure", window, agencies=frozenset({"xa-hy-cuong", "xa-chu-hoa"}))
    assert _ids(found) == {"xa-hy-cuong-1", "xa-hy-cuong-2", "xa-chu-hoa-0"}
    assert store.count("event.outcome:failure", window, agencies=frozenset({"xa-hy-cuong", "xa-chu-hoa"})) == 3


def test_agency_ids_are_values_not_sql(store: SqliteEventStore) -> None:
    hostile = frozenset({"x') OR 1=1 --", "xa-hy-cuong\" OR \"1\"=\"1"})
    assert store.search("*", agencies=hostile) == [] and store.count("*", agencies=hostile) == 0

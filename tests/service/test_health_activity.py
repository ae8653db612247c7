"""Arrival counters: real log lines through the ingest API or the pipeline, counted on
the system's log source they belong to, flushed to the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from soc.api.state import AppState
from soc.db import Database
from soc.inventory.activity import ActivityTracker
from soc.inventory.health import onboarding_state
from soc.pipeline.build import Topology
from tests.service.conftest import Caller
from tests.service.health_fixtures import (
    NGINX,
    SSHD,
    T0,
    Src,
    add_key,
    add_system,
    feed,
    lines,
    source_row,
    system_row,
    tracker,
)

__all__ = ["tracker"]

PORTAL = [Src("web-access", "nginx", "file", 300), Src("app-audit", "json", "http", 900)]


def _ingest(client: TestClient, key: str, body: list[str], query: str = "") -> dict[str, int]:
    response = client.post(f"/api/v1/ingest{query}", content="\n".join(body),
                           headers={"X-Ingest-Key": key, "Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()
    return result


def test_ingested_lines_are_counted_on_the_named_log_source(
        client: TestClient, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "dvc", sources=PORTAL)
    key = add_key(db, app_state.registry, "dvc")
    _ingest(client, key, lines(NGINX, 40), "?source=web-access")
    tracker.flush(db)
    web = source_row(db, "dvc", "web-access")
    assert (web.events_total, web.parse_failures_total) == (40, 0)
    assert web.last_seen_at is not None
    assert source_row(db, "dvc", "app-audit").events_total == 0


def test_first_log_moves_onboarding_from_awaiting_to_receiving(
        client: TestClient, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "dvc", sources=PORTAL)
    key = add_key(db, app_state.registry, "dvc")
    before = system_row(db, "dvc")
    assert onboarding_state(before, [], T0) == "awaiting_first_log"
    _ingest(client, key, lines(NGINX, 5))
    tracker.flush(db)
    after = system_row(db, "dvc")
    assert after.first_log_at is not None
    assert onboarding_state(after, [source_row(db, "dvc", "web-access")], T0) == "receiving"


def test_first_log_at_is_kept_when_more_logs_arrive(
        topology: Topology, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "dvc", sources=PORTAL)
    feed(topology, lines(NGINX, 3), at=T0, system_id="dvc")
    tracker.flush(db)
    feed(topology, lines(NGINX, 3), at=T0 + timedelta(hours=1), system_id="dvc")
    tracker.flush(db)
    assert system_row(db, "dvc").first_log_at == T0
    assert source_row(db, "dvc", "web-access").last_seen_at == T0 + timedelta(hours=1)


def test_parse_failure_rate_counts_malformed_lines_on_the_stream_they_came_in(
        client: TestClient, db: Database, app_state: AppState, make_caller: Callable[..., Caller],
        tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "dvc", sources=PORTAL)
    key = add_key(db, app_state.registry, "dvc")
    garbage = [f"\x01\x02 truncated record {i} ***" for i in range(10)]
    _ingest(client, key, lines(NGINX, 30) + garbage)
    tracker.flush(db)
    web = source_row(db, "dvc", "web-access")
    assert (web.events_total, web.parse_failures_total) == (40, 10)
    health = client.get("/api/v1/systems/dvc/health", headers=make_caller("viewer").headers).json()
    by_name = {s["name"]: s for s in health["sources"]}
    assert by_name["web-access"]["parse_failure_rate"] == 0.25
    assert health["parse_failure_rate"] == 0.25


def test_events_without_a_named_source_go_to_the_source_of_their_format(
        topology: Topology, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "srv", sources=[Src("web-access", "nginx", "file"),
                                                       Src("linux-auth", "syslog", "file")])
    feed(topology, lines(NGINX, 7), at=T0, system_id="srv")
    feed(topology, lines(SSHD, 11), at=T0, system_id="srv")
    tracker.flush(db)
    assert source_row(db, "srv", "web-access").events_total == 7
    assert source_row(db, "srv", "linux-auth").events_total == 11


def test_a_declared_format_decides_the_source(
        topology: Topology, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "srv", sources=[Src("tomcat-access", "tomcat", "file"),
                                                       Src("linux-auth", "syslog", "file")])
    feed(topology, lines(NGINX, 4), at=T0, system_id="srv", fmt="tomcat")
    tracker.flush(db)
    assert source_row(db, "srv", "tomcat-access").events_total == 4


def test_a_configured_source_names_the_log_source_its_events_count_for(
        topology: Topology, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    # Two nginx streams of one system: format alone cannot tell them apart.
    add_system(db, app_state.registry, "srv", sources=[Src("web-access", "nginx", "file"),
                                                       Src("api-gateway", "nginx", "file")])
    tracker.log_sources["test-file"] = "api-gateway"
    feed(topology, lines(NGINX, 6), at=T0, system_id="srv")
    tracker.flush(db)
    assert source_row(db, "srv", "api-gateway").events_total == 6
    assert source_row(db, "srv", "web-access").events_total == 0


def test_syslog_from_an_agentless_device_counts_on_its_syslog_source(
        topology: Topology, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "core-switch", system_type="network", cidrs=["10.20.0.0/24"],
               sources=[Src("device-syslog", "auto", "syslog", 3600), Src("netflow", "json", "http")])
    feed(topology, lines(SSHD, 9), at=T0, kind="syslog", peer="10.20.0.7")
    tracker.flush(db)
    device = source_row(db, "core-switch", "device-syslog")
    assert (device.events_total, device.last_seen_at) == (9, T0)
    assert system_row(db, "core-switch").first_log_at == T0


def test_arrival_time_is_recorded_not_event_time(
        topology: Topology, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "dvc", sources=PORTAL)
    feed(topology, lines(NGINX, 3), at=T0, system_id="dvc")  # the lines are from May 2015
    tracker.flush(db)
    assert source_row(db, "dvc", "web-access").last_seen_at == T0


def test_events_no_source_matches_are_shown_as_unlisted(
        client: TestClient, db: Database, app_state: AppState, make_caller: Callable[..., Caller],
        tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "dvc", sources=[Src("web-access", "nginx", "file"),
                                                       Src("app-audit", "json", "file")])
    key = add_key(db, app_state.registry, "dvc")
    _ingest(client, key, lines(SSHD, 6))
    tracker.flush(db)
    assert source_row(db, "dvc", "web-access").events_total == 0
    assert source_row(db, "dvc", "app-audit").events_total == 0
    health = client.get("/api/v1/systems/dvc/health", headers=make_caller("viewer").headers).json()
    assert health["unlisted"]["events_total"] == 6
    assert health["unlisted"]["watched"] is False
    assert health["state"] == "receiving"


def test_an_unknown_source_name_is_refused_naming_the_known_ones(
        client: TestClient, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "dvc", sources=PORTAL)
    key = add_key(db, app_state.registry, "dvc")
    response = client.post("/api/v1/ingest?source=web-acess", content="x",
                           headers={"X-Ingest-Key": key, "Content-Type": "text/plain"})
    assert response.status_code == 400
    body = response.json()
    assert "app-audit, web-access" in body["detail_en"]
    assert "app-audit, web-access" in body["detail_vi"]
    assert tracker.pending_events() == 0


def test_counters_wait_in_memory_until_flushed(
        topology: Topology, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "dvc", sources=PORTAL)
    feed(topology, lines(NGINX, 5), at=T0, system_id="dvc")
    assert tracker.pending_events() == 5
    assert source_row(db, "dvc", "web-access").events_total == 0
    tracker.flush(db)
    assert tracker.pending_events() == 0
    assert source_row(db, "dvc", "web-access").events_total == 5



def test_counters_are_kept_for_the_next_flush_when_the_database_is_away(
        topology: Topology, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker,
        tmp_path: Path) -> None:
    add_system(db, app_state.registry, "srv", sources=[Src("web-access", "nginx", "file"),
                                                       Src("app-audit", "json", "http")])
    feed(topology, lines(NGINX, 5), at=T0, system_id="srv")
    feed(topology, lines(NGINX, 2), at=T0, system_id="srv", log_source="web-access")
    away = Database(f"sqlite:///{tmp_path / 'missing' / 'soc.db'}")
    with pytest.raises(OperationalError):
        tracker.flush(away)
    away.dispose()
    tracker.flush(db)
    assert source_row(db, "srv", "web-access").events_total == 7

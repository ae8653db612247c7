"""The source-health routes: a system's health, every source's state, re-learning an
interval; scope hides other agencies' systems."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from soc.alerts.store import AlertStore
from soc.api.state import AppState
from soc.audit.models import AuditEntry
from soc.db import Database
from soc.inventory.activity import ActivityTracker
from soc.inventory.models import LogSourceRow
from soc.inventory.silence import check_silence
from soc.pipeline.build import Topology
from tests.service.conftest import Caller
from tests.service.health_fixtures import NGINX, T0, Src, add_key, add_system, feed, lines, tracker

__all__ = ["tracker"]


@pytest.fixture
def province(topology: Topology, db: Database, app_state: AppState, agencies: list[str],
             tracker: ActivityTracker) -> None:
    """``dvc`` (so-khcn) receiving, ``mail`` (xa-hy-cuong) silent, ``cms`` (so-khcn)
    awaiting its first log."""
    add_system(db, app_state.registry, "dvc", sources=[Src("web-access", "nginx", "file", 600)])
    add_system(db, app_state.registry, "mail", agency="xa-hy-cuong",
               sources=[Src("postfix", "syslog", "syslog", 600)])
    add_system(db, app_state.registry, "cms", sources=[Src("web-access", "nginx", "file")])
    now = T0 + timedelta(seconds=700)
    feed(topology, lines(NGINX, 3), at=now, system_id="dvc")
    tracker.flush(db)
    check_silence(db, AlertStore(db.engine), now=now)


def _set_gaps(db: Database, gaps: dict[str, int]) -> None:
    with db.write() as session:
        row = session.scalars(select(LogSourceRow).where(LogSourceRow.system_id == "dvc")).one()
        row.history = {"gaps": gaps, "last_minute": 1}


def test_a_systems_health_moves_from_awaiting_to_receiving(
        client: TestClient, topology: Topology, db: Database, app_state: AppState, agencies: list[str],
        tracker: ActivityTracker, make_caller: Callable[..., Caller]) -> None:
    add_system(db, app_state.registry, "dvc", sources=[Src("web-access", "nginx", "file", 600)])
    key = add_key(db, app_state.registry, "dvc")
    viewer = make_caller("viewer")
    before = client.get("/api/v1/systems/dvc/health", headers=viewer.headers).json()
    assert (before["state"], before["sources"][0]["state"]) == ("awaiting_first_log", "awaiting")
    client.post("/api/v1/ingest", content="\n".join(lines(NGINX, 4)),
                headers={"X-Ingest-Key": key, "Content-Type": "text/plain"})
    tracker.flush(db)
    after = client.get("/api/v1/systems/dvc/health", headers=viewer.headers).json()
    assert (after["state"], after["sources"][0]["state"]) == ("receiving", "receiving")
    assert after["first_log_at"] is not None
    assert after["sources"][0]["events_total"] == 4
    assert after["sources"][0]["interval_s"] == 600


def test_a_system_outside_the_callers_scope_is_not_found(
        client: TestClient, province: None, make_caller: Callable[..., Caller]) -> None:
    commune = make_caller("viewer", ["xa-thanh-son"])
    response = client.get("/api/v1/systems/dvc/health", headers=commune.headers)
    assert response.status_code == 404
    assert client.get("/api/v1/systems/nope/health", headers=commune.headers).status_code == 404


def test_the_source_list_filters_by_state(
        client: TestClient, province: None, make_caller: Callable[..., Caller]) -> None:
    viewer = make_caller("viewer")
    listed = {
        state: [(i["system_id"], i["name"]) for i in
                client.get(f"/api/v1/health/sources?state={state}", headers=viewer.headers).json()["items"]]
        for state in ("silent", "receiving", "awaiting")
    }
    assert listed == {"silent": [("mail", "postfix")], "receiving": [("dvc", "web-access")],
                      "awaiting": [("cms", "web-access")]}


def test_the_source_list_shows_only_systems_in_scope(
        client: TestClient, province: None, make_caller: Callable[..., Caller]) -> None:
    department = make_caller("viewer", ["so-khcn"])
    body = client.get("/api/v1/health/sources", headers=department.headers).json()
    assert body["total"] == 2
    assert {i["system_id"] for i in body["items"]} == {"dvc", "cms"}


def test_a_silent_source_shows_its_alert_and_since_when(
        client: TestClient, province: None, make_caller: Callable[..., Caller]) -> None:
    health = client.get("/api/v1/systems/mail/health", headers=make_caller("viewer").headers).json()
    [postfix] = health["sources"]
    assert postfix["silent"] is True
    assert postfix["silent_since"] == T0.isoformat()
    assert postfix["silent_alert_id"]
    assert health["state"] == "awaiting_first_log"


def test_learning_an_interval_returns_it_and_is_audited(
        client: TestClient, province: None, db: Database, make_caller: Callable[..., Caller]) -> None:
    _set_gaps(db, {"2": 25})
    response = client.post("/api/v1/systems/dvc/sources/web-access/learn", headers=make_caller("admin").headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["learned_interval_s"], body["samples"]) == (270, 25)
    with db.read() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "log_source.learn")).one()
    assert entry.target_id == "dvc/web-access"
    assert entry.after is not None and entry.after["learned_interval_s"] == 270


def test_learning_with_too_few_gaps_says_how_many_are_needed(
        client: TestClient, province: None, db: Database, make_caller: Callable[..., Caller]) -> None:
    _set_gaps(db, {"2": 3})
    response = client.post("/api/v1/systems/dvc/sources/web-access/learn", headers=make_caller("admin").headers)
    assert response.status_code == 409
    assert "3" in response.json()["detail_en"] and "20" in response.json()["detail_en"]


def test_learning_with_reset_forgets_the_arrival_history(
        client: TestClient, province: None, db: Database, make_caller: Callable[..., Caller]) -> None:
    _set_gaps(db, {"2": 25})
    admin = make_caller("admin")
    client.post("/api/v1/systems/dvc/sources/web-access/learn", headers=admin.headers)
    response = client.post("/api/v1/systems/dvc/sources/web-access/learn?reset=true", headers=admin.headers)
    assert response.status_code == 200
    assert (response.json()["learned_interval_s"], response.json()["samples"]) == (None, 0)


def test_learning_needs_the_service_write_permission(
        client: TestClient, province: None, make_caller: Callable[..., Caller]) -> None:
    response = client.post("/api/v1/systems/dvc/sources/web-access/learn", headers=make_caller("analyst").headers)
    assert response.status_code == 403


def test_learning_a_source_outside_scope_or_unknown_is_not_found(
        client: TestClient, province: None, make_caller: Callable[..., Caller]) -> None:
    district_admin = make_caller("admin", ["huyen-thanh-son"])
    assert client.post("/api/v1/systems/dvc/sources/web-access/learn",
                       headers=district_admin.headers).status_code == 404
    admin = make_caller("admin")
    assert client.post("/api/v1/systems/dvc/sources/nope/learn", headers=admin.headers).status_code == 404

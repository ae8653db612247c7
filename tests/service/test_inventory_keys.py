"""Ingest keys through the API: shown once, stored as digests, rotated with a grace
period, revoked at once, and their last use recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from soc.api.state import AppState
from soc.config import SocConfig
from soc.db import Database, utcnow
from soc.inventory.models import IngestKeyRow
from soc.systems import hash_secret
from tests.service.conftest import Caller
from tests.service.inventory_fixtures import ingest, inventory_config, onboard

KEYS = "/api/v1/systems/web-xa-thanh-son/keys"


@pytest.fixture
def soc_config(tmp_path: Path) -> SocConfig:
    return inventory_config(tmp_path)


@pytest.fixture
def admin(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller("admin", ["tinh-phu-tho"])


@pytest.fixture
def first_key(client: TestClient, admin: Caller) -> dict[str, str]:
    """The key issued when the system was onboarded: its id and secret."""
    created = onboard(client, admin)["ingest_key"]
    return {"id": created["id"], "key": created["key"]}


def test_a_created_key_is_shown_once_and_never_listed(client: TestClient, admin: Caller,
                                                      first_key: dict[str, str], db: Database) -> None:
    response = client.post(KEYS, json={"name": "nxlog-web01"}, headers=admin.headers)
    assert response.status_code == 201
    secret = response.json()["key"]
    assert ingest(client, secret).status_code == 200
    listed = client.get(KEYS, headers=admin.headers)
    assert secret not in listed.text and first_key["key"] not in listed.text
    assert {k["name"] for k in listed.json()} == {"default", "nxlog-web01"}
    with db.read() as session:
        digests = set(session.scalars(select(IngestKeyRow.digest)))
    assert hash_secret(secret) in digests


def test_a_rotated_key_keeps_working_during_its_grace_period(client: TestClient, admin: Caller,
                                                             first_key: dict[str, str]) -> None:
    response = client.post(f"{KEYS}/{first_key['id']}/rotate", json={"grace_hours": 24}, headers=admin.headers)
    assert response.status_code == 201, response.text
    rotated = response.json()
    assert rotated["previous"]["state"] == "expiring"
    assert ingest(client, first_key["key"]).status_code == 200
    assert ingest(client, rotated["key"]["key"]).status_code == 200


def test_a_rotated_key_stops_when_its_grace_period_ends(client: TestClient, admin: Caller, app_state: AppState,
                                                        first_key: dict[str, str]) -> None:
    rotated = client.post(f"{KEYS}/{first_key['id']}/rotate", json={"grace_hours": 2},
                          headers=admin.headers).json()
    later = utcnow() + timedelta(hours=3)
    assert app_state.registry.system_for_key(first_key["key"], now=later) is None
    assert app_state.registry.system_for_key(rotated["key"]["key"], now=later) == "web-xa-thanh-son"


def test_a_rotation_without_grace_stops_the_old_key_at_once(client: TestClient, admin: Caller,
                                                            first_key: dict[str, str]) -> None:
    rotated = client.post(f"{KEYS}/{first_key['id']}/rotate", json={"grace_hours": 0},
                          headers=admin.headers).json()
    assert ingest(client, first_key["key"]).status_code == 401
    assert ingest(client, rotated["key"]["key"]).status_code == 200


def test_the_default_grace_period_is_a_day(client: TestClient, admin: Caller, first_key: dict[str, str]) -> None:
    before = utcnow()
    previous = client.post(f"{KEYS}/{first_key['id']}/rotate", json={}, headers=admin.headers).json()["previous"]
    expires = datetime.fromisoformat(previous["expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - before < timedelta(hours=24, minutes=1)


def test_a_revoked_key_stops_at_once(client: TestClient, admin: Caller, first_key: dict[str, str]) -> None:
    assert ingest(client, first_key["key"]).status_code == 200
    response = client.delete(f"{KEYS}/{first_key['id']}", headers=admin.headers)
    assert response.status_code == 200
    assert response.json()["state"] == "revoked"
    refused = ingest(client, first_key["key"])
    assert refused.status_code == 401
    assert refused.json()["detail_vi"]


def test_a_revoked_key_cannot_be_rotated(client: TestClient, admin: Caller, first_key: dict[str, str]) -> None:
    client.delete(f"{KEYS}/{first_key['id']}", headers=admin.headers)
    response = client.post(f"{KEYS}/{first_key['id']}/rotate", json={}, headers=admin.headers)
    assert response.status_code == 409


def test_a_key_of_another_system_is_404(client: TestClient, admin: Caller, first_key: dict[str, str]) -> None:
    onboard(client, admin, "web-hy-cuong", "xa-hy-cuong")
    response = client.delete(f"/api/v1/systems/web-hy-cuong/keys/{first_key['id']}", headers=admin.headers)
    assert response.status_code == 404
    assert ingest(client, first_key["key"]).status_code == 200


def test_an_analyst_cannot_create_keys(client: TestClient, make_caller: Callable[..., Caller],
                                       first_key: dict[str, str]) -> None:
    analyst = make_caller("analyst", ["tinh-phu-tho"])
    assert client.post(KEYS, json={}, headers=analyst.headers).status_code == 403
    assert client.get(KEYS, headers=analyst.headers).status_code == 200


def test_the_last_use_of_a_key_is_recorded_at_most_once_a_minute(app_state: AppState, db: Database,
                                                                  first_key: dict[str, str]) -> None:
    def last_used() -> object:
        with db.read() as session:
            return session.get(IngestKeyRow, first_key["id"]).last_used_at  # type: ignore[union-attr]

    t0 = utcnow()
    assert app_state.registry.system_for_key(first_key["key"], now=t0) == "web-xa-thanh-son"
    assert last_used() == t0
    app_state.registry.system_for_key(first_key["key"], now=t0 + timedelta(seconds=30))
    assert last_used() == t0
    app_state.registry.system_for_key(first_key["key"], now=t0 + timedelta(seconds=61))
    assert last_used() == t0 + timedelta(seconds=61)


def test_a_key_with_an_expiry_stops_then(client: TestClient, admin: Caller, app_state: AppState,
                                         first_key: dict[str, str]) -> None:
    ends = utcnow() + timedelta(days=30)
    response = client.post(KEYS, json={"name": "contractor", "expires_at": ends.isoformat()},
                           headers=admin.headers)
    secret = response.json()["key"]
    assert app_state.registry.system_for_key(secret) == "web-xa-thanh-son"
    assert app_state.registry.system_for_key(secret, now=ends + timedelta(seconds=1)) is None

"""Systems through the API: one-request onboarding, changes with optimistic
concurrency, decommissioning, log sources, validation and agency scope."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from soc.api.state import AppState
from soc.audit.models import AuditEntry
from soc.config import SocConfig
from soc.db import Database
from tests.service.conftest import Caller
from tests.service.inventory_fixtures import ingest, inventory_config, onboard, stored_systems, system_body

URL = "/api/v1/systems"


@pytest.fixture
def soc_config(tmp_path: Path) -> SocConfig:
    return inventory_config(tmp_path)


@pytest.fixture
def admin(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller("admin", ["tinh-phu-tho"])


# --- one-request onboarding ------------------------------------------------------------

def test_onboarding_returns_a_key_that_ingests_events_attributed_to_the_system(
        client: TestClient, admin: Caller, app_state: AppState) -> None:
    created = onboard(client, admin)
    key = created["ingest_key"]["key"]
    assert key.startswith("soc_ingest_")
    response = ingest(client, key)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1
    assert stored_systems(app_state.store) == ["web-xa-thanh-son"]
    event = app_state.store.search("*", limit=1)[0]
    assert event["gov"]["agency"]["id"] == "xa-thanh-son"
    assert event["gov"]["level"] == "commune"


def test_onboarding_creates_the_log_sources_and_awaits_the_first_log(client: TestClient, admin: Caller) -> None:
    system = onboard(client, admin)["system"]
    assert system["onboarding"] == "awaiting_first_log"
    source = system["log_sources"][0]
    assert (source["name"], source["format"], source["transport"]) == ("web-access", "nginx", "syslog")
    assert source["expected_interval_s"] == 3600 and source["expected_interval"] == "1h"
    assert system["owner"] == {"name": "Nguyễn Văn A", "email": "a.nguyen@phutho.gov.vn"}


def test_onboarding_without_issue_key_creates_no_key(client: TestClient, admin: Caller) -> None:
    created = onboard(client, admin, issue_key=False)
    assert created["ingest_key"] is None
    keys = client.get(f"{URL}/web-xa-thanh-son/keys", headers=admin.headers).json()
    assert keys == []


def test_a_new_system_attributes_by_its_network_at_once(client: TestClient, admin: Caller,
                                                        app_state: AppState) -> None:
    onboard(client, admin, cidrs=["10.40.9.0/28"])
    assert app_state.registry.system_for_ip("10.40.9.3") == "web-xa-thanh-son"


def test_an_existing_id_is_refused_with_409(client: TestClient, admin: Caller) -> None:
    onboard(client, admin)
    response = client.post(URL, json=system_body(), headers=admin.headers)
    assert response.status_code == 409
    assert "web-xa-thanh-son" in response.json()["detail"]


@pytest.mark.parametrize(("override", "field_word"), [
    ({"type": "mainframe"}, "type"),
    ({"classification": 7}, "classification"),
    ({"cidrs": ["10.0.0.0/99"]}, "cidrs"),
    ({"hosts": ["bad host!"]}, "hosts"),
    ({"id": "Bad Id"}, "id"),
    ({"id": "unassigned"}, "unassigned"),
    ({"profile": "nonesuch"}, "nonesuch"),
    ({"level": "village"}, "level"),
    ({"owner": {"name": "A", "email": "not-an-address"}}, "not-an-address"),
    ({"log_sources": [{"name": "a", "format": "klingon"}]}, "format"),
    ({"log_sources": [{"name": "a", "transport": "pigeon"}]}, "transport"),
    ({"log_sources": [{"name": "a", "expected_interval": "5 fortnights"}]}, "expected_interval"),
    ({"log_sources": [{"name": "a"}, {"name": "a"}]}, "'a'"),
])
def test_invalid_fields_are_refused_saying_what_to_fix_in_both_languages(
        client: TestClient, admin: Caller, override: dict[str, Any], field_word: str) -> None:
    response = client.post(URL, json=system_body(**override), headers=admin.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert field_word in problem["detail"]
    assert problem["detail_vi"] and problem["detail_vi"] != problem["detail"]
    assert client.get(f"{URL}/{override.get('id', 'web-xa-thanh-son')}", headers=admin.headers).status_code == 404


# --- scope and roles -------------------------------------------------------------------

def test_a_commune_admin_cannot_see_a_system_of_another_commune(
        client: TestClient, admin: Caller, make_caller: Callable[..., Caller]) -> None:
    onboard(client, admin, "web-hy-cuong", "xa-hy-cuong")
    commune_admin = make_caller("admin", ["xa-thanh-son"])
    assert client.get(f"{URL}/web-hy-cuong", headers=commune_admin.headers).status_code == 404
    assert client.get(URL, headers=commune_admin.headers).json() == []
    patch = client.patch(f"{URL}/web-hy-cuong", json={"classification": 3}, headers=commune_admin.headers)
    assert patch.status_code == 404
    assert client.get(f"{URL}/web-hy-cuong/keys", headers=commune_admin.headers).status_code == 404
    assert client.delete(f"{URL}/web-hy-cuong", headers=commune_admin.headers).status_code == 404


def test_a_commune_admin_cannot_create_a_system_for_another_commune(
        client: TestClient, make_caller: Callable[..., Caller]) -> None:
    commune_admin = make_caller("admin", ["xa-thanh-son"])
    response = client.post(URL, json=system_body("web-hy-cuong", "xa-hy-cuong"), headers=commune_admin.headers)
    assert response.status_code == 404
    assert client.post(URL, json=system_body(), headers=commune_admin.headers).status_code == 201


def test_a_viewer_cannot_create_a_system(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    viewer = make_caller("viewer", ["tinh-phu-tho"])
    response = client.post(URL, json=system_body(), headers=viewer.headers)
    assert response.status_code == 403
    assert response.json()["detail_vi"]


def test_a_district_viewer_lists_the_systems_of_its_communes_only(
        client: TestClient, admin: Caller, make_caller: Callable[..., Caller]) -> None:
    onboard(client, admin, "web-thanh-son", "xa-thanh-son")
    onboard(client, admin, "web-hy-cuong", "xa-hy-cuong")
    viewer = make_caller("viewer", ["huyen-thanh-son"])
    listed = client.get(URL, headers=viewer.headers).json()
    assert [s["id"] for s in listed] == ["web-thanh-son"]


def test_systems_are_filtered_by_type_agency_and_onboarding_state(client: TestClient, admin: Caller) -> None:
    onboard(client, admin, "web-thanh-son", "xa-thanh-son")
    onboard(client, admin, "mail-khcn", "so-khcn", type="email", profile="email")
    key = onboard(client, admin, "portal-khcn", "so-khcn")["ingest_key"]["key"]
    client.delete(f"{URL}/portal-khcn", headers=admin.headers)
    assert [s["id"] for s in client.get(URL, params={"type": "email"}, headers=admin.headers).json()] == \
        ["mail-khcn"]
    assert [s["id"] for s in client.get(URL, params={"agency": "xa-thanh-son"}, headers=admin.headers).json()] \
        == ["web-thanh-son"]
    decommissioned = client.get(URL, params={"onboarding": "decommissioned"}, headers=admin.headers).json()
    assert [s["id"] for s in decommissioned] == ["portal-khcn"]
    assert key


# --- changes -----------------------------------------------------------------------

def test_get_gives_an_etag_that_a_patch_can_send_back(client: TestClient, admin: Caller) -> None:
    onboard(client, admin)
    got = client.get(f"{URL}/web-xa-thanh-son", headers=admin.headers)
    response = client.patch(f"{URL}/web-xa-thanh-son", json={"classification": 3},
                            headers={**admin.headers, "If-Match": got.headers["ETag"]})
    assert response.status_code == 200, response.text
    assert response.json()["classification"] == 3
    assert response.json()["version"] == got.json()["version"] + 1
    assert response.headers["ETag"] != got.headers["ETag"]


def test_a_patch_from_an_outdated_copy_is_refused_with_412(client: TestClient, admin: Caller) -> None:
    onboard(client, admin)
    etag = client.get(f"{URL}/web-xa-thanh-son", headers=admin.headers).headers["ETag"]
    first = client.patch(f"{URL}/web-xa-thanh-son", json={"name": "Cổng xã Thanh Sơn"},
                         headers={**admin.headers, "If-Match": etag})
    assert first.status_code == 200
    stale = client.patch(f"{URL}/web-xa-thanh-son", json={"classification": 3},
                         headers={**admin.headers, "If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["detail_vi"]
    assert client.get(f"{URL}/web-xa-thanh-son", headers=admin.headers).json()["classification"] == 2


def test_a_changed_network_takes_effect_on_attribution_at_once(client: TestClient, admin: Caller,
                                                               app_state: AppState) -> None:
    onboard(client, admin, cidrs=["10.40.9.0/28"])
    response = client.patch(f"{URL}/web-xa-thanh-son", json={"cidrs": ["10.40.10.0/28"]}, headers=admin.headers)
    assert response.status_code == 200
    assert app_state.registry.system_for_ip("10.40.9.3") is None
    assert app_state.registry.system_for_ip("10.40.10.3") == "web-xa-thanh-son"


def test_moving_a_system_to_an_agency_out_of_scope_is_refused(
        client: TestClient, admin: Caller, make_caller: Callable[..., Caller]) -> None:
    commune_admin = make_caller("admin", ["xa-thanh-son"])
    onboard(client, commune_admin)
    response = client.patch(f"{URL}/web-xa-thanh-son", json={"agency": "xa-hy-cuong"},
                            headers=commune_admin.headers)
    assert response.status_code == 404
    assert client.get(f"{URL}/web-xa-thanh-son", headers=admin.headers).json()["agency"] == "xa-thanh-son"


def test_decommissioning_revokes_the_keys_and_keeps_the_system(client: TestClient, admin: Caller) -> None:
    key = onboard(client, admin)["ingest_key"]["key"]
    assert ingest(client, key).status_code == 200
    response = client.delete(f"{URL}/web-xa-thanh-son", headers=admin.headers)
    assert response.status_code == 200
    assert response.json()["onboarding"] == "decommissioned"
    assert ingest(client, key).status_code == 401
    keys = client.get(f"{URL}/web-xa-thanh-son/keys", headers=admin.headers).json()
    assert [k["state"] for k in keys] == ["revoked"]
    assert client.get(f"{URL}/web-xa-thanh-son", headers=admin.headers).status_code == 200


def test_a_decommissioned_system_gets_no_new_key(client: TestClient, admin: Caller) -> None:
    onboard(client, admin)
    client.delete(f"{URL}/web-xa-thanh-son", headers=admin.headers)
    response = client.post(f"{URL}/web-xa-thanh-son/keys", json={}, headers=admin.headers)
    assert response.status_code == 409


def test_every_change_is_audited_as_the_user(client: TestClient, admin: Caller, db: Database) -> None:
    onboard(client, admin)
    client.patch(f"{URL}/web-xa-thanh-son", json={"classification": 3}, headers=admin.headers)
    client.delete(f"{URL}/web-xa-thanh-son", headers=admin.headers)
    with db.read() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.target_id.is_not(None))
                                       .order_by(AuditEntry.seq)))
    actions = [(e.action, e.actor_name) for e in entries if e.action.startswith("system.")]
    assert actions == [("system.create", admin.user.username), ("system.key.create", admin.user.username),
                       ("system.update", admin.user.username), ("system.decommission", admin.user.username)]
    update = next(e for e in entries if e.action == "system.update")
    assert (update.before, update.after) == ({"classification": 2}, {"classification": 3})
    assert update.agency_id == "xa-thanh-son"


# --- log sources -------------------------------------------------------------------

def test_log_sources_are_added_changed_and_removed(client: TestClient, admin: Caller) -> None:
    onboard(client, admin)
    sources = f"{URL}/web-xa-thanh-son/sources"
    added = client.post(sources, json={"name": "cms-audit", "format": "json", "transport": "http",
                                       "expected_interval": "15m"}, headers=admin.headers)
    assert added.status_code == 201, added.text
    assert added.json()["expected_interval_s"] == 900
    changed = client.patch(f"{sources}/cms-audit", json={"expected_interval": 7200, "interval_mode": "learned"},
                           headers=admin.headers)
    assert changed.status_code == 200
    assert (changed.json()["expected_interval"], changed.json()["interval_mode"]) == ("2h", "learned")
    assert client.delete(f"{sources}/cms-audit", headers=admin.headers).status_code == 204
    assert [s["name"] for s in client.get(sources, headers=admin.headers).json()] == ["web-access"]


def test_a_log_source_name_is_unique_within_its_system(client: TestClient, admin: Caller) -> None:
    onboard(client, admin)
    response = client.post(f"{URL}/web-xa-thanh-son/sources", json={"name": "web-access"}, headers=admin.headers)
    assert response.status_code == 409
    assert "web-access" in response.json()["detail"]


def test_a_missing_log_source_is_404(client: TestClient, admin: Caller) -> None:
    onboard(client, admin)
    response = client.patch(f"{URL}/web-xa-thanh-son/sources/nothing", json={"format": "json"},
                            headers=admin.headers)
    assert response.status_code == 404

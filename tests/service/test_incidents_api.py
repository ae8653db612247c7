"""/api/v1/incidents: escalating alerts into an incident, its code, its lifecycle,
actions taken, the national report block, scope and the audit trail."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from soc.alerts.models import Alert
from soc.config import SocConfig
from soc.db import Database
from soc.identity.tokens import authenticate
from soc.triage.errors import TriageError
from soc.triage.incidents import NewIncident, create_incident
from soc.triage.schemas import IncidentDetail, IncidentPage
from tests.service.conftest import Caller
from tests.service.triage_fixtures import ago, analyst, audit_actions, commune_analyst, make_alert, reload  # noqa: F401


def _create(client: TestClient, caller: Caller, **body: Any) -> httpx.Response:
    payload = {"title": "Dò mật khẩu SSH / SSH brute force", "classification": "intrusion", **body}
    return client.post("/api/v1/incidents", json=payload, headers=caller.headers)


def _patch(client: TestClient, caller: Caller, incident: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
    return client.patch(f"/api/v1/incidents/{incident['id']}", json=body,
                        headers={**caller.headers, "If-Match": f'"{incident["version"]}"'})


def test_escalating_alerts_creates_an_incident_with_a_code(client: TestClient, analyst: Caller,  # noqa: F811
                                                           db: Database, soc_config: SocConfig,
                                                           make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    first = make_alert(first_seen=ago(hours=3), level="high")
    second = make_alert(first_seen=ago(hours=1), level="critical", status="acknowledged")
    response = _create(client, analyst, alert_ids=[first.id, second.id])
    assert response.status_code == 201, response.text
    body = IncidentDetail.model_validate(response.json())
    assert body.code == f"SC-{datetime.now(soc_config.tz).year}-0001"
    assert response.headers["ETag"] == '"1"'
    assert body.severity == "critical"
    assert body.agency_id == "so-khcn"
    assert body.affected_systems == ["ad-servers"]
    assert body.detected_at == first.first_seen
    assert body.status == "open"
    assert {a.id for a in body.alerts} == {first.id, second.id}
    for alert in (first, second):
        stored = reload(db, alert.id)
        assert (stored.status, stored.incident_id) == ("in_progress", body.id)


def test_codes_count_up_within_the_year(client: TestClient, analyst: Caller) -> None:  # noqa: F811
    codes = [_create(client, analyst).json()["code"] for _ in range(3)]
    assert [c[-4:] for c in codes] == ["0001", "0002", "0003"]
    assert len({c[:8] for c in codes}) == 1


def test_concurrent_creations_get_distinct_codes(db: Database, analyst: Caller,  # noqa: F811
                                                 soc_config: SocConfig) -> None:
    principal = authenticate(db, analyst.token)
    assert principal is not None
    barrier = threading.Barrier(4)
    codes: list[str] = []
    errors: list[BaseException] = []

    def create() -> None:
        barrier.wait()
        try:
            codes.append(create_incident(db, principal, NewIncident(title="Đồng thời / Concurrent", alert_ids=[],
                                                                     agency_id="so-khcn"), soc_config)["code"])
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(c[-4:] for c in codes) == ["0001", "0002", "0003", "0004"]


def test_resolved_alerts_are_linked_but_stay_resolved(client: TestClient, analyst: Caller, db: Database,  # noqa: F811
                                                      make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="resolved", resolution="true_positive")
    incident = _create(client, analyst, alert_ids=[alert.id]).json()
    stored = reload(db, alert.id)
    assert (stored.status, stored.incident_id) == ("resolved", incident["id"])


def test_an_alert_already_in_an_incident_is_409(client: TestClient, analyst: Caller,  # noqa: F811
                                                make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    first = _create(client, analyst, alert_ids=[alert.id]).json()
    response = _create(client, analyst, alert_ids=[alert.id])
    assert response.status_code == 409
    assert first["code"] in response.json()["detail"]


def test_alerts_out_of_scope_cannot_be_escalated(client: TestClient, commune_analyst: Caller,  # noqa: F811
                                                 make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    hidden = make_alert(system_id="ad-servers")
    response = _create(client, commune_analyst, alert_ids=[hidden.id])
    assert response.status_code == 404


def test_alerts_of_several_agencies_need_an_owning_agency(client: TestClient, make_caller: Callable[..., Caller],
                                                          make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    district = make_caller("analyst", ["huyen-thanh-son"])
    alerts = [make_alert(system_id="web-huyen"), make_alert(system_id="motcua-thanh-son")]
    ids = [a.id for a in alerts]
    assert _create(client, district, alert_ids=ids).status_code == 422
    response = _create(client, district, alert_ids=ids, agency_id="huyen-thanh-son")
    assert response.status_code == 201
    assert response.json()["affected_agencies"] == ["huyen-thanh-son", "xa-thanh-son"]
    assert _create(client, district, alert_ids=[], agency_id="so-khcn").status_code == 422


@pytest.mark.parametrize("role", ["viewer", "auditor"])
def test_read_only_roles_cannot_change_incidents(client: TestClient, analyst: Caller,  # noqa: F811
                                                 make_caller: Callable[..., Caller], role: str) -> None:
    incident = _create(client, analyst, agency_id="so-khcn").json()
    reader = make_caller(role, ["tinh-phu-tho"])
    assert client.get(f"/api/v1/incidents/{incident['id']}", headers=reader.headers).status_code == 200
    assert _create(client, reader).status_code == 403
    assert _patch(client, reader, incident, {"status": "investigating"}).status_code == 403
    assert client.post(f"/api/v1/incidents/{incident['id']}/actions", json={"action": "x"},
                       headers=reader.headers).status_code == 403
    assert client.post(f"/api/v1/incidents/{incident['id']}/alerts", json={"alert_ids": ["x"]},
                       headers=reader.headers).status_code == 403


# --- list and detail -----------------------------------------------------------------------------------

@pytest.fixture
def incidents(client: TestClient, analyst: Caller) -> dict[str, dict[str, Any]]:  # noqa: F811
    def make(**body: Any) -> dict[str, Any]:
        response = _create(client, analyst, **body)
        assert response.status_code == 201, response.text
        out: dict[str, Any] = response.json()
        return out

    return {
        "province": make(agency_id="so-khcn", severity="high", detected_at=ago(days=2).isoformat()),
        "commune": make(agency_id="xa-thanh-son", severity="low", classification="malware",
                        detected_at=ago(hours=5).isoformat()),
        "merged": make(agency_id="xa-chu-hoa", severity="critical", classification="dos",
                       detected_at=ago(hours=1).isoformat()),
    }


def _codes(client: TestClient, caller: Caller, **params: Any) -> list[str]:
    response = client.get("/api/v1/incidents", params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    return [i.code for i in IncidentPage.model_validate(response.json()).items]


def test_the_list_is_newest_detection_first_and_filters(client: TestClient, analyst: Caller,  # noqa: F811
                                                        incidents: dict[str, dict[str, Any]]) -> None:
    code = {k: v["code"] for k, v in incidents.items()}
    assert _codes(client, analyst) == [code["merged"], code["commune"], code["province"]]
    assert _codes(client, analyst, severity="high,critical") == [code["merged"], code["province"]]
    assert _codes(client, analyst, classification="malware") == [code["commune"]]
    assert _codes(client, analyst, agency_id="so-khcn") == [code["province"]]
    assert _codes(client, analyst, since="1d") == [code["merged"], code["commune"]]
    assert _codes(client, analyst, until="3h") == [code["commune"], code["province"]]
    assert _codes(client, analyst, status="closed") == []


def test_the_list_pages_with_a_cursor(client: TestClient, analyst: Caller,  # noqa: F811
                                      incidents: dict[str, dict[str, Any]]) -> None:
    first = client.get("/api/v1/incidents", params={"limit": 2}, headers=analyst.headers).json()
    second = client.get("/api/v1/incidents", params={"limit": 2, "cursor": first["next_cursor"]},
                        headers=analyst.headers).json()
    codes = [i["code"] for i in first["items"] + second["items"]]
    assert sorted(codes) == sorted(i["code"] for i in incidents.values())
    assert second["next_cursor"] is None


def test_incidents_follow_the_agency_scope(client: TestClient, commune_analyst: Caller,  # noqa: F811
                                           make_caller: Callable[..., Caller],
                                           incidents: dict[str, dict[str, Any]]) -> None:
    assert _codes(client, commune_analyst) == [incidents["commune"]["code"]]
    hy_cuong = make_caller("viewer", ["xa-hy-cuong"])
    assert _codes(client, hy_cuong) == [incidents["merged"]["code"]]
    hidden = incidents["province"]["id"]
    assert client.get(f"/api/v1/incidents/{hidden}", headers=commune_analyst.headers).status_code == 404
    assert _patch(client, commune_analyst, incidents["province"], {"status": "investigating"}).status_code == 404


# --- changes ---------------------------------------------------------------------------------------------

def test_patch_needs_if_match_and_refuses_a_stale_one(client: TestClient, analyst: Caller,  # noqa: F811
                                                      incidents: dict[str, dict[str, Any]]) -> None:
    incident = incidents["province"]
    url = f"/api/v1/incidents/{incident['id']}"
    assert client.patch(url, json={"status": "investigating"}, headers=analyst.headers).status_code == 428
    first = _patch(client, analyst, incident, {"status": "investigating"})
    assert first.status_code == 200 and first.headers["ETag"] == '"2"'
    stale = _patch(client, analyst, incident, {"status": "contained"})
    assert stale.status_code == 412
    assert stale.json()["current"]["status"] == "investigating"


def test_resolving_sets_resolved_at_and_reopening_clears_it(client: TestClient, analyst: Caller,  # noqa: F811
                                                            incidents: dict[str, dict[str, Any]]) -> None:
    resolved = _patch(client, analyst, incidents["province"], {"status": "resolved",
                                                               "impact": "Không mất dữ liệu / No data lost"}).json()
    assert resolved["resolved_at"] is not None and resolved["report"]["status"] == "resolved"
    reopened = _patch(client, analyst, resolved, {"status": "investigating"}).json()
    assert reopened["resolved_at"] is None


def test_a_required_field_cannot_be_emptied(client: TestClient, analyst: Caller,  # noqa: F811
                                            incidents: dict[str, dict[str, Any]]) -> None:
    assert _patch(client, analyst, incidents["province"], {"title": None}).status_code == 422
    assert _patch(client, analyst, incidents["province"], {"severity": "extreme"}).status_code == 422


def test_actions_are_appended_with_who_and_when(client: TestClient, analyst: Caller,  # noqa: F811
                                                incidents: dict[str, dict[str, Any]]) -> None:
    url = f"/api/v1/incidents/{incidents['province']['id']}/actions"
    at = ago(minutes=20).isoformat()
    client.post(url, json={"action": "Cô lập máy chủ / Isolated the server", "at": at}, headers=analyst.headers)
    response = client.post(url, json={"action": "Đổi mật khẩu / Reset passwords"}, headers=analyst.headers)
    assert response.status_code == 201
    actions = response.json()["actions_taken"]
    assert [a["action"] for a in actions] == ["Cô lập máy chủ / Isolated the server", "Đổi mật khẩu / Reset passwords"]
    assert actions[0]["at"] == at and actions[0]["by"] == analyst.user.username
    assert response.json()["report"]["actions_taken"] == 2


def test_concurrent_actions_all_land(db: Database, analyst: Caller, soc_config: SocConfig,  # noqa: F811
                                     incidents: dict[str, dict[str, Any]]) -> None:
    from soc.triage.incidents import add_action

    principal = authenticate(db, analyst.token)
    assert principal is not None
    barrier = threading.Barrier(3)

    def act(i: int) -> None:
        barrier.wait()
        add_action(db, principal, incidents["commune"]["id"], f"bước {i}", None, soc_config)

    threads = [threading.Thread(target=act, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with db.read() as session:
        from soc.triage.models import Incident

        stored = session.get(Incident, incidents["commune"]["id"])
        assert stored is not None
        assert sorted(a["action"] for a in stored.actions_taken) == ["bước 0", "bước 1", "bước 2"]


def test_linking_more_alerts_adds_their_systems(client: TestClient, analyst: Caller, db: Database,  # noqa: F811
                                               make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    first = make_alert()
    incident = _create(client, analyst, alert_ids=[first.id]).json()
    more = make_alert(system_id="web-huyen")
    response = client.post(f"/api/v1/incidents/{incident['id']}/alerts", json={"alert_ids": [more.id, first.id]},
                           headers=analyst.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["affected_systems"] == ["ad-servers", "web-huyen"]
    assert {a["id"] for a in body["alerts"]} == {first.id, more.id}
    assert reload(db, more.id).incident_id == incident["id"]


def test_incident_changes_are_audited(client: TestClient, analyst: Caller, db: Database,  # noqa: F811
                                      make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    incident = _create(client, analyst, alert_ids=[alert.id]).json()
    _patch(client, analyst, incident, {"status": "contained"})
    client.post(f"/api/v1/incidents/{incident['id']}/actions", json={"action": "Chặn IP"}, headers=analyst.headers)
    assert [e.action for e in audit_actions(db, incident["id"])] == ["incident.create", "incident.update",
                                                                     "incident.action"]
    linked = audit_actions(db, alert.id)
    assert [e.action for e in linked] == ["alert.update"]
    assert linked[0].after is not None and linked[0].after["incident_code"] == incident["code"]


# --- national report -------------------------------------------------------------------------------------

def _report(client: TestClient, caller: Caller, **body: Any) -> dict[str, Any]:
    response = _create(client, caller, agency_id="so-khcn", **body)
    assert response.status_code == 201, response.text
    report: dict[str, Any] = response.json()["report"]
    return report


def test_a_serious_incident_owes_an_initial_notice_within_24_hours(client: TestClient,
                                                                   analyst: Caller) -> None:  # noqa: F811
    detected = ago(hours=30)
    report = _report(client, analyst, severity="high", detected_at=detected.isoformat())
    assert report["national_severity"] == "serious"
    assert datetime.fromisoformat(report["initial_notice_due"]) == detected + timedelta(hours=24)
    assert datetime.fromisoformat(report["report_due"]) == detected + timedelta(hours=72)
    assert (report["deadline_hours"], report["overdue"], report["within_deadline"]) == (24, True, None)


def test_an_ordinary_incident_has_72_hours_to_report(client: TestClient, analyst: Caller) -> None:  # noqa: F811
    report = _report(client, analyst, severity="medium", detected_at=ago(hours=30).isoformat())
    assert report["national_severity"] == "incident"
    assert report["initial_notice_due"] is None
    assert (report["deadline_hours"], report["overdue"]) == (72, False)
    assert 41 < report["hours_left"] < 43


def test_a_critical_incident_calls_for_an_immediate_notice(client: TestClient, analyst: Caller) -> None:  # noqa: F811
    report = _report(client, analyst, severity="critical")
    assert report["national_severity"] == "national_security_or_serious_disruption"
    assert report["immediate_notice_required"] is True


def test_reporting_records_hours_taken_and_whether_in_time(client: TestClient, analyst: Caller) -> None:  # noqa: F811
    detected = ago(hours=50)
    incident = _create(client, analyst, agency_id="so-khcn", severity="high",
                       detected_at=detected.isoformat()).json()
    reported = _patch(client, analyst, incident, {
        "reported_at": (detected + timedelta(hours=20)).isoformat(),
        "reported_to": "Phòng An ninh mạng, Công an tỉnh Phú Thọ"}).json()["report"]
    assert reported["hours_to_report"] == 20.0
    assert (reported["within_deadline"], reported["overdue"]) == (True, False)
    assert reported["reported_to"] == "Phòng An ninh mạng, Công an tỉnh Phú Thọ"
    assert reported["category_label"] == {"vi": "Xâm nhập hệ thống", "en": "System intrusion"}


def test_the_report_lists_affected_systems_with_their_level(client: TestClient, analyst: Caller,  # noqa: F811
                                                            db: Database) -> None:
    from soc.inventory.models import SystemRow

    with db.write() as session:
        session.add(SystemRow(id="ad-servers", name="Máy chủ AD", agency_id="so-khcn", classification=3))
    report = _report(client, analyst, affected_systems=["ad-servers", "unknown-system"])
    assert report["affected_systems"][0] == {"id": "ad-servers", "name": "Máy chủ AD", "agency_id": "so-khcn",
                                             "classification": 3}
    assert report["affected_systems"][1]["id"] == "unknown-system"


def test_creating_for_an_agency_out_of_scope_is_refused(db: Database, commune_analyst: Caller,  # noqa: F811
                                                        soc_config: SocConfig) -> None:
    principal = authenticate(db, commune_analyst.token)
    assert principal is not None
    with pytest.raises(TriageError) as raised:
        create_incident(db, principal, NewIncident(title="x", alert_ids=[], agency_id="so-khcn"), soc_config)
    assert raised.value.status == 422


def test_a_time_without_a_zone_is_422(client: TestClient, analyst: Caller,  # noqa: F811
                                      incidents: dict[str, dict[str, Any]]) -> None:
    response = _patch(client, analyst, incidents["province"], {"reported_at": "2026-11-23T09:30:00"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "reported_at"

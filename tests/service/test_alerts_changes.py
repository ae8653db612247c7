"""Changing alerts: If-Match and concurrent writers, roles, scope, assignment,
comments, bulk changes and their audit trail."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from soc.alerts.models import Alert
from soc.db import Database
from soc.identity.principal import Principal
from soc.identity.tokens import authenticate
from soc.triage.changes import AlertChange, update_alert
from soc.triage.errors import TriageError
from soc.triage.models import AlertComment
from soc.triage.schemas import AlertOut, BulkOut
from tests.service.conftest import Caller
from tests.service.triage_fixtures import (  # noqa: F401
    analyst,
    audit_actions,
    commune_analyst,
    get_alert,
    make_alert,
    patch_alert,
    reload,
)

# --- If-Match -------------------------------------------------------------------------------------


def test_the_detail_carries_the_version_as_etag(client: TestClient, analyst: Caller,  # noqa: F811
                                                make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    response = get_alert(client, analyst, alert.id)
    assert response.headers["ETag"] == f'"{alert.version}"'


def test_a_change_without_if_match_is_428_with_a_reason(client: TestClient, analyst: Caller,  # noqa: F811
                                                        db: Database, make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    response = patch_alert(client, analyst, alert.id, {"status": "acknowledged"}, None)
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"] and "If-Match" in response.json()["detail_vi"]
    assert reload(db, alert.id).status == "new"


def test_a_malformed_if_match_is_400(client: TestClient, analyst: Caller,  # noqa: F811
                                     make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    response = patch_alert(client, analyst, alert.id, {"status": "acknowledged"}, "*")
    assert response.status_code == 400


def test_a_successful_change_answers_the_new_etag(client: TestClient, analyst: Caller,  # noqa: F811
                                                  make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    response = patch_alert(client, analyst, alert.id, {"status": "acknowledged"}, alert.version)
    assert response.status_code == 200
    assert response.headers["ETag"] == f'"{alert.version + 1}"'
    AlertOut.model_validate(response.json())


def test_weak_and_bare_etags_are_accepted(client: TestClient, analyst: Caller,  # noqa: F811
                                          make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    assert patch_alert(client, analyst, alert.id, {"status": "acknowledged"}, f'W/"{alert.version}"'
                       ).status_code == 200
    assert patch_alert(client, analyst, alert.id, {"status": "in_progress"}, str(alert.version + 1)
                       ).status_code == 200


def test_a_stale_if_match_is_412_with_the_current_state(client: TestClient, analyst: Caller,  # noqa: F811
                                                        make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    patch_alert(client, analyst, alert.id, {"status": "acknowledged"}, alert.version)
    response = patch_alert(client, analyst, alert.id, {"status": "resolved", "resolution": "benign"}, alert.version)
    assert response.status_code == 412
    body = response.json()
    assert body["current"]["status"] == "acknowledged"
    assert body["current"]["version"] == alert.version + 1
    assert response.headers["ETag"] == f'"{alert.version + 1}"'
    assert "current version 2, you sent 1" in body["detail"]


def test_two_analysts_with_the_same_read_exactly_one_wins(client: TestClient, analyst: Caller,  # noqa: F811
                                                          make_caller: Callable[..., Caller], db: Database,
                                                          make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    other = make_caller("analyst", ["tinh-phu-tho"])
    alert = make_alert()
    version = int(get_alert(client, analyst, alert.id).headers["ETag"].strip('"'))
    assert version == int(get_alert(client, other, alert.id).headers["ETag"].strip('"'))
    first = patch_alert(client, analyst, alert.id, {"assignee_id": analyst.user.id}, version)
    second = patch_alert(client, other, alert.id, {"assignee_id": other.user.id}, version)
    assert first.status_code == 200
    assert second.status_code == 412
    assert second.json()["current"]["assignee_id"] == analyst.user.id
    assert second.json()["current"]["version"] == first.json()["version"]
    assert reload(db, alert.id).assignee_id == analyst.user.id


def _principal(db: Database, caller: Caller) -> Principal:
    principal = authenticate(db, caller.token)
    assert principal is not None
    return principal


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_writers_on_the_real_database_never_both_win(db: Database, analyst: Caller,  # noqa: F811
                                                                make_caller: Callable[..., Caller],
                                                                make_alert: Callable[..., Alert],  # noqa: F811
                                                                round_: int) -> None:
    """Both threads read version 1 and write at once; on PostgreSQL the row lock and the
    version check are what stand between them."""
    callers = [analyst, make_caller("analyst", ["tinh-phu-tho"])]
    principals = [_principal(db, c) for c in callers]
    alert = make_alert()
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def render(_session: Any, row: Alert) -> dict[str, Any]:
        return row.as_dict()

    def write(i: int) -> None:
        change = AlertChange(assign=True, assignee_id=callers[i].user.id)
        barrier.wait()
        try:
            outcomes[i] = update_alert(db, principals[i], alert.id, {alert.version}, change, render)
        except TriageError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [o for o in outcomes if isinstance(o, dict)]
    losers = [o for o in outcomes if isinstance(o, TriageError)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].status == 412
    assert losers[0].state is not None and losers[0].state["assignee_id"] == winners[0]["assignee_id"]
    stored = reload(db, alert.id)
    assert (stored.version, stored.assignee_id) == (alert.version + 1, winners[0]["assignee_id"])


def test_an_update_from_a_stale_read_fails_even_without_the_check(db: Database,
                                                                  make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    """The ORM's version column is the last line: an UPDATE based on an old read matches no row."""
    from sqlalchemy.orm.exc import StaleDataError

    alert = make_alert()
    with db.read() as session:
        mine = session.get(Alert, alert.id)
    with db.write() as session:
        session.execute(update(Alert).where(Alert.id == alert.id).values(status="acknowledged",
                                                                         version=Alert.version + 1))
    with pytest.raises(StaleDataError), db.write() as session:
        assert mine is not None
        stale = session.merge(mine, load=False)
        stale.status = "resolved"
    assert reload(db, alert.id).status == "acknowledged"


# --- roles and scope ----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["viewer", "auditor"])
def test_read_only_roles_get_403_on_every_write(client: TestClient, make_caller: Callable[..., Caller], db: Database,
                                                make_alert: Callable[..., Alert], role: str) -> None:  # noqa: F811
    caller = make_caller(role, ["tinh-phu-tho"])
    alert = make_alert()
    assert get_alert(client, caller, alert.id).status_code == 200
    writes = [
        patch_alert(client, caller, alert.id, {"status": "acknowledged"}, alert.version),
        client.post(f"/api/v1/alerts/{alert.id}/comments", json={"body": "x"}, headers=caller.headers),
        client.post("/api/v1/alerts/bulk", json={"ids": [alert.id], "action": "acknowledge"}, headers=caller.headers),
    ]
    assert [w.status_code for w in writes] == [403, 403, 403]
    assert reload(db, alert.id).status == "new"


def test_an_alert_out_of_scope_is_404_for_reading_and_writing(client: TestClient, commune_analyst: Caller,  # noqa: F811
                                                              make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(system_id="ad-servers")
    assert get_alert(client, commune_analyst, alert.id).status_code == 404
    assert patch_alert(client, commune_analyst, alert.id, {"status": "acknowledged"}, alert.version
                       ).status_code == 404
    assert client.get(f"/api/v1/alerts/{alert.id}/comments", headers=commune_analyst.headers).status_code == 404
    assert client.post(f"/api/v1/alerts/{alert.id}/comments", json={"body": "x"},
                       headers=commune_analyst.headers).status_code == 404


def test_a_commune_analyst_changes_the_communes_alert(client: TestClient, commune_analyst: Caller,  # noqa: F811
                                                      make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(system_id="motcua-thanh-son")
    response = patch_alert(client, commune_analyst, alert.id, {"status": "acknowledged"}, alert.version)
    assert response.status_code == 200


# --- assignment ---------------------------------------------------------------------------------------

def test_assign_and_unassign(client: TestClient, analyst: Caller,  # noqa: F811
                             make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    assigned = patch_alert(client, analyst, alert.id, {"assignee_id": analyst.user.id}, alert.version).json()
    assert assigned["assignee"] == {"id": analyst.user.id, "username": analyst.user.username,
                                    "display_name": analyst.user.display_name}
    cleared = patch_alert(client, analyst, alert.id, {"assignee_id": None}, assigned["version"]).json()
    assert (cleared["assignee_id"], cleared["assignee"]) == (None, None)


def test_leaving_assignee_out_keeps_it(client: TestClient, analyst: Caller,  # noqa: F811
                                       make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(assignee_id=analyst.user.id)
    body = patch_alert(client, analyst, alert.id, {"status": "acknowledged"}, alert.version).json()
    assert body["assignee_id"] == analyst.user.id


@pytest.mark.parametrize("who", ["unknown", "inactive", "viewer", "other-commune"])
def test_assigning_someone_who_cannot_work_the_alert_is_422(client: TestClient, analyst: Caller,  # noqa: F811
                                                            make_caller: Callable[..., Caller], db: Database,
                                                            make_alert: Callable[..., Alert], who: str) -> None:  # noqa: F811
    alert = make_alert(system_id="motcua-thanh-son")
    if who == "unknown":
        user_id = "00000000-0000-0000-0000-000000000000"
    else:
        role = "viewer" if who == "viewer" else "analyst"
        bound = ["xa-hy-cuong"] if who == "other-commune" else ["xa-thanh-son"]
        user_id = make_caller(role, bound).user.id
        if who == "inactive":
            from soc.identity.models import UserRow

            with db.write() as session:
                session.execute(update(UserRow).where(UserRow.id == user_id).values(active=False))
    response = patch_alert(client, analyst, alert.id, {"assignee_id": user_id}, alert.version)
    assert response.status_code == 422, response.text
    assert reload(db, alert.id).assignee_id is None


def test_a_commune_analyst_can_be_assigned_the_communes_alert(client: TestClient, analyst: Caller,  # noqa: F811
                                                               commune_analyst: Caller,  # noqa: F811
                                                               make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(system_id="motcua-thanh-son")
    response = patch_alert(client, analyst, alert.id, {"assignee_id": commune_analyst.user.id}, alert.version)
    assert response.status_code == 200


# --- comments -------------------------------------------------------------------------------------------

def test_comments_are_added_and_listed_in_order(client: TestClient, analyst: Caller,  # noqa: F811
                                                make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    url = f"/api/v1/alerts/{alert.id}/comments"
    first = client.post(url, json={"body": "Đã chặn IP / Blocked the IP"}, headers=analyst.headers)
    assert first.status_code == 201
    assert first.json()["author_name"] == analyst.user.username
    client.post(url, json={"body": "Đã báo chủ hệ thống"}, headers=analyst.headers)
    items = client.get(url, headers=analyst.headers).json()["items"]
    assert [c["body"] for c in items] == ["Đã chặn IP / Blocked the IP", "Đã báo chủ hệ thống"]
    detail = get_alert(client, analyst, alert.id).json()
    assert [c["body"] for c in detail["comments"]] == [c["body"] for c in items]


def test_an_empty_comment_is_refused(client: TestClient, analyst: Caller,  # noqa: F811
                                     make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    response = client.post(f"/api/v1/alerts/{alert.id}/comments", json={"body": "   "}, headers=analyst.headers)
    assert response.status_code == 422


def test_a_patch_may_carry_a_comment(client: TestClient, analyst: Caller, db: Database,  # noqa: F811
                                     make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    patch_alert(client, analyst, alert.id, {"status": "resolved", "resolution": "benign",
                                            "comment": "Quét định kỳ / Scheduled scan"}, alert.version)
    with db.read() as session:
        bodies = list(session.scalars(select(AlertComment.body).where(AlertComment.alert_id == alert.id)))
    assert bodies == ["Quét định kỳ / Scheduled scan"]


# --- audit -------------------------------------------------------------------------------------------------

def test_every_change_is_audited_with_before_and_after(client: TestClient, analyst: Caller,  # noqa: F811
                                                       db: Database, make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    patch_alert(client, analyst, alert.id, {"status": "acknowledged", "assignee_id": analyst.user.id,
                                            "comment": "Đang xem / Looking"}, alert.version)
    entries = audit_actions(db, alert.id)
    assert [e.action for e in entries] == ["alert.update", "alert.comment"]
    update_entry = entries[0]
    assert update_entry.before == {"status": "new", "acknowledged_at": None, "assignee_id": None}
    assert update_entry.after is not None
    assert update_entry.after["status"] == "acknowledged"
    assert update_entry.after["assignee_id"] == analyst.user.id
    assert (update_entry.actor_id, update_entry.agency_id) == (analyst.user.id, "so-khcn")
    assert entries[1].after is not None and entries[1].after["body"] == "Đang xem / Looking"


def test_a_refused_change_leaves_no_audit_entry(client: TestClient, analyst: Caller,  # noqa: F811
                                                db: Database, make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="in_progress")
    patch_alert(client, analyst, alert.id, {"status": "acknowledged"}, alert.version)
    patch_alert(client, analyst, alert.id, {"status": "resolved", "resolution": "benign"}, 99)
    assert audit_actions(db, alert.id) == []


# --- bulk -----------------------------------------------------------------------------------------------

def _bulk(client: TestClient, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/alerts/bulk", json=body, headers=caller.headers)
    assert response.status_code == 200, response.text
    out: dict[str, Any] = BulkOut.model_validate(response.json()).model_dump()
    return out


def test_bulk_reports_each_alert_and_changes_the_ones_it_can(client: TestClient, commune_analyst: Caller,  # noqa: F811
                                                             db: Database,
                                                             make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    ok = make_alert(system_id="motcua-thanh-son")
    done = make_alert(system_id="motcua-thanh-son", status="in_progress")
    hidden = make_alert(system_id="ad-servers")
    missing = "00000000-0000-0000-0000-000000000000"
    body = _bulk(client, commune_analyst, {"ids": [ok.id, done.id, hidden.id, missing], "action": "acknowledge"})
    results = {r["id"]: r for r in body["results"]}
    assert results[ok.id]["ok"] is True and results[ok.id]["version"] == ok.version + 1
    assert results[done.id]["status_code"] == 409
    assert "in_progress" in results[done.id]["reason"]
    assert results[hidden.id]["status_code"] == 404
    assert results[missing]["status_code"] == 404
    assert (body["succeeded"], body["failed"]) == (1, 3)
    assert reload(db, ok.id).status == "acknowledged"
    assert reload(db, hidden.id).status == "new"
    assert [e.action for e in audit_actions(db, ok.id)] == ["alert.bulk.acknowledge"]


def test_bulk_resolve_needs_a_resolution_for_each(client: TestClient, analyst: Caller,  # noqa: F811
                                                  make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    body = _bulk(client, analyst, {"ids": [alert.id], "action": "resolve"})
    assert body["results"][0]["status_code"] == 422


def test_bulk_resolve_with_a_comment_resolves_and_comments_each(client: TestClient, analyst: Caller,  # noqa: F811
                                                                db: Database,
                                                                make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alerts = [make_alert(), make_alert(status="acknowledged")]
    body = _bulk(client, analyst, {"ids": [a.id for a in alerts], "action": "resolve", "resolution": "benign",
                                   "comment": "Kiểm thử xâm nhập / Penetration test"})
    assert body["succeeded"] == 2
    for alert in alerts:
        stored = reload(db, alert.id)
        assert (stored.status, stored.resolution) == ("resolved", "benign")
        entry = audit_actions(db, alert.id)[0]
        assert entry.after is not None and entry.after["comment"] == "Kiểm thử xâm nhập / Penetration test"


def test_bulk_with_a_stale_version_skips_that_alert(client: TestClient, analyst: Caller,  # noqa: F811
                                                    make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    fresh, stale = make_alert(), make_alert()
    body = _bulk(client, analyst, {"ids": [fresh.id, stale.id], "action": "start",
                                   "versions": {fresh.id: fresh.version, stale.id: stale.version + 5}})
    results = {r["id"]: r for r in body["results"]}
    assert results[fresh.id]["ok"] is True
    assert (results[stale.id]["status_code"], results[stale.id]["version"]) == (412, stale.version)


def test_bulk_by_filter_acts_on_what_the_filter_matches_in_scope(client: TestClient, commune_analyst: Caller,  # noqa: F811
                                                                 db: Database,
                                                                 make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    mine = [make_alert(system_id="motcua-thanh-son", rule_id="scan") for _ in range(3)]
    other_rule = make_alert(system_id="motcua-thanh-son", rule_id="sqli")
    elsewhere = make_alert(system_id="ad-servers", rule_id="scan")
    body = _bulk(client, commune_analyst, {"filter": {"rule_id": ["scan"], "status": ["new"]}, "action": "assign",
                                           "assignee_id": commune_analyst.user.id})
    assert sorted(r["id"] for r in body["results"]) == sorted(a.id for a in mine)
    assert body["more"] is False
    assert reload(db, other_rule.id).assignee_id is None
    assert reload(db, elsewhere.id).assignee_id is None


def test_bulk_reopen_only_reopens_resolved_alerts(client: TestClient, analyst: Caller,  # noqa: F811
                                                  make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    resolved = make_alert(status="resolved", resolution="benign")
    open_ = make_alert(status="new")
    body = _bulk(client, analyst, {"ids": [resolved.id, open_.id], "action": "reopen"})
    results = {r["id"]: r for r in body["results"]}
    assert results[resolved.id]["ok"] is True
    assert results[open_.id]["status_code"] == 409


def test_bulk_comment_needs_text(client: TestClient, analyst: Caller,  # noqa: F811
                                 make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert()
    response = client.post("/api/v1/alerts/bulk", json={"ids": [alert.id], "action": "comment"},
                           headers=analyst.headers)
    assert response.status_code == 422


def test_bulk_needs_exactly_one_of_ids_or_filter(client: TestClient, analyst: Caller) -> None:  # noqa: F811
    for body in ({"action": "acknowledge"}, {"ids": ["x"], "filter": {}, "action": "acknowledge"}):
        response = client.post("/api/v1/alerts/bulk", json=body, headers=analyst.headers)
        assert response.status_code == 422


def test_bulk_takes_at_most_a_thousand_ids(client: TestClient, analyst: Caller) -> None:  # noqa: F811
    body = {"ids": [f"id-{i}" for i in range(1001)], "action": "acknowledge"}
    assert client.post("/api/v1/alerts/bulk", json=body, headers=analyst.headers).status_code == 422


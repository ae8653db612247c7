"""The alert status workflow through PATCH /api/v1/alerts/{id}:
new → acknowledged → in_progress → resolved (with a resolution), reopen → in_progress."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from soc.alerts.models import Alert
from soc.db import Database
from soc.triage.workflow import TRANSITIONS
from tests.service.conftest import Caller
from tests.service.triage_fixtures import analyst, make_alert, patch_alert, reload  # noqa: F401


@pytest.mark.parametrize(("start", "target"), [(s, t) for s, targets in TRANSITIONS.items() if s in
                                               ("new", "acknowledged", "in_progress") for t in targets])
def test_every_allowed_forward_transition_succeeds(client: TestClient, analyst: Caller,  # noqa: F811
                                                   make_alert: Callable[..., Alert],  # noqa: F811
                                                   start: str, target: str) -> None:
    alert = make_alert(status=start)
    body = {"status": target, **({"resolution": "true_positive"} if target == "resolved" else {})}
    response = patch_alert(client, analyst, alert.id, body, alert.version)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == target
    assert response.json()["version"] == alert.version + 1


@pytest.mark.parametrize(("start", "target", "allowed"), [
    ("acknowledged", "new", "in_progress, resolved"),
    ("in_progress", "acknowledged", "resolved"),
    ("in_progress", "new", "resolved"),
    ("resolved", "acknowledged", "in_progress"),
    ("resolved", "new", "in_progress"),
])
def test_a_disallowed_transition_is_409_naming_the_allowed_next_statuses(
        client: TestClient, analyst: Caller, make_alert: Callable[..., Alert],  # noqa: F811
        db: Database, start: str, target: str, allowed: str) -> None:
    extra = {"resolution": "benign"} if start == "resolved" else {}
    alert = make_alert(status=start, **extra)
    response = patch_alert(client, analyst, alert.id, {"status": target}, alert.version)
    assert response.status_code == 409
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert f"allowed next statuses: {allowed}" in body["detail"]
    assert allowed in body["detail_vi"]
    assert reload(db, alert.id).status == start


def test_resolving_without_a_resolution_is_422(client: TestClient, analyst: Caller,  # noqa: F811
                                                make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="in_progress")
    response = patch_alert(client, analyst, alert.id, {"status": "resolved"}, alert.version)
    assert response.status_code == 422
    assert "true_positive, false_positive, benign" in response.json()["detail"]


def test_a_resolution_without_resolving_is_422(client: TestClient, analyst: Caller,  # noqa: F811
                                               make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="new")
    response = patch_alert(client, analyst, alert.id, {"status": "acknowledged", "resolution": "benign"},
                           alert.version)
    assert response.status_code == 422


def test_resolving_records_resolution_and_time(client: TestClient, analyst: Caller,  # noqa: F811
                                               make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="in_progress")
    response = patch_alert(client, analyst, alert.id, {"status": "resolved", "resolution": "false_positive"},
                           alert.version)
    body = response.json()
    assert body["status"] == "resolved"
    assert body["resolution"] == "false_positive"
    assert body["resolved_at"] is not None
    assert body["status_changed_at"] == body["resolved_at"]


def test_reopen_goes_to_in_progress_and_clears_the_verdict(client: TestClient, analyst: Caller,  # noqa: F811
                                                           make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="new")
    resolved = patch_alert(client, analyst, alert.id, {"status": "resolved", "resolution": "true_positive"},
                           alert.version).json()
    response = patch_alert(client, analyst, alert.id, {"status": "in_progress"}, resolved["version"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["resolution"], body["resolved_at"]) == ("in_progress", None, None)
    assert body["acknowledged_at"] == resolved["acknowledged_at"]


def test_acknowledged_at_is_set_by_the_first_move_out_of_new_only(client: TestClient, analyst: Caller,  # noqa: F811
                                                                  make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="new")
    first = patch_alert(client, analyst, alert.id, {"status": "acknowledged"}, alert.version).json()
    assert first["acknowledged_at"] is not None
    second = patch_alert(client, analyst, alert.id, {"status": "in_progress"}, first["version"]).json()
    assert second["acknowledged_at"] == first["acknowledged_at"]
    assert second["status_changed_at"] >= first["status_changed_at"]


def test_resolving_straight_from_new_counts_as_acknowledging(client: TestClient, analyst: Caller,  # noqa: F811
                                                             make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="new")
    body = patch_alert(client, analyst, alert.id, {"status": "resolved", "resolution": "benign"},
                       alert.version).json()
    assert body["acknowledged_at"] == body["resolved_at"]


def test_an_alert_closed_before_the_workflow_can_be_reopened(client: TestClient, analyst: Caller,  # noqa: F811
                                                             make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="closed")
    response = patch_alert(client, analyst, alert.id, {"status": "in_progress"}, alert.version)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "in_progress"


def test_an_unknown_status_is_rejected(client: TestClient, analyst: Caller,  # noqa: F811
                                       make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="new")
    response = patch_alert(client, analyst, alert.id, {"status": "closed"}, alert.version)
    assert response.status_code == 422


def test_setting_the_current_status_again_changes_nothing(client: TestClient, analyst: Caller,  # noqa: F811
                                                          make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="acknowledged")
    response = patch_alert(client, analyst, alert.id, {"status": "acknowledged"}, alert.version)
    assert response.status_code == 200
    assert response.json()["version"] == alert.version


def test_the_refusal_speaks_vietnamese_when_asked(client: TestClient, analyst: Caller,  # noqa: F811
                                                  make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(status="in_progress")
    response = client.patch(f"/api/v1/alerts/{alert.id}", json={"status": "acknowledged"},
                            headers={**analyst.headers, "If-Match": f'"{alert.version}"', "Accept-Language": "vi"})
    body = response.json()
    assert (body["status"], body["title"]) == (409, "Xung đột")
    assert body["detail"].startswith("Không thể chuyển cảnh báo từ 'in_progress' sang 'acknowledged'")
    assert body["detail_en"].startswith("An alert cannot move")

"""SLA targets per level (``triage.sla``): due times and breach flags on every alert,
and the ``sla_breached`` filter computed by the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soc.alerts.models import Alert
from soc.api.state import AppState
from soc.config import TriageConfig
from tests.service.conftest import Caller
from tests.service.triage_fixtures import ago, analyst, get_alert, list_ids, make_alert  # noqa: F401

# Defaults: high → acknowledge 60 min, resolve 24 h; low → 24 h, 7 days.


def _sla(client: TestClient, caller: Caller, alert: Alert) -> dict[str, Any]:
    response = get_alert(client, caller, alert.id)
    assert response.status_code == 200, response.text
    sla: dict[str, Any] = response.json()["sla"]
    return sla


def test_due_times_run_from_creation_by_the_level_target(client: TestClient, analyst: Caller,  # noqa: F811
                                                         make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    created = ago(minutes=10)
    alert = make_alert(level="high", created_at=created)
    sla = _sla(client, analyst, alert)
    assert datetime.fromisoformat(sla["acknowledge_due"]) == created + timedelta(minutes=60)
    assert datetime.fromisoformat(sla["resolve_due"]) == created + timedelta(hours=24)
    assert sla["acknowledge_breached"] is False and sla["resolve_breached"] is False
    assert sla["acknowledged_after_s"] is None and sla["resolved_after_s"] is None


def test_an_unacknowledged_alert_past_its_due_time_is_breached(client: TestClient, analyst: Caller,  # noqa: F811
                                                               make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(level="high", created_at=ago(minutes=61))
    sla = _sla(client, analyst, alert)
    assert sla["acknowledge_breached"] is True
    assert sla["resolve_breached"] is False


def test_an_alert_acknowledged_late_stays_breached(client: TestClient, analyst: Caller,  # noqa: F811
                                                   make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    created = ago(hours=3)
    alert = make_alert(level="high", status="acknowledged", created_at=created,
                       acknowledged_at=created + timedelta(minutes=90))
    sla = _sla(client, analyst, alert)
    assert sla["acknowledge_breached"] is True
    assert sla["acknowledged_after_s"] == 5400.0


def test_an_alert_acknowledged_in_time_is_not_breached_later(client: TestClient, analyst: Caller,  # noqa: F811
                                                             make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    created = ago(hours=3)
    alert = make_alert(level="high", status="acknowledged", created_at=created,
                       acknowledged_at=created + timedelta(minutes=5))
    sla = _sla(client, analyst, alert)
    assert sla["acknowledge_breached"] is False
    assert sla["acknowledged_after_s"] == 300.0


def test_resolving_late_breaches_the_resolve_target(client: TestClient, analyst: Caller,  # noqa: F811
                                                    make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    created = ago(days=3)
    alert = make_alert(level="high", status="resolved", resolution="true_positive", created_at=created,
                       acknowledged_at=created + timedelta(minutes=5), resolved_at=created + timedelta(hours=30))
    sla = _sla(client, analyst, alert)
    assert (sla["acknowledge_breached"], sla["resolve_breached"]) == (False, True)
    assert sla["resolved_after_s"] == 30 * 3600.0


def test_lower_levels_have_longer_targets(client: TestClient, analyst: Caller,  # noqa: F811
                                          make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(level="low", created_at=ago(hours=2))
    assert _sla(client, analyst, alert)["acknowledge_breached"] is False


@pytest.fixture
def sla_mix(make_alert: Callable[..., Alert]) -> dict[str, Alert]:  # noqa: F811
    created = ago(hours=30)
    return {
        "fresh": make_alert(level="high", created_at=ago(minutes=5)),
        "ack_late_pending": make_alert(level="high", created_at=ago(hours=2)),
        "ack_late_done": make_alert(level="high", status="in_progress", created_at=ago(hours=3),
                                    acknowledged_at=ago(hours=1)),
        "resolve_late_pending": make_alert(level="critical", status="in_progress", created_at=ago(hours=5),
                                           acknowledged_at=ago(hours=5) + timedelta(minutes=1)),
        "all_in_time": make_alert(level="low", status="resolved", resolution="benign", created_at=created,
                                  acknowledged_at=created + timedelta(minutes=1),
                                  resolved_at=created + timedelta(hours=2)),
        "low_pending": make_alert(level="low", created_at=ago(hours=23)),
    }


def _names(mix: dict[str, Alert], ids: list[str]) -> set[str]:
    by_id = {a.id: n for n, a in mix.items()}
    return {by_id[i] for i in ids}


@pytest.mark.parametrize(("params", "expected"), [
    ({"sla_breached": "true"}, {"ack_late_pending", "ack_late_done", "resolve_late_pending"}),
    ({"sla_breached": "false"}, {"fresh", "all_in_time", "low_pending"}),
    ({"sla_breached": "true", "sla": "acknowledge"}, {"ack_late_pending", "ack_late_done"}),
    ({"sla_breached": "true", "sla": "resolve"}, {"resolve_late_pending"}),
    ({"sla_breached": "false", "sla": "resolve"}, {"fresh", "ack_late_pending", "ack_late_done", "all_in_time",
                                                    "low_pending"}),
    ({"sla_breached": "true", "status": "new"}, {"ack_late_pending"}),
])
def test_the_sla_filter_agrees_with_the_flags(client: TestClient, analyst: Caller,  # noqa: F811
                                              sla_mix: dict[str, Alert], params: dict[str, Any],
                                              expected: set[str]) -> None:
    ids = list_ids(client, analyst, **params)
    assert _names(sla_mix, ids) == expected
    items = client.get("/api/v1/alerts", params={"limit": 100}, headers=analyst.headers).json()["items"]
    flags = {i["id"]: i["sla"] for i in items}
    for alert_id in ids:
        kinds = [params["sla"]] if "sla" in params else ["acknowledge", "resolve"]
        breached = any(flags[alert_id][f"{k}_breached"] for k in kinds)
        assert breached is (params["sla_breached"] == "true")


def test_the_sla_filter_pages_like_any_other(client: TestClient, analyst: Caller,  # noqa: F811
                                             make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    late = {make_alert(level="critical", created_at=ago(hours=1), last_seen=ago(minutes=i)).id for i in range(7)}
    make_alert(level="critical", created_at=ago(minutes=1))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"sla_breached": "true", "limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/alerts", params=params, headers=analyst.headers).json()
        seen += [i["id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(late)


def test_targets_come_from_the_configuration(client: TestClient, analyst: Caller, app_state: AppState,  # noqa: F811
                                             make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    triage = TriageConfig.model_validate({"sla": {"high": {"acknowledge_minutes": 5, "resolve_minutes": 60}}})
    app_state.cfg = app_state.cfg.model_copy(update={"triage": triage})
    alert = make_alert(level="high", created_at=ago(minutes=10))
    assert _sla(client, analyst, alert)["acknowledge_breached"] is True
    assert list_ids(client, analyst, sla_breached="true", sla="acknowledge") == [alert.id]

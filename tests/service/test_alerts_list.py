"""GET /api/v1/alerts: filters, scope, sort with cursor pages, facets, totals, groups."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soc.alerts.models import Alert
from soc.triage.schemas import AlertGroups, AlertPage
from soc.triage.workflow import STATUS_RANK
from tests.service.conftest import Caller
from tests.service.triage_fixtures import NOW, analyst, commune_analyst, list_ids, make_alert  # noqa: F401


@pytest.fixture
def queue(make_alert: Callable[..., Alert], analyst: Caller) -> dict[str, Alert]:  # noqa: F811
    """Six alerts, each different in what the filters look at."""
    return {
        "ssh": make_alert(rule_id="ssh-failed", level="high", status="new", system_id="ad-servers",
                          key_fields={"source.ip": "203.0.113.7", "user.name": "root"},
                          last_seen=NOW - timedelta(minutes=1)),
        "sqli": make_alert(rule_id="sqli", rule_title="SQL Injection Strings In URI", level="critical",
                           status="acknowledged", system_id="motcua-thanh-son", tactics=["Initial Access"],
                           techniques=["T1190"], assignee_id=analyst.user.id,
                           key_fields={"url.original": "/tin-tuc?id=1%20UNION%20SELECT", "source.ip": "10.10.99.20"},
                           last_seen=NOW - timedelta(minutes=10)),
        "low": make_alert(rule_id="ssh-failed", level="low", status="resolved", resolution="false_positive",
                          system_id="web-huyen", incident_id="00000000-0000-0000-0000-00000000c0de",
                          last_seen=NOW - timedelta(hours=2)),
        "info": make_alert(rule_id="port-scan", rule_title="Quét cổng / Port scan", level="informational",
                           status="in_progress", system_id="motcua-hy-cuong", retro=True, tactics=["Discovery"],
                           techniques=["T1046"], key_fields={"source.ip": "198.51.100.4"},
                           last_seen=NOW - timedelta(days=3)),
        "merged": make_alert(rule_id="admin-login", rule_title="Đăng nhập quản trị bất thường / Unusual admin login",
                             level="medium", status="new", system_id="web-chu-hoa", tactics=[], techniques=[],
                             key_fields={"user.name": "Quản-trị"}, last_seen=NOW - timedelta(days=5)),
        "nowhere": make_alert(rule_id="port-scan", level="medium", status="new", system_id="unassigned",
                              agency_id=None, level_gov=None, classification=None, tactics=["Discovery"],
                              techniques=["T1046"], last_seen=NOW - timedelta(minutes=30)),
    }


def names(queue: dict[str, Alert], ids: list[str]) -> set[str]:
    by_id = {a.id: name for name, a in queue.items()}
    return {by_id[i] for i in ids}


@pytest.mark.parametrize(("params", "expected"), [
    ({"status": "new"}, {"ssh", "merged", "nowhere"}),
    ({"status": ["new", "acknowledged"]}, {"ssh", "sqli", "merged", "nowhere"}),
    ({"status": "new,acknowledged"}, {"ssh", "sqli", "merged", "nowhere"}),
    ({"level": ["high", "critical"]}, {"ssh", "sqli"}),
    ({"severity": "medium"}, {"merged", "nowhere"}),
    ({"min_level": "high"}, {"ssh", "sqli"}),
    ({"min_level": "medium"}, {"ssh", "sqli", "merged", "nowhere"}),
    ({"rule_id": "port-scan"}, {"info", "nowhere"}),
    ({"tactic": "credential-access"}, {"ssh", "low"}),
    ({"tactic": "Credential Access"}, {"ssh", "low"}),
    ({"tactic": ["initial_access", "discovery"]}, {"sqli", "info", "nowhere"}),
    ({"technique": "T1110"}, {"ssh", "low"}),
    ({"technique": "t1110.001"}, {"ssh", "low"}),
    ({"technique": "T1190"}, {"sqli"}),
    ({"system_id": ["ad-servers", "web-huyen"]}, {"ssh", "low"}),
    ({"agency_id": "huyen-thanh-son"}, {"low"}),
    ({"agency_id": "huyen-thanh-son", "include_children": "true"}, {"low", "sqli"}),
    ({"agency_id": "xa-hy-cuong", "include_children": "true"}, {"info", "merged"}),
    ({"level_gov": "commune"}, {"sqli", "info", "merged"}),
    ({"classification": 1}, {"merged"}),
    ({"classification": [2, 3]}, {"ssh", "sqli", "low", "info"}),
    ({"assignee": "me"}, {"sqli"}),
    ({"assignee": "none"}, {"ssh", "low", "info", "merged", "nowhere"}),
    ({"incident_id": "00000000-0000-0000-0000-00000000c0de"}, {"low"}),
    ({"incident_id": "none", "status": "resolved"}, set()),
    ({"retro": "true"}, {"info"}),
    ({"retro": "false", "level": "informational"}, set()),
    ({"since": "1h"}, {"ssh", "sqli", "nowhere"}),
    ({"until": "1d"}, {"info", "merged"}),
    ({"since": "4d", "until": "1d"}, {"info"}),
    ({"q": "203.0.113.7"}, {"ssh"}),
    ({"q": "id=1%20union"}, {"sqli"}),
    ({"q": "dang nhap quan tri"}, {"merged"}),
    ({"q": "ĐĂNG NHẬP QUẢN TRỊ"}, {"merged"}),
    ({"q": "quản-trị"}, {"merged"}),
    ({"q": "%"}, {"sqli"}),
    ({"q": "_"}, set()),
])
def test_each_filter_keeps_exactly_the_matching_alerts(client: TestClient, analyst: Caller,  # noqa: F811
                                                       queue: dict[str, Alert], params: dict[str, Any],
                                                       expected: set[str]) -> None:
    assert names(queue, list_ids(client, analyst, **params)) == expected


def test_assignee_filter_takes_a_user_id(client: TestClient, analyst: Caller,  # noqa: F811
                                         queue: dict[str, Alert]) -> None:
    assert names(queue, list_ids(client, analyst, assignee=analyst.user.id)) == {"sqli"}


def test_the_default_order_is_most_recent_activity_first(client: TestClient, analyst: Caller,  # noqa: F811
                                                         queue: dict[str, Alert]) -> None:
    ids = list_ids(client, analyst)
    assert [a for a in ids] == [queue[n].id for n in ("ssh", "sqli", "nowhere", "low", "info", "merged")]


def test_a_commune_analyst_sees_only_the_communes_alerts(client: TestClient, commune_analyst: Caller,  # noqa: F811
                                                         queue: dict[str, Alert]) -> None:
    assert names(queue, list_ids(client, commune_analyst)) == {"sqli"}
    assert names(queue, list_ids(client, commune_analyst, agency_id="so-khcn")) == set()


def test_a_district_analyst_sees_the_district_and_its_communes(client: TestClient, queue: dict[str, Alert],
                                                               make_caller: Callable[..., Caller]) -> None:
    district = make_caller("viewer", ["huyen-thanh-son"])
    assert names(queue, list_ids(client, district)) == {"low", "sqli"}


def test_a_merged_communes_alerts_stay_visible_to_the_commune_it_merged_into(
        client: TestClient, queue: dict[str, Alert], make_caller: Callable[..., Caller]) -> None:
    hy_cuong = make_caller("analyst", ["xa-hy-cuong"])
    assert names(queue, list_ids(client, hy_cuong)) == {"info", "merged"}


def test_alerts_of_no_agency_are_seen_only_with_the_whole_province(client: TestClient, queue: dict[str, Alert],
                                                                    make_caller: Callable[..., Caller]) -> None:
    department = make_caller("analyst", ["so-khcn"])
    assert names(queue, list_ids(client, department)) == {"ssh"}


def test_the_list_answers_with_the_documented_shape(client: TestClient, analyst: Caller,  # noqa: F811
                                                    queue: dict[str, Alert]) -> None:
    response = client.get("/api/v1/alerts", params={"facets": "status,level,tactic", "total": "true"},
                          headers=analyst.headers)
    page = AlertPage.model_validate(response.json())
    assert len(page.items) == 6
    assert "search_text" not in response.json()["items"][0]


def test_total_and_facets_are_left_out_unless_asked(client: TestClient, analyst: Caller,  # noqa: F811
                                                    queue: dict[str, Alert]) -> None:
    body = client.get("/api/v1/alerts", headers=analyst.headers).json()
    assert body["total"] is None and body["facets"] is None


def test_total_counts_every_match_beyond_the_page(client: TestClient, analyst: Caller,  # noqa: F811
                                                  queue: dict[str, Alert]) -> None:
    body = client.get("/api/v1/alerts", params={"limit": 2, "status": "new", "total": "true"},
                      headers=analyst.headers).json()
    assert (len(body["items"]), body["total"]) == (2, 3)


def test_facets_count_values_under_the_same_filters(client: TestClient, analyst: Caller,  # noqa: F811
                                                    queue: dict[str, Alert]) -> None:
    body = client.get("/api/v1/alerts", params={"facets": "status,level,tactic,assignee_id,rule_id,system_id,"
                                                          "agency_id,level_gov", "min_level": "medium"},
                      headers=analyst.headers).json()
    facets = {name: {b["value"]: b["count"] for b in buckets} for name, buckets in body["facets"].items()}
    assert facets["status"] == {"new": 3, "acknowledged": 1}
    assert facets["level"] == {"medium": 2, "high": 1, "critical": 1}
    assert facets["tactic"] == {"credential-access": 1, "initial-access": 1, "discovery": 1}
    assert facets["assignee_id"] == {"none": 3, analyst.user.id: 1}
    assert facets["rule_id"] == {"ssh-failed": 1, "sqli": 1, "admin-login": 1, "port-scan": 1}
    assert facets["agency_id"] == {"so-khcn": 1, "xa-thanh-son": 1, "xa-chu-hoa": 1, "none": 1}
    assert facets["level_gov"] == {"province": 1, "commune": 2, "none": 1}
    assert sum(facets["system_id"].values()) == 4


def test_facets_never_count_what_the_scope_hides(client: TestClient, commune_analyst: Caller,  # noqa: F811
                                                 queue: dict[str, Alert]) -> None:
    body = client.get("/api/v1/alerts", params={"facets": "status", "total": "true"},
                      headers=commune_analyst.headers).json()
    assert body["facets"]["status"] == [{"value": "acknowledged", "count": 1}]
    assert body["total"] == 1


@pytest.mark.parametrize("params", [{"status": "open"}, {"level": "severe"}, {"level_gov": "village"},
                                    {"facets": "colour"}, {"classification": 7}, {"since": "yesterday"},
                                    {"cursor": "not-a-cursor"}])
def test_a_bad_filter_value_is_400_saying_what_is_allowed(client: TestClient, analyst: Caller,  # noqa: F811
                                                          params: dict[str, Any]) -> None:
    response = client.get("/api/v1/alerts", params=params, headers=analyst.headers)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] and response.json()["detail_vi"]


@pytest.mark.parametrize("params", [{"limit": 501}, {"limit": 0}, {"sort": "colour"}, {"order": "up"}])
def test_an_out_of_range_page_parameter_is_422(client: TestClient, analyst: Caller,  # noqa: F811
                                              params: dict[str, Any]) -> None:
    assert client.get("/api/v1/alerts", params=params, headers=analyst.headers).status_code == 422


# --- sort and cursor -------------------------------------------------------------------------------

@pytest.fixture
def many(make_alert: Callable[..., Alert]) -> list[Alert]:  # noqa: F811
    """37 alerts with many equal sort keys (ties must still page exactly once each)."""
    rng = random.Random(4)
    levels = ["informational", "low", "medium", "high", "critical"]
    statuses = ["new", "acknowledged", "in_progress", "resolved"]
    out = []
    for i in range(37):
        seen = NOW - timedelta(minutes=rng.choice([1, 2, 3, 5, 8]))
        status = rng.choice(statuses)
        out.append(make_alert(last_seen=seen, first_seen=seen - timedelta(minutes=rng.choice([0, 10])),
                              created_at=seen - timedelta(minutes=rng.choice([0, 10, 20])),
                              updated_at=seen, level=rng.choice(levels), count=rng.choice([1, 2, 50]),
                              status=status, resolution="benign" if status == "resolved" else None,
                              system_id="ad-servers" if i % 3 else "motcua-thanh-son"))
    return out


def _key(alert: Alert, sort: str) -> tuple[Any, ...]:
    level_rank = ["informational", "low", "medium", "high", "critical"].index(alert.level)
    head: dict[str, tuple[Any, ...]] = {"level": (level_rank, alert.last_seen),
                                        "status": (STATUS_RANK[alert.status], alert.last_seen),
                                        "count": (alert.count,)}
    return (*head.get(sort, (getattr(alert, sort),)), alert.id)


@pytest.mark.parametrize("sort", ["last_seen", "first_seen", "created_at", "updated_at", "level", "count", "status"])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_cursor_pages_walk_every_alert_exactly_once_in_order(client: TestClient, analyst: Caller,  # noqa: F811
                                                             many: list[Alert], sort: str, order: str) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"sort": sort, "order": order, "limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/alerts", params=params, headers=analyst.headers).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = sorted(many, key=lambda a: _key(a, sort), reverse=order == "desc")
    assert seen == [a.id for a in expected]
    assert pages == 8


def test_a_filtered_walk_stays_within_the_filter(client: TestClient, analyst: Caller,  # noqa: F811
                                                 many: list[Alert]) -> None:
    wanted = {a.id for a in many if a.system_id == "motcua-thanh-son" and a.status != "resolved"}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"system_id": "motcua-thanh-son", "status": "new,acknowledged,in_progress",
                                  "limit": 2, "sort": "level"}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/alerts", params=params, headers=analyst.headers).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(wanted) and len(seen) == len(wanted)


def test_a_cursor_of_another_sort_is_refused(client: TestClient, analyst: Caller,  # noqa: F811
                                             many: list[Alert]) -> None:
    cursor = client.get("/api/v1/alerts", params={"limit": 5}, headers=analyst.headers).json()["next_cursor"]
    response = client.get("/api/v1/alerts", params={"limit": 5, "sort": "count", "cursor": cursor},
                          headers=analyst.headers)
    assert response.status_code == 400
    assert "cursor" in response.json()["detail"]


# --- groups -----------------------------------------------------------------------------------------

def _groups(client: TestClient, caller: Caller, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/alerts/groups", params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    return AlertGroups.model_validate(response.json()).model_dump()["items"]


def test_groups_by_rule_count_total_and_open_alerts(client: TestClient, analyst: Caller,  # noqa: F811
                                                    queue: dict[str, Alert]) -> None:
    groups = {g["rule_id"]: g for g in _groups(client, analyst, by="rule")}
    assert set(groups) == {"ssh-failed", "sqli", "port-scan", "admin-login"}
    ssh = groups["ssh-failed"]
    assert (ssh["total"], ssh["open"], ssh["max_level"]) == (2, 1, "high")
    assert ssh["last_seen"] == queue["ssh"].last_seen
    assert (groups["port-scan"]["total"], groups["port-scan"]["open"]) == (2, 2)


def test_groups_by_rule_and_system_split_each_rule_per_system(client: TestClient, analyst: Caller,  # noqa: F811
                                                              queue: dict[str, Alert]) -> None:
    groups = _groups(client, analyst, by="rule,system")
    pairs = {(g["rule_id"], g["system_id"]): g["total"] for g in groups}
    assert pairs[("ssh-failed", "ad-servers")] == 1
    assert pairs[("ssh-failed", "web-huyen")] == 1
    assert len(pairs) == 6


def test_groups_follow_the_filters_and_the_scope(client: TestClient, analyst: Caller,  # noqa: F811
                                                 commune_analyst: Caller, queue: dict[str, Alert]) -> None:  # noqa: F811
    assert {g["system_id"] for g in _groups(client, analyst, by="system", status="new")} == {
        "ad-servers", "web-chu-hoa", "unassigned"}
    assert [g["system_id"] for g in _groups(client, commune_analyst, by="system")] == ["motcua-thanh-son"]

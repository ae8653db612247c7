"""/api/v1/notifications: the deliveries record within the caller's scope, the
configured channels without secrets, and the audited test send."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from soc.audit.models import AuditEntry
from soc.config import SocConfig
from soc.db import Database, utcnow
from soc.notify.dispatcher import Dispatcher
from tests.service.conftest import Caller
from tests.service.notify_fixtures import HttpReceiver, http_receiver, notify_config, raise_alert

DELIVERIES = "/api/v1/notifications/deliveries"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as r:
        yield r


@pytest.fixture
def soc_config(tmp_path: Any, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> SocConfig:
    """The service's configuration with a signed webhook and a Telegram channel."""
    monkeypatch.setenv("SOC_TEST_HOOK_SECRET", "chia-se-bi-mat")
    monkeypatch.setenv("SOC_TEST_BOT_TOKEN", "555:token-bi-mat")
    base = SocConfig(data_dir=tmp_path / "var", systems_dir=tmp_path / "no-systems", json_mappings_dir=None)
    return notify_config(base, {
        "hook": {"type": "webhook", "url": f"{receiver.url}/soc", "secret_env": "SOC_TEST_HOOK_SECRET",
                 "headers": {"Authorization": "Bearer tieu-de-bi-mat"}},
        "chat": {"type": "telegram", "url": f"{receiver.url}/bot{{token}}/sendMessage",
                 "token_env": "SOC_TEST_BOT_TOKEN", "chat_id": "-100200"},
    }, [{"name": "all", "min_level": "high", "channels": ["hook"]},
        {"name": "xa-hy-cuong", "min_level": "low", "agencies": ["xa-hy-cuong"], "channels": ["chat"]}])


@pytest.fixture
def delivered(db: Database, agencies: list[str], soc_config: SocConfig) -> dict[str, str]:
    """Alerts of two communes, routed and sent once: label → alert id."""
    dispatcher = Dispatcher(db, soc_config)
    dispatcher.route_new(utcnow())
    alerts = {"thanh-son": raise_alert(db, "high", system="motcua-xa-thanh-son"),
              "hy-cuong": raise_alert(db, "critical", system="motcua-xa-hy-cuong"),
              "chu-hoa": raise_alert(db, "medium", system="motcua-xa-chu-hoa")}
    dispatcher.route_new(utcnow())
    asyncio.run(dispatcher.send_due(utcnow() + timedelta(seconds=1)))
    return alerts


def test_an_admin_lists_every_delivery_newest_first(client: TestClient, make_caller: Callable[..., Caller],
                                                    delivered: dict[str, str]) -> None:
    admin = make_caller("admin")

    response = client.get(DELIVERIES, headers=admin.headers)

    assert response.status_code == 200
    items = response.json()["items"]
    pairs = {(i["alert_id"], i["route"], i["channel"]) for i in items}
    assert pairs == {(delivered["thanh-son"], "all", "hook"), (delivered["hy-cuong"], "all", "hook"),
                     (delivered["hy-cuong"], "xa-hy-cuong", "chat"), (delivered["chu-hoa"], "xa-hy-cuong", "chat")}
    assert all(i["status"] == "sent" and i["attempts"] == 1 for i in items)
    assert [i["created_at"] for i in items] == sorted((i["created_at"] for i in items), reverse=True)
    assert response.json()["next_cursor"] is None


def test_deliveries_are_limited_to_the_callers_agencies(client: TestClient, make_caller: Callable[..., Caller],
                                                        delivered: dict[str, str]) -> None:
    auditor = make_caller("auditor", ["xa-hy-cuong"])

    items = client.get(DELIVERIES, headers=auditor.headers).json()["items"]

    assert {i["alert_id"] for i in items} == {delivered["hy-cuong"], delivered["chu-hoa"]}
    assert {i["alert"]["agency_id"] for i in items} == {"xa-hy-cuong", "xa-chu-hoa"}


def test_deliveries_filter_by_status_alert_channel_and_time(
        client: TestClient, make_caller: Callable[..., Caller], delivered: dict[str, str]) -> None:
    headers = make_caller("admin").headers

    def alerts(**params: str) -> list[tuple[str, str]]:
        response = client.get(DELIVERIES, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return sorted((i["alert_id"], i["channel"]) for i in response.json()["items"])

    assert alerts(status="failed") == []
    assert alerts(alert_id=delivered["hy-cuong"]) == sorted([(delivered["hy-cuong"], "chat"),
                                                             (delivered["hy-cuong"], "hook")])
    assert alerts(channel="chat") == sorted([(delivered["hy-cuong"], "chat"), (delivered["chu-hoa"], "chat")])
    assert len(alerts(since="1h")) == 4
    assert alerts(since=(utcnow() + timedelta(hours=1)).isoformat()) == []


def test_deliveries_are_paged_with_a_cursor(client: TestClient, make_caller: Callable[..., Caller],
                                            delivered: dict[str, str]) -> None:
    headers = make_caller("admin").headers
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = client.get(DELIVERIES, params=params, headers=headers).json()
        seen += [i["id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 2 and len(seen) == len(set(seen)) == 4


def test_a_bad_cursor_or_time_is_a_400_saying_what_to_pass(client: TestClient,
                                                           make_caller: Callable[..., Caller]) -> None:
    headers = make_caller("admin").headers

    bad_cursor = client.get(DELIVERIES, params={"cursor": "not-a-cursor"}, headers=headers)
    bad_since = client.get(DELIVERIES, params={"since": "yesterday-ish"}, headers=headers)

    assert bad_cursor.status_code == 400 and "next_cursor" in bad_cursor.json()["detail"]
    assert bad_since.status_code == 400 and "ISO 8601" in bad_since.json()["detail"]
    assert bad_since.json()["detail_vi"].startswith("Thời điểm")


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_viewers_and_analysts_may_not_read_deliveries(client: TestClient, make_caller: Callable[..., Caller],
                                                      role: str) -> None:
    response = client.get(DELIVERIES, headers=make_caller(role).headers)

    assert response.status_code == 403
    assert response.json()["detail"] == f"The role '{role}' lacks the permission 'service.read'"


def test_channels_are_listed_without_secrets(client: TestClient, make_caller: Callable[..., Caller],
                                             receiver: HttpReceiver) -> None:
    response = client.get("/api/v1/notifications/channels", headers=make_caller("auditor").headers)

    assert response.status_code == 200
    body = response.json()
    assert {c["name"]: c["kind"] for c in body["channels"]} == {"hook": "webhook", "chat": "telegram"}
    hook = next(c for c in body["channels"] if c["name"] == "hook")
    assert hook["headers"] == ["Authorization"] and hook["signed"] is True
    assert [r["name"] for r in body["routes"]] == ["all", "xa-hy-cuong"]
    text = response.text
    for secret in ("chia-se-bi-mat", "token-bi-mat", "tieu-de-bi-mat", "555:"):
        assert secret not in text


def test_a_test_send_reaches_the_channel_and_is_audited(client: TestClient, make_caller: Callable[..., Caller],
                                                       receiver: HttpReceiver, db: Database) -> None:
    admin = make_caller("admin", username="quantri")

    response = client.post("/api/v1/notifications/test", json={"channel": "hook"}, headers=admin.headers)

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["channel"], result["kind"], result["ok"], result["error"]) == ("hook", "webhook", True, None)
    [request] = receiver.requests
    assert request.json()["type"] == "test"
    assert request.json()["alert"]["rule"]["id"] == "soc-notification-test"
    with db.read() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "notification.test")).one()
    assert (entry.actor_name, entry.target_type, entry.target_id) == ("quantri", "notification_channel", "hook")
    assert entry.after is not None and entry.after["ok"] is True


def test_a_failed_test_send_reports_the_receivers_answer(client: TestClient, make_caller: Callable[..., Caller],
                                                        receiver: HttpReceiver) -> None:
    receiver.answer(403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was kicked"})

    result = client.post("/api/v1/notifications/test", json={"channel": "chat"},
                         headers=make_caller("admin").headers).json()

    assert (result["ok"], result["retryable"]) == (False, False)
    assert result["error"] == "Telegram 403: Forbidden: bot was kicked"
    assert "token-bi-mat" not in result["target"]


def test_a_test_send_to_an_unknown_channel_is_a_404(client: TestClient,
                                                    make_caller: Callable[..., Caller]) -> None:
    response = client.post("/api/v1/notifications/test", json={"channel": "fax"},
                           headers=make_caller("admin").headers)

    assert response.status_code == 404
    assert response.json()["detail"] == "No notification channel 'fax'"


@pytest.mark.parametrize("role", ["auditor", "analyst", "viewer"])
def test_only_admins_may_send_a_test(client: TestClient, make_caller: Callable[..., Caller], role: str,
                                     receiver: HttpReceiver) -> None:
    response = client.post("/api/v1/notifications/test", json={"channel": "hook"},
                           headers=make_caller(role).headers)

    assert response.status_code == 403
    assert receiver.requests == []

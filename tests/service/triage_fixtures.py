"""Alerts and analysts for the triage tests.

Alerts are written as rows (the shape :class:`~soc.alerts.store.AlertStore` gives
them), so a test can place one anywhere in time and in the agency tree of
``tests/service/conftest.py``; tests that need the store's own behaviour raise
detections through it."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from soc.alerts.models import Alert
from soc.audit.models import AuditEntry
from soc.db import Database, utcnow
from tests.service.conftest import Caller

NOW = datetime.now(UTC).replace(microsecond=0)

SYSTEMS: dict[str, dict[str, Any]] = {
    # system id → where it sits in the conftest agency tree
    "ad-servers": {"agency_id": "so-khcn", "level_gov": "province", "classification": 3},
    "motcua-thanh-son": {"agency_id": "xa-thanh-son", "level_gov": "commune", "classification": 2},
    "web-huyen": {"agency_id": "huyen-thanh-son", "level_gov": "district", "classification": 2},
    "motcua-hy-cuong": {"agency_id": "xa-hy-cuong", "level_gov": "commune", "classification": 2},
    "web-chu-hoa": {"agency_id": "xa-chu-hoa", "level_gov": "commune", "classification": 1},
}
_counter = itertools.count(1)


def alert_row(**fields: Any) -> Alert:
    """An alert as the store opens it: new, on ``ad-servers``, seen a minute ago,
    ATT&CK credential access (T1110.001); any column can be overridden."""
    n = next(_counter)
    system = fields.get("system_id", "ad-servers")
    last_seen = fields.pop("last_seen", NOW - timedelta(minutes=1))
    first_seen = fields.pop("first_seen", last_seen - timedelta(minutes=5))
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()), "rule_id": "ssh-failed", "rule_title": "Đăng nhập SSH thất bại / SSH failed login",
        "level": "high", "kind": "detection", "status": "new", "tactics": ["Credential Access"],
        "techniques": ["T1110.001"], "dedup_key": f"{n:064x}", "count": 3, "first_seen": first_seen,
        "last_seen": last_seen, "created_at": fields.pop("created_at", first_seen),
        "updated_at": last_seen, "event_ids": [], "system_id": system,
        "key_fields": {"source.ip": f"203.0.113.{n % 250}", "user.name": "root"},
        "summary": "Đăng nhập SSH thất bại / SSH failed login", **SYSTEMS.get(system, {}),
    }
    values.update(fields)
    return Alert(**values)


@pytest.fixture
def make_alert(db: Database) -> Callable[..., Alert]:
    """``make_alert(**columns)``: one alert row in the database (see :func:`alert_row`)."""

    def make(**fields: Any) -> Alert:
        alert = alert_row(**fields)
        with db.write() as session:
            session.add(alert)
        return alert

    return make


@pytest.fixture
def analyst(make_caller: Callable[..., Caller]) -> Caller:
    """An analyst of the province: sees every agency."""
    return make_caller("analyst", ["tinh-phu-tho"], username="phan-tich-tinh")


@pytest.fixture
def commune_analyst(make_caller: Callable[..., Caller]) -> Caller:
    """An analyst of xã Thanh Sơn only."""
    return make_caller("analyst", ["xa-thanh-son"], username="phan-tich-xa")


def get_alert(client: TestClient, caller: Caller, alert_id: str) -> httpx.Response:
    return client.get(f"/api/v1/alerts/{alert_id}", headers=caller.headers)


def patch_alert(client: TestClient, caller: Caller, alert_id: str, body: dict[str, Any],
                version: int | str | None) -> httpx.Response:
    headers = dict(caller.headers)
    if version is not None:
        headers["If-Match"] = f'"{version}"' if isinstance(version, int) else version
    return client.patch(f"/api/v1/alerts/{alert_id}", json=body, headers=headers)


def list_ids(client: TestClient, caller: Caller, **params: Any) -> list[str]:
    response = client.get("/api/v1/alerts", params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def audit_actions(db: Database, target_id: str) -> list[AuditEntry]:
    with db.read() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.target_id == target_id)
                                    .order_by(AuditEntry.seq)))


def reload(db: Database, alert_id: str) -> Alert:
    with db.read() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert


def ago(**delta: float) -> datetime:
    return utcnow() - timedelta(**delta)

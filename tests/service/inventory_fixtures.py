"""Helpers of the inventory tests: a configuration whose ``config/profiles`` holds the
shipped onboarding profiles, one-request onboarding through the API, and ingest with
a system's key."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from soc.config import SocConfig
from soc.store.base import EventStore
from tests.conftest import REPO
from tests.service.conftest import Caller

SSH_LINE = "Dec 10 06:55:46 web01 sshd[24200]: Failed password for root from 203.0.113.7 port 22 ssh2"


def inventory_config(tmp_path: Path) -> SocConfig:
    """The service tests' configuration plus the shipped onboarding profiles (the
    systems directory itself stays empty: the tests build their own inventory)."""
    config_dir = tmp_path / "config"
    shutil.copytree(REPO / "config" / "profiles", config_dir / "profiles")
    return SocConfig(data_dir=tmp_path / "var", systems_dir=config_dir / "systems", json_mappings_dir=None)


def system_body(system_id: str = "web-xa-thanh-son", agency: str = "xa-thanh-son", **overrides: Any
                ) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": system_id, "name": f"Trang thông tin {system_id}", "type": "web_portal", "agency": agency,
        "classification": 2, "owner": {"name": "Nguyễn Văn A", "email": "a.nguyen@phutho.gov.vn"},
        "hosts": [f"{system_id}.phutho.gov.vn"], "cidrs": [], "profile": "web_portal",
        "log_sources": [{"name": "web-access", "format": "nginx", "transport": "syslog",
                         "expected_interval": "1h"}],
    }
    body.update(overrides)
    return body


def onboard(client: TestClient, caller: Caller, system_id: str = "web-xa-thanh-son", agency: str = "xa-thanh-son",
            **overrides: Any) -> dict[str, Any]:
    """``POST /api/v1/systems``; the answer (system and key) of a 201."""
    response = client.post("/api/v1/systems", json=system_body(system_id, agency, **overrides),
                           headers=caller.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def ingest(client: TestClient, key: str, *lines: str) -> httpx.Response:
    return client.post("/api/v1/ingest", content="\n".join(lines or (SSH_LINE,)),
                       headers={"X-Ingest-Key": key, "Content-Type": "text/plain"})


def stored_systems(store: EventStore) -> list[str]:
    """``gov.system.id`` of every stored event."""
    return [event["gov"]["system"]["id"] for event in store.search("*", limit=1000)]

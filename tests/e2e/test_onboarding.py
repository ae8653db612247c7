"""Onboarding end to end, on the real ``soc run``: an admin registers a system in one
request, the system sends its logs with the key it got, the state becomes
"receiving"; the system stops sending and ``source_silent`` fires within twice the
expected interval; logs come back and the alert clears."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DATASETS
from tests.e2e.harness import Service, admin_token, free_port, wait_for, write_config

ACCESS_LOG = DATASETS / "web" / "elastic-examples" / "apache_logs.part1"
INTERVAL_S = 10
SYSTEM = {
    "id": "dvc-xa-thanh-son",
    "name": "Dịch vụ công xã Thanh Sơn",
    "type": "one_stop_portal",
    "agency": "ubnd-xa-thanh-son",
    "classification": 3,
    "owner": {"name": "Nguyễn Văn A", "email": "a.nguyen@thanhson.phutho.gov.vn"},
    "hosts": ["dvc.thanhson.phutho.gov.vn"],
    "log_sources": [{"name": "web-access", "format": "apache", "transport": "http",
                     "expected_interval": f"{INTERVAL_S}s"}],
}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    api_port = free_port()
    config = write_config(tmp_path, api_port=api_port, syslog_port=free_port())
    with config.open("a", encoding="utf-8") as fh:
        fh.write("health: {silent_check_seconds: 1}\n")
    token = admin_token(config)
    svc = Service(config, api_port, token, tmp_path / "soc.log")
    svc.wait_ready()
    yield svc
    svc.stop()


def _lines(start: int, count: int) -> str:
    lines = ACCESS_LOG.read_text(encoding="utf-8").splitlines()[start:start + count]
    assert len(lines) == count
    return "\n".join(lines) + "\n"


def _health(svc: Service) -> dict[str, Any]:
    response = httpx.get(f"{svc.url}/api/v1/systems/{SYSTEM['id']}/health", headers=svc.headers(), timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _alert(svc: Service, alert_id: str) -> dict[str, Any]:
    response = httpx.get(f"{svc.url}/api/v1/alerts/{alert_id}", headers=svc.headers(), timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def _send(svc: Service, key: str, start: int) -> None:
    response = httpx.post(f"{svc.url}/api/v1/ingest", params={"source": "web-access"},
                          content=_lines(start, 20).encode(), timeout=30,
                          headers={"Authorization": f"Bearer {key}", "Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 20


def test_onboard_receive_go_silent_and_recover(service: Service) -> None:
    created = httpx.post(f"{service.url}/api/v1/systems", json=SYSTEM, headers=service.headers(), timeout=30)
    assert created.status_code == 201, created.text
    key = created.json()["ingest_key"]["key"]
    assert created.json()["system"]["onboarding"] == "awaiting_first_log"

    _send(service, key, 0)
    wait_for(lambda: _health(service)["state"] == "receiving", timeout=30)
    source = _health(service)["sources"][0]
    assert source["events_total"] == 20 and source["parse_failures_total"] == 0

    # The deadline itself (within twice the interval) is checked with explicit clocks in
    # tests/service/test_health_silence.py; here the service must get there on its own.
    wait_for(lambda: _health(service)["sources"][0]["silent"], timeout=6 * INTERVAL_S)
    alert_id = _health(service)["sources"][0]["silent_alert_id"]
    alert = _alert(service, alert_id)
    assert alert["rule_id"] == "soc-internal-source-silent"
    assert alert["system_id"] == SYSTEM["id"] and alert["agency_id"] == SYSTEM["agency"]
    assert alert["status"] == "new"

    _send(service, key, 20)
    wait_for(lambda: not _health(service)["sources"][0]["silent"], timeout=30)
    cleared = _alert(service, alert_id)
    assert cleared["status"] == "resolved" and cleared["resolution"] == "benign"
    assert _health(service)["state"] == "receiving"

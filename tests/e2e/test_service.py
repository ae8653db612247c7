"""End to end: ``soc run`` receives a real sshd log over TCP syslog, UDP syslog and
HTTP ingest, and ``soc events search`` finds every line."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DATASETS
from tests.e2e.harness import Service, admin_token, free_port, ingest_key, search_json, wait_for, write_config

SSHD = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"


@pytest.fixture(scope="module")
def sshd_lines() -> list[str]:
    return SSHD.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, int, Path]]:
    tmp = tmp_path_factory.mktemp("e2e")
    api_port, syslog_port = free_port(), free_port()
    config = write_config(tmp, api_port=api_port, syslog_port=syslog_port)
    token = admin_token(config)
    service = Service(config, api_port, token, tmp / "soc.log")
    try:
        service.wait_ready()
        yield service, syslog_port, config
    finally:
        service.stop()


def test_tcp_syslog_lines_are_all_searchable(running: tuple[Service, int, Path], sshd_lines: list[str]) -> None:
    _, port, config = running
    lines = sshd_lines[:300]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall("".join(f"{line}\n" for line in lines).encode())
    wait_for(lambda: _originals(config, "input.type:syslog") >= Counter(lines))


def test_udp_syslog_lines_are_all_searchable(running: tuple[Service, int, Path], sshd_lines: list[str]) -> None:
    _, port, config = running
    lines = sshd_lines[300:600]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i, line in enumerate(lines):
            sock.sendto(f"<38>{line}".encode(), ("127.0.0.1", port))
            if i % 25 == 0:
                time.sleep(0.002)  # stay under the loopback socket buffer
    expected = Counter(f"<38>{line}" for line in lines)
    wait_for(lambda: _originals(config, "input.type:syslog") >= expected)


def test_http_ingest_lines_are_all_searchable_and_attributed(running: tuple[Service, int, Path],
                                                             sshd_lines: list[str]) -> None:
    service, _, config = running
    lines = sshd_lines[600:900]
    key = ingest_key(config, "ad-servers")
    response = httpx.post(f"{service.url}/api/v1/ingest", content="\n".join(lines).encode(),
                          headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"},
                          timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == len(lines)
    assert _originals(config, "input.type:http AND gov.system.id:ad-servers") == Counter(lines)


def test_sshd_failures_are_parsed_into_ecs_fields(running: tuple[Service, int, Path],
                                                  sshd_lines: list[str]) -> None:
    _, _, config = running
    failed = [line for line in sshd_lines[600:900] if "Failed password for" in line]
    found = search_json(config, 'input.type:http AND event.outcome:failure AND event.action:"ssh_login"')
    assert len(found) >= len(failed) > 0
    assert all(e["source"]["ip"] and e["user"]["name"] for e in found)


def test_http_ingest_retry_creates_no_duplicates(running: tuple[Service, int, Path], sshd_lines: list[str]) -> None:
    service, _, config = running
    body = "\n".join(sshd_lines[900:950]).encode()
    key = ingest_key(config, "ad-servers")
    headers = {"Authorization": f"Bearer {key}"}
    first = httpx.post(f"{service.url}/api/v1/ingest", content=body, headers=headers, timeout=30).json()
    second = httpx.post(f"{service.url}/api/v1/ingest", content=body, headers=headers, timeout=30).json()
    assert first["stored"] == 50
    assert second["stored"] == 0
    assert second["received"] == 50


def test_ingest_rejects_an_unknown_key(running: tuple[Service, int, Path]) -> None:
    service, _, _ = running
    response = httpx.post(f"{service.url}/api/v1/ingest", content=b"x", timeout=10,
                          headers={"Authorization": "Bearer soc_ingest_wrong"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"]


def test_read_routes_need_the_admin_token(running: tuple[Service, int, Path]) -> None:
    service, _, _ = running
    for path in ("/healthz", "/metrics", "/api/v1/events", "/openapi.json"):
        assert httpx.get(f"{service.url}{path}", timeout=10).status_code == 401
        assert httpx.get(f"{service.url}{path}", timeout=10,
                         headers={"Authorization": "Bearer soc_admin_wrong"}).status_code == 401


def test_fastapis_open_documentation_pages_are_not_served(running: tuple[Service, int, Path]) -> None:
    service, _, _ = running
    for path in ("/docs", "/redoc"):
        assert httpx.get(f"{service.url}{path}", timeout=10).status_code == 404


def test_openapi_description_is_served_to_the_admin(running: tuple[Service, int, Path]) -> None:
    service, _, _ = running
    spec = httpx.get(f"{service.url}/openapi.json", headers=service.headers(), timeout=10).json()
    assert {"/api/v1/ingest", "/api/v1/events", "/healthz", "/metrics"} <= set(spec["paths"])


def test_events_api_searches_with_the_query_language(running: tuple[Service, int, Path]) -> None:
    service, _, _ = running
    response = httpx.get(f"{service.url}/api/v1/events", headers=service.headers(), timeout=30,
                         params={"q": "gov.system.id:ad-servers AND event.outcome:failure", "limit": 5,
                                 "count": "true"})
    assert response.status_code == 200
    body = response.json()
    assert body["returned"] == 5 and body["total"] >= 5


def test_events_api_explains_a_bad_query(running: tuple[Service, int, Path]) -> None:
    service, _, _ = running
    response = httpx.get(f"{service.url}/api/v1/events", headers=service.headers(), timeout=10,
                         params={"q": "user.name:(unclosed"})
    assert response.status_code == 400
    assert response.json()["detail"]


def test_metrics_count_events_per_source_and_stage(running: tuple[Service, int, Path]) -> None:
    service, _, _ = running
    text = httpx.get(f"{service.url}/metrics", headers=service.headers(), timeout=10).text
    assert 'soc_pipeline_events_total{source="syslog_tcp",stage="received"}' in text
    assert 'soc_pipeline_events_total{source="http",stage="stored"}' in text
    assert "soc_pipeline_events_per_second" in text
    assert "soc_pipeline_queue_batches" in text


def _originals(config: Path, query: str) -> Counter[str]:
    return Counter(e["event"]["original"] for e in search_json(config, query))

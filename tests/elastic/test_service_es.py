"""``soc run`` with Elasticsearch as its store, end to end: syslog lines and Wazuh
alerts tailed from an existing index land in the SOC's data streams once each, and
alerts are mirrored for Kibana."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch

from soc.store.elastic import names
from tests.conftest import REPO
from tests.e2e.harness import admin_token, child_env, free_port, wait_for, write_config
from tests.elastic.events import OPENSSH

WAZUH_INDEX = "wazuh-alerts-4.x-2026.11.24"


def _wazuh_alert(i: int, line: str) -> dict[str, object]:
    # Before the loghub lines (Dec 10, 06:55 at UTC+7 on): detection runs in event time, and
    # alerts from hours later would move its watermark past the syslog lines.
    return {"timestamp": f"2025-12-09T20:{i // 60:02d}:{i % 60:02d}.000+0000",
            "rule": {"id": "5716", "level": 5, "description": "sshd: authentication failed.", "groups": ["sshd"]},
            "agent": {"id": "003", "name": "web01", "ip": "10.1.2.3"}, "manager": {"name": "wazuh-manager"},
            "decoder": {"name": "sshd"}, "full_log": line, "location": "/var/log/auth.log", "id": f"1732.{i}"}


@pytest.fixture
def service(tmp_path: Path, osmem_url: str, es: Elasticsearch) -> Iterator[tuple[int, Path]]:
    lines = OPENSSH.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines[500:520]):
        es.index(index=WAZUH_INDEX, id=f"w{i}", document=_wazuh_alert(i, line))
    es.indices.refresh(index=WAZUH_INDEX)
    api_port, syslog_port = free_port(), free_port()
    config = write_config(tmp_path, api_port=api_port, syslog_port=syslog_port, detect=True)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["sources"]["wazuh"] = {"type": "elasticsearch_tail", "index": WAZUH_INDEX, "timestamp_field": "timestamp",
                                "start_from": "beginning", "settle_seconds": 0, "poll_interval": 0.5}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    admin_token(config)
    env = child_env(config)
    env.update({"SOC_ELASTICSEARCH_URL": osmem_url, "PYTHONPATH": str(REPO)})
    log_path = tmp_path / "soc.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; import tests.elastic.osmem as o; o.install(); "
             "from soc.cli.main import app; sys.argv = ['soc', 'run']; app()"],
            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _listening(syslog_port) or proc.poll() is not None, timeout=90)
        assert proc.poll() is None, log_path.read_text(errors="replace")
        yield syslog_port, log_path
    finally:
        proc.terminate()
        proc.wait(30)


def _log_tail(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if not line.startswith("status:")]
    return "\n".join(lines[-60:])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _event_ids(es: Elasticsearch) -> list[str]:
    pattern = names.events_pattern("soc")
    es.indices.refresh(index=pattern, ignore_unavailable=True, allow_no_indices=True)
    resp = es.search(index=pattern, size=10_000, source=["event.id"], query={"match_all": {}},
                     ignore_unavailable=True, allow_no_indices=True)
    return [h["_source"]["event"]["id"] for h in resp["hits"]["hits"]]


@pytest.mark.slow
def test_syslog_and_tailed_wazuh_alerts_reach_the_data_streams_once(service: tuple[int, Path],
                                                                     es: Elasticsearch) -> None:
    syslog_port, log_path = service
    lines = OPENSSH.read_text(encoding="utf-8").splitlines()[:300]
    with socket.create_connection(("127.0.0.1", syslog_port)) as conn:
        conn.sendall("".join(f"<38>{line}\n" for line in lines).encode())
    try:
        wait_for(lambda: len(_event_ids(es)) >= 320, timeout=120, interval=1.0)
    except TimeoutError:
        pytest.fail(_log_tail(log_path))
    ids = _event_ids(es)
    assert len(ids) == len(set(ids)) == 320
    docs = es.search(index=names.events_pattern("soc"), query={"match_all": {}}, size=1000)["hits"]["hits"]
    tailed = [d["_source"] for d in docs if d["_source"].get("agent", {}).get("name") == "web01"]
    assert len(tailed) == 20
    assert all(d["process"]["name"] == "sshd" for d in tailed)  # full_log went through our parsers


@pytest.mark.slow
def test_alerts_are_mirrored_into_the_alerts_index(service: tuple[int, Path], es: Elasticsearch) -> None:
    syslog_port, log_path = service
    lines = OPENSSH.read_text(encoding="utf-8").splitlines()[:600]
    with socket.create_connection(("127.0.0.1", syslog_port)) as conn:
        conn.sendall("".join(f"<38>{line}\n" for line in lines).encode())

    def mirrored() -> bool:
        if not es.indices.exists(index="soc-alerts"):
            return False
        es.indices.refresh(index="soc-alerts")
        return int(es.count(index="soc-alerts")["count"]) > 0

    try:
        wait_for(mirrored, timeout=120, interval=1.0)
    except TimeoutError:
        pytest.fail(_log_tail(log_path))
    doc = es.search(index="soc-alerts", size=1)["hits"]["hits"][0]["_source"]
    assert doc["rule_id"] and doc["@timestamp"]

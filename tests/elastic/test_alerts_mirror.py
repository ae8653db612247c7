"""The alerts index follows the SOC database: new alerts, triage changes, restarts,
stale writes and outages (against osmem-server)."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from sqlalchemy import Engine

from soc.alerts.mirror import AlertMirror
from soc.alerts.models import Alert
from soc.alerts.store import AlertStore
from soc.config import ElasticsearchConfig, SocConfig
from soc.db import make_engine, make_session_factory, migrate, utcnow, write_session
from soc.store.elastic.connection import connect
from tests.alerts.conftest import SQLI, SSH_FAILED, single, sshd_failed, ts, web_request

INDEX = "soc-alerts"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'var' / 'soc.db'}"
    migrate(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: Engine) -> AlertStore:
    return AlertStore(engine)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return tmp_path / "var" / "checkpoints" / "alerts-mirror.json"


@pytest.fixture
def index(es: Elasticsearch) -> str:
    # What the product's template will give in substance: a date time field, the
    # per-rule key fields kept in _source only.
    es.indices.create(index=INDEX, mappings={"properties": {
        "@timestamp": {"type": "date"},
        "status": {"type": "keyword"},
        "key_fields": {"type": "object", "enabled": False},
    }})
    return INDEX


def mirror(es: Elasticsearch, engine: Engine, checkpoint: Path, **kwargs: Any) -> AlertMirror:
    return AlertMirror(es, INDEX, engine, checkpoint, **kwargs)


def ssh_alerts(store: AlertStore, n: int) -> list[str]:
    """``n`` alerts: failed SSH logins from ``n`` source addresses."""
    result = store.raise_detections([single(SSH_FAILED, sshd_failed(ip=f"203.0.113.{i + 1}", ts=ts(i)))
                                     for i in range(n)])
    return result.alert_ids


def indexed(es: Elasticsearch) -> dict[str, dict[str, Any]]:
    """Alert id → the stored document with its ``_version`` and ``_seq_no``."""
    es.indices.refresh(index=INDEX)
    hits = es.search(index=INDEX, size=1000, query={"match_all": {}})["hits"]["hits"]
    out: dict[str, dict[str, Any]] = {}
    for hit in hits:
        got = es.get(index=INDEX, id=hit["_id"])
        out[hit["_id"]] = {**got["_source"], "_version": got["_version"], "_seq_no": got["_seq_no"]}
    return out


def triage(engine: Engine, alert_id: str, **changes: Any) -> Alert:
    """An analyst's edit as the triage API makes it: columns plus ``updated_at``."""
    with write_session(make_session_factory(engine)) as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        for name, value in changes.items():
            setattr(alert, name, value)
        alert.updated_at = changes.get("updated_at", utcnow())
    return alert


def load(engine: Engine, alert_id: str) -> Alert:
    with make_session_factory(engine)() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- new alerts and changes ---------------------------------------------------------

def test_sync_copies_every_new_alert_under_its_id_and_version(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    ids = ssh_alerts(store, 3)
    result = mirror(es, engine, checkpoint).sync()
    assert result.ok and (result.sent, result.indexed) == (3, 3)
    docs = indexed(es)
    assert set(docs) == set(ids)
    assert all(doc["_version"] == 1 and doc["id"] == alert_id for alert_id, doc in docs.items())


def test_document_is_the_alert_with_last_seen_as_timestamp(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    event = web_request()
    alert_id = store.raise_detections([single(SQLI, event)]).alert_ids[0]
    mirror(es, engine, checkpoint).sync()
    doc = indexed(es)[alert_id]
    alert = load(engine, alert_id)
    assert doc["@timestamp"] == doc["last_seen"] == alert.last_seen.isoformat()
    assert datetime.fromisoformat(doc["first_seen"]) == alert.first_seen
    assert (doc["rule_id"], doc["status"], doc["system_id"], doc["count"]) == (SQLI.id, "new", "portal", 1)
    assert doc["key_fields"]["source.ip"] == "10.10.99.20"
    assert doc["event_ids"] == [event["event"]["id"]]


def test_triage_change_reaches_the_index_on_the_next_sync(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    ids = ssh_alerts(store, 2)
    alerts_mirror = mirror(es, engine, checkpoint)
    alerts_mirror.sync()
    triage(engine, ids[0], status="in_progress")
    result = alerts_mirror.sync()
    assert result.ok and result.sent == 1
    docs = indexed(es)
    assert (docs[ids[0]]["status"], docs[ids[0]]["_version"]) == ("in_progress", 2)
    assert (docs[ids[1]]["status"], docs[ids[1]]["_version"]) == ("new", 1)


def test_alert_grown_by_a_new_detection_is_updated(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    alert_id = store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(0)))]).alert_ids[0]
    alerts_mirror = mirror(es, engine, checkpoint)
    alerts_mirror.sync()
    store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(5), n=1))])
    alerts_mirror.sync()
    doc = indexed(es)[alert_id]
    assert (doc["count"], doc["@timestamp"]) == (2, load(engine, alert_id).last_seen.isoformat())


def test_stale_version_never_overwrites_a_newer_one(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    alert_id = ssh_alerts(store, 1)[0]
    old = load(engine, alert_id)
    triage(engine, alert_id, status="closed")
    alerts_mirror = mirror(es, engine, checkpoint)
    alerts_mirror.sync()
    late = alerts_mirror.push([old])
    assert late.ok and (late.sent, late.stale, late.indexed) == (1, 1, 0)
    doc = indexed(es)[alert_id]
    assert (doc["status"], doc["_version"]) == ("closed", 2)


# --- the cursor ---------------------------------------------------------------------

def test_cursor_survives_a_restart_without_sending_again(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    ssh_alerts(store, 3)
    mirror(es, engine, checkpoint).sync()
    before = {alert_id: doc["_seq_no"] for alert_id, doc in indexed(es).items()}
    result = mirror(es, engine, checkpoint).sync()
    assert result.ok and (result.sent, result.requests) == (0, 0)
    assert {alert_id: doc["_seq_no"] for alert_id, doc in indexed(es).items()} == before


def test_after_a_restart_only_what_changed_is_sent(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    ids = ssh_alerts(store, 3)
    mirror(es, engine, checkpoint).sync()
    triage(engine, ids[1], status="false_positive")
    result = mirror(es, engine, checkpoint).sync()
    assert result.ok and result.sent == 1
    assert indexed(es)[ids[1]]["status"] == "false_positive"


def test_commit_older_than_the_cursor_is_caught_within_the_overlap(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    ids = ssh_alerts(store, 2)
    alerts_mirror = mirror(es, engine, checkpoint, overlap=120)
    alerts_mirror.sync()
    cursor = alerts_mirror.cursor
    assert cursor is not None
    # A transaction that took its time before the mirror's last read, then committed.
    triage(engine, ids[0], status="in_progress", updated_at=cursor - timedelta(seconds=30))
    assert alerts_mirror.sync().sent == 1
    assert indexed(es)[ids[0]]["status"] == "in_progress"


def test_work_per_sync_is_bounded_and_later_syncs_catch_up(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    ids = ssh_alerts(store, 5)
    alerts_mirror = mirror(es, engine, checkpoint, page_size=2, max_pages=1)
    first = alerts_mirror.sync()
    assert (first.sent, first.requests, first.more) == (2, 1, True)
    rounds = 1
    while alerts_mirror.sync().more and rounds < 10:
        rounds += 1
    assert rounds == 2
    assert set(indexed(es)) == set(ids)


def test_checkpoint_is_json_in_the_given_file(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    ssh_alerts(store, 1)
    alerts_mirror = mirror(es, engine, checkpoint)
    alerts_mirror.sync()
    saved = json.loads(checkpoint.read_text())
    assert alerts_mirror.cursor is not None
    assert (saved["index"], datetime.fromisoformat(saved["cursor"])) == (INDEX, alerts_mirror.cursor)


def test_reset_sends_every_alert_again_into_a_recreated_index(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    ids = ssh_alerts(store, 2)
    alerts_mirror = mirror(es, engine, checkpoint)
    alerts_mirror.sync()
    es.indices.delete(index=INDEX)
    alerts_mirror.reset()
    assert mirror(es, engine, checkpoint).sync().indexed == 2
    assert set(indexed(es)) == set(ids)

# --- refusals and outages -----------------------------------------------------------

def test_refused_document_holds_the_cursor_and_is_retried(
        es: Elasticsearch, engine: Engine, store: AlertStore, checkpoint: Path) -> None:
    # Key fields of SSH alerts only: a web alert's url.* is refused until the mapping grows.
    es.indices.create(index=INDEX, mappings={"properties": {"key_fields": {"type": "object", "dynamic": "strict",
        "properties": {name: {"type": "object", "dynamic": True} for name in
                       ("source", "user", "host", "event", "process", "destination", "http", "user_agent")}}}})
    web = store.raise_detections([single(SQLI, web_request())]).alert_ids[0]
    ssh = ssh_alerts(store, 1)[0]
    now = utcnow()
    triage(engine, web, updated_at=now - timedelta(minutes=10))
    triage(engine, ssh, updated_at=now - timedelta(minutes=5))
    # No overlap: only the held cursor can bring the older, refused alert back.
    alerts_mirror = mirror(es, engine, checkpoint, overlap=0)
    refused = alerts_mirror.sync()
    assert (refused.errors, refused.indexed, refused.ok) == (1, 1, False)
    assert refused.error_samples[0].startswith(web)
    assert set(indexed(es)) == {ssh}

    es.indices.put_mapping(index=INDEX, properties={"key_fields": {"type": "object", "dynamic": "strict",
        "properties": {"url": {"type": "object", "dynamic": True}}}})
    retried = alerts_mirror.sync()
    assert retried.ok and retried.sent == 1
    assert set(indexed(es)) == {web, ssh}


def test_unreachable_cluster_fails_cleanly_and_a_later_sync_catches_up(
        es: Elasticsearch, es_config: ElasticsearchConfig, engine: Engine, store: AlertStore, index: str,
        checkpoint: Path) -> None:
    ids = ssh_alerts(store, 2)
    down = connect(es_config, [f"http://127.0.0.1:{closed_port()}"])
    during = AlertMirror(down, INDEX, engine, checkpoint).sync()
    assert during.failed is not None and not during.ok
    assert (during.indexed, during.cursor) == (0, None)
    triage(engine, ids[0], status="in_progress")
    ids += store.raise_detections([single(SQLI, web_request())]).alert_ids

    after = mirror(es, engine, checkpoint).sync()
    assert after.ok
    docs = indexed(es)
    assert set(docs) == set(ids)
    assert docs[ids[0]]["status"] == "in_progress"


# --- push ---------------------------------------------------------------------------

def test_push_indexes_at_once_and_sync_does_not_send_it_again(
        es: Elasticsearch, engine: Engine, store: AlertStore, index: str, checkpoint: Path) -> None:
    result = store.raise_detections([single(SSH_FAILED, sshd_failed())])
    alerts_mirror = mirror(es, engine, checkpoint)
    pushed = alerts_mirror.push_ids(result.alert_ids)
    assert pushed.ok and pushed.indexed == 1 and alerts_mirror.cursor is None
    assert set(indexed(es)) == set(result.alert_ids)
    assert alerts_mirror.sync().sent == 0



def test_an_outage_is_logged_once_and_so_is_its_end(
        es: Elasticsearch, es_config: ElasticsearchConfig, engine: Engine, store: AlertStore, index: str,
        checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    ssh_alerts(store, 1)
    alerts_mirror = AlertMirror(connect(es_config, [f"http://127.0.0.1:{closed_port()}"]), INDEX, engine,
                                checkpoint)
    with caplog.at_level(logging.INFO, logger="soc.alerts.mirror"):
        alerts_mirror.sync()
        alerts_mirror.sync()
        alerts_mirror.client = es
        alerts_mirror.sync()
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "soc.alerts.mirror"]
    assert [level for level, _ in lines] == [logging.WARNING, logging.INFO]
    assert " / cannot write alerts to soc-alerts" in lines[0][1]
    assert " / alerts reach soc-alerts again" in lines[1][1]


def test_configuration_names_the_index_and_the_checkpoint(es: Elasticsearch, engine: Engine, tmp_path: Path) -> None:
    cfg = SocConfig(data_dir=tmp_path / "var", elasticsearch=ElasticsearchConfig(alerts_index="tinh-alerts"))
    alerts_mirror = AlertMirror.from_config(cfg, es, engine)
    assert alerts_mirror.index == "tinh-alerts"
    assert alerts_mirror.checkpoint_path == tmp_path / "var" / "checkpoints" / "alerts-mirror.json"

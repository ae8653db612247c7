"""GET /api/v1/alerts/{id}: the alert with SLA, assignee, comments, incident and the
evidence events read back from the event store; a resolved alert is never grown."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from collectors.event import Event, iso_utc
from soc.alerts.models import Alert
from soc.alerts.store import AlertStore
from soc.db import Database, utcnow
from soc.pipeline.build import Topology
from soc.triage.models import Incident
from soc.triage.schemas import AlertDetail
from tests.alerts.conftest import SSH_BRUTE_FORCE, SSH_FAILED, correlation, single, sshd_failed
from tests.service.conftest import Caller
from tests.service.triage_fixtures import (  # noqa: F401
    analyst,
    commune_analyst,
    get_alert,
    make_alert,
    patch_alert,
    reload,
)


def _events(n: int, ip: str = "203.0.113.7") -> list[Event]:
    start = utcnow() - timedelta(minutes=30)
    return [sshd_failed(ip=ip, ts=iso_utc(start + timedelta(seconds=10 * i)), n=i) for i in range(n)]


def test_the_detail_shows_the_evidence_events_from_the_store(client: TestClient, analyst: Caller,  # noqa: F811
                                                             topology: Topology, db: Database) -> None:
    events = _events(6)
    assert topology.store.write(events) == 6
    result = AlertStore(db.engine).raise_detections([correlation(SSH_BRUTE_FORCE, events,
                                                                 {"source.ip": "203.0.113.7"})])
    response = get_alert(client, analyst, result.alert_ids[0])
    assert response.status_code == 200, response.text
    evidence = response.json()["evidence"]
    assert (evidence["total"], evidence["shown"], evidence["error"]) == (6, 6, None)
    assert [e["event"]["id"] for e in evidence["events"]] == [e["event"]["id"] for e in events]
    assert evidence["events"][0]["source"]["ip"] == "203.0.113.7"


def test_only_the_alerts_own_events_are_shown(client: TestClient, analyst: Caller,  # noqa: F811
                                              topology: Topology, db: Database) -> None:
    mine, others = _events(2), _events(3, ip="198.51.100.9")
    topology.store.write(mine + others)
    result = AlertStore(db.engine).raise_detections([single(SSH_FAILED, mine[0]), single(SSH_FAILED, mine[1])])
    evidence = get_alert(client, analyst, result.alert_ids[0]).json()["evidence"]
    assert {e["event"]["id"] for e in evidence["events"]} == {e["event"]["id"] for e in mine}


def test_an_event_missing_from_the_store_is_counted_but_not_invented(client: TestClient, analyst: Caller,  # noqa: F811
                                                                     topology: Topology,
                                                                     make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    events = _events(2)
    topology.store.write(events[:1])
    seen = utcnow() - timedelta(minutes=30)
    alert = make_alert(event_ids=[e["event"]["id"] for e in events], first_seen=seen,
                       last_seen=seen + timedelta(seconds=10))
    evidence = get_alert(client, analyst, alert.id).json()["evidence"]
    assert (evidence["total"], evidence["shown"]) == (2, 1)


def test_an_event_id_with_quotes_is_looked_up_literally(client: TestClient, analyst: Caller,  # noqa: F811
                                                        topology: Topology,
                                                        make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    event = _events(1)[0]
    event["event"]["id"] = 'sender-id-"quoted"\\*'
    topology.store.write([event])
    seen = utcnow() - timedelta(minutes=30)
    alert = make_alert(event_ids=[event["event"]["id"]], first_seen=seen, last_seen=seen)
    evidence = get_alert(client, analyst, alert.id).json()["evidence"]
    assert [e["event"]["id"] for e in evidence["events"]] == ['sender-id-"quoted"\\*']


def test_the_detail_matches_the_documented_shape(client: TestClient, analyst: Caller,  # noqa: F811
                                                 make_alert: Callable[..., Alert], db: Database) -> None:  # noqa: F811
    incident = Incident(code="SC-2026-9999", title="Thử / Test", severity="high", detected_at=utcnow(),
                        agency_id="so-khcn")
    with db.write() as session:
        session.add(incident)
    alert = make_alert(assignee_id=analyst.user.id, incident_id=incident.id)
    client.post(f"/api/v1/alerts/{alert.id}/comments", json={"body": "Ghi chú / Note"}, headers=analyst.headers)
    body = AlertDetail.model_validate(get_alert(client, analyst, alert.id).json())
    assert body.assignee is not None and body.assignee.username == analyst.user.username
    assert body.incident is not None and body.incident.code == "SC-2026-9999"
    assert [c.body for c in body.comments] == ["Ghi chú / Note"]
    assert body.evidence.total == 0


def test_an_alert_out_of_scope_is_404_not_403(client: TestClient, commune_analyst: Caller,  # noqa: F811
                                              make_alert: Callable[..., Alert]) -> None:  # noqa: F811
    alert = make_alert(system_id="ad-servers")
    response = get_alert(client, commune_analyst, alert.id)
    assert response.status_code == 404
    assert alert.id in response.json()["detail"]


def test_an_unknown_alert_is_404(client: TestClient, analyst: Caller) -> None:  # noqa: F811
    assert get_alert(client, analyst, "no-such-alert").status_code == 404


def test_a_resolved_alert_is_not_grown_by_the_next_detection(client: TestClient, analyst: Caller,  # noqa: F811
                                                             topology: Topology, db: Database) -> None:
    events = _events(2)
    topology.store.write(events)
    store = AlertStore(db.engine)
    first = store.raise_detections([single(SSH_FAILED, events[0])]).alert_ids[0]
    version = reload(db, first).version
    patch_alert(client, analyst, first, {"status": "resolved", "resolution": "true_positive"}, version)
    again = store.raise_detections([single(SSH_FAILED, events[1])])
    assert again.created == 1 and again.alert_ids != [first]
    assert reload(db, first).count == 1

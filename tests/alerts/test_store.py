"""The alert store: detections become alerts, deduplicated, exceptions applied."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from soc.alerts.exceptions import ExceptionEntry, ExceptionSet
from soc.alerts.models import MAX_EVENT_IDS, Alert
from soc.alerts.store import AlertStore, dedup_key, key_fields, summarize
from soc.db import make_engine, make_session_factory, write_session
from tests.alerts.conftest import (
    SQLI,
    SSH_BRUTE_FORCE,
    SSH_FAILED,
    correlation,
    single,
    sshd_failed,
    ts,
    web_request,
)


def at(minute: int, hour: int = 1) -> datetime:
    hour, minute = hour + minute // 60, minute % 60
    return datetime(2026, 11, 23, hour, minute, tzinfo=UTC)


# --- a detection becomes an alert --------------------------------------------------

def test_detection_becomes_an_alert_with_tactics_techniques_and_gov_fields(engine: Engine) -> None:
    store = AlertStore(engine)
    result = store.raise_detections([single(SSH_FAILED, sshd_failed())])
    assert (result.created, result.updated, result.suppressed) == (1, 0, 0)
    alert = store.get(result.alert_ids[0])
    assert alert is not None
    assert (alert.rule_id, alert.rule_title, alert.level, alert.kind, alert.status) == (
        SSH_FAILED.id, SSH_FAILED.title, "low", "detection", "new")
    assert alert.tactics == ["Credential Access"]
    assert alert.techniques == ["T1110.001"]
    assert (alert.system_id, alert.agency_id, alert.level_gov, alert.classification) == (
        "ad-servers", "so-khcn", "province", 3)
    assert alert.count == 1 and alert.version == 1 and alert.retro is False
    assert alert.first_seen == alert.last_seen == at(0)
    assert alert.event_ids == [sshd_failed()["event"]["id"]]
    assert alert.key_fields["source.ip"] == "203.0.113.7"
    assert alert.key_fields["user.name"] == "root"
    assert alert.key_fields["host.name"] == "app-linux01"
    assert alert.key_fields["event.outcome"] == "failure"
    assert alert.summary == ("Đăng nhập SSH thất bại từ 203.0.113.7 (1 sự kiện) / "
                             "SSH failed login from 203.0.113.7 (1 event)")
    assert alert.created_at.tzinfo is not None


def test_unassigned_event_gives_an_unassigned_alert(engine: Engine) -> None:
    event = sshd_failed()
    del event["gov"]
    event["gov"] = {"system": {"id": "unassigned"}}
    result = AlertStore(engine).raise_detections([single(SSH_FAILED, event)])
    alert = AlertStore(engine).get(result.alert_ids[0])
    assert alert is not None
    assert (alert.system_id, alert.agency_id, alert.level_gov, alert.classification) == (
        "unassigned", None, None, None)


def test_empty_batch_does_nothing(engine: Engine) -> None:
    result = AlertStore(engine).raise_detections([])
    assert (result.created, result.updated, result.suppressed, result.alert_ids) == (0, 0, 0, [])


# --- deduplication -----------------------------------------------------------------

def test_same_rule_and_key_within_the_window_updates_the_alert(engine: Engine) -> None:
    store = AlertStore(engine, dedup_window=3600)
    first = store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(0)))])
    second = store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(50), n=1))])
    assert (second.created, second.updated) == (0, 1)
    assert second.alert_ids == first.alert_ids
    [alert] = store.list_alerts()
    assert alert.count == 2
    assert (alert.first_seen, alert.last_seen) == (at(0), at(50))
    assert alert.version == 2
    assert alert.event_ids == [sshd_failed(ts=ts(0))["event"]["id"], sshd_failed(ts=ts(50), n=1)["event"]["id"]]
    assert "(2 sự kiện)" in alert.summary and "(2 events)" in alert.summary


def test_dedup_finds_the_alert_in_the_database_without_the_cache(engine: Engine) -> None:
    AlertStore(engine).raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(0)))])
    restarted = AlertStore(engine)  # a new process: empty cache
    result = restarted.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(30), n=1))])
    assert (result.created, result.updated) == (0, 1)
    [alert] = restarted.list_alerts()
    assert alert.count == 2


def test_outside_the_window_creates_a_new_alert(engine: Engine) -> None:
    store = AlertStore(engine, dedup_window=3600)
    store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(0)))])
    result = store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(61), n=1))])
    assert (result.created, result.updated) == (1, 0)
    alerts = store.list_alerts()
    assert [a.last_seen for a in alerts] == [at(61), at(0)]
    assert all(a.count == 1 and a.version == 1 for a in alerts)


def test_window_is_measured_from_the_latest_event(engine: Engine) -> None:
    store = AlertStore(engine, dedup_window=600)
    for i, minute in enumerate((0, 9, 18, 27)):  # each within 10 minutes of the previous
        store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(minute), n=i))])
    [alert] = store.list_alerts()
    assert alert.count == 4 and (alert.first_seen, alert.last_seen) == (at(0), at(27))


def test_late_event_within_the_window_of_the_alert_start_joins_it(engine: Engine) -> None:
    store = AlertStore(engine, dedup_window=600)
    store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(30)))])
    result = store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(25), n=1))])  # arrived late
    assert result.updated == 1
    [alert] = store.list_alerts()
    assert (alert.first_seen, alert.last_seen) == (at(25), at(30))


def test_different_keys_give_different_alerts(engine: Engine) -> None:
    store = AlertStore(engine)
    result = store.raise_detections([
        single(SSH_FAILED, sshd_failed(ip="203.0.113.7", user="root")),
        single(SSH_FAILED, sshd_failed(ip="198.51.100.23", user="root")),
        single(SSH_FAILED, sshd_failed(ip="203.0.113.7", user="admin")),
        single(SSH_FAILED, sshd_failed(ip="203.0.113.7", user="ROOT", n=1)),  # user names ignore case
        single(SQLI, web_request(ip="203.0.113.7")),
    ])
    assert (result.created, result.updated) == (4, 1)
    assert len(store.list_alerts()) == 4


def test_the_same_activity_on_another_system_is_another_alert(engine: Engine) -> None:
    store = AlertStore(engine)
    result = store.raise_detections([
        single(SQLI, web_request(system="portal")),
        single(SQLI, web_request(system="motcua-xa-thanh-son")),
    ])
    assert result.created == 2
    assert {a.system_id for a in store.list_alerts()} == {"portal", "motcua-xa-thanh-son"}
    assert {a.level_gov for a in store.list_alerts()} == {"province", "commune"}


def test_redelivered_event_does_not_inflate_the_count(engine: Engine) -> None:
    store = AlertStore(engine)
    store.raise_detections([single(SSH_FAILED, sshd_failed())])
    again = store.raise_detections([single(SSH_FAILED, sshd_failed())])  # spool replay
    assert (again.created, again.updated, again.duplicates) == (0, 0, 1)
    [alert] = store.list_alerts()
    assert alert.count == 1 and alert.version == 1


def test_closed_alert_is_not_grown(engine: Engine) -> None:
    store = AlertStore(engine)
    first = store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(0)))])
    with Session(engine) as session, session.begin():
        alert = session.get(Alert, first.alert_ids[0])
        assert alert is not None
        alert.status = "closed"
    result = store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(5), n=1))])
    assert (result.created, result.updated) == (1, 0)
    assert [a.status for a in store.list_alerts()] == ["new", "closed"]


def test_correlation_alert_is_keyed_by_its_group_values(engine: Engine) -> None:
    store = AlertStore(engine)
    window1 = [sshd_failed(user=f"user{i}", ts=ts(i), n=i) for i in range(12)]
    window2 = [sshd_failed(user=f"user{i}", ts=ts(20 + i), n=100 + i) for i in range(12)]
    other = [sshd_failed(ip="198.51.100.23", ts=ts(i), n=200 + i) for i in range(12)]
    result = store.raise_detections([
        correlation(SSH_BRUTE_FORCE, window1, {"source.ip": "203.0.113.7"}),
        correlation(SSH_BRUTE_FORCE, other, {"source.ip": "198.51.100.23"}),
    ])
    assert result.created == 2
    result = store.raise_detections([correlation(SSH_BRUTE_FORCE, window2, {"source.ip": "203.0.113.7"})])
    assert result.updated == 1
    alert = store.list_alerts(rule_id=SSH_BRUTE_FORCE.id, limit=1)[0]
    assert alert.kind == "correlation" and alert.count == 24 and len(alert.event_ids) == 24
    assert alert.tactics == ["Credential Access"] and alert.techniques == ["T1110", "T1110.001"]
    assert next(iter(alert.key_fields)) == "source.ip"
    assert alert.key_fields["user.name"] == "user0"  # from the first event
    assert alert.summary == "Dò mật khẩu SSH từ 203.0.113.7 (24 sự kiện) / SSH brute force from 203.0.113.7 (24 events)"


def test_correlation_counts_events_beyond_the_ids_it_carries(engine: Engine) -> None:
    events = [sshd_failed(ts=ts(i), n=i) for i in range(3)]
    detection = correlation(SSH_BRUTE_FORCE, events, {"source.ip": "203.0.113.7"})
    detection.event_count = 250  # the engine keeps only the newest events
    store = AlertStore(engine)
    store.raise_detections([detection])
    [alert] = store.list_alerts()
    assert alert.count == 250 and len(alert.event_ids) == 3


def test_a_live_detection_opens_its_own_alert_beside_the_retro_one(engine: Engine) -> None:
    """Same rule, same key fields: the retro-hunt's alert is not grown by the stream
    (its dedup key carries the retro-hunt origin), and it stays retro."""
    store = AlertStore(engine)
    hunted = store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(0)), retro=True)], hunt_id="hunt-1")
    live = store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(1), n=1))])
    assert (hunted.created, live.created, live.updated) == (1, 1, 0)
    retro_alert, live_alert = store.get(hunted.alert_ids[0]), store.get(live.alert_ids[0])
    assert retro_alert is not None and live_alert is not None
    assert (retro_alert.retro, retro_alert.hunt_id, retro_alert.count) == (True, "hunt-1", 1)
    assert (live_alert.retro, live_alert.hunt_id, live_alert.count) == (False, None, 1)


# --- exceptions --------------------------------------------------------------------

def scanner_exception(**values: object) -> ExceptionEntry:
    base: dict[str, object] = {
        "id": "openvas-web-scan", "rule": SQLI.id, "system": "portal",
        "match": {"source.ip|cidr": "10.10.99.0/24"}, "reason": "quét lỗ hổng hằng tháng / monthly scan",
        "owner": "soc@phutho.gov.vn", "expires": "2099-12-31"}
    base.update(values)
    return ExceptionEntry.model_validate(base)


def test_matching_exception_suppresses_and_is_counted(engine: Engine) -> None:
    store = AlertStore(engine, exceptions=ExceptionSet([scanner_exception()]))
    result = store.raise_detections([
        single(SQLI, web_request(ip="10.10.99.20", n=i)) for i in range(3)
    ] + [single(SQLI, web_request(ip="198.51.100.23"))])
    assert (result.suppressed, result.created) == (3, 1)
    assert result.suppressed_by == {"openvas-web-scan": 3}
    [alert] = store.list_alerts()
    assert alert.key_fields["source.ip"] == "198.51.100.23"


def test_expired_exception_does_not_suppress(engine: Engine) -> None:
    store = AlertStore(engine, exceptions=ExceptionSet([scanner_exception(expires="2020-01-31")]))
    result = store.raise_detections([single(SQLI, web_request(ip="10.10.99.20"))])
    assert (result.suppressed, result.created) == (0, 1)


def test_system_scoped_exception_does_not_cover_other_systems(engine: Engine) -> None:
    store = AlertStore(engine, exceptions=ExceptionSet([scanner_exception()]))
    result = store.raise_detections([
        single(SQLI, web_request(system="portal")),
        single(SQLI, web_request(system="motcua-xa-thanh-son")),
    ])
    assert (result.suppressed, result.created) == (1, 1)
    assert [a.system_id for a in store.list_alerts()] == ["motcua-xa-thanh-son"]


def test_exceptions_can_be_replaced_while_running(engine: Engine) -> None:
    store = AlertStore(engine)
    assert store.raise_detections([single(SQLI, web_request(n=1))]).created == 1
    store.exceptions = ExceptionSet([scanner_exception()])  # what the detect stage's reload does
    assert store.raise_detections([single(SQLI, web_request(n=2))]).suppressed == 1


# --- listing -----------------------------------------------------------------------

@pytest.fixture
def populated(engine: Engine) -> AlertStore:
    store = AlertStore(engine, dedup_window=60)
    store.raise_detections([
        single(SSH_FAILED, sshd_failed(ip="203.0.113.7", ts=ts(0))),
        single(SSH_FAILED, sshd_failed(ip="203.0.113.8", ts=ts(10))),
        single(SQLI, web_request(ip="198.51.100.23", ts=ts(20))),
        single(SQLI, web_request(ip="198.51.100.24", ts=ts(30), system="motcua-xa-thanh-son")),
        correlation(SSH_BRUTE_FORCE, [sshd_failed(ts=ts(i), n=i) for i in range(40, 45)],
                    {"source.ip": "203.0.113.7"}),
    ])
    return store


def test_list_alerts_newest_last_seen_first(populated: AlertStore) -> None:
    alerts = populated.list_alerts()
    assert [a.last_seen for a in alerts] == [at(44), at(30), at(20), at(10), at(0)]
    assert [a.last_seen for a in populated.list_alerts(limit=2)] == [at(44), at(30)]


def test_list_alerts_filters(populated: AlertStore) -> None:
    assert {a.rule_id for a in populated.list_alerts(rule_id=SQLI.id)} == {SQLI.id}
    assert len(populated.list_alerts(rule_id=[SQLI.id, SSH_BRUTE_FORCE.id])) == 3
    assert [a.level for a in populated.list_alerts(level="low")] == ["low", "low"]
    assert [a.system_id for a in populated.list_alerts(system_id="motcua-xa-thanh-son")] == ["motcua-xa-thanh-son"]
    assert len(populated.list_alerts(status="new")) == 5
    assert populated.list_alerts(status=["closed", "false_positive"]) == []
    assert [a.last_seen for a in populated.list_alerts(since=at(20))] == [at(44), at(30), at(20)]
    assert [a.last_seen for a in populated.list_alerts(until=at(20))] == [at(10), at(0)]
    assert [a.last_seen for a in populated.list_alerts(since=at(5), until=at(25))] == [at(20), at(10)]
    # An alert active across the bound is included: the correlation ran 01:40-01:44.
    assert [a.last_seen for a in populated.list_alerts(since=at(42), until=at(43))] == [at(44)]
    assert populated.list_alerts(level="high", system_id="portal", rule_id=SSH_FAILED.id) == []


def test_list_alerts_rejects_naive_times_and_bad_limits(populated: AlertStore) -> None:
    with pytest.raises(ValueError, match="timezone"):
        populated.list_alerts(since=datetime(2026, 11, 23))
    with pytest.raises(ValueError, match="limit"):
        populated.list_alerts(limit=0)


def test_get_unknown_alert_is_none(populated: AlertStore) -> None:
    assert populated.get("00000000-0000-0000-0000-000000000000") is None


# --- batches -----------------------------------------------------------------------

def _count_transactions(engine: Engine) -> dict[str, int]:
    counts = {"begin": 0, "commit": 0}

    def on(name: str) -> None:
        event.listen(engine, name, lambda *args: counts.__setitem__(name, counts[name] + 1))

    on("begin")
    on("commit")
    return counts


def test_a_thousand_detections_in_one_transaction(engine: Engine) -> None:
    store = AlertStore(engine)
    detections = [single(SSH_FAILED, sshd_failed(ip=f"203.0.{i // 250}.{i % 250 + 1}", ts=ts(i % 600), n=i))
                  for i in range(1000)]
    counts = _count_transactions(engine)
    result = store.raise_detections(detections)
    assert counts == {"begin": 1, "commit": 1}
    assert (result.created, result.updated) == (1000, 0)
    assert len(result.alert_ids) == 1000
    alerts = store.list_alerts(limit=5000)
    assert len(alerts) == 1000 and {a.count for a in alerts} == {1}

    # Again, the same sources a minute later: every alert is found through the cache.
    again = [single(SSH_FAILED, sshd_failed(ip=f"203.0.{i // 250}.{i % 250 + 1}", ts=ts(i % 600 + 1), n=5000 + i))
             for i in range(1000)]
    counts.update(begin=0, commit=0)
    result = store.raise_detections(again)
    assert counts == {"begin": 1, "commit": 1}
    assert (result.created, result.updated) == (0, 1000)
    assert {a.count for a in store.list_alerts(limit=5000)} == {2}


def test_a_thousand_detections_of_one_key_make_one_alert(engine: Engine) -> None:
    store = AlertStore(engine)
    n = MAX_EVENT_IDS + 200
    detections = [single(SSH_FAILED, sshd_failed(ts=ts(i % 50), n=i)) for i in range(n)]
    result = store.raise_detections(detections)
    assert (result.created, result.updated) == (1, n - 1)
    [alert] = store.list_alerts()
    assert alert.count == n and alert.version == 1
    assert len(alert.event_ids) == MAX_EVENT_IDS  # bounded, newest kept
    assert alert.event_ids[-1] == detections[-1].event_ids[0]
    assert alert.event_ids[0] == detections[200].event_ids[0]


def test_batch_rolls_back_and_keeps_the_cache_clean(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    store = AlertStore(engine)

    def boom(*args: object, **kwargs: object) -> str:
        raise RuntimeError("summary failed")

    monkeypatch.setattr("soc.alerts.store.summarize", boom)
    with pytest.raises(RuntimeError):
        store.raise_detections([single(SSH_FAILED, sshd_failed())])
    monkeypatch.undo()
    assert store.list_alerts() == []
    # The rolled-back alert id was not cached: the next batch creates the alert.
    result = store.raise_detections([single(SSH_FAILED, sshd_failed())])
    assert result.created == 1 and len(store.list_alerts()) == 1


def test_two_writers_on_one_sqlite_file_queue_instead_of_failing(db_url: str) -> None:
    engines = [make_engine(db_url), make_engine(db_url)]
    stores = [AlertStore(e) for e in engines]  # two processes: separate caches and locks
    errors: list[BaseException] = []

    def run(w: int) -> None:
        try:
            for b in range(15):
                stores[w].raise_detections([
                    single(SSH_FAILED, sshd_failed(ts=ts(b), n=w * 1000 + b * 10 + i)) for i in range(10)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for e in engines:
        e.dispose()
    assert errors == []
    [alert] = stores[0].list_alerts()
    assert alert.count == 300 and alert.version >= 2


def test_stale_triage_edit_is_refused(engine: Engine) -> None:
    store = AlertStore(engine)
    alert_id = store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(0)))]).alert_ids[0]
    seen_by_analyst = store.get(alert_id)
    assert seen_by_analyst is not None and seen_by_analyst.version == 1
    store.raise_detections([single(SSH_FAILED, sshd_failed(ts=ts(1), n=1))])  # the pipeline grows it meanwhile
    with pytest.raises(StaleDataError), write_session(make_session_factory(engine)) as session:
        session.add(seen_by_analyst)
        seen_by_analyst.status = "acknowledged"
    current = store.get(alert_id)
    assert current is not None and (current.version, current.status, current.count) == (2, "new", 2)


# --- helpers -----------------------------------------------------------------------

def test_key_fields_take_the_first_event_that_carries_each_field() -> None:
    first = sshd_failed()
    del first["host"]
    second = sshd_failed(host="app-linux02", n=1)
    second["process"]["command_line"] = "x" * 5000
    fields = key_fields([first, second])
    assert fields["host.name"] == "app-linux02"
    assert fields["source.ip"] == "203.0.113.7"
    assert len(fields["process.command_line"]) == 1024
    assert "gov.system.id" not in fields
    across = key_fields([sshd_failed(), sshd_failed(system="portal")], {"source.ip": "203.0.113.7"})
    assert across["gov.system.id"] == ["ad-servers", "portal"]


def test_dedup_key_choice() -> None:
    base = single(SSH_FAILED, sshd_failed())
    assert dedup_key(base) == dedup_key(single(SSH_FAILED, sshd_failed(ts=ts(30), n=9)))  # time, port, id ignored
    assert dedup_key(base) != dedup_key(single(SSH_FAILED, sshd_failed(host="app-linux02")))
    assert dedup_key(base) != dedup_key(single(SSH_FAILED, sshd_failed(system="portal")))
    assert dedup_key(base) != dedup_key(single(SQLI, sshd_failed()))
    corr = correlation(SSH_BRUTE_FORCE, [sshd_failed()], {"source.ip": "203.0.113.7"})
    corr_other_events = correlation(SSH_BRUTE_FORCE, [sshd_failed(user="admin", host="dc01")],
                                    {"source.ip": "203.0.113.7"})
    assert dedup_key(corr) == dedup_key(corr_other_events)


def test_summary_line() -> None:
    assert summarize("Dò mật khẩu SSH / SSH brute force", {"source.ip": "203.0.113.7"}, 12, ["source.ip"]) == (
        "Dò mật khẩu SSH từ 203.0.113.7 (12 sự kiện) / SSH brute force from 203.0.113.7 (12 events)")
    assert summarize("SQL Injection Strings In URI", {"url.original": "/x", "source.ip": "198.51.100.23"}, 1) == (
        "SQL Injection Strings In URI từ 198.51.100.23 (1 sự kiện) / "
        "SQL Injection Strings In URI from 198.51.100.23 (1 event)")
    assert summarize("Tài khoản bị khóa / Account locked out", {"user.name": "nguyenvana"}, 3) == (
        "Tài khoản bị khóa tài khoản nguyenvana (3 sự kiện) / Account locked out user nguyenvana (3 events)")
    fields = {"destination.ip": "10.0.0.1", "source.port": 443, "source.ip": "203.0.113.7"}
    assert summarize("Quét cổng / Port scan", fields, 2, ["destination.ip"]) == (
        "Quét cổng đến 10.0.0.1 (2 sự kiện) / Port scan to 10.0.0.1 (2 events)")
    assert summarize("Quét cổng / Port scan", {"gov.system.id": "wan-dc"}, 2, ["gov.system.id"]) == (
        "Quét cổng gov.system.id = wan-dc (2 sự kiện) / Port scan gov.system.id = wan-dc (2 events)")
    assert summarize("Rule", {"source.port": 1}, 1) == "Rule (1 sự kiện) / Rule (1 event)"

"""The silent-source job, run with explicit clock values: an alert after the expected
interval (not before, and only one), resolved when logs return, a new one for the
next silence; learned intervals and quiet hours."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from soc.alerts.models import Alert
from soc.alerts.store import AlertStore
from soc.api.state import AppState
from soc.audit.models import AuditEntry
from soc.db import Database
from soc.inventory.activity import ActivityTracker, gap_bucket, learn_interval, week_cell
from soc.inventory.models import LogSourceRow, SystemRow
from soc.inventory.silence import FLUSH_JOB_ID, JOB_ID, check_period, check_silence, schedule
from soc.pipeline.build import Topology
from soc.triage.models import AlertComment
from tests.service.health_fixtures import NGINX, SSHD, T0, Src, add_system, feed, lines, source_row, tracker

__all__ = ["tracker"]

INTERVAL = 600


@pytest.fixture
def alerts(db: Database) -> AlertStore:
    return AlertStore(db.engine)


@pytest.fixture
def portal(topology: Topology, db: Database, app_state: AppState, agencies: list[str],
           tracker: ActivityTracker) -> str:
    """A classification-3 portal whose access log was last heard from at T0."""
    add_system(db, app_state.registry, "dvc", sources=[Src("web-access", "nginx", "file", INTERVAL)])
    feed(topology, lines(NGINX, 3), at=T0, system_id="dvc")
    tracker.flush(db)
    return "dvc"


def _alerts(db: Database) -> list[Alert]:
    with db.read() as session:
        return list(session.scalars(select(Alert).order_by(Alert.created_at)))


def _check(db: Database, alerts: AlertStore, at: datetime, default_s: int | None = None) -> list[str]:
    return check_silence(db, alerts, default_s=default_s, now=at).raised


def test_no_alert_before_the_interval_has_passed(portal: str, db: Database, alerts: AlertStore) -> None:
    assert _check(db, alerts, T0 + timedelta(seconds=INTERVAL - 1)) == []
    assert _alerts(db) == []
    assert source_row(db, portal, "web-access").silent_since is None


def test_an_alert_attributed_to_the_system_once_the_interval_has_passed(
        portal: str, db: Database, alerts: AlertStore) -> None:
    assert _check(db, alerts, T0 + timedelta(seconds=INTERVAL + 1)) == ["dvc/web-access"]
    [alert] = _alerts(db)
    assert alert.rule_id == "soc-internal-source-silent"
    assert (alert.system_id, alert.agency_id, alert.classification) == ("dvc", "so-khcn", 3)
    assert alert.level == "high"
    assert alert.key_fields["soc.log_source"] == "web-access"
    assert alert.key_fields["soc.expected_interval_s"] == INTERVAL
    assert "web-access" in alert.rule_title and "dvc" in alert.rule_title
    source = source_row(db, portal, "web-access")
    assert (source.silent_since, source.silent_alert_id) == (T0, alert.id)


def test_later_checks_of_the_same_silence_raise_nothing_more(portal: str, db: Database, alerts: AlertStore) -> None:
    _check(db, alerts, T0 + timedelta(seconds=INTERVAL + 1))
    assert _check(db, alerts, T0 + timedelta(seconds=INTERVAL * 2)) == []
    assert _check(db, alerts, T0 + timedelta(hours=5)) == []
    assert len(_alerts(db)) == 1


def test_returning_logs_resolve_the_alert_and_clear_the_source(
        portal: str, topology: Topology, db: Database, alerts: AlertStore, tracker: ActivityTracker) -> None:
    _check(db, alerts, T0 + timedelta(seconds=INTERVAL + 1))
    back = T0 + timedelta(seconds=INTERVAL + 120)
    feed(topology, lines(NGINX, 2), at=back, system_id="dvc")
    tracker.flush(db)
    report = check_silence(db, alerts, now=back + timedelta(seconds=10))
    assert report.cleared == ["dvc/web-access"]
    [alert] = _alerts(db)
    assert (alert.status, alert.resolution) == ("resolved", "benign")
    source = source_row(db, portal, "web-access")
    assert (source.silent_since, source.silent_alert_id) == (None, None)
    with db.read() as session:
        [comment] = session.scalars(select(AlertComment).where(AlertComment.alert_id == alert.id))
        actions = [(e.actor_name, e.action, e.target_id) for e in session.scalars(select(AuditEntry))]
    assert back.isoformat() in comment.body
    assert ("system:silent-source", "alert.update", alert.id) in actions
    assert ("system:silent-source", "alert.comment", alert.id) in actions
    assert ("system:silent-source", "log_source.resume", "dvc/web-access") in actions


def test_a_new_silence_after_logs_returned_opens_a_new_alert(
        portal: str, topology: Topology, db: Database, alerts: AlertStore, tracker: ActivityTracker) -> None:
    _check(db, alerts, T0 + timedelta(seconds=INTERVAL + 1))
    back = T0 + timedelta(seconds=INTERVAL + 120)
    feed(topology, lines(NGINX, 2), at=back, system_id="dvc")
    tracker.flush(db)
    _check(db, alerts, back + timedelta(seconds=10))
    assert _check(db, alerts, back + timedelta(seconds=INTERVAL + 1)) == ["dvc/web-access"]
    first, second = _alerts(db)
    assert first.id != second.id
    assert (first.status, second.status) == ("resolved", "new")
    assert source_row(db, "dvc", "web-access").silent_alert_id == second.id


def test_a_source_that_never_sent_goes_silent_an_interval_after_it_was_created(
        db: Database, app_state: AppState, agencies: list[str], alerts: AlertStore) -> None:
    add_system(db, app_state.registry, "mail", sources=[Src("postfix", "syslog", "syslog", INTERVAL)])
    assert _check(db, alerts, T0 + timedelta(seconds=INTERVAL - 1)) == []
    assert _check(db, alerts, T0 + timedelta(seconds=INTERVAL + 1)) == ["mail/postfix"]


def test_an_agentless_syslog_device_that_stops_sending_raises_an_alert(
        topology: Topology, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker,
        alerts: AlertStore) -> None:
    add_system(db, app_state.registry, "core-switch", system_type="network", classification=2,
               cidrs=["10.20.0.0/24"], sources=[Src("device-syslog", "syslog", "syslog", 3600)])
    feed(topology, lines(SSHD, 4), at=T0, kind="syslog", peer="10.20.0.7")
    tracker.flush(db)
    assert _check(db, alerts, T0 + timedelta(minutes=59)) == []
    assert _check(db, alerts, T0 + timedelta(minutes=61)) == ["core-switch/device-syslog"]
    [alert] = _alerts(db)
    assert (alert.system_id, alert.level) == ("core-switch", "medium")
    assert alert.key_fields["soc.last_seen"] == T0.isoformat()


def test_decommissioned_systems_are_not_watched(portal: str, db: Database, alerts: AlertStore) -> None:
    with db.write() as session:
        system = session.get(SystemRow, portal)
        assert system is not None
        system.decommissioned_at = T0
    assert _check(db, alerts, T0 + timedelta(days=3)) == []


def test_sources_without_an_interval_use_the_configured_default(
        db: Database, app_state: AppState, agencies: list[str], alerts: AlertStore) -> None:
    add_system(db, app_state.registry, "cms", sources=[Src("web-access", "nginx", "file")])
    assert _check(db, alerts, T0 + timedelta(days=3)) == []
    assert _check(db, alerts, T0 + timedelta(seconds=301), default_s=300) == ["cms/web-access"]


def test_a_learned_source_is_checked_against_its_learned_interval(
        db: Database, app_state: AppState, agencies: list[str], alerts: AlertStore) -> None:
    add_system(db, app_state.registry, "lgsp", sources=[Src("api", "json", "http", 3600, "learned")])
    with db.write() as session:
        row = session.scalars(select(LogSourceRow).where(LogSourceRow.system_id == "lgsp")).one()
        row.learned_interval_s, row.last_seen_at = 300, T0
    assert _check(db, alerts, T0 + timedelta(seconds=299)) == []
    assert _check(db, alerts, T0 + timedelta(seconds=301)) == ["lgsp/api"]


def test_the_interval_is_learned_from_arrival_gaps(
        topology: Topology, db: Database, app_state: AppState, agencies: list[str], tracker: ActivityTracker) -> None:
    add_system(db, app_state.registry, "dvc", sources=[Src("web-access", "nginx", "file", None, "learned")])
    for i in range(tracker.learn_min_samples):  # one gap short of enough
        feed(topology, lines(NGINX, 1), at=T0 + timedelta(minutes=2 * i), system_id="dvc")
    tracker.flush(db)
    assert source_row(db, "dvc", "web-access").learned_interval_s is None
    feed(topology, lines(NGINX, 1), at=T0 + timedelta(minutes=2 * tracker.learn_min_samples), system_id="dvc")
    tracker.flush(db)
    # Gaps of 2 minute-steps last under 3 minutes: 180 s × the 1.5 safety factor.
    assert source_row(db, "dvc", "web-access").learned_interval_s == 270


def test_the_learned_interval_covers_the_99th_percentile_gap() -> None:
    gaps = {"1": 980, "30": 15, "240": 5}  # the 5 longest (0.5 %) lie beyond the 99th percentile
    assert learn_interval({"gaps": gaps}, 20) == (30 + 1) * 60 * 3 // 2
    assert learn_interval({"gaps": {"1": 5}}, 20) is None
    assert learn_interval({"gaps": {"1": 50}}, 20) == 180


def test_long_gaps_are_kept_in_coarser_buckets() -> None:
    assert [gap_bucket(m) for m in (1, 60, 61, 359, 361, 2880, 2881, 100_000)] == \
        [1, 60, 65, 360, 420, 2880, 4320, 43_200]


def test_a_learned_office_hours_source_is_not_alarmed_in_its_quiet_hours(
        db: Database, app_state: AppState, agencies: list[str], alerts: AlertStore) -> None:
    """Busy Monday–Friday 01:00–10:00 UTC (08:00–17:00 in Vietnam), still otherwise."""
    week = [0] * 168
    for day in range(5):
        for hour in range(1, 10):
            week[day * 24 + hour] = 60
    friday_evening = datetime(2026, 11, 27, 9, 58, tzinfo=T0.tzinfo)
    assert week_cell(int(friday_evening.timestamp() // 60)) == 4 * 24 + 9
    add_system(db, app_state.registry, "egov", sources=[Src("app-audit", "json", "http", None, "learned")])
    with db.write() as session:
        row = session.scalars(select(LogSourceRow).where(LogSourceRow.system_id == "egov")).one()
        row.learned_interval_s, row.last_seen_at = 600, friday_evening
        row.history = {"gaps": {"1": 2000}, "week": week, "since": (T0 - timedelta(days=30)).isoformat()}
    assert _check(db, alerts, datetime(2026, 11, 29, 12, 0, tzinfo=T0.tzinfo)) == []  # Sunday
    assert _check(db, alerts, datetime(2026, 11, 30, 1, 7, tzinfo=T0.tzinfo)) == []  # Monday, 2 min left
    assert _check(db, alerts, datetime(2026, 11, 30, 1, 9, tzinfo=T0.tzinfo)) == ["egov/app-audit"]


def test_the_check_runs_at_least_twice_per_shortest_interval() -> None:
    assert check_period(60, 3600) == 60
    assert check_period(60, 90) == 45
    assert check_period(60, None) == 60
    assert check_period(60, 4) == 5


def test_schedule_adds_the_flush_and_the_silent_source_jobs(
        portal: str, app_state: AppState, tracker: ActivityTracker) -> None:
    scheduler = AsyncIOScheduler()
    schedule(scheduler, app_state)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {FLUSH_JOB_ID, JOB_ID}
    assert jobs[JOB_ID].trigger.interval == timedelta(seconds=check_period(
        app_state.cfg.health.silent_check_seconds, INTERVAL))
    assert tracker.watch_start is not None

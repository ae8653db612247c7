"""The dispatcher: which alerts become deliveries (routing by level and agency, the
cursor, idempotence) and how deliveries are retried. Time is driven with explicit
``now`` values: nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select, update

from soc.alerts.internal import raise_internal_alert
from soc.alerts.models import Alert
from soc.alerts.store import AlertStore
from soc.api.state import AppState
from soc.config import SocConfig
from soc.db import Database, utcnow
from soc.notify.dispatcher import Dispatcher, retry_delay, schedule
from soc.notify.models import NotificationCursor, NotificationDelivery
from tests.service.notify_fixtures import HttpReceiver, http_receiver, notify_config, raise_alert


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as r:
        yield r


def webhook(receiver: HttpReceiver) -> dict[str, dict[str, str]]:
    return {"hook": {"type": "webhook", "url": receiver.url}}


def routed(db: Database) -> set[tuple[str, str]]:
    """(alert id, route) of every delivery."""
    with db.read() as session:
        return {(a, r) for a, r in session.execute(select(NotificationDelivery.alert_id, NotificationDelivery.route))}


def started(db: Database, cfg: SocConfig) -> Dispatcher:
    dispatcher = Dispatcher(db, cfg)
    assert dispatcher.route_new(utcnow()).started
    return dispatcher


def delivery(db: Database, alert_id: str) -> NotificationDelivery:
    with db.read() as session:
        return session.scalars(select(NotificationDelivery).where(NotificationDelivery.alert_id == alert_id)).one()


# --- routing --------------------------------------------------------------------------

def test_a_route_takes_alerts_at_or_above_its_min_level(db: Database, agencies: list[str], soc_config: SocConfig,
                                                         receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "urgent", "min_level": "high",
                                                        "channels": ["hook"]}])
    dispatcher = started(db, cfg)
    medium, high, critical = (raise_alert(db, level) for level in ("medium", "high", "critical"))

    result = dispatcher.route_new(utcnow())

    assert result.created == 2
    assert routed(db) == {(high, "urgent"), (critical, "urgent")}
    assert medium not in {a for a, _ in routed(db)}


def test_a_commune_route_gets_its_communes_alerts_and_not_another_communes(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [
        {"name": "xa-thanh-son", "min_level": "low", "agencies": ["xa-thanh-son"], "channels": ["hook"]}])
    dispatcher = started(db, cfg)
    own = raise_alert(db, "high", system="motcua-xa-thanh-son")
    other = raise_alert(db, "high", system="motcua-xa-hy-cuong")

    dispatcher.route_new(utcnow())

    assert routed(db) == {(own, "xa-thanh-son")}
    assert other not in {a for a, _ in routed(db)}


def test_a_route_gets_the_alerts_of_agencies_merged_into_its_agency(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [
        {"name": "xa-hy-cuong", "min_level": "low", "agencies": ["xa-hy-cuong"], "channels": ["hook"]}])
    dispatcher = started(db, cfg)
    merged = raise_alert(db, "high", system="motcua-xa-chu-hoa")

    dispatcher.route_new(utcnow())

    assert routed(db) == {(merged, "xa-hy-cuong")}


def test_a_district_route_gets_the_alerts_of_its_communes(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [
        {"name": "huyen", "min_level": "low", "agencies": ["huyen-thanh-son"], "channels": ["hook"]}])
    dispatcher = started(db, cfg)
    commune = raise_alert(db, "high", system="motcua-xa-thanh-son")
    raise_alert(db, "high", system="cong-so-khcn")

    dispatcher.route_new(utcnow())

    assert routed(db) == {(commune, "huyen")}


def test_one_alert_matching_two_routes_gets_a_delivery_per_route_and_channel(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    channels = {"hook": {"type": "webhook", "url": receiver.url},
                "chat": {"type": "telegram", "url": f"{receiver.url}/botX/sendMessage", "chat_id": "7"}}
    cfg = notify_config(soc_config, channels, [
        {"name": "all", "min_level": "high", "channels": ["hook", "chat"]},
        {"name": "xa", "min_level": "high", "agencies": ["xa-thanh-son"], "channels": ["hook"]}])
    dispatcher = started(db, cfg)
    alert_id = raise_alert(db, "critical", system="motcua-xa-thanh-son")

    assert dispatcher.route_new(utcnow()).created == 3
    with db.read() as session:
        rows = session.execute(select(NotificationDelivery.route, NotificationDelivery.channel,
                                      NotificationDelivery.kind)
                               .where(NotificationDelivery.alert_id == alert_id)).all()
    assert sorted(tuple(r) for r in rows) == [("all", "chat", "telegram"), ("all", "hook", "webhook"),
                                              ("xa", "hook", "webhook")]


def test_internal_alerts_are_routed_like_any_other(db: Database, agencies: list[str], soc_config: SocConfig,
                                                   receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "ops", "min_level": "high", "channels": ["hook"]}])
    dispatcher = started(db, cfg)
    result = raise_internal_alert(AlertStore(db.engine), kind="source_silent", title_vi="Nguồn log im lặng",
                                  title_en="Log source silent", level="high",
                                  fields={"gov.system.id": "motcua-xa-thanh-son"}, key="motcua-xa-thanh-son/auth")
    internal = result.alert_ids[0]

    dispatcher.route_new(utcnow())
    [sent] = asyncio.run(dispatcher.send_due(utcnow() + timedelta(seconds=1)))

    assert routed(db) == {(internal, "ops")}
    assert sent.status == "sent"
    body = receiver.requests[0].json()["alert"]
    assert body["rule"]["id"] == "soc-internal-source-silent" and body["internal"] is True


def test_retro_hunt_alerts_are_notified_only_by_routes_that_ask_for_them(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [
        {"name": "live", "min_level": "high", "channels": ["hook"]},
        {"name": "hunts", "min_level": "high", "channels": ["hook"], "retro": True}])
    dispatcher = started(db, cfg)
    hunted = raise_alert(db, "high", retro=True)

    dispatcher.route_new(utcnow())

    assert routed(db) == {(hunted, "hunts")}


# --- the cursor and idempotence --------------------------------------------------------

def test_the_first_run_starts_at_now_and_leaves_older_alerts_alone(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "min_level": "low", "channels": ["hook"]}])
    old = raise_alert(db, "critical")
    dispatcher = Dispatcher(db, cfg)

    first = dispatcher.route_new(utcnow())
    new = raise_alert(db, "critical")
    second = dispatcher.route_new(utcnow())

    assert first.started and first.created == 0
    assert second.created == 1
    assert routed(db) == {(new, "all")}
    assert old not in {a for a, _ in routed(db)}


def test_the_cursor_is_kept_in_the_database_for_the_next_dispatcher(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "min_level": "low", "channels": ["hook"]}])
    started(db, cfg)
    alert_id = raise_alert(db, "high")

    after_restart = Dispatcher(db, cfg).route_new(utcnow())

    assert not after_restart.started and after_restart.created == 1
    with db.read() as session:
        cursor = session.get(NotificationCursor, 1)
        assert cursor is not None and cursor.alert_id == alert_id


def test_routing_again_or_from_a_second_dispatcher_makes_no_duplicate(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "min_level": "low", "channels": ["hook"]}])
    one = started(db, cfg)
    two = Dispatcher(db, cfg)
    alerts = {raise_alert(db, "high") for _ in range(3)}

    assert one.route_new(utcnow()).created == 3
    assert one.route_new(utcnow()).created == 0
    assert two.route_new(utcnow()).created == 0
    # A cursor moved back (a restored backup): the same alerts are read again.
    with db.write() as session:
        session.execute(update(NotificationCursor).values(created_at=utcnow() - timedelta(hours=1)))
    assert two.route_new(utcnow()).created == 0

    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(NotificationDelivery)) == 3
    assert {a for a, _ in routed(db)} == alerts


def test_an_alert_committed_after_the_cursor_passed_its_time_is_still_notified(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "min_level": "low", "channels": ["hook"]}])
    dispatcher = Dispatcher(db, cfg)
    dispatcher.route_new(utcnow() - timedelta(minutes=1))
    first = raise_alert(db, "high")
    dispatcher.route_new(utcnow())
    # An alert whose writer took its time before committing: created earlier than the cursor.
    late = raise_alert(db, "high")
    with db.write() as session:
        session.execute(update(Alert).where(Alert.id == late)
                        .values(created_at=utcnow() - timedelta(seconds=30)))

    assert dispatcher.route_new(utcnow()).created == 1
    assert routed(db) == {(first, "all"), (late, "all")}


def test_routing_reads_a_backlog_in_bounded_batches(db: Database, agencies: list[str], soc_config: SocConfig,
                                                    receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "min_level": "low", "channels": ["hook"]}])
    Dispatcher(db, cfg).route_new(utcnow())
    dispatcher = Dispatcher(db, cfg, route_batch=2)
    alerts = [raise_alert(db, "high") for _ in range(5)]

    results = [dispatcher.route_new(utcnow()) for _ in range(3)]

    assert [r.more for r in results] == [True, True, False]
    assert {a for a, _ in routed(db)} == set(alerts)


# --- sending and retrying ----------------------------------------------------------------

def routed_one(db: Database, cfg: SocConfig, level: str = "high") -> tuple[Dispatcher, str, datetime]:
    dispatcher = started(db, cfg)
    alert_id = raise_alert(db, level)
    now = utcnow()
    assert dispatcher.route_new(now).created == 1
    return dispatcher, alert_id, now


def test_a_receiver_failing_twice_gets_the_alert_on_the_third_attempt(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "channels": ["hook"]}],
                        retry_backoff_seconds=30)
    receiver.answer(500, {"error": "database down"})
    receiver.answer(503, {"error": "maintenance"})
    dispatcher, alert_id, t0 = routed_one(db, cfg)

    first = asyncio.run(dispatcher.send_due(t0))
    too_early = asyncio.run(dispatcher.send_due(t0 + timedelta(seconds=29)))
    second = asyncio.run(dispatcher.send_due(t0 + timedelta(seconds=30)))
    third = asyncio.run(dispatcher.send_due(t0 + timedelta(seconds=90)))

    assert [r.status for r in first] == ["pending"] and first[0].next_attempt_at == t0 + timedelta(seconds=30)
    assert too_early == []
    assert [r.status for r in second] == ["pending"] and second[0].next_attempt_at == t0 + timedelta(seconds=90)
    assert [r.status for r in third] == ["sent"]
    row = delivery(db, alert_id)
    assert (row.status, row.attempts) == ("sent", 3)
    assert row.sent_at == t0 + timedelta(seconds=90)
    assert row.last_error == "HTTP 503 Service Unavailable"
    assert len(receiver.requests) == 3
    assert len({r.headers["X-SOC-Delivery"] for r in receiver.requests}) == 1


def test_a_client_error_fails_at_once(db: Database, agencies: list[str], soc_config: SocConfig,
                                      receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "channels": ["hook"]}])
    receiver.answer(400, {"error": "unknown field"})
    dispatcher, alert_id, t0 = routed_one(db, cfg)

    [result] = asyncio.run(dispatcher.send_due(t0))
    later = asyncio.run(dispatcher.send_due(t0 + timedelta(days=1)))

    assert result.status == "failed" and later == []
    row = delivery(db, alert_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "HTTP 400 Bad Request")
    assert row.response == {"status_code": 400, "body": '{"error": "unknown field"}'}


def test_retries_stop_at_max_attempts_with_the_last_error_kept(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "channels": ["hook"]}], max_attempts=3,
                        retry_backoff_seconds=10)
    for _ in range(3):
        receiver.answer(502, {"error": "bad gateway"})
    dispatcher, alert_id, t0 = routed_one(db, cfg)

    statuses = [r.status for when in (0, 10, 30, 3600)
                for r in asyncio.run(dispatcher.send_due(t0 + timedelta(seconds=when)))]

    assert statuses == ["pending", "pending", "failed"]
    row = delivery(db, alert_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "HTTP 502 Bad Gateway")


def test_too_many_requests_waits_as_long_as_retry_after_asks(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "channels": ["hook"]}],
                        retry_backoff_seconds=30)
    receiver.answer(429, {"error": "slow down"}, {"Retry-After": "600"})
    dispatcher, _, t0 = routed_one(db, cfg)

    [result] = asyncio.run(dispatcher.send_due(t0))

    assert result.status == "pending" and result.next_attempt_at == t0 + timedelta(seconds=600)


def test_the_retry_delay_doubles_and_is_capped_at_an_hour() -> None:
    assert [retry_delay(n, 30).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(12, 30) == timedelta(hours=1)
    assert retry_delay(1, 30, retry_after=7200) == timedelta(hours=1)


def test_a_claimed_delivery_is_not_sent_twice_by_two_dispatchers(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "channels": ["hook"]}])
    one, _, t0 = routed_one(db, cfg)
    two = Dispatcher(db, cfg)

    async def both() -> list[int]:
        results = await asyncio.gather(one.send_due(t0), two.send_due(t0))
        return [len(r) for r in results]

    assert sorted(asyncio.run(both())) == [0, 1]
    assert len(receiver.requests) == 1


def test_a_delivery_whose_channel_was_removed_from_the_configuration_fails(
        db: Database, agencies: list[str], soc_config: SocConfig, receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "channels": ["hook"]}])
    _, alert_id, t0 = routed_one(db, cfg)
    without = notify_config(soc_config, {}, [])

    assert asyncio.run(Dispatcher(db, without).send_due(t0)) == []
    row = delivery(db, alert_id)
    assert (row.status, row.last_error) == ("failed", "channel 'hook' is no longer configured")
    assert receiver.requests == []


# --- the service job -------------------------------------------------------------------

def test_run_once_routes_and_sends_new_alerts(db: Database, agencies: list[str], soc_config: SocConfig,
                                              receiver: HttpReceiver) -> None:
    cfg = notify_config(soc_config, webhook(receiver), [{"name": "all", "channels": ["hook"]}])
    dispatcher = Dispatcher(db, cfg)
    asyncio.run(dispatcher.run_once())
    alert_id = raise_alert(db, "high")

    asyncio.run(dispatcher.run_once())

    assert [r.json()["alert"]["id"] for r in receiver.requests] == [alert_id]
    assert delivery(db, alert_id).status == "sent"


def test_schedule_adds_one_interval_job_that_never_overlaps(app_state: AppState, soc_config: SocConfig) -> None:
    app_state.cfg = soc_config.model_copy(update={"notifications": soc_config.notifications.model_copy(
        update={"interval_seconds": 15.0})})
    scheduler = BackgroundScheduler(timezone=UTC)

    schedule(scheduler, app_state)

    [job] = scheduler.get_jobs()
    assert job.id == "notifications"
    assert isinstance(job.trigger, IntervalTrigger) and job.trigger.interval == timedelta(seconds=15)
    assert (job.max_instances, job.coalesce) == (1, True)
    assert isinstance(app_state.extra["notify.dispatcher"], Dispatcher)

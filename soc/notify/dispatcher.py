"""The dispatcher: new alerts become deliveries, due deliveries are sent.

:meth:`Dispatcher.route_new` reads the alerts created since the persisted cursor
(``notification_cursor``, ``(created_at, id)`` order, a bounded batch), inserts one
``notification_deliveries`` row per alert × matching route × channel and moves the
cursor, all in one transaction. The unique ``(alert_id, route, channel)`` makes it
idempotent: two dispatchers, a restart or a rescan never make a second delivery.

An alert's ``created_at`` is taken before its transaction commits, so an alert can
become visible after the cursor has passed its time (a batch that waited for
SQLite's write lock, another process's writer). Each call therefore also looks
again at the :data:`OVERLAP` behind the cursor for alerts that have no delivery yet.
It never looks before the cursor's ``started_at``: **the first run starts the cursor
at "now"**, so a SOC that turns notifications on does not send its history.

:meth:`Dispatcher.send_due` claims pending deliveries whose ``next_attempt_at`` has
come (attempts + 1, and a lease: ``next_attempt_at`` moved :data:`LEASE` ahead so no
other dispatcher takes them), sends them with no transaction open, then records each
outcome: sent; a retryable failure waits ``retry_backoff_seconds · 2^(attempts-1)``
(at least what the receiver's ``Retry-After`` asked, at most an hour) until
``max_attempts``; a permanent failure, or the last attempt, is ``failed``. A
dispatcher that dies mid-send leaves its claims to be retried when the lease ends.

Deliveries are not written to the audit trail (one per alert and channel would
drown it); ``notification_deliveries`` is their record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, defer

from soc.alerts.internal import LEVELS
from soc.alerts.models import Alert
from soc.audit.trail import jsonable
from soc.config import SocConfig
from soc.db import Database, utcnow
from soc.inventory.models import AgencyRow, SystemRow
from soc.notify.channels import Channel, Outcome, build_channels
from soc.notify.message import Notice
from soc.notify.models import NotificationCursor, NotificationDelivery
from soc.notify.routing import RoutedAlert, Router, level_rank

if TYPE_CHECKING:
    from soc.api.state import AppState

log = logging.getLogger("soc.notify")

CURSOR_ID = 1
OVERLAP = timedelta(seconds=120)
"""Looked at again behind the cursor: more than SQLite's 30 s busy timeout plus a
long alert batch, so a late commit with an older ``created_at`` still gets notified."""
LEASE = timedelta(minutes=5)
"""A claimed delivery is not claimed again for this long (or longer, for channels
with long timeouts: ``Dispatcher.lease``)."""
MAX_RETRY_DELAY = timedelta(hours=1)
ROUTE_BATCH = 500
SEND_BATCH = 100
MAX_ROUTE_BATCHES = 20
"""Batches :meth:`Dispatcher.run_once` routes before it sends (a backlog drains over calls)."""
CONCURRENCY = 4
"""Messages in flight at once."""

PENDING, SENT, FAILED = "pending", "sent", "failed"
STATUSES: tuple[str, ...] = (PENDING, SENT, FAILED)


@dataclass(slots=True)
class RouteResult:
    """What one :meth:`Dispatcher.route_new` call did."""

    alerts: int = 0
    """Alerts looked at (new ones and late ones)."""
    created: int = 0
    """Deliveries inserted."""
    started: bool = False
    """First run: the cursor was set to "now" and nothing was routed."""
    more: bool = False
    """The batch was full: call again."""


@dataclass(frozen=True, slots=True)
class Claim:
    delivery_id: str
    alert_id: str
    route: str
    channel: str
    attempts: int
    notice: Notice


@dataclass(frozen=True, slots=True)
class SendResult:
    """One delivery attempt and where it left the delivery."""

    delivery_id: str
    alert_id: str
    route: str
    channel: str
    attempts: int
    status: str
    outcome: Outcome
    next_attempt_at: datetime | None = None


def retry_delay(attempts: int, backoff_seconds: float, retry_after: float | None = None) -> timedelta:
    """Wait before the next attempt after ``attempts`` failed ones."""
    seconds = backoff_seconds * 2 ** max(0, attempts - 1)
    if retry_after is not None:
        seconds = max(seconds, retry_after)
    return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)


class Dispatcher:
    """Routes new alerts and sends due deliveries (see the module docstring)."""

    def __init__(self, db: Database, cfg: SocConfig, *, channels: dict[str, Channel] | None = None,
                 route_batch: int = ROUTE_BATCH, send_batch: int = SEND_BATCH) -> None:
        self.db = db
        self.cfg = cfg
        self.settings = cfg.notifications
        self.channels = channels if channels is not None else build_channels(cfg)
        self.route_batch = route_batch
        self.send_batch = send_batch
        # An SMTP send may wait out its timeout on connect, STARTTLS, login and data.
        slowest = max((float(c.spec.timeout) for c in self.channels.values()), default=0.0)
        self.lease = max(LEASE, timedelta(seconds=4 * slowest + 60))

    # -- routing ------------------------------------------------------------------------
    def route_new(self, now: datetime | None = None) -> RouteResult:
        now = now or utcnow()
        try:
            with self.db.write() as session:
                return self._route(session, now)
        except IntegrityError:
            # Another dispatcher created the cursor row at the same moment; it routes.
            return RouteResult()

    def _route(self, session: Session, now: datetime) -> RouteResult:
        cursor = session.scalars(select(NotificationCursor).where(NotificationCursor.id == CURSOR_ID)
                                 .with_for_update()).one_or_none()
        if cursor is None:
            session.add(NotificationCursor(id=CURSOR_ID, created_at=now, alert_id="", started_at=now))
            session.flush()
            return RouteResult(started=True)
        routes = self.settings.routes
        if not routes:
            # Nothing to route: keep up with the present, so routes added later start there.
            if cursor.created_at < now:
                cursor.created_at, cursor.alert_id = now, ""
            return RouteResult()
        columns = (Alert.id, Alert.created_at, Alert.level, Alert.agency_id, Alert.retro)
        after_cursor = or_(Alert.created_at > cursor.created_at,
                           and_(Alert.created_at == cursor.created_at, Alert.id > cursor.alert_id))
        new = session.execute(select(*columns).where(after_cursor)
                              .order_by(Alert.created_at, Alert.id).limit(self.route_batch)).all()
        lowest = min(level_rank(r.min_level) for r in routes)
        floor = max(cursor.created_at - OVERLAP, cursor.started_at)
        late_query = (select(*columns)
                      .where(Alert.created_at > floor, ~after_cursor,
                             Alert.level.in_([lv for lv in LEVELS if level_rank(lv) >= lowest]),
                             ~exists().where(NotificationDelivery.alert_id == Alert.id))
                      .order_by(Alert.created_at, Alert.id).limit(self.route_batch))
        if not any(r.retro for r in routes):
            late_query = late_query.where(Alert.retro.is_(False))
        late = session.execute(late_query).all()
        if new:
            cursor.created_at, cursor.alert_id = new[-1].created_at, new[-1].id
        rows = [*late, *new]
        if not rows:
            return RouteResult()
        created = self._insert_deliveries(session, rows, Router.load(session, routes), now)
        return RouteResult(alerts=len(rows), created=created, more=len(new) == self.route_batch)

    def _insert_deliveries(self, session: Session, rows: Sequence[Any], router: Router, now: datetime) -> int:
        ids = [r.id for r in rows]
        existing = {(a, r, c) for a, r, c in session.execute(
            select(NotificationDelivery.alert_id, NotificationDelivery.route, NotificationDelivery.channel)
            .where(NotificationDelivery.alert_id.in_(ids)))}
        created = 0
        for row in rows:
            for route in router.match(RoutedAlert(row.id, row.level, row.agency_id, row.retro)):
                for name in route.channels:
                    channel = self.channels.get(name)
                    if channel is None or (row.id, route.name, name) in existing:
                        continue
                    delivery = NotificationDelivery(alert_id=row.id, route=route.name, channel=name,
                                                    kind=channel.kind, target=channel.target, status=PENDING,
                                                    attempts=0, next_attempt_at=now, created_at=now)
                    try:
                        with session.begin_nested():
                            session.add(delivery)
                    except IntegrityError:
                        # Inserted by another dispatcher since the check above.
                        continue
                    existing.add((row.id, route.name, name))
                    created += 1
        return created

    # -- sending ------------------------------------------------------------------------
    async def send_due(self, now: datetime | None = None) -> list[SendResult]:
        """Send what is due at ``now`` (default: the clock), record the outcomes."""
        claims = await asyncio.to_thread(self._claim, now or utcnow())
        if not claims:
            return []
        limit = asyncio.Semaphore(CONCURRENCY)

        async def attempt(claim: Claim) -> tuple[Claim, Outcome]:
            async with limit:
                return claim, await self._attempt(claim)

        outcomes = await asyncio.gather(*(attempt(c) for c in claims))
        return await asyncio.to_thread(self._record, outcomes, now or utcnow())

    def _claim(self, now: datetime) -> list[Claim]:
        with self.db.write() as session:
            due = session.scalars(
                select(NotificationDelivery)
                .where(NotificationDelivery.status == PENDING, NotificationDelivery.next_attempt_at <= now)
                .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
                .limit(self.send_batch).with_for_update(skip_locked=True)).all()
            if not due:
                return []
            notices = _notices(session, {d.alert_id for d in due})
            claims: list[Claim] = []
            for delivery in due:
                notice = notices.get(delivery.alert_id)
                problem = None
                if delivery.channel not in self.channels:
                    problem = f"channel '{delivery.channel}' is no longer configured"
                elif notice is None:
                    problem = f"alert {delivery.alert_id} no longer exists"
                if problem is not None or notice is None:
                    delivery.status, delivery.last_error = FAILED, problem
                    log.warning("notification %s not sent: %s", delivery.id, problem)
                    continue
                delivery.attempts += 1
                delivery.next_attempt_at = now + self.lease
                claims.append(Claim(delivery.id, delivery.alert_id, delivery.route, delivery.channel,
                                    delivery.attempts, notice))
            return claims

    async def _attempt(self, claim: Claim) -> Outcome:
        try:
            return await self.channels[claim.channel].send(claim.notice, claim.delivery_id)
        except Exception as exc:  # a channel's bug must not stop the other deliveries
            log.exception("notification %s: channel %s failed", claim.delivery_id, claim.channel)
            return Outcome.retry(f"{type(exc).__name__}: {exc}")

    def _record(self, outcomes: Sequence[tuple[Claim, Outcome]], now: datetime) -> list[SendResult]:
        results: list[SendResult] = []
        max_attempts = self.settings.max_attempts
        with self.db.write() as session:
            for claim, outcome in outcomes:
                delivery = session.get(NotificationDelivery, claim.delivery_id, with_for_update=True)
                if delivery is None or delivery.status != PENDING:
                    continue
                delivery.response = jsonable(outcome.response) or None
                if outcome.ok:
                    delivery.status, delivery.sent_at = SENT, now
                elif outcome.retryable and delivery.attempts < max_attempts:
                    delivery.last_error = outcome.error
                    delivery.next_attempt_at = now + retry_delay(delivery.attempts,
                                                                 self.settings.retry_backoff_seconds,
                                                                 outcome.retry_after)
                else:
                    delivery.status, delivery.last_error = FAILED, outcome.error
                    log.warning("notification %s to %s failed after %d attempt(s): %s", delivery.id,
                                delivery.channel, delivery.attempts, outcome.error)
                results.append(SendResult(delivery.id, delivery.alert_id, delivery.route, delivery.channel,
                                          delivery.attempts, delivery.status, outcome,
                                          delivery.next_attempt_at if delivery.status == PENDING else None))
        return results

    # -- the service job ----------------------------------------------------------------
    async def run_once(self) -> None:
        """Route what is new (a backlog in bounded batches), then send what is due."""
        try:
            for _ in range(MAX_ROUTE_BATCHES):
                result = await asyncio.to_thread(self.route_new)
                if not result.more:
                    break
            await self.send_due()
        except SQLAlchemyError as exc:
            # The database is away (PostgreSQL restarting): the next run picks up where this stopped.
            log.warning("notifications: database unavailable, retrying at the next run: %s", exc)


def _notices(session: Session, alert_ids: set[str]) -> dict[str, Notice]:
    alerts = session.scalars(select(Alert).options(defer(Alert.event_ids)).where(Alert.id.in_(alert_ids))).all()
    systems = {a.system_id for a in alerts}
    agencies = {a.agency_id for a in alerts if a.agency_id}
    system_names: dict[str, str] = {}
    agency_names: dict[str, str] = {}
    if systems:
        system_names = {i: n for i, n in session.execute(select(SystemRow.id, SystemRow.name)
                                                         .where(SystemRow.id.in_(systems)))}
    if agencies:
        agency_names = {i: n for i, n in session.execute(select(AgencyRow.id, AgencyRow.name)
                                                         .where(AgencyRow.id.in_(agencies)))}
    return {a.id: Notice.of(a, system_names.get(a.system_id), agency_names.get(a.agency_id or ""))
            for a in alerts}


def schedule(scheduler: Any, state: AppState) -> None:
    """Add the dispatcher's job to the service's APScheduler (``soc run``)."""
    dispatcher = Dispatcher(state.db, state.cfg)
    state.extra["notify.dispatcher"] = dispatcher
    scheduler.add_job(dispatcher.run_once, "interval", seconds=state.cfg.notifications.interval_seconds,
                      id="notifications", max_instances=1, coalesce=True, next_run_time=utcnow())

"""A copy of the alerts in an Elasticsearch index, for Kibana.

The SOC database is the source of truth; the index only follows it. Every alert
becomes one document whose ``_id`` is the alert id and whose external version is
the alert's ``version`` (bumped by every ORM update), written with
``version_type=external_gte``: the cluster itself refuses an older copy after a
newer one (HTTP 409), so two writers racing, a replayed page or a slow
:meth:`AlertMirror.push` can never roll an alert back. Such 409s are counted as
``stale``, not as errors.

:meth:`AlertMirror.sync` is the safety net, cheap enough to run every few seconds:

- it scans ``(id, version, updated_at)`` of the alerts with ``updated_at`` at or
  after the stored cursor minus ``overlap``, in pages ordered by
  ``(updated_at, id)``, and sends only those not yet mirrored at their current
  version;
- the overlap exists because ``updated_at`` is taken before the writing
  transaction commits: a batch that waited for SQLite's write lock (up to its 30 s
  busy timeout) or a triage edit in another process can commit a time older than
  rows already mirrored. The checkpoint remembers which version of each alert inside
  that window was mirrored, so rescanning it costs a read, not a re-index;
- the cursor only passes rows the cluster accepted. A document refused for another
  reason (a mapping conflict, a 429) is logged and counted, and the cursor stops
  before it, so the next sync retries it; the sync ends at that page. A cluster
  that cannot be reached ends the sync with ``failed`` set and nothing advanced:
  nothing is lost, the database still holds every change;
- the checkpoint (cursor and the overlap window's versions) is a JSON file
  replaced atomically and fsynced after each accepted page;
- work per call is bounded: ``max_pages`` bulk requests of at most ``page_size``
  documents; ``more`` in the result says rows were left for the next call.

:meth:`AlertMirror.push` sends given alerts at once (low latency right after
``raise_detections``) through the same bulk code. It never moves the cursor; what
it got accepted is remembered in memory so the next sync does not send it again.

Documents are ``Alert.as_dict()`` (times as ISO 8601 strings) plus ``@timestamp``
= ``last_seen``, the time field of the Kibana data view. Deleting an alert from the
database is not mirrored.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from elasticsearch import ApiError, Elasticsearch, TransportError
from sqlalchemy import Engine, and_, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from collectors.sources.file_tail import write_atomic
from soc.alerts.models import Alert
from soc.db import make_session_factory

if TYPE_CHECKING:
    from soc.config import SocConfig

log = logging.getLogger("soc.alerts.mirror")

CHECKPOINT_NAME = "alerts-mirror.json"
"""File name of the mirror's checkpoint in the checkpoints directory."""
CHECKPOINT_FORMAT = 1
DEFAULT_OVERLAP = 120.0
"""Seconds rescanned behind the cursor: more than SQLite's 30 s busy timeout plus a
long write transaction, so a late commit with an older ``updated_at`` is still seen."""
DEFAULT_PAGE_SIZE = 200
"""Documents per bulk request. An alert holds up to 1000 event ids, so a page is
at most about 10 MB, far below the clusters' 100 MB request limit."""
DEFAULT_MAX_PAGES = 10
PUSHED_MEMORY = 50_000
"""Alert versions remembered from :meth:`AlertMirror.push` until a sync passes them."""
_ERRORS_LOGGED = 5
"""Refused documents named in the log per call (the count covers the rest)."""


@dataclass(slots=True)
class MirrorResult:
    """What one :meth:`AlertMirror.sync` or :meth:`AlertMirror.push` did."""

    scanned: int = 0
    """Alert rows read (sync only; includes those already mirrored)."""
    sent: int = 0
    """Documents sent to the cluster."""
    indexed: int = 0
    """Documents the cluster created or updated."""
    stale: int = 0
    """Documents refused because the index already holds a newer version (409): fine."""
    errors: int = 0
    """Documents refused for another reason; sync retries them next time."""
    requests: int = 0
    """Bulk requests made."""
    more: bool = False
    """Sync stopped at ``max_pages`` with rows left: call again."""
    failed: str | None = None
    """Why the call stopped early (cluster unreachable, request refused, database error)."""
    cursor: datetime | None = None
    """The sync cursor after the call."""
    error_samples: list[str] = field(default_factory=list)
    """``alert id: reason`` of the first refused documents."""

    @property
    def ok(self) -> bool:
        """Every document the call handled is in the index at its version or newer."""
        return self.failed is None and self.errors == 0


class _Row(NamedTuple):
    id: str
    version: int
    updated_at: datetime


class _Sent(NamedTuple):
    accepted: set[str]
    """Ids whose version (or a newer one) the index now holds."""
    refused: dict[str, str]
    """Id → reason."""


class _MirrorDown(Exception):
    """The whole bulk request failed; the call stops and nothing passes the cursor."""


class AlertMirror:
    """Keeps ``index`` in step with the alerts table (see the module docstring)."""

    def __init__(self, client: Elasticsearch, index: str, sessions: Engine | sessionmaker[Session],
                 checkpoint_path: Path, *, page_size: int = DEFAULT_PAGE_SIZE,
                 max_pages: int = DEFAULT_MAX_PAGES, overlap: float = DEFAULT_OVERLAP) -> None:
        if page_size < 1 or max_pages < 1:
            raise ValueError("page_size and max_pages must be at least 1")
        if overlap < 0:
            raise ValueError("overlap must be >= 0 seconds")
        self.client = client
        self.index = index
        self.checkpoint_path = Path(checkpoint_path)
        self.page_size = page_size
        self.max_pages = max_pages
        self.overlap = timedelta(seconds=overlap)
        self._sessions = make_session_factory(sessions) if isinstance(sessions, Engine) else sessions
        self._sync_lock = threading.Lock()
        self._pushed: OrderedDict[str, int] = OrderedDict()
        """Alert id → newest version a push got into the index."""
        self._pushed_lock = threading.Lock()
        self._down = False
        """The last call could not reach the cluster (log the outage once, and its end)."""
        self._cursor: datetime | None = None
        self._mirrored: dict[str, tuple[int, datetime]] = {}
        """Alert id → (version in the index, its updated_at) for rows near the cursor."""
        self._load()

    @classmethod
    def from_config(cls, cfg: SocConfig, client: Elasticsearch, sessions: Engine | sessionmaker[Session],
                    **kwargs: Any) -> AlertMirror:
        """The mirror the configuration describes: ``elasticsearch.alerts_index``,
        checkpoint in the checkpoints directory."""
        return cls(client, cfg.elasticsearch.alerts_index, sessions, cfg.checkpoints_dir / CHECKPOINT_NAME,
                   **kwargs)

    @property
    def cursor(self) -> datetime | None:
        """``updated_at`` up to which every alert is known to be mirrored."""
        return self._cursor

    # -- the two ways in ------------------------------------------------------------
    def sync(self) -> MirrorResult:
        """Mirror what changed since the cursor, at most ``max_pages`` bulk requests."""
        result = MirrorResult()
        with self._sync_lock:
            try:
                self._sync(result)
            except _MirrorDown as exc:
                result.failed = str(exc)
            except SQLAlchemyError as exc:
                # Not the cluster's fault: leave the outage state alone.
                result.failed = f"database: {exc}"
                result.cursor = self._cursor
                log.warning("không đọc được cảnh báo để ghi vào %s / cannot read alerts to mirror into %s: %s",
                            self.index, self.index, exc)
                return result
            result.cursor = self._cursor
        self._report(result, "sync")
        return result

    def push(self, alerts: Iterable[Alert]) -> MirrorResult:
        """Send ``alerts`` now. The cursor does not move: sync stays the safety net."""
        result = MirrorResult()
        batch = list(alerts)
        try:
            for start in range(0, len(batch), self.page_size):
                sent = self._send(batch[start:start + self.page_size], result)
                with self._pushed_lock:
                    for alert in batch[start:start + self.page_size]:
                        if alert.id in sent.accepted and self._pushed.get(alert.id, 0) < alert.version:
                            self._pushed[alert.id] = alert.version
                            self._pushed.move_to_end(alert.id)
                    while len(self._pushed) > PUSHED_MEMORY:
                        self._pushed.popitem(last=False)
        except _MirrorDown as exc:
            result.failed = str(exc)
        result.cursor = self._cursor
        self._report(result, "push")
        return result

    def push_ids(self, alert_ids: Sequence[str]) -> MirrorResult:
        """:meth:`push` the alerts with these ids (e.g. ``AlertBatchResult.alert_ids``)."""
        try:
            alerts = self._load_alerts(alert_ids)
        except SQLAlchemyError as exc:
            return MirrorResult(failed=f"database: {exc}", cursor=self._cursor)
        return self.push(alerts[i] for i in alert_ids if i in alerts)

    def reset(self) -> None:
        """Forget the cursor: the next syncs send every alert again (after the index
        was deleted or recreated with a new mapping)."""
        with self._sync_lock:
            self._cursor = None
            self._mirrored = {}
            with self._pushed_lock:
                self._pushed.clear()
            self._save()

    # -- sync -------------------------------------------------------------------------
    def _sync(self, result: MirrorResult) -> None:
        start = self._cursor - self.overlap if self._cursor is not None else None
        position: tuple[datetime, str] | None = None
        while True:
            rows = self._scan(start, position)
            result.scanned += len(rows)
            if not rows:
                return
            position = (rows[-1].updated_at, rows[-1].id)
            todo = self._not_mirrored(rows)
            refused: dict[str, str] = {}
            if todo:
                alerts = self._load_alerts([r.id for r in todo])
                sent = self._send([alerts[r.id] for r in todo if r.id in alerts], result)
                refused = sent.refused
                for alert_id in sent.accepted:
                    alert = alerts[alert_id]
                    self._mirrored[alert_id] = (alert.version, alert.updated_at)
            self._advance(rows, refused)
            self._save()
            if refused or len(rows) < self.page_size:
                return
            if result.requests >= self.max_pages:
                result.more = True
                return

    def _scan(self, start: datetime | None, position: tuple[datetime, str] | None) -> list[_Row]:
        stmt = select(Alert.id, Alert.version, Alert.updated_at)
        if start is not None:
            stmt = stmt.where(Alert.updated_at >= start)
        if position is not None:
            at, alert_id = position
            stmt = stmt.where(or_(Alert.updated_at > at, and_(Alert.updated_at == at, Alert.id > alert_id)))
        stmt = stmt.order_by(Alert.updated_at, Alert.id).limit(self.page_size)
        with self._sessions() as session:
            return [_Row(*row) for row in session.execute(stmt)]

    def _not_mirrored(self, rows: list[_Row]) -> list[_Row]:
        """Rows whose current version the index may not hold yet. Versions a push got
        in are moved into the checkpoint's memory here."""
        todo: list[_Row] = []
        with self._pushed_lock:
            for row in rows:
                known = self._mirrored.get(row.id)
                if known is not None and known[0] >= row.version:
                    continue
                pushed = self._pushed.get(row.id, 0)
                if pushed >= row.version:
                    self._mirrored[row.id] = (pushed, row.updated_at)
                    del self._pushed[row.id]
                    continue
                todo.append(row)
        return todo

    def _advance(self, rows: list[_Row], refused: dict[str, str]) -> None:
        """Move the cursor over the page up to the first refused row; forget versions
        that fell out of the rescanned window."""
        for row in rows:
            if row.id in refused:
                break
            if self._cursor is None or row.updated_at > self._cursor:
                self._cursor = row.updated_at
        if self._cursor is not None:
            floor = self._cursor - self.overlap
            self._mirrored = {k: v for k, v in self._mirrored.items() if v[1] >= floor}

    def _load_alerts(self, alert_ids: Sequence[str]) -> dict[str, Alert]:
        with self._sessions() as session:
            found = session.scalars(select(Alert).where(Alert.id.in_(list(alert_ids))))
            return {alert.id: alert for alert in found}

    # -- the cluster ------------------------------------------------------------------
    def _send(self, alerts: Sequence[Alert], result: MirrorResult) -> _Sent:
        sent = _Sent(set(), {})
        if not alerts:
            return sent
        operations: list[dict[str, Any]] = []
        for alert in alerts:
            operations.append({"index": {"_index": self.index, "_id": alert.id, "version": alert.version,
                                         "version_type": "external_gte"}})
            operations.append(document(alert))
        result.requests += 1
        try:
            response = self.client.bulk(operations=operations)
        except (TransportError, ApiError) as exc:
            raise _MirrorDown(_describe(exc)) from exc
        result.sent += len(alerts)
        items = response.body.get("items") or []
        if len(items) != len(alerts):
            raise _MirrorDown(f"bulk answered {len(items)} items for {len(alerts)} documents")
        for alert, item in zip(alerts, items, strict=True):
            outcome: dict[str, Any] = next(iter(item.values()), {})
            status = int(outcome.get("status", 0))
            if 200 <= status < 300:
                result.indexed += 1
                sent.accepted.add(alert.id)
            elif status == 409:
                result.stale += 1
                sent.accepted.add(alert.id)
            else:
                result.errors += 1
                error = outcome.get("error") or {}
                reason = f"{status} {error.get('type', '')}: {error.get('reason', '')}".strip()
                sent.refused[alert.id] = reason
                if len(result.error_samples) < _ERRORS_LOGGED:
                    result.error_samples.append(f"{alert.id}: {reason}")
        return sent

    def _report(self, result: MirrorResult, what: str) -> None:
        if result.failed is not None:
            if not self._down:
                log.warning("không ghi được cảnh báo vào %s (%s), sẽ thử lại: %s / "
                            "cannot write alerts to %s (%s), will retry: %s",
                            self.index, what, result.failed, self.index, what, result.failed)
            else:
                log.debug("alert mirror still failing (%s): %s", what, result.failed)
            self._down = True
            return
        if self._down and result.requests:
            log.info("đã ghi lại được cảnh báo vào %s / alerts reach %s again", self.index, self.index)
            self._down = False
        if result.errors:
            log.warning("%d cảnh báo bị %s từ chối, sẽ thử lại: %s / %d alerts refused by %s, will retry: %s",
                        result.errors, self.index, "; ".join(result.error_samples),
                        result.errors, self.index, "; ".join(result.error_samples))

    # -- checkpoint -------------------------------------------------------------------
    def _load(self) -> None:
        try:
            raw = self.checkpoint_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("không đọc được %s, đồng bộ lại từ đầu / cannot read %s, mirroring from the start: %s",
                        self.checkpoint_path, self.checkpoint_path, exc)
            return
        try:
            doc = json.loads(raw)
            if doc.get("format") != CHECKPOINT_FORMAT or doc.get("index") != self.index:
                # Another index (configuration changed): it holds none of our copies.
                return
            cursor = datetime.fromisoformat(doc["cursor"]) if doc.get("cursor") else None
            mirrored = {str(k): (int(v[0]), datetime.fromisoformat(v[1])) for k, v in doc["mirrored"].items()}
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            # Starting over only re-sends documents, which the versions make harmless.
            log.warning("tệp %s hỏng, đồng bộ lại từ đầu / %s is corrupt, mirroring from the start: %s",
                        self.checkpoint_path, self.checkpoint_path, exc)
            return
        self._cursor = cursor
        self._mirrored = mirrored

    def _save(self) -> None:
        doc = {
            "format": CHECKPOINT_FORMAT,
            "index": self.index,
            "cursor": self._cursor.isoformat() if self._cursor is not None else None,
            "mirrored": {k: [v, at.isoformat()] for k, (v, at) in self._mirrored.items()},
        }
        try:
            write_atomic(self.checkpoint_path, json.dumps(doc, separators=(",", ":")).encode())
        except OSError as exc:
            # The index is right; a crash before the next save only means re-sending.
            log.error("không ghi được %s / cannot write %s: %s", self.checkpoint_path, self.checkpoint_path, exc)


def document(alert: Alert) -> dict[str, Any]:
    """The index document of an alert: every column plus ``@timestamp`` (last seen)."""
    doc = alert.as_dict()
    doc["@timestamp"] = doc["last_seen"]
    return doc


def _describe(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return f"HTTP {exc.meta.status}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"

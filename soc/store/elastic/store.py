"""The Elasticsearch event store: bulk shipping with retries and dead letters,
searching with the analyst query language, retention where ILM is missing.

Shipping contract (what the pipeline relies on):

* ``write_encoded`` returns only when every event of the batch is either indexed,
  already present (a redelivery: ``create`` answers 409), or recorded in the
  dead-letter stream with the reason and the raw event. Anything else raises
  :class:`StoreUnavailable` and the pipeline spools the whole batch; replaying it
  later is harmless because document ids are the events' stable ids.
* 429 and 5xx answers (whole request or single documents) are retried with
  exponential backoff; connection failures are not retried here — the cluster
  being unreachable is the spool's business, not a reason to block the pipeline.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, Elasticsearch

from collectors.event import Event, iso_utc
from soc.config import ElasticsearchConfig
from soc.query.dsl import query_body
from soc.store.base import EventStore, QueryError, StoreUnavailable, TimeRange
from soc.store.elastic import names, templates
from soc.store.elastic.connection import ClusterInfo, cluster_info, connect

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"


@dataclass(slots=True)
class EncodedDoc:
    """One event ready for a bulk request: its action and source lines, together."""

    chunk: bytes
    index: str
    doc_id: str

    @property
    def source(self) -> bytes:
        return self.chunk[self.chunk.index(b"\n") + 1:].rstrip(b"\n")


@dataclass(slots=True)
class ShipStats:
    """Counters for ``/metrics`` and the status line (monotonic)."""

    indexed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retried: int = 0
    requests: int = 0
    failed_requests: int = 0
    bytes: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("indexed", "duplicates", "dead_lettered", "retried", "requests",
                                              "failed_requests", "bytes")}


class _Unavailable(Exception):
    """A request that should go to the spool (connection lost, retries exhausted)."""


class ElasticEventStore(EventStore):
    name = "elasticsearch"

    def __init__(self, cfg: ElasticsearchConfig, client: Elasticsearch | None = None,
                 *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        self.client = client or connect(cfg)
        self.stats_counters = ShipStats()
        self._sleep = sleep
        self._info: ClusterInfo | None = None
        self._ready = False
        self._setup_lock = threading.Lock()
        self._names: dict[tuple[Any, Any], str] = {}
        self._pool = ThreadPoolExecutor(max_workers=cfg.bulk.concurrency, thread_name_prefix="es-bulk")
        self._stats_lock = threading.Lock()
        self._dead_letter = names.dead_letter_name(cfg.namespace)
        self.events_pattern = names.events_pattern(cfg.namespace)

    # -- setup ----------------------------------------------------------------------
    @property
    def info(self) -> ClusterInfo:
        self._ensure_ready()
        assert self._info is not None
        return self._info

    def _ensure_ready(self) -> None:
        """Learn what the cluster is and install templates, once, lazily: the SOC
        must start (and spool) while the cluster is down."""
        if self._ready:
            return
        with self._setup_lock:
            if self._ready:
                return
            try:
                info = cluster_info(self.client)
                if self.cfg.setup_templates:
                    templates.install(self.client, info, self.cfg)
            except (TransportConnectionError, ConnectionTimeout) as exc:
                raise StoreUnavailable(f"Elasticsearch unreachable / không kết nối được Elasticsearch: {exc}") from exc
            except ApiError as exc:
                if exc.meta.status in _RETRY_STATUSES:
                    raise StoreUnavailable(f"Elasticsearch busy / Elasticsearch đang bận: {exc}") from exc
                raise
            self._info = info
            self._ready = True

    # -- writing --------------------------------------------------------------------
    def stream_for(self, event: Event) -> str:
        """The data stream (or fallback index) an event is written to."""
        ev = event.get("event")
        gov = event.get("gov")
        dataset = ev.get("dataset") if isinstance(ev, dict) else None
        level = gov.get("classification") if isinstance(gov, dict) else None
        key = (dataset, level)
        name = self._names.get(key)
        if name is None:
            name = names.stream_name(dataset, level, self.cfg.namespace)
            if len(self._names) < 10_000:
                self._names[key] = name
        return name

    def encode(self, events: Sequence[Event]) -> list[EncodedDoc]:
        out: list[EncodedDoc] = []
        dumps = orjson.dumps
        for event in events:
            index = self.stream_for(event)
            ev = event.get("event")
            doc_id = ev.get("id") if isinstance(ev, dict) else None
            if "@timestamp" not in event:
                # Data streams refuse documents without @timestamp; the event keeps its
                # own ``_no_timestamp`` tag, so use the time it was ingested.
                event = {**event, "@timestamp": (ev or {}).get("ingested") or iso_utc(datetime.now(UTC))}
            if doc_id:
                action = b'{"create":{"_index":"' + index.encode() + b'","_id":' + dumps(doc_id) + b"}}\n"
            else:
                action = b'{"create":{"_index":"' + index.encode() + b'"}}\n'
            out.append(EncodedDoc(action + dumps(event) + b"\n", index, str(doc_id or "")))
        return out

    def write(self, events: Sequence[Event]) -> int:
        return self.write_encoded([self.encode(events)])

    def write_encoded(self, parts: Sequence[list[EncodedDoc]]) -> int:
        docs = [doc for part in parts for doc in part]
        if not docs:
            return 0
        self._ensure_ready()
        requests = list(self._split(docs))
        try:
            if len(requests) == 1 or self.cfg.bulk.concurrency == 1:
                results = [self._ship(r) for r in requests]
            else:
                results = list(self._pool.map(self._ship, requests))
        except _Unavailable as exc:
            raise StoreUnavailable(str(exc)) from exc
        return sum(results)

    def _split(self, docs: list[EncodedDoc]) -> Iterator[list[EncodedDoc]]:
        max_docs, max_bytes = self.cfg.bulk.max_docs, self.cfg.bulk.max_bytes
        current: list[EncodedDoc] = []
        size = 0
        for doc in docs:
            if current and (len(current) >= max_docs or size + len(doc.chunk) > max_bytes):
                yield current
                current, size = [], 0
            current.append(doc)
            size += len(doc.chunk)
        if current:
            yield current

    def _ship(self, docs: list[EncodedDoc]) -> int:
        """Send one bulk request, retrying what can be retried; returns docs indexed."""
        bulk = self.cfg.bulk
        created = 0
        attempt = 0
        pending = docs
        while True:
            outcome = self._send(pending)
            created += outcome.created
            self._dead_letter_docs(outcome.rejected)
            if not outcome.retry:
                return created
            attempt += 1
            if attempt > bulk.max_retries:
                raise _Unavailable(f"{len(outcome.retry)} documents still refused after {bulk.max_retries} retries "
                                   f"({outcome.retry_reason}) / {len(outcome.retry)} tài liệu vẫn bị từ chối sau "
                                   f"{bulk.max_retries} lần thử lại")
            with self._stats_lock:
                self.stats_counters.retried += len(outcome.retry)
            self._backoff(attempt)
            pending = outcome.retry

    def _backoff(self, attempt: int) -> None:
        bulk = self.cfg.bulk
        delay = min(bulk.max_backoff, bulk.initial_backoff * (2 ** (attempt - 1)))
        self._sleep(delay * (0.5 + random.random() / 2))

    def _send(self, docs: list[EncodedDoc]) -> _Outcome:
        body = b"".join(d.chunk for d in docs)
        try:
            resp = self.client.bulk(operations=body, filter_path=_FILTER)  # type: ignore[arg-type]
        except (TransportConnectionError, ConnectionTimeout) as exc:
            with self._stats_lock:
                self.stats_counters.failed_requests += 1
            raise _Unavailable(f"Elasticsearch unreachable / không kết nối được Elasticsearch: {exc}") from exc
        except ApiError as exc:
            with self._stats_lock:
                self.stats_counters.failed_requests += 1
            if exc.meta.status in _RETRY_STATUSES:
                return _Outcome(retry=docs, retry_reason=f"HTTP {exc.meta.status}")
            if exc.meta.status == 413 and len(docs) > 1:
                half = len(docs) // 2
                first, second = self._send(docs[:half]), self._send(docs[half:])
                return first.merge(second)
            raise _Unavailable(f"bulk request refused: HTTP {exc.meta.status} {exc.message}") from exc
        except TransportError as exc:
            raise _Unavailable(f"Elasticsearch transport error: {exc}") from exc
        with self._stats_lock:
            self.stats_counters.requests += 1
            self.stats_counters.bytes += len(body)
        return self._read_items(docs, dict(resp.body))

    def _read_items(self, docs: list[EncodedDoc], body: dict[str, Any]) -> _Outcome:
        if not body.get("errors"):
            with self._stats_lock:
                self.stats_counters.indexed += len(docs)
            return _Outcome(created=len(docs))
        outcome = _Outcome()
        duplicates = 0
        for doc, item in zip(docs, body.get("items") or [], strict=False):
            result = next(iter(item.values()))
            status = int(result.get("status", 500))
            if status < 300:
                outcome.created += 1
            elif status == 409:
                duplicates += 1
            elif status in _RETRY_STATUSES:
                outcome.retry.append(doc)
                outcome.retry_reason = f"HTTP {status}"
            else:
                error = result.get("error") or {}
                outcome.rejected.append((doc, status, str(error.get("type", "error")),
                                         str(error.get("reason", ""))[:2000]))
        if len(body.get("items") or []) < len(docs):
            # A truncated answer: whatever it did not mention is retried (ids make it safe).
            outcome.retry.extend(docs[len(body.get("items") or []):])
            outcome.retry_reason = "incomplete bulk response"
        with self._stats_lock:
            self.stats_counters.indexed += outcome.created
            self.stats_counters.duplicates += duplicates
        return outcome

    def _dead_letter_docs(self, rejected: list[tuple[EncodedDoc, int, str, str]]) -> None:
        """Documents the cluster refused for good (mapping conflicts, bad values) are kept
        with the reason in the dead-letter stream; if even that fails, the batch spools."""
        if not rejected:
            return
        now = iso_utc(datetime.now(UTC))
        dumps = orjson.dumps
        lines: list[bytes] = []
        for doc, status, etype, reason in rejected:
            letter = {
                "@timestamp": now,
                "error": {"type": etype, "message": reason},
                "dead_letter": {"index": doc.index, "status": status, "stage": "bulk"},
                "event": {"original": doc.source.decode("utf-8", "replace"), "id": doc.doc_id or None},
            }
            letter_id = f"{doc.index}:{doc.doc_id}" if doc.doc_id else None
            action = {"create": {"_index": self._dead_letter, **({"_id": letter_id} if letter_id else {})}}
            lines.append(dumps(action) + b"\n" + dumps(letter) + b"\n")
        try:
            resp = self.client.bulk(operations=b"".join(lines), filter_path=_FILTER)  # type: ignore[arg-type]
        except (TransportError, ApiError) as exc:
            raise _Unavailable(f"dead-letter write failed / không ghi được hàng đợi lỗi: {exc}") from exc
        body = dict(resp.body)
        if body.get("errors"):
            bad = [next(iter(i.values())) for i in body.get("items") or []]
            if any(int(r.get("status", 500)) not in (200, 201, 409) for r in bad):
                raise _Unavailable(f"dead-letter write refused / hàng đợi lỗi từ chối ghi: {bad[:3]}")
        with self._stats_lock:
            self.stats_counters.dead_lettered += len(rejected)
            for _doc, _status, etype, _reason in rejected:
                reasons = self.stats_counters.dead_letter_reasons
                reasons[etype] = reasons.get(etype, 0) + 1
        log.warning("%d events refused by Elasticsearch went to %s (first: %s) / %d sự kiện bị từ chối đã vào %s",
                    len(rejected), self._dead_letter, rejected[0][3][:200], len(rejected), self._dead_letter)

    # -- reading --------------------------------------------------------------------
    def _search_body(self, query: str, time_range: TimeRange, agencies: frozenset[str] | None) -> dict[str, Any]:
        return query_body(query, time_range.since, time_range.until,
                          flattened=self.cfg.unknown_fields == "flattened", agencies=agencies)

    def search(self, query: str, time_range: TimeRange = TimeRange(), limit: int = 100,
               newest_first: bool = True, *, agencies: frozenset[str] | None = None) -> list[Event]:
        body = self._search_body(query, time_range, agencies)
        order = "desc" if newest_first else "asc"
        try:
            self._ensure_ready()
            resp = self.client.search(index=self.events_pattern, query=body["query"], size=min(limit, 10_000),
                                      sort=[{"@timestamp": {"order": order, "unmapped_type": "date"}}],
                                      ignore_unavailable=True, allow_no_indices=True)
        except ApiError as exc:
            if exc.meta.status == 400:
                raise QueryError(f"Elasticsearch refused the query / Elasticsearch từ chối truy vấn: {exc.message}") \
                    from exc
            raise
        except (TransportConnectionError, ConnectionTimeout) as exc:
            raise StoreUnavailable(f"Elasticsearch unreachable / không kết nối được Elasticsearch: {exc}") from exc
        return [hit["_source"] for hit in resp["hits"]["hits"]]

    def count(self, query: str, time_range: TimeRange = TimeRange(), *,
              agencies: frozenset[str] | None = None) -> int:
        body = self._search_body(query, time_range, agencies)
        try:
            self._ensure_ready()
            resp = self.client.count(index=self.events_pattern, query=body["query"],
                                     ignore_unavailable=True, allow_no_indices=True)
        except (TransportConnectionError, ConnectionTimeout) as exc:
            raise StoreUnavailable(f"Elasticsearch unreachable / không kết nối được Elasticsearch: {exc}") from exc
        return int(resp["count"])

    def refresh(self) -> None:
        """Make everything written so far searchable (tests, the CLI after an import)."""
        self.client.indices.refresh(index=self.events_pattern, ignore_unavailable=True, allow_no_indices=True)

    # -- retention ------------------------------------------------------------------
    def delete_before(self, cutoff: datetime) -> int:
        """Remove every event older than ``cutoff`` (all levels)."""
        return self._delete(self.events_pattern, cutoff)

    def apply_retention(self, now: datetime | None = None) -> int:
        """Per-level retention where the cluster has no ILM (OpenSearch): delete what
        the level's policy would have. On Elasticsearch ILM does it; nothing to do."""
        self._ensure_ready()
        if self.info.ilm:
            return 0
        now = now or datetime.now(UTC)
        removed = 0
        for pattern, days in templates.retention_plan(self.cfg).items():
            removed += self._delete(pattern, now - timedelta(days=days))
        return removed

    def _delete(self, pattern: str, cutoff: datetime) -> int:
        self._ensure_ready()
        resp = self.client.delete_by_query(index=pattern, query={"range": {"@timestamp": {"lt": iso_utc(cutoff)}}},
                                           ignore_unavailable=True, allow_no_indices=True, conflicts="proceed",
                                           refresh=True)
        return int(resp.get("deleted", 0))

    # -- status ---------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            out = self.stats_counters.as_dict()
        out["rows"] = out["indexed"]
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()


@dataclass(slots=True)
class _Outcome:
    created: int = 0
    retry: list[EncodedDoc] = field(default_factory=list)
    retry_reason: str = ""
    rejected: list[tuple[EncodedDoc, int, str, str]] = field(default_factory=list)

    def merge(self, other: _Outcome) -> _Outcome:
        return _Outcome(self.created + other.created, self.retry + other.retry,
                        other.retry_reason or self.retry_reason, self.rejected + other.rejected)

"""Follow indices or data streams of an existing Elasticsearch / OpenSearch cluster
(``winlogbeat-*``, ``filebeat-*``, ``wazuh-alerts-4.x-*`` …) and feed their new
documents through our pipeline (parse → enrich → detect → store).

**Checkpoint.** A position in time, not a cursor: ``ts``, the timestamp (epoch
milliseconds) of the newest document delivered, and ``seen``, the ids of the
documents delivered at exactly that millisecond. It is one JSON file per source,
replaced atomically (temp file + fsync + rename) and only after ``submit`` returned
for the batch it covers.

**A poll.**

1. ``upper = now - settle_seconds``; if ``ts >= upper`` there is nothing to read.
2. Open a point in time on the index pattern (Elasticsearch ``POST /<index>/_pit``,
   OpenSearch ``POST /<index>/_search/point_in_time``; :class:`PitFlavour` says which).
3. Page with ``search_after`` inside that PIT through ``ts <= timestamp < upper``,
   sorted by the timestamp then a tiebreaker: ``_shard_doc`` on Elasticsearch and on
   OpenSearch 3.3+, ``_id`` on older OpenSearch (Elasticsearch 8 refuses to sort on
   ``_id``, ``indices.id_field_data.enabled`` being off; OpenSearch before 3.3 has no
   ``_shard_doc``).
4. Documents at exactly ``ts`` whose id is in ``seen`` were delivered by an earlier
   poll and are skipped. The rest of a page is one batch; once ``submit`` returned,
   the checkpoint moves to the page's newest timestamp (``seen``: the ids at it).
5. Close the PIT.

**Why the tiebreaker is not in the checkpoint.** ``_shard_doc`` is a shard ordinal
and a Lucene doc id: stable inside one PIT, meaningless in the next (segments merge,
shards move). ``(timestamp, search_after)`` across polls would skip or repeat
documents sharing the boundary millisecond, which is common: bulk-indexed batches,
sources with whole-second timestamps. Reading ``>= ts`` and skipping ``seen`` loses
none and repeats none. When a poll ends with more than :data:`MAX_SEEN` ids at its
newest millisecond, the checkpoint moves to ``ts + 1 ms`` and forgets them: that poll
read every document of that millisecond it could see.

**Settling.** A document becomes searchable after a refresh (1 s by default) and
shippers deliver late, so documents newer than ``settle_seconds`` are left for a
later poll. A document that shows up later than that with an older timestamp is
behind the checkpoint and is not read; documents without the timestamp field are
never read.

**Ids.** ``stable_id("elasticsearch", index, _id)``: a batch redelivered after a
crash between ``submit`` and the checkpoint write has the same ``event.id`` and the
store ignores the duplicates.

**Errors.** An index pattern that matches nothing yet is waited for quietly (no error
counted). Connection and cluster errors, shard failures and failed ``submit`` calls
are counted in ``stats.errors`` and retried with a backoff from the checkpoint.

This module does not import :mod:`soc`: the service hands it a client factory and a
function that tells what the cluster is (``soc.store.elastic.connection``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote

import orjson

from collectors.batch import Batch, Origin, RawRecord
from collectors.event import stable_id
from collectors.sources.base import Source, SourceStats, Submit
from collectors.sources.file_tail import write_atomic

log = logging.getLogger(__name__)

Mapping = Literal["auto", "ecs", "wazuh"]

CHECKPOINT_VERSION = 1
MAX_SEEN = 10_000
"""Ids at the newest millisecond kept between polls (see the module docstring)."""
_RETRY_FIRST = 1.0
_RETRY_MAX = 60.0
_HEADERS = {"accept": "application/json", "content-type": "application/json"}
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_FORMATS: dict[str, str | None] = {"auto": None, "ecs": "ecs", "wazuh": "wazuh"}
# Epoch values at or above this are nanoseconds (a date_nanos field), not milliseconds.
_NANOS = 10**15


class PitFlavour(Protocol):
    """What the source needs to know about the cluster; ``ClusterInfo`` of
    ``soc.store.elastic.connection`` is one."""

    @property
    def is_elasticsearch(self) -> bool: ...

    @property
    def version(self) -> tuple[int, ...]: ...

    def pit_path(self, index: str) -> str: ...

    def close_pit_path(self) -> str: ...


class ClusterError(RuntimeError):
    """The cluster answered, but not with what a complete read needs."""


def start_position(start_from: str, now: float) -> int | None:
    """The first run's checkpoint timestamp (epoch ms): ``None`` for ``beginning``,
    now for ``now``, now minus the age for ``7d``, ``12h``, ``30m`` …"""
    value = start_from.strip().lower()
    if value == "beginning":
        return None
    if value == "now":
        return int(now * 1000)
    m = _AGE.match(value)
    if m is None:
        raise ValueError(f"start_from {start_from!r}: cần beginning, now hoặc một khoảng như 7d / "
                         f"expected beginning, now or an age such as 7d")
    return int((now - int(m.group(1)) * _UNITS[m.group(2)]) * 1000)


def tiebreaker(flavour: PitFlavour) -> dict[str, str]:
    """The sort key that orders documents with equal timestamps inside one PIT."""
    if flavour.is_elasticsearch or tuple(flavour.version[:2]) >= (3, 3):
        return {"_shard_doc": "asc"}
    return {"_id": "asc"}


def _millis(value: Any) -> int:
    """A timestamp sort value in epoch milliseconds (``numeric_type: date`` gives
    milliseconds; a server that ignores it gives a date_nanos field in nanoseconds)."""
    number = int(value)
    return number // 1_000_000 if abs(number) >= _NANOS else number


def _status(exc: BaseException) -> int | None:
    """HTTP status of a client error (elasticsearch-py's ``ApiError`` and its kin)."""
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    meta = getattr(exc, "meta", None)
    value = getattr(meta, "status", None)
    return value if isinstance(value, int) else None


class ElasticTailSource(Source):
    """New documents of an index pattern, in timestamp order, checkpointed."""

    def __init__(self, name: str, *, index: str, checkpoint_path: Path,
                 client_factory: Callable[[], Any], describe: Callable[[Any], PitFlavour],
                 mapping: Mapping = "auto", timestamp_field: str = "@timestamp",
                 settle_seconds: float = 60.0, start_from: str = "now", poll_interval: float = 5.0,
                 page_size: int = 1000, system_id: str | None = None, keep_alive: str = "1m",
                 clock: Callable[[], float] = time.time) -> None:
        if mapping not in _FORMATS:
            raise ValueError(f"mapping {mapping!r}: cần auto, ecs hoặc wazuh / expected auto, ecs or wazuh")
        self.name = name
        self.index = index
        self.checkpoint_path = checkpoint_path
        self.mapping: Mapping = mapping
        self.timestamp_field = timestamp_field
        self.settle_seconds = max(0.0, settle_seconds)
        self.poll_interval = poll_interval
        self.page_size = max(1, page_size)
        self.system_id = system_id
        self.keep_alive = keep_alive
        self.stats = SourceStats()
        self._client_factory = client_factory
        self._describe = describe
        self._clock = clock
        self._client: Any = None
        self._flavour: PitFlavour | None = None
        self._stopping = asyncio.Event()
        self._waiting = False
        loaded = self._load()
        if loaded is None:
            self.ts: int | None = start_position(start_from, clock())
            self.seen: set[str] = set()
            self._persisted = False
        else:
            self.ts, self.seen = loaded
            self._persisted = True

    # -- checkpoint ----------------------------------------------------------------
    def _load(self) -> tuple[int | None, set[str]] | None:
        try:
            raw = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
            ts = raw["ts"]
            return (None if ts is None else int(ts)), {str(i) for i in raw.get("seen", [])}
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            log.error("%s: điểm kiểm tra hỏng, bắt đầu lại theo start_from / corrupt checkpoint %s, "
                      "starting over from start_from", self.name, self.checkpoint_path)
            return None

    def _save(self) -> None:
        data = {"version": CHECKPOINT_VERSION, "index": self.index, "timestamp_field": self.timestamp_field,
                "ts": self.ts, "seen": sorted(self.seen)}
        write_atomic(self.checkpoint_path, json.dumps(data).encode())
        self._persisted = True

    # -- the loop ------------------------------------------------------------------
    async def run(self, submit: Submit) -> None:
        self.stats.active = 1
        delay = _RETRY_FIRST
        try:
            while not self._stopping.is_set():
                try:
                    await self.poll_once(submit)
                except Exception as exc:
                    self.stats.errors += 1
                    log.warning("%s: đọc %s thất bại, thử lại sau %.0fs / reading %s failed, retrying in %.0fs: %s",
                                self.name, self.index, delay, self.index, delay, exc)
                    await asyncio.to_thread(self._drop_client)
                    await self._sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
                    continue
                delay = _RETRY_FIRST
                await self._sleep(self.poll_interval)
        finally:
            self.stats.active = 0

    def _drop_client(self) -> None:
        """Forget the client after a failure: the next poll connects afresh and asks
        again what the cluster is (it may have been upgraded or replaced)."""
        client, self._client, self._flavour = self._client, None, None
        close = getattr(client, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()

    async def stop(self) -> None:
        """The batch being submitted is finished and checkpointed, then ``run`` returns."""
        self._stopping.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def poll_once(self, submit: Submit) -> int:
        """Read and submit every settled document newer than the checkpoint; returns
        how many were submitted. Raises on cluster, connection and submit errors."""
        if not self._persisted:
            # The first run's start ("now", "7d") is fixed at once, so a restart
            # before any document arrived does not move it.
            await asyncio.to_thread(self._save)
        upper = int((self._clock() - self.settle_seconds) * 1000)
        if self.ts is not None and self.ts >= upper:
            return 0
        if self._client is None:
            self._client = await asyncio.to_thread(self._client_factory)
        client = self._client
        if self._flavour is None:
            self._flavour = await asyncio.to_thread(self._describe, client)
        flavour = self._flavour
        pit = await asyncio.to_thread(self._open_pit, client, flavour)
        if pit is None:
            return 0
        holder = [pit]
        try:
            delivered = await self._read(client, flavour, holder, upper, submit)
        except asyncio.CancelledError:
            raise  # an abrupt stop: the PIT expires by itself after keep_alive
        except BaseException:
            await asyncio.to_thread(self._close_pit, client, flavour, holder[0])
            raise
        await asyncio.to_thread(self._close_pit, client, flavour, holder[0])
        if len(self.seen) > MAX_SEEN and self.ts is not None:
            self.ts += 1
            self.seen = set()
            await asyncio.to_thread(self._save)
        return delivered

    async def _read(self, client: Any, flavour: PitFlavour, pit: list[str], upper: int, submit: Submit) -> int:
        """Page through the PIT; ``pit[0]`` follows the id the cluster hands back."""
        order = [{self.timestamp_field: {"order": "asc", "numeric_type": "date", "unmapped_type": "date"}},
                 tiebreaker(flavour)]
        bounds: dict[str, Any] = {"lt": upper, "format": "epoch_millis"}
        if self.ts is not None:
            bounds["gte"] = self.ts
        body: dict[str, Any] = {
            "size": self.page_size,
            "query": {"bool": {"filter": [{"range": {self.timestamp_field: bounds}}]}},
            "sort": order,
            "track_total_hits": False,
        }
        delivered = 0
        while True:
            body["pit"] = {"id": pit[0], "keep_alive": self.keep_alive}
            response = await asyncio.to_thread(self._request, client, "POST", "/_search", body=body)
            _check_complete(response)
            pit[0] = response.get("pit_id") or pit[0]
            hits: list[dict[str, Any]] = response.get("hits", {}).get("hits", [])
            if not hits:
                return delivered
            body["search_after"] = hits[-1]["sort"]
            delivered += await self._deliver(hits, submit)
            if len(hits) < self.page_size or self._stopping.is_set():
                return delivered

    async def _deliver(self, hits: list[dict[str, Any]], submit: Submit) -> int:
        records: list[RawRecord] = []
        ids: list[str] = []
        stamps: list[int] = []
        size = 0
        for hit in hits:
            stamp = _millis(hit["sort"][0])
            index = str(hit.get("_index", ""))
            doc_id = str(hit.get("_id", ""))
            event_id = stable_id("elasticsearch", index, doc_id)
            if stamp == self.ts and event_id in self.seen:
                continue
            source = hit.get("_source")
            if not isinstance(source, dict):
                source = {}
            size += len(orjson.dumps(source, default=str))
            records.append({"_index": index, "_id": doc_id, "_source": source})
            ids.append(event_id)
            stamps.append(stamp)
        if not records:
            return 0
        self.stats.received += len(records)
        self.stats.bytes += size
        origin = Origin(source=self.name, kind="elasticsearch", format=_FORMATS[self.mapping],
                        system_id=self.system_id, received=time.time())
        await submit(Batch(origin=origin, records=records, ids=ids))
        self.stats.batches += 1
        newest = stamps[-1]
        if newest != self.ts:
            self.seen = set()
            self.ts = newest
        self.seen.update(i for i, s in zip(ids, stamps, strict=True) if s == newest)
        await asyncio.to_thread(self._save)
        return len(records)

    # -- cluster requests (run in a thread) --------------------------------------------
    def _request(self, client: Any, method: str, path: str, *, params: dict[str, Any] | None = None,
                 body: Any = None) -> dict[str, Any]:
        response = client.perform_request(method, path, params=params, body=body, headers=_HEADERS)
        result = response.body
        return result if isinstance(result, dict) else {}

    def _open_pit(self, client: Any, flavour: PitFlavour) -> str | None:
        """A PIT id, or ``None`` when the pattern matches nothing yet."""
        target = quote(self.index, safe=",*:")
        try:
            response = self._request(client, "POST", flavour.pit_path(target), params={"keep_alive": self.keep_alive})
        except Exception as exc:
            if self._matches_nothing(client, target, exc):
                if not self._waiting:
                    log.info("%s: chưa có chỉ mục nào khớp %s, đang chờ / no index matches %s yet, waiting",
                             self.name, self.index, self.index)
                    self._waiting = True
                return None
            raise
        pit = response.get("id") or response.get("pit_id")
        if not isinstance(pit, str) or not pit:
            raise ClusterError(f"{self.index}: cụm không trả về PIT / the cluster returned no point in time")
        if self._waiting:
            log.info("%s: đã có chỉ mục khớp %s / %s now matches an index", self.name, self.index, self.index)
            self._waiting = False
        return pit

    def _matches_nothing(self, client: Any, target: str, exc: Exception) -> bool:
        """Whether opening the PIT failed because the pattern resolves to nothing
        (clusters answer that with a 404 or a 400); any other failure is an error."""
        if _status(exc) not in (400, 404):
            return False
        try:
            resolved = self._request(client, "GET", f"/_resolve/index/{target}")
        except Exception:
            return False
        return not any(resolved.get(kind) for kind in ("indices", "aliases", "data_streams"))

    def _close_pit(self, client: Any, flavour: PitFlavour, pit: str) -> None:
        body: dict[str, Any] = {"id": pit} if flavour.is_elasticsearch else {"pit_id": [pit]}
        try:
            self._request(client, "DELETE", flavour.close_pit_path(), body=body)
        except Exception as exc:  # it expires after keep_alive anyway
            log.debug("%s: closing the point in time failed: %s", self.name, exc)


def _check_complete(response: dict[str, Any]) -> None:
    """A page with failed shards or a timeout is incomplete: reading past it would
    leave a gap, so it is an error and the poll is retried from the checkpoint."""
    shards = response.get("_shards") or {}
    failed = shards.get("failed", 0) if isinstance(shards, dict) else 0
    if failed or response.get("timed_out"):
        raise ClusterError(f"kết quả không đầy đủ ({failed} shard lỗi) / incomplete results "
                           f"({failed} shards failed, timed_out={response.get('timed_out')})")

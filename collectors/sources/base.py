"""The contract between sources and the pipeline, and a batching helper.

A source reads records and hands them to the pipeline through ``submit``, an async
callable that returns only once the batch is durably stored (or spooled). That
return is the acknowledgement: a source may advance a checkpoint, or read more from
a socket, only after it. :class:`Batcher` groups records of one origin into batches
by size or age and retries a failed ``submit``, so a transient storage error slows a
source down (TCP backpressure) instead of losing records.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from collectors.batch import Batch, Origin, RawRecord
from collectors.event import unique_ids

Submit = Callable[[Batch], Awaitable[Any]]
"""Hands a batch to the pipeline; returning (not raising) acknowledges it."""

log = logging.getLogger(__name__)

_RETRY_FIRST = 0.1
_RETRY_MAX = 5.0


class Backpressure(Exception):
    """Raised by a ``submit`` that cannot take more right now (a full spool): the
    batch is not acknowledged and the source retries later."""


@dataclass(slots=True)
class SourceStats:
    """Counters a source keeps for ``/metrics`` (all monotonic except ``active``)."""

    received: int = 0
    """Records read from the source (re-reads after a failed submit count again)."""
    bytes: int = 0
    """Raw bytes read."""
    batches: int = 0
    """Batches acknowledged by ``submit``."""
    dropped: int = 0
    """Records lost: UDP queue overflow, or undeliverable when the source stopped."""
    errors: int = 0
    """Failed ``submit`` calls, I/O and connection errors."""
    connections: int = 0
    """TCP connections accepted."""
    truncated: int = 0
    """Records cut at the size limit (TCP/UDP: the rest is discarded; files: the
    rest of the line continues as the next record)."""
    framing_errors: int = 0
    """Malformed octet-counting frames (the connection falls back to LF framing)."""
    active: int = 0
    """Gauge: open TCP connections, or files being followed."""

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class Source(ABC):
    """Something that reads records and submits them until cancelled."""

    name: str
    stats: SourceStats

    @abstractmethod
    async def run(self, submit: Submit) -> None:
        """Read and submit until cancelled or :meth:`stop` is called.

        Cancelling ``run`` is an abrupt stop: a batch whose ``submit`` was
        interrupted is not acknowledged (a file source re-reads it next time)."""

    async def start(self) -> None:  # noqa: B027 - an optional hook with a no-op default
        """Bind sockets before :meth:`run`, so a service can report its ports first."""

    async def stop(self) -> None:  # noqa: B027 - an optional hook with a no-op default
        """Graceful stop: submit what has been read, then make ``run`` return."""


def utf8_boundary(data: bytes | bytearray, limit: int) -> int:
    """The largest cut point ``<= limit`` that does not split a UTF-8 sequence, so a
    message cut at a size limit keeps its last whole character."""
    if len(data) <= limit:
        return len(data)
    cut = limit
    # A continuation byte (10xxxxxx) right after the cut means we are inside a
    # character; a sequence is at most 4 bytes, so back up at most 3.
    while cut > 0 and limit - cut < 3 and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    if cut == 0 or (data[cut] & 0xC0) == 0x80:
        return limit
    return cut


def decode_text(data: bytes | bytearray) -> str:
    """UTF-8 with U+FFFD for malformed bytes: a bad byte must not cost the message."""
    return bytes(data).decode("utf-8", errors="replace")


class Batcher:
    """Accumulates the records of one origin and submits them as a :class:`Batch`
    when ``max_records`` are buffered or the oldest has waited ``max_delay`` seconds
    (``max_delay <= 0``: every record is submitted at once).

    :meth:`add` awaits the ``submit`` of a full batch, which is how a TCP reader
    applies backpressure. A failing ``submit`` is retried with backoff (the batch
    keeps its ids, so a partially stored batch is not duplicated); after
    :meth:`close` a failure drops the batch and counts it in ``stats.dropped``.
    """

    def __init__(
        self,
        submit: Submit,
        origin: Origin,
        stats: SourceStats,
        *,
        max_records: int = 1000,
        max_delay: float = 0.2,
        assign_ids: bool = True,
    ) -> None:
        self._submit = submit
        self._origin = origin
        self._stats = stats
        self.max_records = max(1, max_records)
        self.max_delay = max_delay
        self._assign_ids = assign_ids
        self._records: list[RawRecord] = []
        self._first_at = 0.0
        self._lock = asyncio.Lock()
        self._closing = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Records buffered and not yet handed to ``submit``."""
        return len(self._records)

    @property
    def idle(self) -> bool:
        """Nothing buffered and no submit in progress."""
        return not self._records and not self._lock.locked()

    async def add(self, record: RawRecord, received: float | None = None) -> None:
        """Buffer a record (``received``: epoch seconds it arrived, default now)."""
        if not self._records:
            self._first_at = time.time() if received is None else received
            if self._timer is None and self.max_delay > 0:
                self._timer = asyncio.get_running_loop().call_later(self.max_delay, self._on_timer)
        self._records.append(record)
        if len(self._records) >= self.max_records or self.max_delay <= 0:
            await self.flush()

    async def flush(self) -> None:
        """Submit what is buffered (serialised with any flush in progress)."""
        async with self._lock:
            self._cancel_timer()
            if not self._records:
                return
            records, self._records = self._records, []
            origin = dataclasses.replace(self._origin, received=self._first_at)
            ids = unique_ids(len(records)) if self._assign_ids else None
            await self._deliver(Batch(origin=origin, records=records, ids=ids))
            if self._records and self._timer is None and self.max_delay > 0:
                # Records added while we were submitting get their own deadline.
                self._timer = asyncio.get_running_loop().call_later(self.max_delay, self._on_timer)

    async def close(self) -> None:
        """Flush what is buffered; from now on a failing submit drops instead of
        retrying, so a stop cannot hang on a broken pipeline."""
        self._closing.set()
        if self._timer_tasks:
            await asyncio.gather(*self._timer_tasks, return_exceptions=True)
        await self.flush()

    def cancel(self) -> None:
        """Abrupt stop: forget the timer and any timer-driven flush in progress."""
        self._cancel_timer()
        for task in self._timer_tasks:
            task.cancel()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._timer_tasks.add(task)
        task.add_done_callback(self._timer_tasks.discard)

    async def _deliver(self, batch: Batch) -> None:
        delay = _RETRY_FIRST
        while True:
            try:
                await self._submit(batch)
            except Exception as exc:
                self._stats.errors += 1
                if self._closing.is_set():
                    self._stats.dropped += len(batch)
                    log.exception("%s: submit failed while stopping; %d records dropped",
                                  batch.origin.source, len(batch))
                    return
                # Backpressure is expected and already reported by whoever applies it:
                # one line, no traceback every few seconds.
                log.warning("%s: submit failed, retrying in %.1fs: %s", batch.origin.source, delay, exc,
                            exc_info=not isinstance(exc, Backpressure))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), timeout=delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            self._stats.batches += 1
            return

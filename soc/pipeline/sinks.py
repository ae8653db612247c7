"""Where events go: the event store, an NDJSON archive. Each sink is wrapped in a
disk spool so that a sink outage costs latency, never events."""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from collectors.event import Event
from soc.pipeline.alarm import SpoolAlarm
from soc.pipeline.metrics import SpoolReading
from soc.pipeline.spool import DiskSpool, SpoolFull, encode_batch
from soc.store.base import EventStore


class Sink(ABC):
    name: str

    @abstractmethod
    def write(self, events: Sequence[Event]) -> int:
        """Write durably; return how many events were new. Raise on failure."""

    def encode(self, events: Sequence[Event]) -> Any:
        """Serialise a slice early, while its events are still in the CPU cache."""
        return list(events)

    def write_encoded(self, parts: Sequence[Any]) -> int:
        """Write the encoded slices of one batch durably, in one step."""
        return self.write([event for part in parts for event in part])

    def close(self) -> None:  # noqa: B027 - optional hook, most have nothing to release
        """Release resources."""


class StoreSink(Sink):
    def __init__(self, name: str, store: EventStore) -> None:
        self.name = name
        self.store = store

    def write(self, events: Sequence[Event]) -> int:
        return self.store.write(events)

    def encode(self, events: Sequence[Event]) -> Any:
        return self.store.encode(events)

    def write_encoded(self, parts: Sequence[Any]) -> int:
        return self.store.write_encoded(parts)


class FileSink(Sink):
    """Appends events as NDJSON (an archive, or a hand-off to another tool)."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "ab")  # noqa: SIM115 (kept open for the life of the sink)
        self._lock = threading.Lock()

    def write(self, events: Sequence[Event]) -> int:
        return self.write_encoded([self.encode(events)])

    def encode(self, events: Sequence[Event]) -> Any:
        return [orjson.dumps(e) + b"\n" for e in events]

    def write_encoded(self, parts: Sequence[Any]) -> int:
        lines = [line for part in parts for line in part]
        body = b"".join(lines)
        with self._lock:
            self._fh.write(body)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        return len(lines)

    def close(self) -> None:
        self._fh.close()


@dataclass(slots=True)
class SinkOutcome:
    stored: int = 0
    spooled: int = 0


class SpoolingSink:
    """A sink plus its disk spool: a failed write goes to the spool (durably), and
    spooled batches are replayed, oldest first, once the sink works again.

    When the spool refuses a batch (:class:`SpoolFull`, quota reached) the error
    propagates: the batch is not acknowledged and its source backs off. The
    :class:`SpoolAlarm` hears of every append, refusal and replay."""

    def __init__(self, sink: Sink, spool: DiskSpool, replay_interval: float = 10.0, *,
                 alarm: SpoolAlarm | None = None) -> None:
        self.sink = sink
        self.spool = spool
        self.replay_interval = replay_interval
        self.alarm = alarm if alarm is not None else SpoolAlarm(sink.name, spool)
        self.last_error: str | None = None
        self._pending = spool.pending_segments() > 0
        self._last_attempt = 0.0

    @property
    def name(self) -> str:
        return self.sink.name

    @property
    def pending(self) -> bool:
        """Older batches wait in the spool: a new batch will be spooled behind them."""
        return self._pending

    def encode(self, events: Sequence[Event]) -> Any:
        return self.sink.encode(events)

    def prepare(self) -> None:
        """Replay the spool if it is time to (before a batch is written)."""
        if self._pending and time.monotonic() - self._last_attempt >= self.replay_interval:
            self.replay()

    def ensure_room(self, n_bytes: int) -> None:
        """Raise :class:`SpoolFull` (and sound the alarm) unless the spool could take
        a batch of ``n_bytes`` now — the pipeline asks every sink before writing."""
        try:
            self.spool.ensure_room(n_bytes)
        except SpoolFull as exc:
            self.alarm.refuse(self.last_error)
            raise exc.for_sink(self.name, self.last_error) from None

    def ensure_open(self) -> None:
        """Raise :class:`SpoolFull` while the spool is full: it refused a batch and no
        replay has drained it since (a batch that might still fit is refused too)."""
        if self.alarm.refusing:
            self.alarm.refuse(self.last_error)
            raise self.spool.full_error(None).for_sink(self.name, self.last_error)

    def write(self, events: Sequence[Event], encoded: Sequence[Any] | None = None, *,
              spool_body: bytes | None = None, prepared: bool = False) -> SinkOutcome:
        """Write a batch (``encoded``: its slices as :meth:`encode` returned them;
        ``spool_body``: the batch as :func:`encode_batch` gives it, if already made;
        ``prepared``: :meth:`prepare` was just called). Raises :class:`SpoolFull` when
        the batch had to be spooled and could not be."""
        if not prepared:
            self.prepare()
        if self._pending:
            # Keep order: while older batches wait in the spool, new ones queue behind them.
            self._spool(events, spool_body)
            return SinkOutcome(spooled=len(events))
        try:
            stored = self.sink.write(events) if encoded is None else self.sink.write_encoded(encoded)
        except Exception as exc:  # any sink failure: the batch must still be kept
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._last_attempt = time.monotonic()
            self._spool(events, spool_body)
            self._pending = True
            return SinkOutcome(spooled=len(events))
        self.last_error = None
        if self.alarm.state != "ok":
            self.alarm.sink_recovered()
        return SinkOutcome(stored=stored)

    def _spool(self, events: Sequence[Event], body: bytes | None) -> None:
        try:
            self.spool.append_encoded(body if body is not None else encode_batch(events))
        except SpoolFull as exc:
            self.alarm.refuse(self.last_error)
            raise exc.for_sink(self.name, self.last_error) from None
        self.alarm.check(self.last_error)

    def replay(self) -> int:
        """Try to drain the spool; returns events replayed (0 if the sink still fails)."""
        self._last_attempt = time.monotonic()
        try:
            replayed = self.spool.replay(self.sink.write)
        except Exception as exc:  # still down: try again after the interval
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.alarm.check(self.last_error)
            return 0
        self._pending = self.spool.pending_segments() > 0
        self.last_error = None
        self.alarm.check(self.last_error)
        return replayed

    def reading(self) -> SpoolReading:
        """The spool's gauges and counters for ``/metrics``."""
        return SpoolReading(bytes=self.spool.pending_bytes(), max_bytes=self.spool.max_bytes,
                            fill_ratio=self.spool.fill_ratio(), segments=self.spool.pending_segments(),
                            alarm=self.alarm.level, refused=self.alarm.refused,
                            transitions=dict(self.alarm.transitions))

    def close(self) -> None:
        self.sink.close()

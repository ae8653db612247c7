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
from soc.pipeline.spool import DiskSpool
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
    spooled batches are replayed, oldest first, once the sink works again."""

    def __init__(self, sink: Sink, spool: DiskSpool, replay_interval: float = 10.0) -> None:
        self.sink = sink
        self.spool = spool
        self.replay_interval = replay_interval
        self.last_error: str | None = None
        self._pending = spool.pending_segments() > 0
        self._last_attempt = 0.0

    @property
    def name(self) -> str:
        return self.sink.name

    def encode(self, events: Sequence[Event]) -> Any:
        return self.sink.encode(events)

    def write(self, events: Sequence[Event], encoded: Sequence[Any] | None = None) -> SinkOutcome:
        """Write a batch (``encoded``: its slices as :meth:`encode` returned them)."""
        if self._pending and time.monotonic() - self._last_attempt >= self.replay_interval:
            self.replay()
        if self._pending:
            # Keep order: while older batches wait in the spool, new ones queue behind them.
            self.spool.append(events)
            return SinkOutcome(spooled=len(events))
        try:
            stored = self.sink.write(events) if encoded is None else self.sink.write_encoded(encoded)
        except Exception as exc:  # any sink failure: the batch must still be kept
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.spool.append(events)
            self._pending = True
            self._last_attempt = time.monotonic()
            return SinkOutcome(spooled=len(events))
        self.last_error = None
        return SinkOutcome(stored=stored)

    def replay(self) -> int:
        """Try to drain the spool; returns events replayed (0 if the sink still fails)."""
        self._last_attempt = time.monotonic()
        try:
            replayed = self.spool.replay(self.sink.write)
        except Exception as exc:  # still down: try again after the interval
            self.last_error = f"{type(exc).__name__}: {exc}"
            return 0
        self._pending = self.spool.pending_segments() > 0
        self.last_error = None
        return replayed

    def close(self) -> None:
        self.sink.close()

"""A disk spool for batches a sink could not take: an outage costs latency, not data.

Each batch becomes one segment file (NDJSON, fsynced before the batch is
acknowledged); replay feeds segments back in order and deletes each one only
after the sink took it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from collectors.event import Event


class DiskSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        existing = self._segments()
        self._next = int(existing[-1].stem) + 1 if existing else 0

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob("*.ndjson"), key=lambda p: int(p.stem))

    def append(self, events: Sequence[Event]) -> None:
        body = b"".join(orjson.dumps(e) + b"\n" for e in events)
        with self._lock:
            path = self.directory / f"{self._next:012d}.ndjson"
            self._next += 1
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_dir(self.directory)

    def pending_segments(self) -> int:
        return len(self._segments())

    def pending_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._segments())

    def replay(self, write: Callable[[list[Event]], object]) -> int:
        """Feed spooled batches to ``write`` oldest first; stop at the first failure
        (the exception propagates and the segment stays). Returns events replayed."""
        replayed = 0
        with self._lock:
            for path in self._segments():
                events = [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
                write(events)
                path.unlink()
                replayed += len(events)
        return replayed


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

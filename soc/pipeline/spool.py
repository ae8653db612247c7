"""A disk spool for batches a sink could not take: an outage costs latency, not data.

Each batch becomes one segment file (NDJSON, fsynced before the batch is
acknowledged); replay feeds segments back in order and deletes each one only
after the sink took it.

The spool has a quota (``max_bytes``): a batch that would take it past the quota is
refused with :class:`SpoolFull` and nothing is written. The caller must then not
acknowledge the batch, so the source keeps it and backs off (a file is re-read, a
TCP sender is slowed down) until the sink works again. The size is tracked in
memory (measured once at open, then updated by appends and replays), so asking
how full the spool is costs nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from collectors.event import Event
from collectors.sources.base import Backpressure

log = logging.getLogger("soc.pipeline.spool")

_SUFFIX = ".ndjson"


def format_bytes(n: float) -> str:
    """``1536`` → ``1.5 KiB``: sizes as people read them in logs and alerts."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover - the loop always returns


class SpoolFull(Backpressure, RuntimeError):
    """The spool refused a batch: taking it would exceed the quota. Nothing was
    written; the batch must not be acknowledged."""

    def __init__(self, directory: Path, max_bytes: int, pending_bytes: int, needed_bytes: int | None,
                 sink: str | None = None, last_error: str | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.pending_bytes = pending_bytes
        self.needed_bytes = needed_bytes
        self.sink = sink
        self.last_error = last_error
        super().__init__(self._message())

    def _message(self) -> str:
        used, quota = format_bytes(self.pending_bytes), format_bytes(self.max_bytes)
        who_vi = f" của sink {self.sink}" if self.sink else ""
        who_en = f" of sink {self.sink}" if self.sink else ""
        cause = f" ({self.last_error})" if self.last_error else ""
        if self.needed_bytes is None:
            why_vi, why_en = "chưa giải phóng được từ lần từ chối trước", "nothing drained since it last refused"
        else:
            need = format_bytes(self.needed_bytes)
            why_vi, why_en = f"thêm lô {need} sẽ vượt hạn mức", f"a {need} batch would exceed the quota"
        return (f"spool{who_vi} đầy{cause}: {used} đang chờ, hạn mức {quota} tại {self.directory}, {why_vi}; "
                f"lô không được nhận, nguồn sẽ gửi lại sau / "
                f"spool{who_en} is full{cause}: {used} pending, quota {quota} at {self.directory}, {why_en}; "
                f"the batch is not acknowledged, the source will resend it")

    def for_sink(self, sink: str, last_error: str | None) -> SpoolFull:
        """The same refusal, naming the sink and why it needed its spool."""
        return SpoolFull(self.directory, self.max_bytes, self.pending_bytes, self.needed_bytes, sink, last_error)


def encode_batch(events: Sequence[Event]) -> bytes:
    """The bytes a batch takes in the spool (one JSON object per line)."""
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


class DiskSpool:
    """Segments ``<n>.ndjson`` in ``directory``, ``n`` increasing: the order of batches.

    Thread-safe. Appends are serialised; a replay holds the append lock only to
    pick the next segment and to forget it, never while the sink writes, so a slow
    sink does not stall appends. Only one replay runs at a time."""

    def __init__(self, directory: Path, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError("max_bytes must be > 0 (or None for no quota)")
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._replay_lock = threading.Lock()
        # A leftover .tmp is an append that crashed before its batch was
        # acknowledged: the source still has those records.
        for tmp in directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        found = sorted((int(p.stem), p.stat().st_size) for p in directory.glob(f"*{_SUFFIX}") if p.stem.isdigit())
        self._segments: deque[tuple[int, int]] = deque(found)
        """(number, size in bytes) of every pending segment, oldest first."""
        self._bytes = sum(size for _, size in found)
        self._next = found[-1][0] + 1 if found else 0

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}{_SUFFIX}"

    # -- size ---------------------------------------------------------------------
    def pending_segments(self) -> int:
        return len(self._segments)

    def pending_bytes(self) -> int:
        return self._bytes

    def fill_ratio(self) -> float:
        """Pending bytes / quota (0.0 without a quota; may pass 1.0 only if the
        quota was lowered while the spool held more)."""
        return self._bytes / self.max_bytes if self.max_bytes else 0.0

    def can_take(self, n_bytes: int) -> bool:
        """Whether a batch of ``n_bytes`` (see :func:`encode_batch`) fits the quota now."""
        return self.max_bytes is None or self._bytes + n_bytes <= self.max_bytes

    def ensure_room(self, n_bytes: int) -> None:
        """Raise :class:`SpoolFull` unless a batch of ``n_bytes`` fits the quota now."""
        if not self.can_take(n_bytes):
            raise self.full_error(n_bytes)

    def full_error(self, n_bytes: int | None) -> SpoolFull:
        """The refusal of a batch of ``n_bytes`` (``None``: refused without a size)."""
        return SpoolFull(self.directory, self.max_bytes or 0, self._bytes, n_bytes)

    # -- writing ------------------------------------------------------------------
    def append(self, events: Sequence[Event]) -> int:
        """Spool a batch durably; returns the bytes written. Raises :class:`SpoolFull`
        (and writes nothing) when the batch does not fit the quota."""
        return self.append_encoded(encode_batch(events))

    def append_encoded(self, body: bytes) -> int:
        """:meth:`append` for a batch already passed through :func:`encode_batch`."""
        with self._lock:
            if not self.can_take(len(body)):
                raise self.full_error(len(body))
            number = self._next
            path = self._path(number)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_dir(self.directory)
            self._next += 1
            self._segments.append((number, len(body)))
            self._bytes += len(body)
        return len(body)

    def replay(self, write: Callable[[list[Event]], object]) -> int:
        """Feed spooled batches to ``write`` oldest first; stop at the first failure
        (the exception propagates and the segment stays). Returns events replayed.

        Only the segments present when the replay starts are fed: batches appended
        meanwhile come after them (order holds) and wait for the next replay, so a
        replay ends even while appends keep coming."""
        replayed = 0
        with self._replay_lock:
            with self._lock:
                last = self._next - 1
            while True:
                with self._lock:
                    if not self._segments or self._segments[0][0] > last:
                        return replayed
                    number, size = self._segments[0]
                path = self._path(number)
                events = self._read(path)
                if events:
                    write(events)
                path.unlink(missing_ok=True)
                with self._lock:
                    # Only a replay removes segments, and replays are serialised:
                    # the head is still the segment just written.
                    self._segments.popleft()
                    self._bytes -= size
                replayed += len(events)

    def _read(self, path: Path) -> list[Event]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            return [orjson.loads(line) for line in data.splitlines() if line]
        except orjson.JSONDecodeError:
            # A damaged segment (disk fault) must not stall every later batch behind
            # it forever: set it aside for a person to look at.
            aside = path.with_suffix(".corrupt")
            os.replace(path, aside)
            log.error("segment spool hỏng, đã chuyển sang %s / damaged spool segment moved to %s", aside, aside)
            return []


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Follow log files with checkpoints, in the manner of Filebeat or Vector's file source.

* **Discovery**: ``include`` globs (``**`` allowed) are rescanned every
  ``glob_interval``; ``exclude`` globs are matched against the full path and, for
  patterns without ``/``, against the file name.
* **Reading**: files are polled (``os.fstat``/``os.pread``) every
  ``poll_interval``, which works on every filesystem, unlike inotify. Lines end at
  ``\\n`` (a trailing ``\\r`` is stripped); blank lines are skipped. A last line
  without its newline is held until it is completed, or until the file has been
  idle for ``partial_line_timeout`` — then it is emitted as it is, and whatever is
  appended later starts a new record. Lines longer than ``max_line_bytes`` are
  split into several records (counted in ``stats.truncated``), never dropped.
* **Rotation**: a file is followed by its open descriptor, so after a rename the
  old file is read to its end before the new file at the same path is read
  (rename + create). A file that shrank, or whose first bytes changed, was
  truncated in place (copytruncate) and is read again from offset 0 under a new
  identity.
* **Checkpoints**: one JSON file, replaced atomically (temp + fsync + rename),
  keyed by file identity: device + inode, verified by a fingerprint of the first
  256 bytes so that a reused inode is not mistaken for the old file. An offset is
  written only after ``submit`` returned for the batch that ends there, so a
  restart neither loses nor repeats an acknowledged line. A failed ``submit``
  rewinds the file to its checkpoint and retries after a backoff.
* **Ids**: ``stable_id("file", identity, line start offset)``; the identity is
  persisted before any of its ids are submitted, so a line redelivered after a
  crash has the same id and the store ignores the duplicate.
* ``read_from="end"`` skips the existing content only of files present at startup
  that have no checkpoint and whose path was not followed before; files that
  appear later (a rotation's new file) are always read from the beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import glob
import gzip
import hashlib
import io
import json
import logging
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from collectors.batch import Batch, Origin, RawRecord
from collectors.event import stable_id, stable_id_factory
from collectors.sources.base import Source, SourceStats, Submit, decode_text, utf8_boundary

log = logging.getLogger(__name__)

ReadFrom = Literal["beginning", "end"]

FINGERPRINT_BYTES = 256
MAX_LINE_BYTES = 1024 * 1024
CHECKPOINT_VERSION = 1
_CHUNK = 256 * 1024
_PASS_BYTES = 8 * 1024 * 1024  # per file and poll pass, so one busy file cannot starve others
_RETRY_FIRST = 0.25
_RETRY_MAX = 30.0

Line = tuple[bytes, int, int, bool]
"""Raw line without its terminator, start offset, end offset (after the
terminator), and whether it is a piece of a longer line."""


class LineSplitter:
    """Splits a byte stream into lines, tracking byte offsets; holds the
    unterminated rest. A line over ``max_line_bytes`` comes out in pieces cut on
    UTF-8 character boundaries."""

    def __init__(self, offset: int = 0, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.offset = offset
        """Offset of the first held byte (the start of the unterminated line)."""
        self.held = b""
        self.max_line_bytes = max(4, max_line_bytes)

    @property
    def end(self) -> int:
        """Offset just after the last byte fed."""
        return self.offset + len(self.held)

    def reset(self, offset: int) -> None:
        self.offset = offset
        self.held = b""

    def feed(self, chunk: bytes) -> list[Line]:
        data = self.held + chunk if self.held else chunk
        base = self.offset
        out: list[Line] = []
        start = 0
        while (nl := data.find(b"\n", start)) >= 0:
            self._line(data[start:nl], base + start, base + nl + 1, out)
            start = nl + 1
        limit = self.max_line_bytes
        while len(data) - start > limit:
            cut = utf8_boundary(data[start : start + limit + 4], limit)
            out.append((data[start : start + cut], base + start, base + start + cut, True))
            start += cut
        self.held = data[start:]
        self.offset = base + start
        return out

    def take_held(self) -> list[Line]:
        """Emit the unterminated rest as a line."""
        out: list[Line] = []
        if self.held:
            self._line(self.held, self.offset, self.end, out)
            self.reset(self.end)
        return out

    def _line(self, raw: bytes, start: int, end: int, out: list[Line]) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        limit = self.max_line_bytes
        while len(raw) > limit:
            cut = utf8_boundary(raw[: limit + 4], limit)
            out.append((raw[:cut], start, start + cut, True))
            raw = raw[cut:]
            start += cut
        out.append((raw, start, end, False))


def _fingerprint(fd: int, length: int) -> str:
    return hashlib.blake2b(os.pread(fd, length, 0), digest_size=16).hexdigest()


@dataclass(slots=True)
class _Entry:
    """A file's checkpoint."""

    dev: int
    ino: int
    path: str
    offset: int
    id: str | None = None
    fp: str | None = None
    fp_len: int = 0
    generation: int = 0

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> _Entry:
        return cls(dev=int(raw["dev"]), ino=int(raw["ino"]), path=str(raw["path"]),
                   offset=int(raw["offset"]), id=raw.get("id"), fp=raw.get("fp"),
                   fp_len=int(raw.get("fp_len", 0)), generation=int(raw.get("generation", 0)))


@dataclass(slots=True)
class _Pending:
    text: str
    start: int
    end: int


@dataclass(slots=True)
class _Tracked:
    """A file being followed through its open descriptor."""

    fd: int
    dev: int
    ino: int
    path: str
    splitter: LineSplitter
    acked: int
    """Offset covered by the checkpoint (everything before it was acknowledged)."""
    consumed: int
    """End of the last line split off, blank lines included."""
    id: str | None = None
    """Identity in the ids; ``None`` until the file has content to fingerprint."""
    fp: str | None = None
    fp_len: int = 0
    generation: int = 0
    """How many truncations were seen; part of the identity."""
    pending: list[_Pending] = field(default_factory=list)
    seen_size: int = -1
    last_data: float = 0.0
    at_eof: bool = False
    gone: bool = False
    """The path no longer leads to this file (renamed away or deleted)."""
    rotated_from: str | None = None
    failures: int = 0
    retry_at: float = 0.0

    @property
    def key(self) -> tuple[int, int]:
        return (self.dev, self.ino)

    @property
    def pos(self) -> int:
        return self.splitter.end

    def entry(self) -> _Entry:
        return _Entry(dev=self.dev, ino=self.ino, path=self.path, offset=self.acked, id=self.id,
                      fp=self.fp, fp_len=self.fp_len, generation=self.generation)


class FileTailSource(Source):
    """Follows the files matching ``include`` (minus ``exclude``); see the module
    docstring for rotation, checkpoints and ids.

    ``run`` loads the checkpoint, scans, then polls until cancelled or
    :meth:`stop`; ``stop`` lets the current pass finish (its lines are submitted
    and checkpointed) and waits for ``run`` to return.
    """

    def __init__(
        self,
        name: str,
        include: list[str],
        *,
        checkpoint_path: str | os.PathLike[str],
        exclude: list[str] | None = None,
        format: str | None = None,
        system_id: str | None = None,
        read_from: ReadFrom = "beginning",
        poll_interval: float = 0.25,
        glob_interval: float = 2.0,
        partial_line_timeout: float = 5.0,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_records: int = 1000,
    ) -> None:
        if read_from not in ("beginning", "end"):
            raise ValueError(f"read_from must be beginning or end, not {read_from!r}")
        self.name = name
        self.include = list(include)
        self.exclude = list(exclude or [])
        self.checkpoint_path = Path(checkpoint_path)
        self.format = format
        self.system_id = system_id
        self.read_from: ReadFrom = read_from
        self.poll_interval = poll_interval
        self.glob_interval = glob_interval
        self.partial_line_timeout = partial_line_timeout
        self.max_line_bytes = max_line_bytes
        self.max_records = max(1, max_records)
        self.stats = SourceStats()
        self._files: dict[tuple[int, int], _Tracked] = {}
        self._known: dict[tuple[int, int], _Entry] = {}
        self._known_paths: set[str] = set()
        self._unreadable: set[str] = set()
        self._dirty = False
        self._stopping = asyncio.Event()
        self._done = asyncio.Event()
        self._running = False

    # --- lifecycle ----------------------------------------------------------------

    async def run(self, submit: Submit) -> None:
        self._running = True
        try:
            self._load()
            self._scan(initial=True)
            self._save_if_dirty()
            next_scan = time.monotonic() + self.glob_interval
            while not self._stopping.is_set():
                if time.monotonic() >= next_scan:
                    self._scan(initial=False)
                    next_scan = time.monotonic() + self.glob_interval
                self._check_paths()
                for tracked in list(self._files.values()):
                    await self._service(tracked, submit)
                self._retire()
                self._save_if_dirty()
                self.stats.active = len(self._files)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_interval)
        finally:
            # Offsets only ever advance after an acknowledgement, so saving here
            # is safe even when we were cancelled mid-submit.
            self._save_if_dirty()
            for tracked in self._files.values():
                with contextlib.suppress(OSError):
                    os.close(tracked.fd)
            self._files.clear()
            self.stats.active = 0
            self._running = False
            self._done.set()

    async def stop(self) -> None:
        self._stopping.set()
        if self._running:
            await self._done.wait()

    # --- discovery and rotation ---------------------------------------------------

    def _excluded(self, path: str) -> bool:
        name = os.path.basename(path)
        for pattern in self.exclude:
            if fnmatch.fnmatch(path, pattern):
                return True
            if os.sep not in pattern and "/" not in pattern and fnmatch.fnmatch(name, pattern):
                return True
        return False

    def _scan(self, *, initial: bool) -> None:
        paths: set[str] = set()
        # A broad glob must not make us follow our own checkpoint file.
        own = {str(self.checkpoint_path.absolute()), str(self.checkpoint_path.absolute()) + ".tmp"}
        for pattern in self.include:
            for found in glob.glob(os.path.expanduser(pattern), recursive=True):
                path = os.path.abspath(found)
                if not self._excluded(path) and path not in own:
                    paths.add(path)
        for path in sorted(paths):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            tracked = self._files.get((st.st_dev, st.st_ino))
            if tracked is None:
                self._open(path, initial=initial)
            elif tracked.path != path:
                # Renamed to another matching name (app.log -> app.log.1): same file.
                tracked.path = path
                tracked.gone = False
                self._dirty = True

    def _check_paths(self) -> None:
        """Notice a rename or delete at once (cheaper than waiting for the next
        glob scan) and start on the file that replaced it."""
        for tracked in list(self._files.values()):
            if tracked.gone:
                continue
            try:
                st: os.stat_result | None = os.stat(tracked.path)
            except FileNotFoundError:
                st = None
            except OSError:
                continue
            if st is not None and (st.st_dev, st.st_ino) == tracked.key:
                continue
            tracked.gone = True
            tracked.rotated_from = tracked.path
            log.info("%s: %s was rotated or removed; reading the old file to its end",
                     self.name, tracked.path)
            if st is not None and stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in self._files:
                self._open(tracked.path, initial=False)

    def _open(self, path: str, *, initial: bool) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            if path not in self._unreadable:
                self._unreadable.add(path)
                self.stats.errors += 1
                log.warning("%s: cannot open %s: %s", self.name, path, exc)
            return
        self._unreadable.discard(path)
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if key in self._files:
            os.close(fd)
            return
        size = st.st_size
        start, ident, fp, fp_len, generation = 0, None, None, 0, 0
        entry = self._known.pop(key, None)
        if entry is not None:
            same = entry.fp is None or (size >= entry.fp_len and _fingerprint(fd, entry.fp_len) == entry.fp)
            if same and size >= entry.offset:
                start, ident, fp, fp_len, generation = (entry.offset, entry.id, entry.fp, entry.fp_len,
                                                        entry.generation)
            else:
                # Truncated or rewritten while we were not looking: all of it is new.
                generation = entry.generation + 1
        elif initial and self.read_from == "end" and path not in self._known_paths:
            start = size
        tracked = _Tracked(fd=fd, dev=st.st_dev, ino=st.st_ino, path=path,
                           splitter=LineSplitter(start, self.max_line_bytes), acked=start,
                           consumed=start, id=ident, fp=fp, fp_len=fp_len, generation=generation,
                           last_data=time.monotonic())
        if tracked.id is None and size > 0:
            self._register(tracked)
        self._files[key] = tracked
        self._dirty = True
        log.info("%s: following %s from offset %d", self.name, path, start)

    def _register(self, tracked: _Tracked) -> None:
        """Fix the file's identity from its first bytes (persisted before use)."""
        size = os.fstat(tracked.fd).st_size
        tracked.fp_len = min(FINGERPRINT_BYTES, size)
        tracked.fp = _fingerprint(tracked.fd, tracked.fp_len)
        suffix = f":{tracked.generation}" if tracked.generation else ""
        tracked.id = f"{tracked.dev}:{tracked.ino}:{tracked.fp}{suffix}"
        self._dirty = True

    def _rewritten(self, tracked: _Tracked, size: int) -> bool:
        """Whether the file shrank or its first bytes changed (copytruncate); also
        extends a short fingerprint as the file grows."""
        if size < tracked.pos:
            return True
        if tracked.fp is None or size == tracked.seen_size:
            return False
        if _fingerprint(tracked.fd, tracked.fp_len) != tracked.fp:
            return True
        if tracked.fp_len < FINGERPRINT_BYTES and size > tracked.fp_len:
            tracked.fp_len = min(FINGERPRINT_BYTES, size)
            tracked.fp = _fingerprint(tracked.fd, tracked.fp_len)
            self._dirty = True
        return False

    def _held_back(self, tracked: _Tracked) -> bool:
        """A new file waits until the file rotated away from its path is read out."""
        return any(other is not tracked and other.rotated_from == tracked.path and not other.at_eof
                   for other in self._files.values())

    def _retire(self) -> None:
        now = time.monotonic()
        for key, tracked in list(self._files.items()):
            if not (tracked.gone and tracked.at_eof and not tracked.splitter.held and not tracked.pending):
                continue
            # The writer may still append through its old descriptor for a moment.
            if now - tracked.last_data < self.partial_line_timeout or tracked.acked < tracked.consumed:
                continue
            del self._files[key]
            with contextlib.suppress(OSError):
                os.close(tracked.fd)
            self._known[key] = tracked.entry()
            self._dirty = True
            log.info("%s: finished rotated file %s", self.name, tracked.path)

    # --- reading and submitting -------------------------------------------------

    async def _service(self, tracked: _Tracked, submit: Submit) -> None:
        now = time.monotonic()
        if now < tracked.retry_at or self._held_back(tracked):
            return
        try:
            size = os.fstat(tracked.fd).st_size
            if self._rewritten(tracked, size):
                await self._restart_truncated(tracked, submit)
            tracked.seen_size = size
            budget = _PASS_BYTES
            while budget > 0:
                chunk = os.pread(tracked.fd, min(_CHUNK, budget), tracked.pos)
                if not chunk:
                    break
                budget -= len(chunk)
                self.stats.bytes += len(chunk)
                tracked.last_data = now
                self._add_lines(tracked, tracked.splitter.feed(chunk))
                while len(tracked.pending) >= self.max_records:
                    if not await self._flush(tracked, submit, self.max_records):
                        return
            tracked.at_eof = budget > 0
        except OSError as exc:
            self.stats.errors += 1
            log.warning("%s: reading %s failed: %s", self.name, tracked.path, exc)
            return
        if tracked.splitter.held and now - tracked.last_data >= self.partial_line_timeout:
            self._add_lines(tracked, tracked.splitter.take_held())
        if tracked.pending or tracked.consumed > tracked.acked:
            await self._flush(tracked, submit)

    def _add_lines(self, tracked: _Tracked, lines: list[Line]) -> None:
        for raw, start, end, piece in lines:
            tracked.consumed = end
            if piece:
                self.stats.truncated += 1
            if raw:
                tracked.pending.append(_Pending(decode_text(raw), start, end))
                self.stats.received += 1

    async def _restart_truncated(self, tracked: _Tracked, submit: Submit) -> None:
        log.info("%s: %s was truncated; reading it again from the start", self.name, tracked.path)
        # What was read before the truncation belongs to the old content and identity.
        self._add_lines(tracked, tracked.splitter.take_held())
        if tracked.pending:
            await self._flush(tracked, submit)
        tracked.generation += 1
        tracked.id = tracked.fp = None
        tracked.fp_len = 0
        tracked.pending.clear()
        tracked.splitter.reset(0)
        tracked.acked = tracked.consumed = 0
        tracked.seen_size = -1
        tracked.retry_at = 0.0
        self._dirty = True

    async def _flush(self, tracked: _Tracked, submit: Submit, limit: int | None = None) -> bool:
        """Submit pending lines; on acknowledgement advance and save the checkpoint."""
        lines = tracked.pending[:limit] if limit else list(tracked.pending)
        if not lines:  # only blank lines since the last batch
            tracked.acked = tracked.consumed
            self._dirty = True
            return True
        if tracked.id is None:
            self._register(tracked)
        self._save_if_dirty()  # the identity must be durable before its ids leave
        assert tracked.id is not None
        records: list[RawRecord] = [line.text for line in lines]
        batch = Batch(
            origin=Origin(source=self.name, kind="file", path=tracked.path, format=self.format,
                          system_id=self.system_id),
            records=records,
            ids=[stable_id("file", tracked.id, line.start) for line in lines],
            offsets=[line.end for line in lines],
        )
        try:
            await submit(batch)
        except Exception:
            self.stats.errors += 1
            tracked.failures += 1
            delay = min(_RETRY_MAX, _RETRY_FIRST * 2 ** (tracked.failures - 1))
            tracked.retry_at = time.monotonic() + delay
            log.warning("%s: submit failed for %s; re-reading from offset %d in %.1fs",
                        self.name, tracked.path, tracked.acked, delay, exc_info=True)
            self._rewind(tracked)
            return False
        tracked.failures = 0
        self.stats.batches += 1
        del tracked.pending[: len(lines)]
        tracked.acked = lines[-1].end if tracked.pending else tracked.consumed
        self._dirty = True
        self._save_if_dirty()
        return True

    def _rewind(self, tracked: _Tracked) -> None:
        tracked.pending.clear()
        tracked.splitter.reset(tracked.acked)
        tracked.consumed = tracked.acked
        tracked.at_eof = False

    # --- checkpoint file ------------------------------------------------------------

    def _load(self) -> None:
        try:
            raw = json.loads(self.checkpoint_path.read_bytes())
            entries = [_Entry.from_json(item) for item in raw.get("files", [])]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Starting over re-reads files, which is safe: their ids are stable.
            self.stats.errors += 1
            log.error("%s: unreadable checkpoint %s (%s); starting without it",
                      self.name, self.checkpoint_path, exc)
            return
        for entry in entries:
            self._known[(entry.dev, entry.ino)] = entry
            self._known_paths.add(entry.path)

    def _save_if_dirty(self) -> None:
        if not self._dirty:
            return
        doc = {
            "version": CHECKPOINT_VERSION,
            "source": self.name,
            "files": [dataclasses.asdict(t.entry()) for t in self._files.values()],
        }
        try:
            write_atomic(self.checkpoint_path, json.dumps(doc, indent=1).encode())
        except OSError as exc:
            # Keep going: a crash now only means redelivery with the same ids.
            self.stats.errors += 1
            log.error("%s: cannot write checkpoint %s: %s", self.name, self.checkpoint_path, exc)
            return
        self._dirty = False


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new
    content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # The rename itself is durable only once the directory is synced (POSIX).
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --- one-shot ingest ------------------------------------------------------------------

def _open_any(path: Path) -> io.BufferedIOBase:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def iter_file_batches(
    path: Path,
    *,
    batch_size: int = 2000,
    source: str = "cli",
    format: str | None = None,
    system_id: str | None = None,
) -> Iterator[Batch]:
    """Read a whole file (plain or gzip, detected by its magic bytes) once, as
    batches of at most ``batch_size`` lines, streaming.

    Ids are ``stable_id("file", <resolved path>, <line start offset>)`` (offsets in
    the decompressed stream), so ingesting the same file again does not duplicate
    events; ``offsets`` are the offsets after each line."""
    resolved = str(Path(path).resolve())
    batch_size = max(1, batch_size)
    records: list[RawRecord] = []
    ids: list[str] = []
    offsets: list[int] = []

    def batch() -> Batch:
        origin = Origin(source=source, kind="file", path=resolved, format=format, system_id=system_id)
        return Batch(origin=origin, records=records, ids=ids, offsets=offsets)

    make_id = stable_id_factory("file", resolved)
    splitter = LineSplitter(0, MAX_LINE_BYTES)
    with _open_any(Path(path)) as f:
        while True:
            chunk = f.read(_CHUNK)
            lines = splitter.feed(chunk) if chunk else splitter.take_held()
            for raw, start, end, _piece in lines:
                if not raw:
                    continue
                records.append(decode_text(raw))
                ids.append(make_id(start))
                offsets.append(end)
                if len(records) >= batch_size:
                    yield batch()
                    records, ids, offsets = [], [], []
            if not chunk:
                break
    if records:
        yield batch()

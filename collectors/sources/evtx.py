"""Windows ``.evtx`` files → batches of decoded event records.

The ``evtx`` package (a Rust parser) renders each record as JSON in the same shape
:class:`~collectors.parsers.windows.WindowsEventParser` reads. Records are handed
on as dicts; one that cannot be decoded, and each error the parser raises for a
damaged chunk, is handed on as text instead, so the dispatcher stores it as a
parse-failure event: a corrupt file loses nothing silently and never stops the read.

Ids are ``stable_id("evtx", <resolved path>, <EventRecordID>)``. EventRecordID is
unique within one log, and the path is what identifies that log across re-reads:
ingesting the same file again (a retry, a re-run of ``soc ingest``, a live log
exported again after it grew) reproduces the same ids, so records overwrite
themselves instead of duplicating. A content hash would change with every
appended record; the cost of the path is that a copy of the file elsewhere counts
as another log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from evtx import PyEvtxParser

from collectors.batch import Batch, Origin, RawRecord
from collectors.event import stable_id

EVTX_MAGIC = b"ElfFile\x00"
_MAX_CONSECUTIVE_ERRORS = 10_000
"""Guard against a parser that raises without advancing: a 100 MiB log has
~1,600 chunks, so this many errors in a row means nothing more can be read."""


@dataclass(slots=True)
class EvtxReadStats:
    """What one read of a file produced (pass one to :func:`iter_evtx_batches`)."""

    records: int = 0
    """Records decoded into objects."""
    undecodable: int = 0
    """Records whose JSON could not be decoded (passed on as text)."""
    errors: int = 0
    """Errors raised by the parser, typically one per damaged chunk (passed on as
    text)."""
    error_messages: list[str] = field(default_factory=list)
    """The first few error texts, for logs and the CLI."""

    _KEEP = 20

    def note_error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_messages) < self._KEEP:
            self.error_messages.append(message)


def is_evtx_file(path: str | Path) -> bool:
    """True when the file starts with the EVTX header magic ``ElfFile\\0``."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(EVTX_MAGIC)) == EVTX_MAGIC
    except OSError:
        return False


def _records(path: Path, identity: str, stats: EvtxReadStats) -> Iterator[tuple[str, RawRecord]]:
    """(id, record) pairs in file order, errors included as text records."""
    records: Iterator[Any] = iter(PyEvtxParser(str(path)).records_json())
    position = 0  # identifies an error record: it has no EventRecordID of its own
    consecutive = 0
    while True:
        position += 1
        try:
            item = next(records)
        except StopIteration:
            return
        except Exception as exc:  # the parser raises per damaged chunk and carries on
            message = f"evtx read error in {path}: {type(exc).__name__}: {exc}"
            stats.note_error(message)
            yield stable_id("evtx", identity, "error", position), message
            consecutive += 1
            if consecutive >= _MAX_CONSECUTIVE_ERRORS:
                stats.note_error(f"evtx read of {path} abandoned after {consecutive} consecutive errors")
                return
            continue
        consecutive = 0
        if not isinstance(item, dict):
            continue
        record_id = item.get("event_record_id")
        data = item.get("data", "")
        rid = stable_id("evtx", identity, record_id if isinstance(record_id, int) else f"pos:{position}")
        try:
            record = orjson.loads(data)
        except orjson.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            stats.records += 1
            yield rid, record
        else:
            stats.undecodable += 1
            yield rid, data if isinstance(data, str) else str(data)


def iter_evtx_batches(path: str | Path, *, batch_size: int = 1000, source: str = "evtx",
                      system_id: str | None = None, stats: EvtxReadStats | None = None) -> Iterator[Batch]:
    """Batches of the file's records (decoded dicts, or text for what could not be
    read), with idempotent ids. Raises ValueError for a file that is not EVTX."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    file = Path(path)
    if not is_evtx_file(file):
        raise ValueError(f"{file} is not an EVTX file (no ElfFile header)")
    identity = str(file.resolve())
    stats = stats if stats is not None else EvtxReadStats()
    records: list[RawRecord] = []
    ids: list[str] = []
    for rid, record in _records(file, identity, stats):
        records.append(record)
        ids.append(rid)
        if len(records) >= batch_size:
            yield _batch(file, source, system_id, records, ids)
            records, ids = [], []
    if records:
        yield _batch(file, source, system_id, records, ids)


def _batch(path: Path, source: str, system_id: str | None, records: list[RawRecord], ids: list[str]) -> Batch:
    origin = Origin(source=source, kind="evtx", path=str(path), format="windows", system_id=system_id,
                    received=time.time())
    return Batch(origin=origin, records=records, ids=ids)

"""Exporting the audit trail for an auditor: NDJSON or CSV, streamed.

Entries come oldest first, a page at a time (keyset on ``seq``, one short read per
page), so an export of any size runs in constant memory. Every line carries
``seq``, ``hash`` and ``prev_hash`` with the hashed fields exactly as hashed, so the
chain can be re-verified offline without the toolkit::

    import hashlib, json
    for line in open("audit.ndjson", encoding="utf-8"):
        entry = json.loads(line)
        fields = {k: v for k, v in entry.items() if k != "hash"}
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode()).hexdigest() == entry["hash"]
        # and entry["prev_hash"] == the previous line's hash, when the export is unfiltered

(The toolkit hashes with orjson, whose output is the same as that ``json.dumps``
except for floats in exponent notation, which audit entries do not hold.)

CSV has the same columns; ``before`` and ``after`` are JSON text, and an empty cell
is a null value (``actor_id`` of the service's own changes, ``before`` of a creation).
A filtered export keeps each line's hash checkable; the links between lines hold
only where consecutive ``seq`` numbers were exported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import func, select

from soc.audit.filters import AuditFilter
from soc.audit.models import AuditEntry
from soc.audit.trail import HASHED_FIELDS, hashed_fields
from soc.db import Database

FORMATS = ("ndjson", "csv")
COLUMNS = (*HASHED_FIELDS, "hash")
MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
_JSON_COLUMNS = ("before", "after")


def entry_dict(row: Any) -> dict[str, Any]:
    """One entry as exported and as the API lists it."""
    out = hashed_fields(row)
    out["hash"] = row.hash
    return out


def entries(db: Database, where: AuditFilter = AuditFilter(), *, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Matching entries, oldest first."""
    table = AuditEntry.__table__
    conditions = where.conditions()
    size = max(1, batch)
    last = 0
    while True:
        query = select(table).where(AuditEntry.seq > last, *conditions).order_by(AuditEntry.seq).limit(size)
        with db.read() as session:
            rows = session.execute(query).all()
        for row in rows:
            yield entry_dict(row)
        if len(rows) < size:
            return
        last = rows[-1].seq


def count(db: Database, where: AuditFilter = AuditFilter()) -> int:
    with db.read() as session:
        return int(session.execute(select(func.count()).select_from(AuditEntry)
                                   .where(*where.conditions())).scalar_one())


def ndjson_lines(db: Database, where: AuditFilter = AuditFilter(), *, batch: int = 1000) -> Iterator[bytes]:
    for entry in entries(db, where, batch=batch):
        yield orjson.dumps(entry) + b"\n"


def csv_lines(db: Database, where: AuditFilter = AuditFilter(), *, batch: int = 1000) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def take(row: list[Any]) -> bytes:
        writer.writerow(row)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    yield take(list(COLUMNS))
    for entry in entries(db, where, batch=batch):
        yield take([_cell(name, entry[name]) for name in COLUMNS])


def export_lines(db: Database, fmt: str, where: AuditFilter = AuditFilter(), *,
                 batch: int = 1000) -> Iterator[bytes]:
    """The export in ``fmt`` (one of :data:`FORMATS`), a line at a time (CSV: header first)."""
    if fmt == "ndjson":
        return ndjson_lines(db, where, batch=batch)
    if fmt == "csv":
        return csv_lines(db, where, batch=batch)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if name in _JSON_COLUMNS:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value

"""What sources hand to the pipeline: batches of raw records with their origin."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

RawRecord = str | dict[str, Any]
"""A raw text line, or an already-decoded structured record (EVTX, JSON ingest)."""


@dataclass(slots=True)
class Origin:
    """Where a batch came from; the same for every record of the batch."""

    source: str
    """Name of the source in the topology (``syslog_udp``, ``files``, ``cli`` …)."""
    kind: str
    """``syslog`` | ``file`` | ``http`` | ``evtx`` | ``cli``."""
    peer: str | None = None
    """IP address of the sending host (syslog, HTTP)."""
    path: str | None = None
    """File the records were read from."""
    format: str | None = None
    """Declared format name; ``None`` or ``auto`` means detect per record."""
    system_id: str | None = None
    """System named by an ingest key, a source's config or ``--system``."""
    received: float = field(default_factory=time.time)
    """Epoch seconds at which the source read the batch."""
    log_source: str | None = None
    """Log source of the system the records belong to (``POST /api/v1/ingest?source=``);
    ``None``: the service infers it from the records' format and the transport."""


@dataclass(slots=True)
class Batch:
    """Records from one origin, in arrival order."""

    origin: Origin
    records: list[RawRecord]
    ids: list[str] | None = None
    """Idempotent ids, one per record, when the source knows the record's identity
    (file path + offset, ingest request digest + index)."""
    offsets: list[int] | None = None
    """Byte offsets after each record (file sources), for checkpoints."""

    def __len__(self) -> int:
        return len(self.records)

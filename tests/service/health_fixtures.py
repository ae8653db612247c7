"""Systems, log sources and ingest keys for the source-health tests, and the activity
tracker wired into the real pipeline the way the service wires it.

Systems are written as rows (``SystemRow``, ``LogSourceRow``, ``IngestKeyRow``) and
the running registry is rebuilt from the database (as an API change does), so the
enrich stage attributes events to them exactly as in the service.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from collectors.batch import Batch, Origin, RawRecord
from soc.api.state import AppState
from soc.config import SocConfig
from soc.db import Database
from soc.inventory.activity import ActivityTracker
from soc.inventory.models import IngestKeyRow, LogSourceRow, SystemRow
from soc.inventory.registry import refresh
from soc.pipeline.build import Topology
from soc.systems import SystemRegistry, hash_secret
from tests.conftest import DATASETS

NGINX = DATASETS / "web" / "elastic-examples" / "apache_logs.part1"
"""Combined-format access log lines (nginx / Apache)."""
SSHD = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"
"""Syslog lines from sshd."""

T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
"""A Tuesday, 08:00 in Vietnam."""


def lines(path: Path, count: int) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [next(fh).rstrip("\n") for _ in range(count)]


@dataclass(frozen=True)
class Src:
    name: str
    format: str = "auto"
    transport: str = "any"
    expected_interval_s: int | None = None
    interval_mode: str = "manual"


def add_system(db: Database, registry: SystemRegistry, system_id: str, *, agency: str = "so-khcn",
               classification: int = 3, system_type: str = "other", hosts: Sequence[str] = (),
               cidrs: Sequence[str] = (), sources: Sequence[Src] = (), created_at: datetime = T0) -> None:
    with db.write() as session:
        session.add(SystemRow(id=system_id, name=f"Hệ thống {system_id}", type=system_type, agency_id=agency,
                              classification=classification, hosts=list(hosts), cidrs=list(cidrs),
                              created_at=created_at))
        session.flush()
        for src in sources:
            session.add(LogSourceRow(system_id=system_id, name=src.name, format=src.format, transport=src.transport,
                                     expected_interval_s=src.expected_interval_s, interval_mode=src.interval_mode,
                                     created_at=created_at))
    refresh(registry, db)


def add_key(db: Database, registry: SystemRegistry, system_id: str) -> str:
    """An ingest key of the system (the key itself; only its digest is stored)."""
    key = f"soc_ingest_{uuid.uuid4().hex}"
    digest = hash_secret(key)
    with db.write() as session:
        session.add(IngestKeyRow(id=str(uuid.uuid4()), system_id=system_id, digest=digest, prefix=key[:16],
                                 name="test"))
    refresh(registry, db)
    return key


def source_row(db: Database, system_id: str, name: str) -> LogSourceRow:
    with db.read() as session:
        row = session.scalars(select(LogSourceRow).where(LogSourceRow.system_id == system_id,
                                                         LogSourceRow.name == name)).one()
        session.expunge(row)
        return row


def system_row(db: Database, system_id: str) -> SystemRow:
    with db.read() as session:
        row = session.get(SystemRow, system_id)
        assert row is not None
        session.expunge(row)
        return row


def feed(topology: Topology, records: Sequence[RawRecord], *, at: datetime, kind: str = "file", peer: str | None = None,
         system_id: str | None = None, fmt: str | None = None, log_source: str | None = None) -> None:
    """One batch through the real pipeline, arriving at ``at``."""
    origin = Origin(source=f"test-{kind}", kind=kind, peer=peer, path="/var/log/test.log" if kind == "file" else None,
                    format=fmt, system_id=system_id, received=at.timestamp(), log_source=log_source)
    topology.pipeline.process(Batch(origin, list(records)))


@pytest.fixture
def tracker(topology: Topology, app_state: AppState, soc_config: SocConfig) -> ActivityTracker:
    """The activity tracker fed by the test pipeline and seen by the API, wired as the
    service wires it."""
    activity = ActivityTracker(learn_min_samples=soc_config.health.learn_min_samples)
    topology.pipeline.activity = activity
    app_state.activity = activity
    return activity

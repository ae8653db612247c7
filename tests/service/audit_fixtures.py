"""Helpers of the audit tests: appending entries, and tampering with the table the
way someone holding the database would (dropping the append-only triggers first)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from soc.audit.models import AuditEntry
from soc.audit.trail import Actor, record
from soc.db import Database

ANALYST = Actor("6f1c1d8e-0000-4000-8000-000000000001", "nguyenvana", "analyst", "10.20.1.15")


def append(db: Database, count: int, *, actor: Actor = ANALYST, action: str = "alert.update",
           target_type: str = "alert", agency_id: str | None = "xa-hy-cuong") -> list[int]:
    """``count`` entries in one transaction; returns their seq numbers."""
    seqs = []
    with db.write() as session:
        for i in range(count):
            entry = record(session, actor, action, target_type, f"{target_type}-{i}", agency_id=agency_id,
                           before={"status": "new", "note": "Cổng Dịch vụ công", "seen": datetime(2026, 11, 24,
                                                                                                  tzinfo=UTC)},
                           after={"status": "acknowledged", "tags": ["ssh", "brute-force"], "level": i})
            seqs.append(entry.seq)
    return seqs


def drop_guards(db: Database) -> None:
    """What an attacker with DDL rights does before rewriting history."""
    with db.write() as session:
        for trigger in ("audit_log_no_update", "audit_log_no_delete"):
            on = " ON audit_log" if db.dialect == "postgresql" else ""
            session.execute(text(f"DROP TRIGGER {trigger}{on}"))


def tamper(db: Database, sql: str, **params: Any) -> None:
    drop_guards(db)
    with db.write() as session:
        session.execute(text(sql), params)


def head(db: Database) -> tuple[int, str]:
    with db.read() as session:
        row = session.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
        return int(row[0]), str(row[1])


def stored(db: Database) -> list[AuditEntry]:
    with db.read() as session:
        return list(session.query(AuditEntry).order_by(AuditEntry.seq))

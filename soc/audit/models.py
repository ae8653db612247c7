"""The ``audit_log`` table and its chain head.

Append-only: each row stores the SHA-256 of the previous row's hash and its own
canonical content, so editing or deleting a row breaks every later link
(``soc audit verify`` finds the first). ``audit_head`` is one row holding the last
sequence number and hash; appenders lock it, which serialises the chain on
PostgreSQL as SQLite's write lock does.

Migration 0006 also installs triggers that refuse UPDATE and DELETE on
``audit_log``: rewriting history needs deliberate DDL first, and the chain still
shows it.

The schema is created by ``soc/migrations`` — a change here needs a new migration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from soc.db import Base, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                     primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[str | None] = mapped_column(String(36), default=None)
    actor_name: Mapped[str] = mapped_column(String(100))
    """Username, or ``system:<job>`` for the service's own changes."""
    actor_role: Mapped[str | None] = mapped_column(String(16), default=None)
    source_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    action: Mapped[str] = mapped_column(String(60))
    """``<resource>.<verb>``: alert.update, user.create, system.key.rotate …"""
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(100), default=None)
    agency_id: Mapped[str | None] = mapped_column(String(100), default=None)
    """Agency of the target (auditors see the entries of their scope)."""
    before: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_target", "target_type", "target_id"),
        Index("ix_audit_log_actor_name", "actor_name"),
        # A scoped reader pages by seq within a few agencies.
        Index("ix_audit_log_agency_seq", "agency_id", "seq"),
    )


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger(), default=0)
    hash: Mapped[str] = mapped_column(String(64))

"""Tables of the inventory: ``agencies``, ``systems``, ``log_sources``, ``ingest_keys``.

The database is the source of truth; ``config/systems/*.yaml`` is a seed imported
into it (see :mod:`soc.inventory.seed`). Ids are the stable slugs events carry in
``gov.agency.id`` and ``gov.system.id``: a rename changes the name, never the id, and a
merged agency keeps its row (``merged_into``) so history stays attributable.

The schema is created by ``soc/migrations`` — a change here needs a new migration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from soc.db import Base, utcnow


class AgencyRow(Base):
    __tablename__ = "agencies"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    level: Mapped[str] = mapped_column(String(16))
    """province | district | commune"""
    parent_id: Mapped[str | None] = mapped_column(String(100), default=None)
    """Not a foreign key: an imported tree may name a parent later in the same file."""
    former_names: Mapped[list[str]] = mapped_column(default=list)
    merged_into: Mapped[str | None] = mapped_column(String(100), default=None)
    """The agency that absorbed this one (2025 reorganisation); its users then see this
    agency's history too."""
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (Index("ix_agencies_parent_id", "parent_id"),)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "level": self.level, "parent": self.parent_id,
                "former_names": list(self.former_names), "merged_into": self.merged_into,
                "active": self.active, "version": self.version,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


class SystemRow(Base):
    __tablename__ = "systems"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    type: Mapped[str] = mapped_column(String(40), default="other")
    agency_id: Mapped[str] = mapped_column(String(100))
    level: Mapped[str | None] = mapped_column(String(16), default=None)
    """Administrative level; ``None`` means the agency's."""
    classification: Mapped[int]
    """Cấp độ an toàn hệ thống thông tin (1–5)."""
    owner: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Owner contact: ``name``, ``email``, ``phone``, ``unit``."""
    hosts: Mapped[list[str]] = mapped_column(default=list)
    cidrs: Mapped[list[str]] = mapped_column(default=list)
    profile: Mapped[str | None] = mapped_column(String(60), default=None)
    """Onboarding profile (``config/profiles/<name>.yaml``)."""
    first_log_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the first event of the system arrived: onboarding moves to "receiving"."""
    decommissioned_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __table_args__ = (Index("ix_systems_agency_id", "agency_id"),)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class LogSourceRow(Base):
    __tablename__ = "log_sources"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    system_id: Mapped[str] = mapped_column(String(100), ForeignKey("systems.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    format: Mapped[str] = mapped_column(String(40), default="auto")
    transport: Mapped[str] = mapped_column(String(20), default="any")
    """How it arrives: any | syslog | http | file | evtx | agent | elasticsearch."""
    expected_interval_s: Mapped[int | None] = mapped_column(default=None)
    """Set by hand: at most this long between two events (seconds)."""
    learned_interval_s: Mapped[int | None] = mapped_column(default=None)
    """Learned from the source's own arrival history."""
    interval_mode: Mapped[str] = mapped_column(String(10), default="manual")
    """manual | learned: which interval the silent-source check uses."""
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    events_total: Mapped[int] = mapped_column(BigInteger(), default=0)
    parse_failures_total: Mapped[int] = mapped_column(BigInteger(), default=0)
    silent_since: Mapped[datetime | None] = mapped_column(default=None)
    """Set while the source is silent (a ``source_silent`` alert is open)."""
    silent_alert_id: Mapped[str | None] = mapped_column(String(36), default=None)
    history: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Arrival statistics used to learn the interval (gaps between arrivals)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("system_id", "name", name="uq_log_sources_system_id_name"),)


class IngestKeyRow(Base):
    __tablename__ = "ingest_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    system_id: Mapped[str] = mapped_column(String(100), ForeignKey("systems.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(80), unique=True)
    """``sha256:<hex>`` of the key; the key itself is shown once and never stored."""
    prefix: Mapped[str] = mapped_column(String(24))
    """The key's first characters, to tell keys apart in a listing."""
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100), default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    """Set on the old key by a rotation: it keeps working until then (grace period)."""
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_ingest_keys_system_id", "system_id"),)

"""Ingest keys: how a system proves who it is when it sends logs.

A key (``soc_ingest_…``, 256 random bits) is shown once when created; the database
keeps its SHA-256 digest and first characters. Rotation issues a new key and lets
the old one work for a grace period so senders can be reconfigured without losing
logs; revocation stops a key at once. Every change is audited in the caller's
transaction; the caller then refreshes the running registry
(:func:`soc.inventory.registry.refresh`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc.audit.trail import Actor, record
from soc.db import utcnow
from soc.inventory.errors import InventoryError, not_found
from soc.inventory.models import IngestKeyRow, SystemRow
from soc.systems import hash_secret, new_secret

KEY_PREFIX = "soc_ingest"
SHOWN_PREFIX = len(KEY_PREFIX) + 6
"""Characters of a key kept in clear to tell keys apart (``soc_ingest_AbC12``)."""
DEFAULT_GRACE_HOURS = 24


def key_state(row: IngestKeyRow, now: datetime | None = None) -> str:
    """active | expiring (rotated, still in its grace period) | expired | revoked"""
    now = now or utcnow()
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None:
        return "expiring" if now < row.expires_at else "expired"
    return "active"


def key_view(row: IngestKeyRow, now: datetime | None = None) -> dict[str, Any]:
    """A key as listed: never the secret, which is not stored."""
    return {"id": row.id, "system_id": row.system_id, "name": row.name, "prefix": row.prefix,
            "state": key_state(row, now), "created_at": row.created_at.isoformat(), "created_by": row.created_by,
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
            "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None}


def _audit(row: IngestKeyRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "prefix": row.prefix, "expires_at": row.expires_at,
            "revoked_at": row.revoked_at}


def list_keys(session: Session, system_id: str) -> list[IngestKeyRow]:
    query = select(IngestKeyRow).where(IngestKeyRow.system_id == system_id).order_by(IngestKeyRow.created_at)
    return list(session.scalars(query))


def get_key(session: Session, system: SystemRow, key_id: str) -> IngestKeyRow:
    row = session.get(IngestKeyRow, key_id)
    if row is None or row.system_id != system.id:
        raise not_found("ingest key", key_id)
    return row


def _insert(session: Session, actor: Actor, system: SystemRow, name: str, expires_at: datetime | None,
            now: datetime) -> tuple[IngestKeyRow, str]:
    if system.decommissioned_at is not None:
        raise InventoryError("inventory.decommissioned", 409, id=system.id)
    if len(name) > 100:
        raise InventoryError("inventory.too_long", field="name", limit=100)
    secret = new_secret(KEY_PREFIX)
    row = IngestKeyRow(id=str(uuid.uuid4()), system_id=system.id, digest=hash_secret(secret),
                       prefix=secret[:SHOWN_PREFIX], name=name, created_at=now, created_by=actor.name,
                       expires_at=expires_at)
    session.add(row)
    session.flush()
    return row, secret


def create_key(session: Session, actor: Actor, system: SystemRow, name: str = "",
               expires_at: datetime | None = None, now: datetime | None = None) -> tuple[IngestKeyRow, str]:
    """A new key for ``system``; returns the row and the secret (show it once)."""
    row, secret = _insert(session, actor, system, name, expires_at, now or utcnow())
    record(session, actor, "system.key.create", "ingest_key", row.id, agency_id=system.agency_id,
           after={"system": system.id, **_audit(row)})
    return row, secret


def rotate_key(session: Session, actor: Actor, system: SystemRow, key_id: str,
               grace_hours: float = DEFAULT_GRACE_HOURS,
               now: datetime | None = None) -> tuple[IngestKeyRow, str, IngestKeyRow]:
    """A new key replacing ``key_id``, which keeps working ``grace_hours`` longer
    (0: stops now). Returns (new row, new secret, old row)."""
    now = now or utcnow()
    old = get_key(session, system, key_id)
    if key_state(old, now) in ("revoked", "expired"):
        raise InventoryError("inventory.key_inactive", 409, id=key_id)
    before = _audit(old)
    row, secret = _insert(session, actor, system, old.name, None, now)
    ends = now + timedelta(hours=max(grace_hours, 0))
    # A second rotation inside the grace period never extends the old key's life.
    old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    session.flush()
    record(session, actor, "system.key.rotate", "ingest_key", old.id, agency_id=system.agency_id,
           before=before, after={**_audit(old), "replaced_by": row.id, "grace_hours": grace_hours})
    return row, secret, old


def revoke_key(session: Session, actor: Actor, system: SystemRow, key_id: str,
               now: datetime | None = None) -> IngestKeyRow:
    """Stop ``key_id`` at once. Revoking a revoked key changes nothing."""
    row = get_key(session, system, key_id)
    if row.revoked_at is not None:
        return row
    before = _audit(row)
    row.revoked_at = now or utcnow()
    session.flush()
    record(session, actor, "system.key.revoke", "ingest_key", row.id, agency_id=system.agency_id,
           before=before, after=_audit(row))
    return row


def revoke_all(session: Session, system: SystemRow, now: datetime) -> list[str]:
    """Revoke every live key of ``system`` (decommissioning, audited by the caller)."""
    revoked: list[str] = []
    for row in list_keys(session, system.id):
        if row.revoked_at is None:
            row.revoked_at = now
            revoked.append(row.id)
    return revoked

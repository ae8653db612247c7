"""Appending to the audit trail.

Every state-changing action calls :func:`record` inside the transaction that makes
the change, so the change and its audit entry commit or fail together. The entry's
hash covers the previous entry's hash and the entry's canonical JSON (sorted keys,
UTC times), so :mod:`soc.audit.verify` can recompute the chain from the rows alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from soc.audit.models import AuditEntry, AuditHead
from soc.db import utcnow

if TYPE_CHECKING:
    from soc.identity.principal import Principal

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a user, or the service itself (``system:<job>``)."""

    id: str | None
    name: str
    role: str | None = None
    ip: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.user_id, principal.username, principal.role, principal.source_ip)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(None, f"system:{job}")


def jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO 8601 strings (what the JSON columns keep)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def canonical(entry: AuditEntry) -> bytes:
    """The bytes an entry's hash covers (everything but the hash itself)."""
    return orjson.dumps({
        "seq": entry.seq, "at": entry.at.isoformat(timespec="microseconds"), "actor_id": entry.actor_id,
        "actor_name": entry.actor_name, "actor_role": entry.actor_role, "source_ip": entry.source_ip,
        "action": entry.action, "target_type": entry.target_type, "target_id": entry.target_id,
        "agency_id": entry.agency_id, "before": entry.before, "after": entry.after, "prev_hash": entry.prev_hash,
    }, option=orjson.OPT_SORT_KEYS)


def entry_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def record(session: Session, actor: Actor, action: str, target_type: str, target_id: str | None = None, *,
           agency_id: str | None = None, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry in the caller's transaction (locks the chain head until commit)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    entry = AuditEntry(seq=head.seq + 1, at=utcnow(), actor_id=actor.id, actor_name=actor.name,
                       actor_role=actor.role, source_ip=actor.ip, action=action, target_type=target_type,
                       target_id=target_id, agency_id=agency_id,
                       before=jsonable(before) if before is not None else None,
                       after=jsonable(after) if after is not None else None, prev_hash=head.hash)
    entry.hash = entry_hash(entry)
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    return entry

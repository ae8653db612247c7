"""Appending to the audit trail.

Every state-changing action calls :func:`record` inside the transaction that makes
the change, so the change and its audit entry commit or fail together. The entry's
hash covers the previous entry's hash and the entry's canonical JSON (sorted keys,
UTC times), so :mod:`soc.audit.verify` can recompute the chain from the rows alone,
and an auditor from an export (:func:`fields_hash` over an exported line).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from soc.audit.models import AuditEntry, AuditHead
from soc.db import utcnow

if TYPE_CHECKING:
    from soc.identity.principal import Principal

GENESIS = "0" * 64
HASHED_FIELDS = ("seq", "at", "actor_id", "actor_name", "actor_role", "source_ip", "action", "target_type",
                 "target_id", "agency_id", "before", "after", "prev_hash")
"""What an entry's hash covers: every column but the hash itself."""


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
    """``value`` as the JSON columns keep it: times as ISO 8601 strings, enums as
    their values, sets as sorted lists, keys as strings. The hash is computed on this
    form, so it must survive the column's JSON round trip unchanged."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def hashed_fields(entry: AuditEntry | Row[Any]) -> dict[str, Any]:
    """The fields an entry's hash covers, as exported (``at`` as ISO 8601 with microseconds)."""
    fields = {name: getattr(entry, name) for name in HASHED_FIELDS}
    fields["at"] = entry.at.isoformat(timespec="microseconds")
    return fields


def fields_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of :data:`HASHED_FIELDS` taken from ``fields``
    (extra keys, such as ``hash``, are ignored)."""
    canonical = orjson.dumps({name: fields[name] for name in HASHED_FIELDS}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def canonical(entry: AuditEntry | Row[Any]) -> bytes:
    """The bytes an entry's hash covers (everything but the hash itself)."""
    return orjson.dumps(hashed_fields(entry), option=orjson.OPT_SORT_KEYS)


def entry_hash(entry: AuditEntry | Row[Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def record(session: Session, actor: Actor, action: str, target_type: str, target_id: str | None = None, *,
           agency_id: str | None = None, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry in the caller's transaction (locks the chain head until commit)."""
    # populate_existing: a head this session loaded earlier without the lock may be
    # stale (PostgreSQL, read committed); the locked read must see the latest one.
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one()
    entry = AuditEntry(seq=head.seq + 1, at=utcnow(), actor_id=actor.id, actor_name=actor.name,
                       actor_role=actor.role, source_ip=actor.ip, action=action, target_type=target_type,
                       target_id=target_id, agency_id=agency_id,
                       before=jsonable(before) if before is not None else None,
                       after=jsonable(after) if after is not None else None, prev_hash=head.hash)
    entry.hash = entry_hash(entry)
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    return entry

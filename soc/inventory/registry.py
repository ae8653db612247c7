"""The pipeline's :class:`~soc.systems.SystemRegistry`, built from the database.

The enrich stage reads the registry on the pipeline thread while API routes change
the inventory on theirs, so a refresh builds a whole new generation of lookups and
publishes it with one reference swap (:meth:`SystemRegistry.replace`).

Staying current:

* a change made through this process's API calls :func:`refresh` at once, so a
  revoked key stops working with the next request;
* a change made by another process (``soc systems key``, ``soc agencies import``, a
  second service) is noticed by a cheap fingerprint query (row counts and latest
  change times) at most every :data:`CHECK_SECONDS`;
* an unknown ingest key is looked up by its digest before it is refused, so a key
  issued a moment ago elsewhere works at its first request.

``last_used_at`` of a key is written at most once a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from soc.db import Database, utcnow
from soc.inventory.models import AgencyRow, IngestKeyRow, SystemRow
from soc.systems import Agency, KeyGrant, Level, System, SystemRegistry, hash_secret

log = logging.getLogger("soc.inventory.registry")
CHECK_SECONDS = 2.0
TOUCH_EVERY = timedelta(minutes=1)


def _fingerprint(session: Session) -> tuple[Any, ...]:
    def scalar(expr: Any) -> Any:
        return expr.scalar_subquery()

    # Rotation adds a key and revocation sets revoked_at to now, so counts and
    # latest times change with every key event; agencies and systems carry updated_at.
    row = session.execute(select(
        scalar(select(func.count()).select_from(AgencyRow)),
        scalar(select(func.max(AgencyRow.updated_at))),
        scalar(select(func.count()).select_from(SystemRow)),
        scalar(select(func.max(SystemRow.updated_at))),
        scalar(select(func.count()).select_from(IngestKeyRow)),
        scalar(select(func.max(IngestKeyRow.created_at))),
        scalar(select(func.max(IngestKeyRow.revoked_at))),
    )).one()
    return tuple(row)


def _read(session: Session, now: datetime) -> tuple[list[Agency], list[System], dict[str, KeyGrant],
                                                     list[str], dict[str, datetime]]:
    agencies = [Agency.model_construct(id=r.id, name=r.name, level=cast(Level, r.level), parent=r.parent_id,
                                       former_names=list(r.former_names), merged_into=r.merged_into)
                for r in session.scalars(select(AgencyRow))]
    systems: list[System] = []
    retired: list[str] = []
    for r in session.scalars(select(SystemRow)):
        systems.append(System.model_construct(id=r.id, name=r.name, type=r.type, agency=r.agency_id,
                                              level=cast(Level | None, r.level),
                                              classification=r.classification, owner=None, hosts=list(r.hosts),
                                              cidrs=list(r.cidrs), log_sources=[], profile=r.profile,
                                              ingest_keys=[]))
        if r.decommissioned_at is not None:
            retired.append(r.id)
    keys: dict[str, KeyGrant] = {}
    used: dict[str, datetime] = {}
    query = select(IngestKeyRow).where(IngestKeyRow.revoked_at.is_(None))
    for k in session.scalars(query):
        if k.expires_at is not None and k.expires_at <= now:
            continue
        keys[k.digest] = KeyGrant(k.system_id, k.id, k.expires_at)
        if k.last_used_at is not None:
            used[k.id] = k.last_used_at
    return agencies, systems, keys, retired, used


class DatabaseRegistry(SystemRegistry):
    """A registry that follows the inventory database."""

    def __init__(self, db: Database, check_seconds: float = CHECK_SECONDS) -> None:
        super().__init__()
        self.db = db
        self.check_seconds = check_seconds
        self._fingerprint: tuple[Any, ...] | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._touched: dict[str, datetime] = {}

    def reload(self) -> None:
        """Read the inventory and publish it (one reference swap)."""
        with self._lock:
            self._reload()

    def _reload(self) -> None:
        with self.db.read() as session:
            fingerprint = _fingerprint(session)
            agencies, systems, keys, retired, used = _read(session, utcnow())
        self.replace(agencies, systems, keys, retired)
        self._fingerprint = fingerprint
        self._next_check = time.monotonic() + self.check_seconds
        for key_id, at in used.items():
            if key_id not in self._touched or self._touched[key_id] < at:
                self._touched[key_id] = at

    def _fresh(self) -> None:
        if time.monotonic() >= self._next_check:
            self._check(blocking=False)

    def _check(self, *, blocking: bool) -> None:
        """Reload if the database changed since the last load. Without ``blocking``
        one thread checks and the others go on with the current generation."""
        if not self._lock.acquire(blocking=blocking):
            return
        try:
            self._next_check = time.monotonic() + self.check_seconds
            with self.db.read() as session:
                changed = _fingerprint(session) != self._fingerprint
            if changed:
                self._reload()
        except SQLAlchemyError as exc:
            # The database being away must not stop attribution: keep the last generation.
            log.warning("inventory check failed, keeping the loaded registry: %s", exc)
        finally:
            self._lock.release()

    def key_grant(self, key: str, now: datetime | None = None) -> KeyGrant | None:
        now = now or utcnow()
        grant = super().key_grant(key, now)
        if grant is None and self._issued_since_load(key, now):
            self._check(blocking=True)
            grant = super().key_grant(key, now)
        if grant is not None and grant.key_id is not None:
            self._touch(grant.key_id, now)
        return grant

    def _issued_since_load(self, key: str, now: datetime) -> bool:
        try:
            with self.db.read() as session:
                row = session.execute(
                    select(IngestKeyRow.id, IngestKeyRow.expires_at)
                    .where(IngestKeyRow.digest == hash_secret(key), IngestKeyRow.revoked_at.is_(None))
                ).first()
        except SQLAlchemyError as exc:
            log.warning("ingest key lookup failed: %s", exc)
            return False
        return row is not None and (row.expires_at is None or now < row.expires_at)

    def _touch(self, key_id: str, now: datetime) -> None:
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_EVERY:
            return
        self._touched[key_id] = now
        try:
            with self.db.write() as session:
                session.execute(update(IngestKeyRow).where(IngestKeyRow.id == key_id).values(last_used_at=now))
        except SQLAlchemyError as exc:
            log.warning("could not record the use of ingest key %s: %s", key_id, exc)


def load_registry(db: Database) -> DatabaseRegistry:
    """The registry of the inventory in ``db``."""
    registry = DatabaseRegistry(db)
    registry.reload()
    return registry


def refresh(registry: SystemRegistry, db: Database) -> None:
    """Rebuild ``registry`` in place from ``db`` (after a change through the API).

    A database-backed registry follows ``db`` from then on."""
    if isinstance(registry, DatabaseRegistry):
        registry.db = db
        registry.reload()
        return
    with db.read() as session:
        agencies, systems, keys, retired, _ = _read(session, utcnow())
    registry.replace(agencies, systems, keys, retired)

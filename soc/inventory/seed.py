"""``config/systems/*.yaml`` as a seed of the inventory database.

At every start (``soc run``, ``soc ingest``) and before inventory CLI commands the seed
adds what the database does not have yet: agencies and systems (with their log
sources) whose ids are new, and ingest-key digests — those in the YAML and those of
the legacy keyring ``<data_dir>/secrets/ingest_keys.json`` — that are not stored yet.
The database wins for every id it already holds: an edit made through the API is
never overwritten by a restart, and a key revoked there stays revoked.

Safe to run from two processes at once: a lost race on an insert (the other process
seeded the same id first) is retried and then finds nothing left to add.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from soc.audit.trail import Actor, record
from soc.config import ConfigError, SocConfig
from soc.db import Database
from soc.inventory.models import AgencyRow, IngestKeyRow, LogSourceRow, SystemRow
from soc.inventory.systems import profile_names, profiles_dir
from soc.systems import SeedFile, check_seed_references, keyring_path, read_keyring, read_seed

log = logging.getLogger("soc.inventory.seed")
ACTOR = Actor.system("seed")
_ATTEMPTS = 3


@dataclass
class SeedResult:
    agencies: list[str] = field(default_factory=list)
    """Ids of the agencies added."""
    systems: list[str] = field(default_factory=list)
    keys: int = 0
    """Ingest-key digests imported."""
    orphan_keys: list[str] = field(default_factory=list)
    """System ids of keyring entries whose system the inventory does not know (not imported)."""

    @property
    def changed(self) -> bool:
        return bool(self.agencies or self.systems or self.keys)


def validate_seed(cfg: SocConfig) -> list[SeedFile]:
    """The seed files, validated (models, duplicate ids, onboarding profiles);
    a problem raises :class:`ConfigError` naming the file and key."""
    files = read_seed(cfg.systems_dir)
    known = profile_names(cfg)
    for seed in files:
        for system in seed.systems:
            if system.profile is not None and system.profile not in known:
                raise ConfigError(seed.path, f"systems.{system.id}.profile",
                                  f"no onboarding profile {system.profile!r} in {profiles_dir(cfg)}",
                                  f"dùng một trong / use one of: {', '.join(sorted(known)) or '-'}")
    return files


def seed_inventory(db: Database, cfg: SocConfig) -> SeedResult:
    """Import what the database lacks from the YAML seed and the legacy keyring."""
    files = validate_seed(cfg)
    keyring = read_keyring(cfg.data_dir)
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with db.write() as session:
                result = _seed(session, files, keyring, keyring_path(cfg.data_dir))
            break
        except IntegrityError:
            # Another process seeded the same ids first; the next round finds them.
            if attempt == _ATTEMPTS:
                raise
    if result.changed:
        log.info("inventory seed: %d agencies, %d systems, %d ingest keys added",
                 len(result.agencies), len(result.systems), result.keys)
    if result.orphan_keys:
        log.warning("keyring keys of unknown systems not imported: %s", ", ".join(sorted(result.orphan_keys)))
    return result


def _seed(session: Session, files: list[SeedFile], keyring: dict[str, str], keyring_file: Path) -> SeedResult:
    result = SeedResult()
    agency_ids = set(session.scalars(select(AgencyRow.id)))
    check_seed_references(files, agency_ids)
    systems = {row.id: row.decommissioned_at is None for row in session.scalars(select(SystemRow))}
    new_agencies: list[AgencyRow] = []
    new_systems: list[tuple[SystemRow, str]] = []
    for seed in files:
        for agency in seed.agencies:
            if agency.id in agency_ids:
                continue
            row = AgencyRow(id=agency.id, name=agency.name, level=agency.level, parent_id=agency.parent,
                            former_names=list(agency.former_names), merged_into=agency.merged_into,
                            active=agency.merged_into is None)
            session.add(row)
            new_agencies.append(row)
            agency_ids.add(agency.id)
        for system in seed.systems:
            if system.id in systems:
                continue
            srow = SystemRow(id=system.id, name=system.name, type=system.type, agency_id=system.agency,
                             level=system.level, classification=system.classification,
                             owner=system.owner_contact(), hosts=list(system.hosts), cidrs=list(system.cidrs),
                             profile=system.profile)
            session.add(srow)
            new_systems.append((srow, seed.path.name))
            systems[system.id] = True
    session.flush()
    for row in new_agencies:
        record(session, ACTOR, "agency.create", "agency", row.id, agency_id=row.id, after=row.as_dict())
        result.agencies.append(row.id)
    by_id = {s.id: s for seed in files for s in seed.systems}
    for srow, file_name in new_systems:
        spec = by_id[srow.id]
        sources = [{"name": src.name, "format": src.format, "transport": src.transport,
                    "expected_interval_s": src.expected_interval_s} for src in spec.log_sources]
        for values in sources:
            session.add(LogSourceRow(system_id=srow.id, **values))
        record(session, ACTOR, "system.create", "system", srow.id, agency_id=srow.agency_id,
               after={"name": srow.name, "type": srow.type, "agency": srow.agency_id,
                      "classification": srow.classification, "hosts": srow.hosts, "cidrs": srow.cidrs,
                      "profile": srow.profile, "log_sources": sources, "seed": file_name})
        result.systems.append(srow.id)
    session.flush()
    wanted: dict[str, tuple[str, str]] = {}
    for seed in files:
        for system in seed.systems:
            for digest in system.ingest_keys:
                wanted.setdefault(digest, (system.id, seed.path.name))
    for digest, system_id in keyring.items():
        wanted.setdefault(digest, (system_id, keyring_file.name))
    if wanted:
        stored = set(session.scalars(select(IngestKeyRow.digest).where(IngestKeyRow.digest.in_(sorted(wanted)))))
        for digest, (system_id, origin) in sorted(wanted.items()):
            if digest in stored:
                continue
            if system_id not in systems:
                result.orphan_keys.append(system_id)
                continue
            if not systems[system_id]:
                continue  # decommissioned: its keys stay dead
            key = IngestKeyRow(id=str(uuid.uuid4()), system_id=system_id, digest=digest,
                               prefix=digest[:15], name=f"seed: {origin}", created_by=ACTOR.name)
            session.add(key)
            session.flush()
            owner = session.get(SystemRow, system_id)
            record(session, ACTOR, "system.key.import", "ingest_key", key.id,
                   agency_id=owner.agency_id if owner else None,
                   after={"system": system_id, "prefix": key.prefix, "from": origin})
            result.keys += 1
    return result

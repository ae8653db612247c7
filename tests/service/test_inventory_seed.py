"""``config/systems/*.yaml`` is a seed the database imports at every start: new ids
only, never over an edit made through the API, keys of the YAML and of the legacy
keyring included, and the pipeline attributes from the database."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from soc.audit.models import AuditEntry
from soc.audit.trail import Actor
from soc.config import SocConfig
from soc.db import Database
from soc.identity.scope import EVERYTHING
from soc.inventory.keys import revoke_key
from soc.inventory.models import AgencyRow, IngestKeyRow, LogSourceRow, SystemRow
from soc.inventory.registry import load_registry
from soc.inventory.seed import seed_inventory
from soc.inventory.systems import SystemChanges, profile_names, update_system
from soc.pipeline.build import build_topology
from soc.systems import hash_secret, keyring_path, read_seed, write_private_json
from tests.conftest import REPO

SYSTEMS = REPO / "config" / "systems"


@pytest.fixture
def cfg(tmp_path: Path) -> SocConfig:
    return SocConfig(data_dir=tmp_path / "var", systems_dir=SYSTEMS, json_mappings_dir=None)


def count(db: Database, model: type) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_seed_imports_every_agency_system_and_log_source(db: Database, cfg: SocConfig) -> None:
    result = seed_inventory(db, cfg)
    seed = read_seed(SYSTEMS)
    assert len(result.agencies) == sum(len(f.agencies) for f in seed) == count(db, AgencyRow)
    assert len(result.systems) == sum(len(f.systems) for f in seed) == count(db, SystemRow)
    assert count(db, LogSourceRow) == sum(len(s.log_sources) for f in seed for s in f.systems)
    with db.read() as session:
        wan = session.scalars(select(LogSourceRow).where(LogSourceRow.system_id == "wan-dc",
                                                         LogSourceRow.name == "fortigate")).one()
        ioffice = session.get(SystemRow, "ioffice")
        so_khcn = session.get(AgencyRow, "so-khcn")
    assert (wan.format, wan.expected_interval_s, wan.interval_mode) == ("fortigate", 60, "manual")
    assert ioffice is not None and ioffice.owner == {"name": "vanphong@phutho.gov.vn"}
    assert so_khcn is not None and so_khcn.former_names == ["Sở Thông tin và Truyền thông"]


def test_the_seed_is_idempotent(db: Database, cfg: SocConfig) -> None:
    seed_inventory(db, cfg)
    entries = count(db, AuditEntry)
    again = seed_inventory(db, cfg)
    assert not again.changed
    assert count(db, AuditEntry) == entries


def test_what_the_seed_adds_is_audited_as_the_seed(db: Database, cfg: SocConfig) -> None:
    seed_inventory(db, cfg)
    with db.read() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "system.create",
                                                         AuditEntry.target_id == "mail")).one()
    assert entry.actor_name == "system:seed"
    assert entry.agency_id == "so-khcn"


def test_an_api_edit_survives_the_next_seed(db: Database, cfg: SocConfig) -> None:
    seed_inventory(db, cfg)
    with db.write() as session:
        update_system(session, Actor.system("test"), EVERYTHING, "portal",
                      SystemChanges(name="Cổng thông tin điện tử tỉnh (mới)", cidrs=["10.11.5.0/24"]),
                      profile_names(cfg))
        session.delete(session.scalars(select(LogSourceRow).where(LogSourceRow.system_id == "portal")).one())
    seed_inventory(db, cfg)
    with db.read() as session:
        portal = session.get(SystemRow, "portal")
        sources = list(session.scalars(select(LogSourceRow).where(LogSourceRow.system_id == "portal")))
    assert portal is not None
    assert (portal.name, portal.cidrs) == ("Cổng thông tin điện tử tỉnh (mới)", ["10.11.5.0/24"])
    assert sources == []


def test_a_keyring_key_keeps_working_after_the_seed(db: Database, cfg: SocConfig) -> None:
    key = "soc_ingest_issued-by-an-earlier-release"
    write_private_json(keyring_path(cfg.data_dir), {hash_secret(key): "mail"})
    seed_inventory(db, cfg)
    assert load_registry(db).system_for_key(key) == "mail"
    assert seed_inventory(db, cfg).keys == 0


def test_a_revoked_keyring_key_is_not_revived_by_the_seed(db: Database, cfg: SocConfig) -> None:
    key = "soc_ingest_issued-by-an-earlier-release"
    write_private_json(keyring_path(cfg.data_dir), {hash_secret(key): "mail"})
    seed_inventory(db, cfg)
    with db.write() as session:
        row = session.scalars(select(IngestKeyRow).where(IngestKeyRow.digest == hash_secret(key))).one()
        revoke_key(session, Actor.system("test"), session.get(SystemRow, "mail"), row.id)  # type: ignore[arg-type]
    seed_inventory(db, cfg)
    assert load_registry(db).system_for_key(key) is None


def test_a_keyring_key_of_an_unknown_system_is_reported_not_imported(db: Database, cfg: SocConfig) -> None:
    write_private_json(keyring_path(cfg.data_dir), {hash_secret("soc_ingest_x"): "gone"})
    result = seed_inventory(db, cfg)
    assert (result.keys, result.orphan_keys) == (0, ["gone"])


def test_two_processes_seeding_at_once_both_succeed(db: Database, cfg: SocConfig) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        other = Database(db.url)
        try:
            barrier.wait()
            seed_inventory(other, cfg)
        except BaseException as exc:
            errors.append(exc)
        finally:
            other.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(db, SystemRow) == sum(len(f.systems) for f in read_seed(SYSTEMS))


def test_the_pipeline_attributes_from_the_database(db: Database, cfg: SocConfig) -> None:
    seed_inventory(db, cfg)
    with db.write() as session:
        update_system(session, Actor.system("test"), EVERYTHING, "ioffice",
                      SystemChanges(cidrs=["10.99.1.0/24"]), profile_names(cfg))
    topology = build_topology(cfg, db=db)
    try:
        assert topology.registry.system_for_ip("10.99.1.7") == "ioffice"
        assert topology.registry.system_for_ip("10.10.1.25") is None
    finally:
        topology.pipeline.close()
        topology.store.close()

"""The system registry: the example inventory seeded into the database, attribution,
hashed ingest keys, and validation of the YAML seed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from soc.audit.trail import Actor
from soc.config import ConfigError, SocConfig
from soc.db import Database, open_database
from soc.inventory.keys import create_key, revoke_key
from soc.inventory.models import SystemRow
from soc.inventory.registry import DatabaseRegistry, load_registry
from soc.inventory.seed import seed_inventory
from soc.systems import (
    Agency,
    System,
    SystemRegistry,
    hash_secret,
    keyring_path,
    read_seed,
    write_private_json,
)
from soc.systems import load_registry as load_yaml_registry
from soc.timeparse import parse_interval
from tests.conftest import REPO

SYSTEMS = REPO / "config" / "systems"


def _config(tmp: Path, systems_dir: Path = SYSTEMS) -> SocConfig:
    return SocConfig(data_dir=tmp / "var", systems_dir=systems_dir, json_mappings_dir=None)


def _system(session: Session, system_id: str) -> SystemRow:
    row = session.get(SystemRow, system_id)
    assert row is not None
    return row


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cfg = _config(tmp_path_factory.mktemp("inventory"))
    db = open_database(cfg)
    seed_inventory(db, cfg)
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def registry(seeded: Database) -> DatabaseRegistry:
    return load_registry(seeded)


def test_example_inventory_has_one_system_per_architecture_type(registry) -> None:  # type: ignore[no-untyped-def]
    types = {s.type for s in registry.systems.values()}
    assert {"document_management", "one_stop_portal", "lgsp", "email", "web_portal", "video_conference",
            "ioc", "network", "servers", "sector_system"} <= types


def test_example_inventory_spans_province_commune_and_a_legacy_district(registry) -> None:  # type: ignore[no-untyped-def]
    levels = {a.level for a in registry.agencies.values()}
    assert levels == {"province", "commune", "district"}


def test_sender_ip_in_a_system_cidr_attributes_the_event(registry) -> None:  # type: ignore[no-untyped-def]
    assert registry.system_for_ip("10.10.1.25") == "ioffice"
    gov = registry.attribution("ioffice").fields
    assert gov["agency"]["id"] == "vp-ubnd-tinh"
    assert gov["level"] == "province"
    assert gov["classification"] == 3


def test_commune_system_carries_the_commune_level(registry) -> None:  # type: ignore[no-untyped-def]
    assert registry.attribution(registry.system_for_ip("10.40.1.3")).fields["level"] == "commune"


def test_host_names_match_case_insensitively_and_without_domain(registry) -> None:  # type: ignore[no-untyped-def]
    assert registry.system_for_host("DC01") == "ad-servers"
    assert registry.system_for_host("dc01.phutho.local") == "ad-servers"


def test_unknown_senders_are_unassigned(registry) -> None:  # type: ignore[no-untyped-def]
    assert registry.system_for_ip("192.0.2.1") is None
    assert registry.attribution(None).fields == {"system": {"id": "unassigned"}}


def test_the_most_specific_network_wins() -> None:
    registry = SystemRegistry(
        [Agency(id="a", name="A", level="province")],
        [System(id="dc", name="DC", agency="a", classification=3, cidrs=["10.0.0.0/8"]),
         System(id="web", name="Web", agency="a", classification=2, hosts=["10.1.2.3"])])
    assert registry.system_for_ip("10.1.2.3") == "web"
    assert registry.system_for_ip("10.1.2.4") == "dc"


def test_a_decommissioned_system_keeps_its_attribution_but_claims_no_address() -> None:
    registry = SystemRegistry([Agency(id="a", name="A", level="province")],
                              [System(id="old", name="Old", agency="a", classification=2, cidrs=["10.9.0.0/16"])],
                              retired=["old"])
    assert registry.system_for_ip("10.9.1.1") is None
    assert registry.attribution("old").system_id == "old"


def test_a_replaced_generation_is_seen_by_the_next_lookup() -> None:
    registry = SystemRegistry([Agency(id="a", name="A", level="province")],
                              [System(id="s", name="S", agency="a", classification=2, cidrs=["10.9.0.0/16"])])
    assert registry.system_for_ip("10.9.1.1") == "s"
    registry.replace([Agency(id="a", name="A renamed", level="province")],
                     [System(id="s", name="S", agency="a", classification=2, cidrs=["10.8.0.0/16"])])
    assert registry.system_for_ip("10.9.1.1") is None
    assert registry.attribution("s").fields["agency"]["name"] == "A renamed"


def test_lookups_during_refreshes_never_see_a_half_built_generation() -> None:
    agencies = [Agency(id="a", name="A", level="province")]
    one = [System(id="one", name="One", agency="a", classification=2, cidrs=["10.1.0.0/16"])]
    two = [System(id="two", name="Two", agency="a", classification=2, cidrs=["10.1.0.0/16"])]
    registry = SystemRegistry(agencies, one)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            registry.replace(agencies, two)
            registry.replace(agencies, one)

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        for i in range(20_000):
            # Both generations claim the network: a lookup finding neither saw an index being rebuilt.
            assert registry.system_for_ip(f"10.1.{i % 250}.{i % 200}") in ("one", "two")
    finally:
        stop.set()
        flipper.join()


# --- ingest keys -------------------------------------------------------------------

def test_a_key_of_the_legacy_keyring_works_after_the_seed(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    key = "soc_ingest_legacy-key-issued-before-the-database"
    write_private_json(keyring_path(cfg.data_dir), {hash_secret(key): "mail"})
    db = open_database(cfg)
    try:
        seed_inventory(db, cfg)
        registry = load_registry(db)
        assert registry.system_for_key(key) == "mail"
        assert registry.system_for_key(key + "x") is None
    finally:
        db.dispose()


def test_issued_keys_are_stored_only_as_digests(seeded: Database) -> None:
    with seeded.write() as session:
        row, secret = create_key(session, Actor.system("test"), _system(session, "mail"))
        assert secret.startswith("soc_ingest_")
        assert row.digest == hash_secret(secret) and secret not in row.digest
        assert secret.startswith(row.prefix) and len(row.prefix) < len(secret)


def test_a_key_issued_by_another_process_is_honoured_at_its_first_use(seeded: Database) -> None:
    registry = load_registry(seeded)
    other = Database(seeded.url)
    with other.write() as session:
        _, secret = create_key(session, Actor.system("test"), _system(session, "portal"))
    other.dispose()
    assert registry.system_for_key(secret) == "portal"


def test_a_key_revoked_by_another_process_stops_at_the_next_check(seeded: Database) -> None:
    registry = load_registry(seeded)
    registry.check_seconds = 0
    with seeded.write() as session:
        system = _system(session, "portal")
        row, secret = create_key(session, Actor.system("test"), system)
    assert registry.system_for_key(secret) == "portal"
    with seeded.write() as session:
        revoke_key(session, Actor.system("test"), _system(session, "portal"), row.id)
    assert registry.system_for_key(secret) is None


# --- the YAML seed -------------------------------------------------------------------

def _write_system(tmp_path: Path, body: str) -> Path:
    directory = tmp_path / "systems"
    directory.mkdir(exist_ok=True)
    (directory / "s.yaml").write_text(body, encoding="utf-8")
    return directory


def test_a_bad_classification_names_file_and_key(tmp_path: Path) -> None:
    directory = _write_system(tmp_path, "agencies: [{id: a, name: A, level: province}]\n"
                                        "systems: [{id: s1, name: S, agency: a, classification: 9}]\n")
    with pytest.raises(ConfigError) as err:
        read_seed(directory)
    assert err.value.file.endswith("s.yaml")
    assert err.value.key == "systems.s1.classification"


def test_an_unknown_agency_reference_is_refused_by_the_seed(tmp_path: Path) -> None:
    directory = _write_system(tmp_path, "systems: [{id: s1, name: S, agency: nowhere, classification: 2}]\n")
    cfg = _config(tmp_path, directory)
    db = open_database(cfg)
    try:
        with pytest.raises(ConfigError) as err:
            seed_inventory(db, cfg)
    finally:
        db.dispose()
    assert err.value.key == "systems.s1.agency"


def test_the_unassigned_id_is_reserved(tmp_path: Path) -> None:
    directory = _write_system(tmp_path, "agencies: [{id: a, name: A, level: province}]\n"
                                        "systems: [{id: unassigned, name: S, agency: a, classification: 2}]\n")
    with pytest.raises(ConfigError):
        read_seed(directory)


def test_an_unknown_log_format_names_the_source(tmp_path: Path) -> None:
    directory = _write_system(tmp_path, "agencies: [{id: a, name: A, level: province}]\n"
                                        "systems: [{id: s1, name: S, agency: a, classification: 2,\n"
                                        "  log_sources: [{name: web, format: klingon}]}]\n")
    with pytest.raises(ConfigError) as err:
        read_seed(directory)
    assert err.value.key == "systems.s1.log_sources.0.format"


def test_an_unknown_onboarding_profile_is_refused_by_the_seed(tmp_path: Path) -> None:
    directory = _write_system(tmp_path, "agencies: [{id: a, name: A, level: province}]\n"
                                        "systems: [{id: s1, name: S, agency: a, classification: 2,"
                                        " profile: nonesuch}]\n")
    cfg = _config(tmp_path, directory)
    db = open_database(cfg)
    try:
        with pytest.raises(ConfigError) as err:
            seed_inventory(db, cfg)
    finally:
        db.dispose()
    assert err.value.key == "systems.s1.profile"


def test_an_id_declared_in_two_files_is_refused(tmp_path: Path) -> None:
    directory = _write_system(tmp_path, "agencies: [{id: a, name: A, level: province}]\n")
    (directory / "t.yaml").write_text("agencies: [{id: a, name: Again, level: province}]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_seed(directory)
    assert err.value.file.endswith("t.yaml") and err.value.key == "agencies.a.id"


def test_the_yaml_seed_alone_still_loads_for_offline_tools() -> None:
    registry = load_yaml_registry(SYSTEMS)
    assert registry.system_for_ip("10.10.1.25") == "ioffice"


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400),
                                              ("90", 90), (45, 45)])
def test_intervals_are_read_in_seconds(text: str | int, seconds: int) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "0", "-5m", "m"])
def test_bad_intervals_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_interval(text)

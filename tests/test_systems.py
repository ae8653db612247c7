"""The system registry: the example inventory, attribution, hashed ingest keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc.config import ConfigError
from soc.systems import issue_ingest_key, load_registry
from tests.conftest import REPO

SYSTEMS = REPO / "config" / "systems"


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    return load_registry(SYSTEMS)


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


def test_issued_ingest_keys_are_stored_hashed(tmp_path: Path) -> None:
    key = issue_ingest_key(tmp_path, "mail")
    stored = (tmp_path / "secrets" / "ingest_keys.json").read_text()
    assert key not in stored
    registry = load_registry(SYSTEMS, tmp_path)
    assert registry.system_for_key(key) == "mail"
    assert registry.system_for_key(key + "x") is None


def _write_system(tmp_path: Path, body: str) -> Path:
    (tmp_path / "s.yaml").write_text(body, encoding="utf-8")
    return tmp_path


def test_a_bad_classification_names_file_and_key(tmp_path: Path) -> None:
    directory = _write_system(tmp_path, "agencies: [{id: a, name: A, level: province}]\n"
                                        "systems: [{id: s1, name: S, agency: a, classification: 9}]\n")
    with pytest.raises(ConfigError) as err:
        load_registry(directory)
    assert err.value.file.endswith("s.yaml")
    assert err.value.key == "systems.s1.classification"


def test_an_unknown_agency_reference_is_refused(tmp_path: Path) -> None:
    directory = _write_system(tmp_path, "systems: [{id: s1, name: S, agency: nowhere, classification: 2}]\n")
    with pytest.raises(ConfigError) as err:
        load_registry(directory)
    assert err.value.key == "systems.s1.agency"


def test_the_unassigned_id_is_reserved(tmp_path: Path) -> None:
    directory = _write_system(tmp_path, "agencies: [{id: a, name: A, level: province}]\n"
                                        "systems: [{id: unassigned, name: S, agency: a, classification: 2}]\n")
    with pytest.raises(ConfigError):
        load_registry(directory)


def test_a_key_issued_after_loading_is_honoured_at_once(tmp_path: Path) -> None:
    registry = load_registry(SYSTEMS, tmp_path)
    key = issue_ingest_key(tmp_path, "portal")
    assert registry.system_for_key(key) == "portal"

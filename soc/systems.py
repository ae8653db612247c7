"""The system registry: which government system and agency an event belongs to.

The inventory lives in the SOC database (:mod:`soc.inventory`); ``config/systems/*.yaml``
is a seed the database imports at start (:mod:`soc.inventory.seed`), validated with the
models below. :class:`SystemRegistry` is the in-memory view the enrich stage and the
ingest API consult: each event is attributed to a system by its ingest key, by the
system its source declares, by the sending IP (the system's CIDRs or host IPs) or by
the host name the log carries; otherwise it is marked ``unassigned``. The registry
built from the database is :func:`soc.inventory.registry.load_registry`.

Ingest keys are never stored in clear, only ``sha256:<hex>`` digests.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from collectors.event import UNASSIGNED_SYSTEM
from soc.config import ConfigError
from soc.timeparse import parse_interval

Level = Literal["province", "district", "commune"]
LEVELS: tuple[str, ...] = ("province", "district", "commune")

SYSTEM_TYPES = (
    "document_management",
    "one_stop_portal",
    "lgsp",
    "email",
    "web_portal",
    "video_conference",
    "ioc",
    "network",
    "servers",
    "sector_system",
    "other",
)
TRANSPORTS = ("any", "syslog", "http", "file", "evtx", "agent", "elasticsearch")
INTERVAL_MODES = ("manual", "learned")
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
ID_MAX = 100

_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$")


def valid_host(value: str) -> bool:
    """A host name (``dc01``, ``mail.example.gov.vn``), an IP address or a network."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return bool(_HOST_NAME.match(value))
    return True


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Owner(_Model):
    """Who answers for a system: the contact the SOC calls about its alerts."""

    name: str = ""
    email: str | None = None
    phone: str | None = None
    unit: str | None = None


class Agency(_Model):
    id: str = Field(pattern=ID_PATTERN, max_length=ID_MAX)
    name: str = Field(min_length=1, max_length=300)
    level: Level
    parent: str | None = None
    former_names: list[str] = []
    """Names before a rename or merger (2025 reorganisation), kept for reports."""
    merged_into: str | None = None
    """The agency that absorbed this one; the merged agency is kept, inactive."""


class LogSource(_Model):
    name: str = Field(min_length=1, max_length=100)
    format: str = "auto"
    transport: str = "any"
    expected_interval: str | int | None = None
    """How often logs normally arrive (``5m``, ``1h``); used by silent-source checks."""

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from collectors.parsers import known_formats

        if value not in known_formats():
            raise ValueError(f"unknown format {value!r}; use one of {', '.join(known_formats())}")
        return value

    @field_validator("transport")
    @classmethod
    def _known_transport(cls, value: str) -> str:
        if value not in TRANSPORTS:
            raise ValueError(f"unknown transport {value!r}; use one of {', '.join(TRANSPORTS)}")
        return value

    @field_validator("expected_interval")
    @classmethod
    def _interval(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_interval(value)
        return value

    @property
    def expected_interval_s(self) -> int | None:
        return parse_interval(self.expected_interval) if self.expected_interval is not None else None


class System(_Model):
    id: str = Field(pattern=ID_PATTERN, max_length=ID_MAX)
    name: str = Field(min_length=1, max_length=300)
    type: str = "other"
    agency: str
    level: Level | None = None
    """Defaults to the agency's level."""
    classification: int = Field(ge=1, le=5)
    """Cấp độ an toàn hệ thống thông tin (1–5)."""
    owner: str | Owner | None = None
    """A name or e-mail address, or a full contact."""
    hosts: list[str] = []
    cidrs: list[str] = []
    log_sources: list[LogSource] = []
    profile: str | None = None
    ingest_keys: list[str] = []
    """``sha256:<hex>`` digests of the system's ingest keys."""

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == UNASSIGNED_SYSTEM:
            raise ValueError(f"'{UNASSIGNED_SYSTEM}' is reserved for events no system claims")
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in SYSTEM_TYPES:
            raise ValueError(f"unknown system type {value!r}; use one of {', '.join(SYSTEM_TYPES)}")
        return value

    @field_validator("hosts")
    @classmethod
    def _valid_hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not valid_host(host):
                raise ValueError(f"{host!r} is neither a host name nor an IP address")
        return value

    @field_validator("cidrs")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @field_validator("ingest_keys")
    @classmethod
    def _hashed(cls, value: list[str]) -> list[str]:
        for digest in value:
            if not is_digest(digest):
                raise ValueError("ingest keys are stored as 'sha256:<64 hex digits>' (soc systems key SYSTEM)")
        return value

    @model_validator(mode="after")
    def _unique_sources(self) -> System:
        names = [source.name for source in self.log_sources]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"log source name {name!r} is used twice")
        return self

    def owner_contact(self) -> dict[str, Any]:
        if self.owner is None:
            return {}
        if isinstance(self.owner, Owner):
            return self.owner.model_dump(exclude_none=True)
        return {"name": self.owner}


def hash_secret(secret: str) -> str:
    """Digest of a high-entropy secret (ingest key, API token).

    SHA-256 rather than a slow password hash: these secrets are 256-bit random
    tokens, so brute force is hopeless anyway, and an ingest request must be
    checked in microseconds."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def is_digest(value: str) -> bool:
    return value.startswith("sha256:") and len(value) == 71 and all(c in "0123456789abcdef" for c in value[7:])


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


@dataclass(slots=True, frozen=True)
class Attribution:
    """The ``gov.*`` fields an event gets."""

    fields: dict[str, Any]
    system_id: str


@dataclass(slots=True, frozen=True)
class KeyGrant:
    """What an ingest key digest opens: a system, until ``expires_at`` if set."""

    system_id: str
    key_id: str | None = None
    expires_at: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Index:
    """One generation of the registry's lookups. Built whole, then published by a
    single reference assignment and never changed again (its two caches only gain
    entries), so readers on other threads always see one consistent generation."""

    __slots__ = ("agencies", "attributions", "by_host", "by_key", "ip_cache", "networks", "systems")

    def __init__(self, agencies: dict[str, Agency], systems: dict[str, System], keys: dict[str, KeyGrant],
                 retired: frozenset[str]) -> None:
        self.agencies = agencies
        self.systems = systems
        self.by_key = keys
        self.by_host: dict[str, str] = {}
        self.networks: list[tuple[Network, str]] = []
        self.ip_cache: dict[str, str | None] = {}
        self.attributions: dict[str, Attribution] = {}
        for system in systems.values():
            if system.id in retired:
                continue  # a decommissioned system's addresses may be reused by its successor
            for host in system.hosts:
                try:
                    net = ipaddress.ip_network(host, strict=False)
                except ValueError:
                    self.by_host[host.lower()] = system.id
                else:
                    self.networks.append((net, system.id))
            for cidr in system.cidrs:
                self.networks.append((ipaddress.ip_network(cidr, strict=False), system.id))
        # Most specific network first, so a /32 host beats the data-centre /16.
        self.networks.sort(key=lambda item: item[0].prefixlen, reverse=True)


class SystemRegistry:
    """Agencies, systems and ingest keys, indexed for attribution.

    :meth:`replace` swaps in a whole new generation atomically: the enrich stage
    reads on the pipeline thread while the API thread refreshes after a change."""

    def __init__(self, agencies: Iterable[Agency] = (), systems: Iterable[System] = (),
                 keys: Mapping[str, KeyGrant] | None = None, retired: Iterable[str] = ()) -> None:
        self._index = _build(agencies, systems, keys, retired)

    # -- building -----------------------------------------------------------------
    def replace(self, agencies: Iterable[Agency], systems: Iterable[System],
                keys: Mapping[str, KeyGrant] | None = None, retired: Iterable[str] = ()) -> None:
        """Publish a new generation; ``retired`` systems keep their attribution but
        no longer claim addresses, host names or keys."""
        self._index = _build(agencies, systems, keys, retired)

    def add(self, agencies: Iterable[Agency], systems: Iterable[System]) -> None:
        current = self._index
        merged_a = {**current.agencies, **{a.id: a for a in agencies}}
        merged_s = {**current.systems, **{s.id: s for s in systems}}
        self._index = _build(merged_a.values(), merged_s.values(), current.by_key, ())

    def _fresh(self) -> None:
        """Hook run before every lookup; a database-backed registry reloads here
        when the database changed."""

    @property
    def agencies(self) -> Mapping[str, Agency]:
        return self._index.agencies

    @property
    def systems(self) -> Mapping[str, System]:
        return self._index.systems

    def check_references(self, source: str = "config/systems") -> None:
        index = self._index
        for system in index.systems.values():
            if system.agency not in index.agencies:
                raise ConfigError(source, f"systems.{system.id}.agency",
                                  f"unknown agency {system.agency!r}",
                                  "khai báo cơ quan trong agencies: / declare the agency under agencies:")
        for agency in index.agencies.values():
            for attr in ("parent", "merged_into"):
                target = getattr(agency, attr)
                if target and target not in index.agencies:
                    raise ConfigError(source, f"agencies.{agency.id}.{attr}", f"unknown agency {target!r}",
                                      "khai báo cơ quan này / declare that agency")

    # -- lookups ------------------------------------------------------------------
    def key_grant(self, key: str, now: datetime | None = None) -> KeyGrant | None:
        """The grant of a valid (known, unexpired) ingest key."""
        self._fresh()
        # Looked up by digest: lookup timing reveals nothing about a stored key.
        grant = self._index.by_key.get(hash_secret(key))
        if grant is None:
            return None
        if grant.expires_at is not None and not grant.valid_at(now or datetime.now(UTC)):
            return None
        return grant

    def system_for_key(self, key: str, now: datetime | None = None) -> str | None:
        grant = self.key_grant(key, now)
        return grant.system_id if grant else None

    def system_for_ip(self, ip: str) -> str | None:
        self._fresh()
        index = self._index
        if ip in index.ip_cache:
            return index.ip_cache[ip]
        found: str | None = None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            addr = None
        if addr is not None:
            for net, system_id in index.networks:
                if addr.version == net.version and addr in net:
                    found = system_id
                    break
        if len(index.ip_cache) > 100_000:
            index.ip_cache = {}
        index.ip_cache[ip] = found
        return found

    def system_for_host(self, host: str) -> str | None:
        self._fresh()
        index = self._index
        host = host.lower()
        found = index.by_host.get(host)
        if found is None and "." in host:
            found = index.by_host.get(host.split(".", 1)[0])
        return found

    def attribution(self, system_id: str | None) -> Attribution:
        self._fresh()
        index = self._index
        key = system_id or UNASSIGNED_SYSTEM
        cached = index.attributions.get(key)
        if cached is not None:
            return cached
        system = index.systems.get(key) if system_id else None
        if system is None:
            result = Attribution({"system": {"id": UNASSIGNED_SYSTEM}}, UNASSIGNED_SYSTEM)
        else:
            agency = index.agencies.get(system.agency)
            level = system.level or (agency.level if agency else None)
            gov: dict[str, Any] = {
                "system": {"id": system.id, "name": system.name, "type": system.type},
                "agency": {"id": system.agency, "name": agency.name if agency else system.agency},
                "classification": system.classification,
            }
            if level:
                gov["level"] = level
            result = Attribution(gov, system.id)
        index.attributions[key] = result
        return result

    def agency_children(self, agency_id: str) -> list[str]:
        return [a.id for a in self._index.agencies.values() if a.parent == agency_id]


def _build(agencies: Iterable[Agency], systems: Iterable[System], keys: Mapping[str, KeyGrant] | None,
           retired: Iterable[str]) -> _Index:
    system_map = {s.id: s for s in systems}
    retired_set = frozenset(retired)
    grants: dict[str, KeyGrant] = {}
    for system in system_map.values():
        if system.id not in retired_set:
            for digest in system.ingest_keys:
                grants[digest] = KeyGrant(system.id)
    if keys:
        grants.update({digest: grant for digest, grant in keys.items() if grant.system_id not in retired_set})
    return _Index({a.id: a for a in agencies}, system_map, grants, retired_set)


# --- the YAML seed -----------------------------------------------------------------

@dataclass
class SeedFile:
    """One validated ``config/systems/*.yaml`` file."""

    path: Path
    agencies: list[Agency] = field(default_factory=list)
    systems: list[System] = field(default_factory=list)


def read_seed(directory: Path) -> list[SeedFile]:
    """All ``*.yaml`` files of ``directory`` (sorted), validated; ids unique across files."""
    files: list[SeedFile] = []
    if directory.is_dir():
        files = [_load_file(path) for path in sorted(directory.glob("*.y*ml"))]
    for section in ("agencies", "systems"):
        seen: dict[str, Path] = {}
        for seed in files:
            for item in getattr(seed, section):
                if item.id in seen:
                    raise ConfigError(seed.path, f"{section}.{item.id}.id",
                                      f"id {item.id!r} is already declared in {seen[item.id]}",
                                      "mỗi mã chỉ khai báo một lần / declare each id once")
                seen[item.id] = seed.path
    return files


def check_seed_references(files: list[SeedFile], known_agencies: Iterable[str] = ()) -> None:
    """Every agency a seed names is declared in the seed or ``known_agencies`` (the database's)."""
    declared = {a.id for seed in files for a in seed.agencies} | set(known_agencies)
    for seed in files:
        for system in seed.systems:
            if system.agency not in declared:
                raise ConfigError(seed.path, f"systems.{system.id}.agency", f"unknown agency {system.agency!r}",
                                  "khai báo cơ quan trong agencies: / declare the agency under agencies:")
        for agency in seed.agencies:
            for attr in ("parent", "merged_into"):
                target = getattr(agency, attr)
                if target and target not in declared:
                    raise ConfigError(seed.path, f"agencies.{agency.id}.{attr}", f"unknown agency {target!r}",
                                      "khai báo cơ quan này / declare that agency")


def load_registry(directory: Path, data_dir: Path | None = None) -> SystemRegistry:
    """The YAML seed alone as a registry, with the keys of the legacy keyring in
    ``data_dir``: for ``soc config check`` and offline rule tests. The running
    service attributes from the database (:func:`soc.inventory.registry.load_registry`)."""
    files = read_seed(directory)
    check_seed_references(files)
    agencies = [a for seed in files for a in seed.agencies]
    systems = [s for seed in files for s in seed.systems]
    keys: dict[str, KeyGrant] = {}
    if data_dir is not None:
        ids = {s.id for s in systems}
        keys = {digest: KeyGrant(system_id) for digest, system_id in read_keyring(data_dir).items()
                if system_id in ids}
    return SystemRegistry(agencies, systems, keys)


def _load_file(path: Path) -> SeedFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(path, "-", f"invalid YAML: {exc}", "kiểm tra thụt lề / check indentation") from exc
    if not isinstance(raw, dict):
        raise ConfigError(path, "-", "the file must hold a mapping with agencies: and/or systems:",
                          "xem config/systems/province.yaml / see config/systems/province.yaml")
    unknown = set(raw) - {"agencies", "systems"}
    if unknown:
        raise ConfigError(path, sorted(unknown)[0], "unknown top-level key",
                          "chỉ dùng agencies: và systems: / use only agencies: and systems:")
    agencies = [_validated(Agency, path, "agencies", i, item) for i, item in enumerate(raw.get("agencies") or [])]
    systems = [_validated(System, path, "systems", i, item) for i, item in enumerate(raw.get("systems") or [])]
    return SeedFile(path, agencies, systems)


def _validated(model: type[Any], path: Path, section: str, index: int, item: Any) -> Any:
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = item.get("id", index) if isinstance(item, dict) else index
        key = ".".join([section, str(name), *(str(p) for p in err["loc"])])
        raise ConfigError(path, key, err["msg"], "sửa giá trị này / correct this value") from None


# --- the legacy keyring ------------------------------------------------------------

def keyring_path(data_dir: Path) -> Path:
    """Where ``soc systems key`` kept issued key digests before keys moved into the
    database; the seed imports it."""
    return data_dir / "secrets" / "ingest_keys.json"


def read_keyring(data_dir: Path) -> dict[str, str]:
    """``{digest: system_id}`` of the legacy keyring (empty when there is none)."""
    path = keyring_path(data_dir)
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(path, "-", "the keyring must be a JSON object of digest: system id",
                          "khôi phục tệp hoặc xóa nó / restore or remove the file")
    return {str(k): str(v) for k, v in data.items() if is_digest(str(k))}


def write_private_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

"""The system registry: the province's agencies and government systems.

Loaded from ``config/systems/*.yaml``; every file may hold ``agencies:`` and
``systems:`` lists. Each event is attributed to a system by its ingest key, by the
system its source declares, by the sending IP (the system's CIDRs or host IPs) or
by the host name the log carries; otherwise it is marked ``unassigned``.

Ingest keys are never stored in clear: the YAML holds ``sha256:<hex>`` digests and
keys issued by ``soc systems key`` are kept, hashed, in the data directory.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from collectors.event import UNASSIGNED_SYSTEM
from soc.config import ConfigError

Level = Literal["province", "district", "commune"]

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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Agency(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str
    level: Level
    parent: str | None = None
    former_names: list[str] = []
    """Names before a rename or merger (2025 reorganisation), kept for reports."""


class LogSource(_Model):
    name: str
    format: str = "auto"
    expected_interval: str | None = None
    """How often logs normally arrive (``5m``, ``1h``); used by silent-source checks."""


class System(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str
    type: str = "other"
    agency: str
    level: Level | None = None
    """Defaults to the agency's level."""
    classification: int = Field(ge=1, le=5)
    """Cấp độ an toàn hệ thống thông tin (1–5)."""
    owner: str | None = None
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
            if not (digest.startswith("sha256:") and len(digest) == 71):
                raise ValueError("ingest keys are stored as 'sha256:<64 hex digits>' (soc systems key SYSTEM)")
        return value


def hash_secret(secret: str) -> str:
    """Digest of a high-entropy secret (ingest key, API token).

    SHA-256 rather than a slow password hash: these secrets are 256-bit random
    tokens, so brute force is hopeless anyway, and an ingest request must be
    checked in microseconds."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


@dataclass(slots=True, frozen=True)
class Attribution:
    """The ``gov.*`` fields an event gets."""

    fields: dict[str, Any]
    system_id: str


@dataclass
class SystemRegistry:
    agencies: dict[str, Agency] = field(default_factory=dict)
    systems: dict[str, System] = field(default_factory=dict)
    _by_key: dict[str, str] = field(default_factory=dict)
    _by_host: dict[str, str] = field(default_factory=dict)
    _networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = field(default_factory=list)
    _ip_cache: dict[str, str | None] = field(default_factory=dict)
    _attributions: dict[str, Attribution] = field(default_factory=dict)
    keyring_dir: Path | None = None
    """Data directory whose issued keys this registry honours (re-read on change, so a
    key issued by ``soc systems key`` works in a running service at once)."""
    _keyring_mtime: float = -1.0

    # -- building -----------------------------------------------------------------
    def add(self, agencies: Iterable[Agency], systems: Iterable[System]) -> None:
        for agency in agencies:
            self.agencies[agency.id] = agency
        for system in systems:
            self.systems[system.id] = system
        self._index()

    def add_key(self, system_id: str, digest: str) -> None:
        self._by_key[digest] = system_id

    def _index(self) -> None:
        self._by_host.clear()
        self._networks.clear()
        self._ip_cache.clear()
        self._attributions.clear()
        for system in self.systems.values():
            for digest in system.ingest_keys:
                self._by_key[digest] = system.id
            for host in system.hosts:
                try:
                    net = ipaddress.ip_network(host, strict=False)
                except ValueError:
                    self._by_host[host.lower()] = system.id
                else:
                    self._networks.append((net, system.id))
            for cidr in system.cidrs:
                self._networks.append((ipaddress.ip_network(cidr, strict=False), system.id))
        # Most specific network first, so a /32 host beats the data-centre /16.
        self._networks.sort(key=lambda item: item[0].prefixlen, reverse=True)

    def check_references(self, source: str = "config/systems") -> None:
        for system in self.systems.values():
            if system.agency not in self.agencies:
                raise ConfigError(source, f"systems.{system.id}.agency",
                                  f"unknown agency {system.agency!r}",
                                  "khai báo cơ quan trong agencies: / declare the agency under agencies:")
        for agency in self.agencies.values():
            if agency.parent and agency.parent not in self.agencies:
                raise ConfigError(source, f"agencies.{agency.id}.parent", f"unknown agency {agency.parent!r}",
                                  "khai báo cơ quan cấp trên / declare the parent agency")

    # -- lookups ------------------------------------------------------------------
    def system_for_key(self, key: str) -> str | None:
        # Looked up by digest: lookup timing reveals nothing about a stored key.
        digest = hash_secret(key)
        found = self._by_key.get(digest)
        if found is None and self._refresh_keyring():
            found = self._by_key.get(digest)
        return found

    def _refresh_keyring(self) -> bool:
        if self.keyring_dir is None:
            return False
        try:
            mtime = _keyring_path(self.keyring_dir).stat().st_mtime
        except FileNotFoundError:
            return False
        if mtime == self._keyring_mtime:
            return False
        self._keyring_mtime = mtime
        for digest, system_id in _read_keyring(self.keyring_dir).items():
            if system_id in self.systems:
                self._by_key[digest] = system_id
        return True

    def system_for_ip(self, ip: str) -> str | None:
        if ip in self._ip_cache:
            return self._ip_cache[ip]
        found: str | None = None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            addr = None
        if addr is not None:
            for net, system_id in self._networks:
                if addr.version == net.version and addr in net:
                    found = system_id
                    break
        if len(self._ip_cache) > 100_000:
            self._ip_cache.clear()
        self._ip_cache[ip] = found
        return found

    def system_for_host(self, host: str) -> str | None:
        host = host.lower()
        found = self._by_host.get(host)
        if found is None and "." in host:
            found = self._by_host.get(host.split(".", 1)[0])
        return found

    def attribution(self, system_id: str | None) -> Attribution:
        key = system_id or UNASSIGNED_SYSTEM
        cached = self._attributions.get(key)
        if cached is not None:
            return cached
        system = self.systems.get(key) if system_id else None
        if system is None:
            result = Attribution({"system": {"id": UNASSIGNED_SYSTEM}}, UNASSIGNED_SYSTEM)
        else:
            agency = self.agencies.get(system.agency)
            level = system.level or (agency.level if agency else None)
            gov: dict[str, Any] = {
                "system": {"id": system.id, "name": system.name, "type": system.type},
                "agency": {"id": system.agency, "name": agency.name if agency else system.agency},
                "classification": system.classification,
            }
            if level:
                gov["level"] = level
            result = Attribution(gov, system.id)
        self._attributions[key] = result
        return result

    def agency_children(self, agency_id: str) -> list[str]:
        return [a.id for a in self.agencies.values() if a.parent == agency_id]


# --- loading ----------------------------------------------------------------------

def load_registry(directory: Path, data_dir: Path | None = None) -> SystemRegistry:
    """All ``*.yaml`` files of ``directory`` (sorted), plus keys issued into ``data_dir``."""
    registry = SystemRegistry()
    agencies: list[Agency] = []
    systems: list[System] = []
    if directory.is_dir():
        for path in sorted(directory.glob("*.y*ml")):
            a, s = _load_file(path)
            agencies += a
            systems += s
    registry.add(agencies, systems)
    registry.check_references(str(directory))
    if data_dir is not None:
        registry.keyring_dir = data_dir
        registry._refresh_keyring()
    return registry


def _load_file(path: Path) -> tuple[list[Agency], list[System]]:
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
    out_a = [_validated(Agency, path, "agencies", i, item) for i, item in enumerate(raw.get("agencies") or [])]
    out_s = [_validated(System, path, "systems", i, item) for i, item in enumerate(raw.get("systems") or [])]
    return out_a, out_s


def _validated(model: type[Any], path: Path, section: str, index: int, item: Any) -> Any:
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = item.get("id", index) if isinstance(item, dict) else index
        key = ".".join([section, str(name), *(str(p) for p in err["loc"])])
        raise ConfigError(path, key, err["msg"], "sửa giá trị này / correct this value") from None


def _keyring_path(data_dir: Path) -> Path:
    return data_dir / "secrets" / "ingest_keys.json"


def _read_keyring(data_dir: Path) -> dict[str, str]:
    path = _keyring_path(data_dir)
    if not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def issue_ingest_key(data_dir: Path, system_id: str) -> str:
    """Create a key for a system, keep only its digest, return the key (once)."""
    key = new_secret("soc_ingest")
    ring = _read_keyring(data_dir)
    ring[hash_secret(key)] = system_id
    write_private_json(_keyring_path(data_dir), ring)
    return key


def write_private_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)

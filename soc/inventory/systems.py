"""Government systems and their log sources: create, change, decommission.

Every function works in the caller's transaction (``db.write()``), checks the
caller's agency scope (a system outside it does not exist for them) and records the
change in the audit trail in that same transaction. A decommissioned system keeps
its row, sources and events for history; its ingest keys are revoked.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from collectors.event import UNASSIGNED_SYSTEM
from soc.audit.trail import Actor, record
from soc.config import SocConfig
from soc.db import utcnow
from soc.identity.scope import Scope
from soc.inventory.errors import InventoryError, check_version, not_found
from soc.inventory.health import onboarding_state
from soc.inventory.models import AgencyRow, LogSourceRow, SystemRow
from soc.systems import (
    ID_MAX,
    ID_PATTERN,
    INTERVAL_MODES,
    LEVELS,
    SYSTEM_TYPES,
    TRANSPORTS,
    valid_host,
)
from soc.timeparse import format_interval, parse_interval

_ID = re.compile(ID_PATTERN)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# --- what callers send -------------------------------------------------------------

class OwnerContact(BaseModel):
    """Who answers for the system when the SOC calls."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "name": "Nguyễn Văn A", "email": "a.nguyen@phutho.gov.vn", "phone": "0210 3840 000",
        "unit": "Phòng Công nghệ thông tin"}})

    name: str = ""
    email: str | None = None
    phone: str | None = None
    unit: str | None = None


class SourceSpec(BaseModel):
    """A log source of a system: what it sends and how often."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "name": "nginx-access", "format": "nginx", "transport": "syslog", "expected_interval": "5m",
        "interval_mode": "manual"}})

    name: str
    format: str = "auto"
    """A parser format (``nginx``, ``windows``…) or ``auto``."""
    transport: str = "any"
    """any | syslog | http | file | evtx | agent | elasticsearch"""
    expected_interval: str | int | None = None
    """At most this long between two events: ``30s``, ``5m``, ``2h``, ``1d`` or seconds."""
    interval_mode: str = "manual"
    """manual (``expected_interval``) | learned (from the source's own arrivals)."""


class SourceChanges(BaseModel):
    """Fields to change on a log source (absent fields stay as they are)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "expected_interval": "15m", "interval_mode": "learned"}})

    name: str | None = None
    format: str | None = None
    transport: str | None = None
    expected_interval: str | int | None = None
    interval_mode: str | None = None


class SystemSpec(BaseModel):
    """A government system to monitor."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "id": "web-xa-thanh-son", "name": "Trang thông tin điện tử xã Thanh Sơn", "type": "web_portal",
        "agency": "ubnd-xa-thanh-son", "classification": 2,
        "owner": {"name": "Nguyễn Văn A", "email": "a.nguyen@phutho.gov.vn"},
        "hosts": ["thanhson.phutho.gov.vn"], "cidrs": ["10.40.3.0/28"], "profile": "web_portal",
        "log_sources": [{"name": "web-access", "format": "nginx", "expected_interval": "1h"}]}})

    id: str
    name: str
    type: str = "other"
    agency: str
    level: str | None = None
    """province | district | commune; default: the agency's level."""
    classification: int
    """Cấp độ an toàn hệ thống thông tin (1–5)."""
    owner: OwnerContact | None = None
    hosts: list[str] = []
    cidrs: list[str] = []
    profile: str | None = None
    """An onboarding profile of ``config/profiles``."""
    log_sources: list[SourceSpec] = []


class SystemChanges(BaseModel):
    """Fields to change on a system (absent fields stay as they are; ``null`` clears
    ``level``, ``owner`` and ``profile``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "classification": 3, "cidrs": ["10.40.3.0/28", "10.40.4.0/28"]}})

    name: str | None = None
    type: str | None = None
    agency: str | None = None
    level: str | None = None
    classification: int | None = None
    owner: OwnerContact | None = None
    hosts: list[str] | None = None
    cidrs: list[str] | None = None
    profile: str | None = None


# --- validation --------------------------------------------------------------------

def check_id(field: str, value: str) -> str:
    if not value or len(value) > ID_MAX or not _ID.match(value):
        raise InventoryError("inventory.bad_id", field=field, value=value)
    return value


def check_text(field: str, value: str | None, limit: int = 300) -> str:
    text = (value or "").strip()
    if not text:
        raise InventoryError("inventory.empty", field=field)
    if len(text) > limit:
        raise InventoryError("inventory.too_long", field=field, limit=limit)
    return text


def check_choice(field: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise InventoryError("inventory.bad_choice", field=field, value=value, known=", ".join(choices))
    return value


def _classification(value: int) -> int:
    if isinstance(value, bool) or not 1 <= value <= 5:
        raise InventoryError("inventory.bad_classification", value=value)
    return value


def _hosts(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        host = value.strip()
        if not valid_host(host):
            raise InventoryError("inventory.bad_host", field="hosts", value=value)
        out.append(host)
    return out


def _cidrs(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise InventoryError("inventory.bad_cidr", field="cidrs", value=value) from None
    return out


def _owner(owner: OwnerContact | None) -> dict[str, Any]:
    if owner is None:
        return {}
    data = {k: v.strip() for k, v in owner.model_dump().items() if isinstance(v, str) and v.strip()}
    if "email" in data and not _EMAIL.match(data["email"]):
        raise InventoryError("inventory.bad_email", value=data["email"])
    for key, value in data.items():
        if len(value) > 200:
            raise InventoryError("inventory.too_long", field=f"owner.{key}", limit=200)
    return data


def interval_seconds(field: str, value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_interval(value)
    except ValueError:
        raise InventoryError("inventory.bad_interval", field=field, value=value) from None


def profiles_dir(cfg: SocConfig) -> Path:
    """``config/profiles``: beside the systems directory."""
    return cfg.systems_dir.parent / "profiles"


def profile_names(cfg: SocConfig) -> set[str]:
    directory = profiles_dir(cfg)
    if not directory.is_dir():
        return set()
    return {path.stem for path in directory.glob("*.y*ml")}


def _profile(value: str | None, known: set[str]) -> str | None:
    if value is None or value == "":
        return None
    if value not in known:
        raise InventoryError("inventory.unknown_profile", value=value, known=", ".join(sorted(known)) or "-")
    return value


def _format(field: str, value: str) -> str:
    from collectors.parsers import known_formats

    return check_choice(field, value, known_formats())


def _source_values(spec: SourceSpec, field: str = "log_sources") -> dict[str, Any]:
    check_text(f"{field}.name", spec.name, 100)
    return {
        "name": spec.name.strip(),
        "format": _format(f"{field}.format", spec.format),
        "transport": check_choice(f"{field}.transport", spec.transport, TRANSPORTS),
        "expected_interval_s": interval_seconds(f"{field}.expected_interval", spec.expected_interval),
        "interval_mode": check_choice(f"{field}.interval_mode", spec.interval_mode, INTERVAL_MODES),
    }


def _agency_in_scope(session: Session, scope: Scope, agency_id: str) -> AgencyRow:
    agency = session.get(AgencyRow, agency_id)
    if agency is None or not scope.allows(agency_id):
        raise not_found("agency", agency_id)
    return agency


# --- reading -----------------------------------------------------------------------

def get_system(session: Session, scope: Scope, system_id: str) -> SystemRow:
    row = session.get(SystemRow, system_id)
    if row is None or not scope.allows(row.agency_id):
        raise not_found("system", system_id)
    return row


def list_systems(session: Session, scope: Scope, *, agency: str | None = None, type: str | None = None,
                 classification: int | None = None) -> list[SystemRow]:
    query = select(SystemRow).where(scope.clause(SystemRow.agency_id)).order_by(SystemRow.id)
    if agency is not None:
        query = query.where(SystemRow.agency_id == agency)
    if type is not None:
        query = query.where(SystemRow.type == type)
    if classification is not None:
        query = query.where(SystemRow.classification == classification)
    return list(session.scalars(query))


def sources_of(session: Session, system_ids: Iterable[str]) -> dict[str, list[LogSourceRow]]:
    ids = sorted(set(system_ids))
    out: dict[str, list[LogSourceRow]] = defaultdict(list)
    if ids:
        query = select(LogSourceRow).where(LogSourceRow.system_id.in_(ids)).order_by(LogSourceRow.name)
        for row in session.scalars(query):
            out[row.system_id].append(row)
    return out


def _get_source(session: Session, system_id: str, name: str) -> LogSourceRow:
    row = session.scalars(select(LogSourceRow).where(LogSourceRow.system_id == system_id,
                                                     LogSourceRow.name == name)).first()
    if row is None:
        raise not_found("log source", f"{system_id}/{name}")
    return row


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def source_view(row: LogSourceRow) -> dict[str, Any]:
    return {"name": row.name, "format": row.format, "transport": row.transport,
            "expected_interval": format_interval(row.expected_interval_s),
            "expected_interval_s": row.expected_interval_s, "learned_interval_s": row.learned_interval_s,
            "interval_mode": row.interval_mode, "last_seen_at": _iso(row.last_seen_at),
            "events_total": row.events_total, "parse_failures_total": row.parse_failures_total,
            "silent_since": _iso(row.silent_since)}


def system_view(row: SystemRow, sources: Sequence[LogSourceRow], now: datetime | None = None) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "type": row.type, "agency": row.agency_id, "level": row.level,
            "classification": row.classification, "owner": dict(row.owner), "hosts": list(row.hosts),
            "cidrs": list(row.cidrs), "profile": row.profile,
            "onboarding": onboarding_state(row, sources, now or utcnow()),
            "first_log_at": _iso(row.first_log_at), "decommissioned_at": _iso(row.decommissioned_at),
            "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at), "version": row.version,
            "log_sources": [source_view(s) for s in sources]}


def _audit_view(row: SystemRow) -> dict[str, Any]:
    return {"name": row.name, "type": row.type, "agency": row.agency_id, "level": row.level,
            "classification": row.classification, "owner": dict(row.owner), "hosts": list(row.hosts),
            "cidrs": list(row.cidrs), "profile": row.profile}


# --- changing ----------------------------------------------------------------------

def create_system(session: Session, actor: Actor, scope: Scope, spec: SystemSpec, profiles: set[str]) -> SystemRow:
    """A new system and its log sources (``system.create``)."""
    system_id = check_id("id", spec.id)
    if system_id == UNASSIGNED_SYSTEM:
        raise InventoryError("inventory.reserved_id", value=system_id)
    agency = _agency_in_scope(session, scope, spec.agency)
    sources = [_source_values(source, f"log_sources.{i}") for i, source in enumerate(spec.log_sources)]
    names = [s["name"] for s in sources]
    for name in names:
        if names.count(name) > 1:
            raise InventoryError("inventory.duplicate_source", name=name)
    row = SystemRow(
        id=system_id, name=check_text("name", spec.name), type=check_choice("type", spec.type, SYSTEM_TYPES),
        agency_id=agency.id, level=check_choice("level", spec.level, LEVELS) if spec.level else None,
        classification=_classification(spec.classification), owner=_owner(spec.owner), hosts=_hosts(spec.hosts),
        cidrs=_cidrs(spec.cidrs), profile=_profile(spec.profile, profiles),
    )
    if session.get(SystemRow, system_id) is not None:
        raise InventoryError("inventory.system_exists", 409, id=system_id)
    session.add(row)
    session.flush()
    for values in sources:
        session.add(LogSourceRow(system_id=system_id, **values))
    session.flush()
    record(session, actor, "system.create", "system", system_id, agency_id=agency.id,
           after={**_audit_view(row), "log_sources": sources})
    return row


def update_system(session: Session, actor: Actor, scope: Scope, system_id: str, changes: SystemChanges,
                  profiles: set[str], expected_version: int | None = None) -> SystemRow:
    """Change the fields ``changes`` sets (``system.update``)."""
    row = get_system(session, scope, system_id)
    check_version(row.version, expected_version)
    if row.decommissioned_at is not None:
        raise InventoryError("inventory.decommissioned", 409, id=system_id)
    given = changes.model_fields_set
    values: dict[str, Any] = {}
    if "name" in given:
        values["name"] = check_text("name", changes.name)
    if "type" in given:
        values["type"] = check_choice("type", changes.type or "", SYSTEM_TYPES)
    if "agency" in given:
        values["agency_id"] = _agency_in_scope(session, scope, changes.agency or "").id
    if "level" in given:
        values["level"] = check_choice("level", changes.level, LEVELS) if changes.level else None
    if "classification" in given:
        if changes.classification is None:
            raise InventoryError("inventory.bad_classification", value=None)
        values["classification"] = _classification(changes.classification)
    if "owner" in given:
        values["owner"] = _owner(changes.owner)
    if "hosts" in given:
        values["hosts"] = _hosts(changes.hosts or [])
    if "cidrs" in given:
        values["cidrs"] = _cidrs(changes.cidrs or [])
    if "profile" in given:
        values["profile"] = _profile(changes.profile, profiles)
    before = _audit_view(row)
    for key, value in values.items():
        setattr(row, key, value)
    after = _audit_view(row)
    changed = {k for k in after if after[k] != before[k]}
    if changed:
        session.flush()
        record(session, actor, "system.update", "system", system_id, agency_id=row.agency_id,
               before={k: before[k] for k in sorted(changed)}, after={k: after[k] for k in sorted(changed)})
    return row


def decommission_system(session: Session, actor: Actor, scope: Scope, system_id: str,
                        expected_version: int | None = None, now: datetime | None = None) -> SystemRow:
    """Mark the system decommissioned and revoke its keys (``system.decommission``);
    its events, alerts and sources stay for history. Repeating it changes nothing."""
    from soc.inventory.keys import revoke_all

    row = get_system(session, scope, system_id)
    check_version(row.version, expected_version)
    if row.decommissioned_at is not None:
        return row
    now = now or utcnow()
    row.decommissioned_at = now
    revoked = revoke_all(session, row, now)
    session.flush()
    record(session, actor, "system.decommission", "system", system_id, agency_id=row.agency_id,
           before={"decommissioned_at": None}, after={"decommissioned_at": now, "revoked_keys": revoked})
    return row


def _writable(session: Session, scope: Scope, system_id: str) -> SystemRow:
    row = get_system(session, scope, system_id)
    if row.decommissioned_at is not None:
        raise InventoryError("inventory.decommissioned", 409, id=system_id)
    return row


def add_source(session: Session, actor: Actor, scope: Scope, system_id: str, spec: SourceSpec) -> LogSourceRow:
    system = _writable(session, scope, system_id)
    values = _source_values(spec, "")
    if session.scalars(select(LogSourceRow.id).where(LogSourceRow.system_id == system_id,
                                                     LogSourceRow.name == values["name"])).first() is not None:
        raise InventoryError("inventory.duplicate_source", 409, name=values["name"])
    row = LogSourceRow(system_id=system_id, **values)
    session.add(row)
    session.flush()
    record(session, actor, "system.source.create", "log_source", f"{system_id}/{row.name}",
           agency_id=system.agency_id, after=values)
    return row


def update_source(session: Session, actor: Actor, scope: Scope, system_id: str, name: str,
                  changes: SourceChanges) -> LogSourceRow:
    system = _writable(session, scope, system_id)
    row = _get_source(session, system_id, name)
    given = changes.model_fields_set
    values: dict[str, Any] = {}
    if "name" in given:
        new_name = check_text("name", changes.name, 100)
        if new_name != row.name and session.scalars(select(LogSourceRow.id).where(
                LogSourceRow.system_id == system_id, LogSourceRow.name == new_name)).first() is not None:
            raise InventoryError("inventory.duplicate_source", 409, name=new_name)
        values["name"] = new_name
    if "format" in given:
        values["format"] = _format("format", changes.format or "")
    if "transport" in given:
        values["transport"] = check_choice("transport", changes.transport or "", TRANSPORTS)
    if "expected_interval" in given:
        values["expected_interval_s"] = interval_seconds("expected_interval", changes.expected_interval)
    if "interval_mode" in given:
        values["interval_mode"] = check_choice("interval_mode", changes.interval_mode or "", INTERVAL_MODES)
    before = {k: getattr(row, k) for k in values}
    changed = {k: v for k, v in values.items() if before[k] != v}
    for key, value in changed.items():
        setattr(row, key, value)
    if changed:
        session.flush()
        record(session, actor, "system.source.update", "log_source", f"{system_id}/{name}",
               agency_id=system.agency_id, before={k: before[k] for k in changed}, after=changed)
    return row


def delete_source(session: Session, actor: Actor, scope: Scope, system_id: str, name: str) -> None:
    system = _writable(session, scope, system_id)
    row = _get_source(session, system_id, name)
    before = {"name": row.name, "format": row.format, "transport": row.transport,
              "expected_interval_s": row.expected_interval_s, "events_total": row.events_total}
    session.delete(row)
    session.flush()
    record(session, actor, "system.source.delete", "log_source", f"{system_id}/{name}",
           agency_id=system.agency_id, before=before)

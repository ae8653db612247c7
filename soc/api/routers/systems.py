"""Routes of /api/v1/systems: the monitored systems, their log sources and ingest keys.

``POST /systems`` onboards a system in one request: the system, its log sources and
(by default) an ingest key, shown once in the answer. Every change refreshes the
running registry, so attribution and keys take effect with the next event. Systems
outside the caller's agency scope do not exist for them (404).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm.exc import StaleDataError

from soc.api.deps import InventoryAdmin, Reader, StateDep
from soc.api.errors import ApiError
from soc.api.etag import etag, single_version
from soc.api.state import AppState
from soc.audit.trail import Actor
from soc.db import utcnow
from soc.inventory import keys as key_ops
from soc.inventory import systems as ops
from soc.inventory.errors import InventoryError
from soc.inventory.health import ONBOARDING_STATES
from soc.inventory.registry import refresh
from soc.inventory.systems import SourceChanges, SourceSpec, SystemChanges, SystemSpec

router = APIRouter(prefix="/api/v1", tags=["systems"])


# --- shared with the agencies routes ----------------------------------------------------

@contextmanager
def inventory_errors() -> Iterator[None]:
    """Refusals of the inventory layer as API problems."""
    try:
        yield
    except InventoryError as exc:
        raise ApiError(exc.status, exc.key, **exc.params) from None
    except StaleDataError:
        # Someone else's change committed between our read and our write.
        raise ApiError(412, "inventory.conflict") from None


def expected_version(if_match: str | None) -> int | None:
    """The version an optional ``If-Match`` header names (``None``: absent or ``*``)."""
    if if_match is None:
        return None
    try:
        return single_version(if_match)
    except ValueError:
        raise ApiError(400, "inventory.bad_if_match", value=if_match) from None


IfMatch = Annotated[str | None, Header(description="ETag from GET: refuse the change (412) if it is outdated")]


# --- response models -------------------------------------------------------------------

class SourceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "name": "nginx-access", "format": "nginx", "transport": "syslog", "expected_interval": "5m",
        "expected_interval_s": 300, "learned_interval_s": None, "interval_mode": "manual",
        "last_seen_at": "2026-11-24T03:15:00+00:00", "events_total": 182734, "parse_failures_total": 12,
        "silent_since": None}})

    name: str
    format: str
    transport: str
    expected_interval: str | None
    expected_interval_s: int | None
    learned_interval_s: int | None
    interval_mode: str
    last_seen_at: str | None
    events_total: int
    parse_failures_total: int
    silent_since: str | None


class SystemOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "id": "ioffice", "name": "Hệ thống quản lý văn bản và điều hành (iOffice)", "type": "document_management",
        "agency": "vp-ubnd-tinh", "level": None, "classification": 3,
        "owner": {"name": "Nguyễn Văn A", "email": "a.nguyen@phutho.gov.vn"},
        "hosts": ["ioffice.phutho.gov.vn"], "cidrs": ["10.10.1.0/24"], "profile": "document_management",
        "onboarding": "receiving", "first_log_at": "2026-11-20T01:00:00+00:00", "decommissioned_at": None,
        "created_at": "2026-11-19T08:00:00+00:00", "updated_at": "2026-11-20T01:00:00+00:00", "version": 2,
        "log_sources": []}})

    id: str
    name: str
    type: str
    agency: str
    level: str | None
    classification: int
    owner: dict[str, str]
    hosts: list[str]
    cidrs: list[str]
    profile: str | None
    onboarding: str
    """awaiting_first_log | receiving | silent | decommissioned"""
    first_log_at: str | None
    decommissioned_at: str | None
    created_at: str
    updated_at: str
    version: int
    log_sources: list[SourceOut]


class KeyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "id": "5f0c2a4e-8a5b-4c0e-9d1e-1b2c3d4e5f60", "system_id": "ioffice", "name": "default",
        "prefix": "soc_ingest_AbC12", "state": "active", "created_at": "2026-11-24T02:00:00+00:00",
        "created_by": "admin", "expires_at": None, "revoked_at": None, "last_used_at": None}})

    id: str
    system_id: str
    name: str
    prefix: str
    state: str
    """active | expiring (rotated, in its grace period) | expired | revoked"""
    created_at: str
    created_by: str | None
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


class KeyCreated(KeyOut):
    """A new key: ``key`` is shown this once and never again."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "id": "5f0c2a4e-8a5b-4c0e-9d1e-1b2c3d4e5f60", "system_id": "ioffice", "name": "default",
        "prefix": "soc_ingest_AbC12", "state": "active", "created_at": "2026-11-24T02:00:00+00:00",
        "created_by": "admin", "expires_at": None, "revoked_at": None, "last_used_at": None,
        "key": "soc_ingest_AbC12…"}})

    key: str


class SystemCreate(SystemSpec):
    """A system with its log sources; ``issue_key`` also creates its first ingest key."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "id": "web-xa-thanh-son", "name": "Trang thông tin điện tử xã Thanh Sơn", "type": "web_portal",
        "agency": "ubnd-xa-thanh-son", "classification": 2,
        "owner": {"name": "Nguyễn Văn A", "email": "a.nguyen@phutho.gov.vn", "phone": "0210 3840 000"},
        "hosts": ["thanhson.phutho.gov.vn"], "cidrs": ["10.40.3.0/28"], "profile": "web_portal",
        "log_sources": [{"name": "web-access", "format": "nginx", "transport": "syslog",
                         "expected_interval": "1h"}],
        "issue_key": True}})

    issue_key: bool = True
    key_name: str = "default"


_NEW_KEY = {
    "id": "faea8075-e71e-4da6-b0c6-ace41a921fad", "system_id": "web-xa-thanh-son", "name": "default",
    "prefix": "soc_ingest_FQqvJ", "state": "active", "created_at": "2026-11-24T08:15:02.731406+00:00",
    "created_by": "admin", "expires_at": None, "revoked_at": None, "last_used_at": None}


class Onboarded(BaseModel):
    """The new system and, if asked for, its ingest key (shown once)."""

    # The answer to SystemCreate's example.
    model_config = ConfigDict(json_schema_extra={"example": {
        "system": {
            "id": "web-xa-thanh-son", "name": "Trang thông tin điện tử xã Thanh Sơn", "type": "web_portal",
            "agency": "ubnd-xa-thanh-son", "level": None, "classification": 2,
            "owner": {"name": "Nguyễn Văn A", "email": "a.nguyen@phutho.gov.vn", "phone": "0210 3840 000"},
            "hosts": ["thanhson.phutho.gov.vn"], "cidrs": ["10.40.3.0/28"], "profile": "web_portal",
            "onboarding": "awaiting_first_log", "first_log_at": None, "decommissioned_at": None,
            "created_at": "2026-11-24T08:15:02.728913+00:00", "updated_at": "2026-11-24T08:15:02.728954+00:00",
            "version": 1,
            "log_sources": [{"name": "web-access", "format": "nginx", "transport": "syslog", "expected_interval": "1h",
                             "expected_interval_s": 3600, "learned_interval_s": None, "interval_mode": "manual",
                             "last_seen_at": None, "events_total": 0, "parse_failures_total": 0,
                             "silent_since": None}]},
        "ingest_key": {**_NEW_KEY, "key": "soc_ingest_FQqvJWC0vrQd-7a_l9FCYrvk0h9wQRJ5fheKu28sQi4"}}})

    system: SystemOut
    ingest_key: KeyCreated | None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"name": "nxlog-web01"}})

    name: str = ""
    expires_at: AwareDatetime | None = None


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"grace_hours": 24}})

    grace_hours: float = Field(key_ops.DEFAULT_GRACE_HOURS, ge=0, le=24 * 30)
    """How long the old key keeps working (0: it stops now)."""


class Rotated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "key": {"id": "2f2de6b7-93ee-495d-93d9-a49aa8fa5703", "system_id": "web-xa-thanh-son", "name": "default",
                "prefix": "soc_ingest_H5hcC", "state": "active", "created_at": "2026-11-25T01:30:44.102385+00:00",
                "created_by": "admin", "expires_at": None, "revoked_at": None, "last_used_at": None,
                "key": "soc_ingest_H5hcC1W2ezxCQXY5BiBGXnER-Tu0_EJ4zMlHL6gF8jc"},
        "previous": {**_NEW_KEY, "state": "expiring", "expires_at": "2026-11-26T01:30:44.102385+00:00",
                     "last_used_at": "2026-11-25T01:29:58.880214+00:00"}}})

    key: KeyCreated
    """The new key, shown once."""
    previous: KeyOut
    """The old key, now expiring."""


# --- helpers ---------------------------------------------------------------------------

def _refresh(state: AppState) -> None:
    refresh(state.registry, state.db)


def _view(state: AppState, system_id: str, principal: Any) -> dict[str, Any]:
    with state.db.read() as session:
        row = ops.get_system(session, principal.scope, system_id)
        return ops.system_view(row, ops.sources_of(session, [row.id]).get(row.id, []))


# --- systems -----------------------------------------------------------------------

@router.get("/systems", summary="Danh sách hệ thống / List systems", response_model=list[SystemOut])
def list_systems(principal: Reader, state: StateDep,
                 agency: Annotated[str | None, Query(description="Agency id")] = None,
                 type: Annotated[str | None, Query(description="System type")] = None,
                 classification: Annotated[int | None, Query(ge=1, le=5)] = None,
                 onboarding: Annotated[str | None, Query(description=" | ".join(ONBOARDING_STATES))] = None,
                 ) -> list[dict[str, Any]]:
    now = utcnow()
    with state.db.read() as session:
        rows = ops.list_systems(session, principal.scope, agency=agency, type=type, classification=classification)
        sources = ops.sources_of(session, [r.id for r in rows])
        views = [ops.system_view(r, sources.get(r.id, []), now) for r in rows]
    return [v for v in views if onboarding is None or v["onboarding"] == onboarding]


@router.get("/systems/{system_id}", summary="Chi tiết hệ thống / A system", response_model=SystemOut,
            responses={404: {"description": "No such system in your scope"}})
def get_system(system_id: str, principal: Reader, state: StateDep, response: Response) -> dict[str, Any]:
    with inventory_errors():
        view = _view(state, system_id, principal)
    response.headers["ETag"] = etag(view["version"])
    return view


@router.post("/systems", status_code=201, response_model=Onboarded,
             summary="Tiếp nhận hệ thống (một yêu cầu) / Onboard a system in one request",
             responses={404: {"description": "Agency not in your scope"}, 409: {"description": "Id taken"}})
def create_system(body: SystemCreate, principal: InventoryAdmin, state: StateDep,
                  response: Response) -> dict[str, Any]:
    actor = Actor.of(principal)
    spec = SystemSpec.model_validate(body.model_dump(exclude={"issue_key", "key_name"}))
    key: dict[str, Any] | None = None
    with inventory_errors(), state.db.write() as session:
        row = ops.create_system(session, actor, principal.scope, spec, ops.profile_names(state.cfg))
        if body.issue_key:
            key_row, secret = key_ops.create_key(session, actor, row, body.key_name)
            key = {**key_ops.key_view(key_row), "key": secret}
        view = ops.system_view(row, ops.sources_of(session, [row.id]).get(row.id, []))
    _refresh(state)
    response.headers["ETag"] = etag(view["version"])
    response.headers["Location"] = f"/api/v1/systems/{row.id}"
    return {"system": view, "ingest_key": key}


@router.patch("/systems/{system_id}", response_model=SystemOut,
              summary="Sửa hệ thống / Change a system",
              responses={404: {"description": "No such system in your scope"},
                         412: {"description": "If-Match names an outdated version"}})
def update_system(system_id: str, body: SystemChanges, principal: InventoryAdmin, state: StateDep,
                  response: Response, if_match: IfMatch = None) -> dict[str, Any]:
    version = expected_version(if_match)
    with inventory_errors(), state.db.write() as session:
        ops.update_system(session, Actor.of(principal), principal.scope, system_id, body,
                          ops.profile_names(state.cfg), version)
    _refresh(state)
    with inventory_errors():
        view = _view(state, system_id, principal)
    response.headers["ETag"] = etag(view["version"])
    return view


@router.delete("/systems/{system_id}", response_model=SystemOut,
               summary="Ngừng sử dụng hệ thống (thu hồi khóa, giữ dữ liệu) / Decommission a system "
                       "(revokes its keys, keeps its data)",
               responses={404: {"description": "No such system in your scope"}})
def decommission_system(system_id: str, principal: InventoryAdmin, state: StateDep,
                        if_match: IfMatch = None) -> dict[str, Any]:
    version = expected_version(if_match)
    with inventory_errors(), state.db.write() as session:
        ops.decommission_system(session, Actor.of(principal), principal.scope, system_id, version)
    _refresh(state)
    with inventory_errors():
        return _view(state, system_id, principal)


# --- log sources -------------------------------------------------------------------

@router.get("/systems/{system_id}/sources", response_model=list[SourceOut],
            summary="Nguồn log của hệ thống / Log sources of a system")
def list_sources(system_id: str, principal: Reader, state: StateDep) -> list[dict[str, Any]]:
    with inventory_errors():
        return list(_view(state, system_id, principal)["log_sources"])


@router.post("/systems/{system_id}/sources", status_code=201, response_model=SourceOut,
             summary="Thêm nguồn log / Add a log source")
def add_source(system_id: str, body: SourceSpec, principal: InventoryAdmin, state: StateDep) -> dict[str, Any]:
    with inventory_errors(), state.db.write() as session:
        row = ops.add_source(session, Actor.of(principal), principal.scope, system_id, body)
        view = ops.source_view(row)
    return view


@router.patch("/systems/{system_id}/sources/{name}", response_model=SourceOut,
              summary="Sửa nguồn log / Change a log source")
def update_source(system_id: str, name: str, body: SourceChanges, principal: InventoryAdmin,
                  state: StateDep) -> dict[str, Any]:
    with inventory_errors(), state.db.write() as session:
        row = ops.update_source(session, Actor.of(principal), principal.scope, system_id, name, body)
        view = ops.source_view(row)
    return view


@router.delete("/systems/{system_id}/sources/{name}", status_code=204,
               summary="Xóa nguồn log / Remove a log source")
def delete_source(system_id: str, name: str, principal: InventoryAdmin, state: StateDep) -> Response:
    with inventory_errors(), state.db.write() as session:
        ops.delete_source(session, Actor.of(principal), principal.scope, system_id, name)
    return Response(status_code=204)


# --- ingest keys -------------------------------------------------------------------

@router.get("/systems/{system_id}/keys", response_model=list[KeyOut],
            summary="Khóa nạp dữ liệu (không bao giờ hiện khóa) / Ingest keys (never the secret)")
def list_keys(system_id: str, principal: Reader, state: StateDep) -> list[dict[str, Any]]:
    now = utcnow()
    with inventory_errors(), state.db.read() as session:
        system = ops.get_system(session, principal.scope, system_id)
        return [key_ops.key_view(k, now) for k in key_ops.list_keys(session, system.id)]


@router.post("/systems/{system_id}/keys", status_code=201, response_model=KeyCreated,
             summary="Tạo khóa nạp dữ liệu (hiện một lần) / Create an ingest key (shown once)")
def create_key(system_id: str, body: KeyCreate, principal: InventoryAdmin, state: StateDep) -> dict[str, Any]:
    with inventory_errors(), state.db.write() as session:
        system = ops.get_system(session, principal.scope, system_id)
        row, secret = key_ops.create_key(session, Actor.of(principal), system, body.name, body.expires_at)
        view = {**key_ops.key_view(row), "key": secret}
    _refresh(state)
    return view


@router.post("/systems/{system_id}/keys/{key_id}/rotate", status_code=201, response_model=Rotated,
             summary="Đổi khóa: khóa cũ còn dùng được trong thời gian ân hạn / "
                     "Rotate a key: the old one works for a grace period")
def rotate_key(system_id: str, key_id: str, body: KeyRotate, principal: InventoryAdmin,
               state: StateDep) -> dict[str, Any]:
    with inventory_errors(), state.db.write() as session:
        system = ops.get_system(session, principal.scope, system_id)
        row, secret, old = key_ops.rotate_key(session, Actor.of(principal), system, key_id, body.grace_hours)
        out = {"key": {**key_ops.key_view(row), "key": secret}, "previous": key_ops.key_view(old)}
    _refresh(state)
    return out


@router.delete("/systems/{system_id}/keys/{key_id}", response_model=KeyOut,
               summary="Thu hồi khóa ngay / Revoke a key now")
def revoke_key(system_id: str, key_id: str, principal: InventoryAdmin, state: StateDep) -> dict[str, Any]:
    with inventory_errors(), state.db.write() as session:
        system = ops.get_system(session, principal.scope, system_id)
        view = key_ops.key_view(key_ops.revoke_key(session, Actor.of(principal), system, key_id))
    _refresh(state)
    return view

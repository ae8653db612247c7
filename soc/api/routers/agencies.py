"""Routes of /api/v1/agencies: the agency tree (province → district → commune).

Renames keep the old name in ``former_names``; a merged agency stays (inactive) and
users of the absorbing agency see it through their scope. ``POST /agencies/import``
takes a whole tree as YAML or CSV and answers with the diff (``dry_run`` to preview).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from soc.api.deps import InventoryAdmin, Reader, StateDep
from soc.api.errors import ApiError
from soc.api.etag import etag
from soc.api.routers.systems import IfMatch, expected_version, inventory_errors
from soc.api.state import AppState
from soc.audit.trail import Actor
from soc.i18n import register
from soc.identity.principal import Principal
from soc.inventory import agencies as ops
from soc.inventory.agencies import AgencyChanges, AgencyImportError, AgencySpec
from soc.inventory.registry import refresh

router = APIRouter(prefix="/api/v1", tags=["agencies"])

register({
    "agency.import_content_type": (
        "Kiểu nội dung '{ctype}' không được hỗ trợ; gửi text/csv hoặc application/yaml",
        "Content type '{ctype}' is not supported; send text/csv or application/yaml",
    ),
})

_MAX_ISSUES = 20
_CSV_EXAMPLE = ("id,name,level,parent,former_names,merged_into\n"
                "ubnd-tinh,Ủy ban nhân dân tỉnh Phú Thọ,province,,,\n"
                "ubnd-xa-hy-cuong,UBND xã Hy Cương,commune,ubnd-tinh,,\n"
                "ubnd-xa-chu-hoa,UBND xã Chu Hóa,commune,ubnd-tinh,,ubnd-xa-hy-cuong\n")
_YAML_EXAMPLE = ("agencies:\n"
                 "  - {id: ubnd-tinh, name: Ủy ban nhân dân tỉnh Phú Thọ, level: province}\n"
                 "  - {id: so-khcn, name: Sở Khoa học và Công nghệ, level: province, parent: ubnd-tinh,\n"
                 "     former_names: [Sở Thông tin và Truyền thông]}\n")


class AgencyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "id": "so-khcn", "name": "Sở Khoa học và Công nghệ", "level": "province", "parent": "ubnd-tinh",
        "former_names": ["Sở Thông tin và Truyền thông"], "merged_into": None, "active": True, "version": 2,
        "created_at": "2026-11-19T08:00:00+00:00", "updated_at": "2026-11-20T08:00:00+00:00"}})

    id: str
    name: str
    level: str
    parent: str | None
    former_names: list[str]
    merged_into: str | None
    active: bool
    version: int
    created_at: str
    updated_at: str


class AgencyNode(AgencyOut):
    """An agency with its children (``?tree=true``)."""

    children: list[AgencyNode] = []


AgencyNode.model_rebuild()


class AgencyChangeOut(BaseModel):
    id: str
    action: str
    """create | update | merge"""
    after: dict[str, Any] | None = None
    """The new agency (create)."""
    changes: dict[str, dict[str, Any]] | None = None
    """field → {before, after} (update, merge)."""


class ImportReportOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "dry_run": True,
        "created": [{"id": "ubnd-xa-hy-cuong", "action": "create",
                     "after": {"name": "UBND xã Hy Cương", "level": "commune", "parent": "ubnd-tinh",
                               "former_names": [], "merged_into": None, "active": True}}],
        "updated": [{"id": "ubnd-xa-chu-hoa", "action": "merge",
                     "changes": {"merged_into": {"before": None, "after": "ubnd-xa-hy-cuong"},
                                 "active": {"before": True, "after": False}}}],
        "merged": ["ubnd-xa-chu-hoa"], "unchanged": ["ubnd-tinh"], "missing": ["ubnd-huyen-lam-thao"]}})

    dry_run: bool
    created: list[AgencyChangeOut]
    updated: list[AgencyChangeOut]
    merged: list[str]
    unchanged: list[str]
    missing: list[str]
    """Agencies of the inventory the file does not mention: kept, not deleted."""


def _refresh(state: AppState) -> None:
    refresh(state.registry, state.db)


def _view(state: AppState, principal: Principal, agency_id: str) -> dict[str, Any]:
    with state.db.read() as session:
        return ops.get_agency(session, principal.scope, agency_id).as_dict()


@router.get("/agencies", response_model=list[AgencyNode], response_model_exclude_unset=True,
            summary="Danh sách cơ quan / List agencies")
def list_agencies(principal: Reader, state: StateDep,
                  tree: Annotated[bool, Query(description="Nest children under their parent")] = False,
                  level: Annotated[str | None, Query(description="province | district | commune")] = None,
                  parent: Annotated[str | None, Query(description="Only the children of this agency")] = None,
                  active: Annotated[bool | None, Query(description="Only active (or merged) agencies")] = None,
                  ) -> list[dict[str, Any]]:
    with state.db.read() as session:
        rows = ops.list_agencies(session, principal.scope, level=level, parent=parent, active=active)
        return ops.agency_tree(rows) if tree else [row.as_dict() for row in rows]


@router.get("/agencies/{agency_id}", response_model=AgencyOut, summary="Chi tiết cơ quan / An agency",
            responses={404: {"description": "No such agency in your scope"}})
def get_agency(agency_id: str, principal: Reader, state: StateDep, response: Response) -> dict[str, Any]:
    with inventory_errors():
        view = _view(state, principal, agency_id)
    response.headers["ETag"] = etag(view["version"])
    return view


@router.post("/agencies", status_code=201, response_model=AgencyOut, summary="Thêm cơ quan / Add an agency",
             responses={404: {"description": "Parent not in your scope"}, 409: {"description": "Id taken"}})
def create_agency(body: AgencySpec, principal: InventoryAdmin, state: StateDep, response: Response) -> dict[str, Any]:
    with inventory_errors(), state.db.write() as session:
        view = ops.create_agency(session, Actor.of(principal), principal.scope, body).as_dict()
    _refresh(state)
    response.headers["ETag"] = etag(view["version"])
    response.headers["Location"] = f"/api/v1/agencies/{view['id']}"
    return view


@router.patch("/agencies/{agency_id}", response_model=AgencyOut,
              summary="Sửa cơ quan (đổi tên, chuyển cấp trên, sáp nhập) / Change an agency (rename, re-parent, merge)",
              responses={404: {"description": "No such agency in your scope"},
                         412: {"description": "If-Match names an outdated version"}})
def update_agency(agency_id: str, body: AgencyChanges, principal: InventoryAdmin, state: StateDep,
                  response: Response, if_match: IfMatch = None) -> dict[str, Any]:
    version = expected_version(if_match)
    with inventory_errors(), state.db.write() as session:
        view = ops.update_agency(session, Actor.of(principal), principal.scope, agency_id, body, version).as_dict()
    _refresh(state)
    response.headers["ETag"] = etag(view["version"])
    return view


@router.post(
    "/agencies/import", response_model=ImportReportOut,
    summary="Nhập cây cơ quan từ YAML hoặc CSV / Import the agency tree from YAML or CSV",
    responses={403: {"description": "Only a user bound to the province imports the tree"},
               415: {"description": "Not text/csv or application/yaml"},
               422: {"description": "Problems, each with file, line and column; nothing was changed"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "text/csv": {"example": _CSV_EXAMPLE}, "application/yaml": {"example": _YAML_EXAMPLE}}}},
)
async def import_agencies(request: Request, principal: InventoryAdmin, state: StateDep,
                          dry_run: Annotated[bool, Query(description="Only show what would change")] = False,
                          ) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype in ("text/csv", "application/csv"):
        kind = "csv"
    elif ctype in ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"):
        kind = "yaml"
    else:
        raise ApiError(415, "agency.import_content_type", ctype=ctype or "-")
    if not principal.scope.all:
        raise ApiError(403, "agency.root_scope")
    body = await request.body()
    if len(body) > state.cfg.api.max_body_bytes:
        raise ApiError(413, "api.too_large", limit=state.cfg.api.max_body_bytes)
    name = f"upload.{kind}"

    def run() -> dict[str, Any]:
        inputs = ops.parse_file(body, name, kind)
        report = ops.import_agencies(state.db, inputs, Actor.of(principal), file=name, dry_run=dry_run)
        if not dry_run:
            _refresh(state)
        return report.as_dict()

    try:
        return await run_in_threadpool(run)
    except AgencyImportError as exc:
        shown = exc.issues[:_MAX_ISSUES]
        raise ApiError(422, "agency.import_invalid", count=len(exc.issues),
                       issues_vi="; ".join(i.text("vi") for i in shown),
                       issues_en="; ".join(i.text("en") for i in shown)) from None

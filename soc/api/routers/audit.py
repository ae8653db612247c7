"""Routes of /api/v1/audit: the audit trail for admins and auditors (``audit.read``).

A reader sees the entries of the agencies in their scope; one whose scope is every
agency also sees entries without an agency (users bound to ``*``, service jobs).
Listing pages newest first by a keyset cursor on ``seq``; exports stream every
matching entry oldest first with the fields needed to re-verify the chain offline.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from soc.api.deps import AuditReader, StateDep, query_time
from soc.api.errors import PROBLEM
from soc.audit.export import MEDIA_TYPES, entry_dict, export_lines
from soc.audit.filters import AuditFilter
from soc.audit.models import AuditEntry
from soc.audit.verify import verify_chain
from soc.db import utcnow
from soc.identity.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["audit"])

MAX_PAGE = 500
ENTRY_EXAMPLE: dict[str, Any] = {
    "seq": 1042, "at": "2025-07-01T02:15:09.123456+00:00", "actor_id": "6f1c1d8e-2b7a-4c38-9a55-0d1f7c7b9e21",
    "actor_name": "nguyenvana", "actor_role": "analyst", "source_ip": "10.20.1.15", "action": "alert.update",
    "target_type": "alert", "target_id": "a3f9c2", "agency_id": "xa-hy-cuong",
    "before": {"status": "new", "assignee_id": None}, "after": {"status": "acknowledged",
                                                                "assignee_id": "6f1c1d8e-2b7a-4c38-9a55-0d1f7c7b9e21"},
    "prev_hash": "5d41402abc4b2a76b9719d911017c592ae5c2b1f6b0e1e3e08c1e8f6b9a2c3d4",
    "hash": "9b74c9897bac770ffc029102a200c5de8d0e1a3c7f4b7e1f8a1c2b3d4e5f6a7b",
}
_PROBLEM_403 = {"description": "The role lacks audit.read (admin and auditor have it)",
                "content": {PROBLEM: {"example": {
                    "type": "about:blank", "title": "Forbidden", "status": 403,
                    "detail": "Role 'analyst' lacks the 'audit.read' permission",
                    "detail_vi": "Vai trò 'analyst' không có quyền 'audit.read'"}}}}


class AuditEntryOut(BaseModel):
    """One audit entry; ``at`` is exactly the text the hash covers."""

    model_config = ConfigDict(json_schema_extra={"example": ENTRY_EXAMPLE})

    seq: int
    at: str
    actor_id: str | None
    actor_name: str
    actor_role: str | None
    source_ip: str | None
    action: str
    target_type: str
    target_id: str | None
    agency_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"items": [ENTRY_EXAMPLE], "next_cursor": 1042}})

    items: list[AuditEntryOut]
    next_cursor: int | None = Field(description="Pass as cursor for the next (older) page; null on the last page")


class VerifyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {
        "ok": False, "checked": 1041, "first_broken_seq": 1042, "reason": "hash_mismatch",
        "expected": "1f0c…", "found": "9b74…", "last_seq": 1041, "last_hash": "5d41…",
        "message": "Entry #1042 was edited: its content no longer gives its hash",
        "message_vi": "Bản ghi #1042 đã bị sửa: nội dung không còn khớp với mã băm của nó"}})

    ok: bool
    checked: int = Field(description="Entries whose hash and link were checked")
    first_broken_seq: int | None
    reason: Literal["hash_mismatch", "broken_link", "missing_rows", "head_mismatch"] | None
    expected: str | None
    found: str | None
    last_seq: int = Field(description="The last intact entry; keep it with last_hash elsewhere as an anchor")
    last_hash: str
    message: str
    message_vi: str


class _Filters:
    """The filter query parameters list and export share."""

    def __init__(
        self,
        since: Annotated[str | None, Query(description="From (inclusive): 24h, 7d or ISO 8601",
                                           examples=["7d"])] = None,
        until: Annotated[str | None, Query(description="To (exclusive): ISO 8601 or relative")] = None,
        actor: Annotated[str | None, Query(description="Username, or system:<job>", examples=["nguyenvana"])] = None,
        action: Annotated[str | None, Query(description="Action or dotted prefix: 'alert' or 'alert.' finds "
                                                        "alert.update, alert.comment …",
                                            examples=["alert."])] = None,
        target_type: Annotated[str | None, Query(description="alert, incident, user, system …",
                                                 examples=["alert"])] = None,
        target_id: Annotated[str | None, Query(description="Id of the changed object")] = None,
        agency_id: Annotated[str | None, Query(description="Only this agency (within your scope)",
                                               examples=["xa-hy-cuong"])] = None,
    ) -> None:
        self.since, self.until, self.actor, self.action = since, until, actor, action
        self.target_type, self.target_id, self.agency_id = target_type, target_id, agency_id

    def of(self, principal: Principal, state: StateDep) -> AuditFilter:
        return AuditFilter(since=query_time(self.since, state), until=query_time(self.until, state),
                           actor=self.actor or None, action=self.action or None, target_type=self.target_type or None,
                           target_id=self.target_id or None, agency_id=self.agency_id or None,
                           scope=principal.scope)


FiltersDep = Annotated[_Filters, Depends()]


@router.get("/audit", summary="Nhật ký kiểm toán / List the audit trail", response_model=AuditPage,
            responses={400: {"description": "Invalid time"}, 403: _PROBLEM_403})
def list_audit(
    principal: AuditReader, state: StateDep, filters: FiltersDep,
    cursor: Annotated[int | None, Query(ge=1, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Entries per page (at most {MAX_PAGE})")] = 100,
) -> AuditPage:
    where = filters.of(principal, state).conditions()
    if cursor is not None:
        where.append(AuditEntry.seq < cursor)
    query = select(AuditEntry.__table__).where(*where).order_by(AuditEntry.seq.desc()).limit(limit + 1)
    with state.db.read() as session:
        rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(items=[AuditEntryOut(**entry_dict(row)) for row in rows],
                     next_cursor=rows[-1].seq if more else None)


@router.get("/audit/export", summary="Xuất nhật ký kiểm toán / Export the audit trail (NDJSON or CSV)",
            response_class=StreamingResponse,
            responses={200: {"description": "Every matching entry, oldest first, with seq, hash and prev_hash",
                             "content": {"application/x-ndjson": {"example": ENTRY_EXAMPLE},
                                         "text/csv": {"example": "seq,at,actor_id,…,prev_hash,hash\r\n"}}},
                       400: {"description": "Invalid time"}, 403: _PROBLEM_403})
def export_audit(
    principal: AuditReader, state: StateDep, filters: FiltersDep,
    fmt: Annotated[Literal["ndjson", "csv"], Query(alias="format", description="ndjson or csv")] = "ndjson",
) -> StreamingResponse:
    where = filters.of(principal, state)
    name = f"audit-{utcnow():%Y%m%dT%H%M%SZ}.{fmt}"
    return StreamingResponse(export_lines(state.db, fmt, where), media_type=MEDIA_TYPES[fmt],
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


@router.get("/audit/verify", summary="Kiểm tra chuỗi băm / Verify the audit hash chain", response_model=VerifyOut,
            responses={403: _PROBLEM_403})
def verify_audit(principal: AuditReader, state: StateDep) -> VerifyOut:
    return VerifyOut(**verify_chain(state.db).as_dict())

"""``/api/v1/alerts``: the analysts' queue — list with filters, facets and cursor
pages, groups, detail with evidence, status workflow, assignment, comments, bulk
changes. Writes need the ``triage`` permission and ``If-Match`` (see
:mod:`soc.triage.changes`); alerts outside the caller's agency scope answer 404."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query, Response
from sqlalchemy.orm import Session

from soc.alerts.models import Alert
from soc.api.deps import Reader, StateDep, Triager
from soc.api.etag import etag
from soc.db import utcnow
from soc.triage import queries
from soc.triage.changes import (
    MAX_BULK,
    AlertChange,
    add_comment,
    bulk_change,
    parse_if_match,
    update_alert,
    visible_alert,
)
from soc.triage.errors import TriageError
from soc.triage.queries import AlertFilter, parse_when, split_values
from soc.triage.schemas import (
    AlertDetail,
    AlertFilterIn,
    AlertGroups,
    AlertOut,
    AlertPage,
    AlertPatch,
    BulkIn,
    BulkOut,
    CommentIn,
    CommentList,
    CommentOut,
)
from soc.triage.views import alert_detail, alert_views, comments_of

router = APIRouter(prefix="/api/v1", tags=["alerts"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such alert in your agency scope / Không có cảnh báo này trong phạm vi của bạn"},
}


def _json(body: Any, *, status_code: int = 200, version: int | None = None) -> Response:
    headers = {"ETag": etag(version)} if version is not None else None
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers)


Multi = Annotated[list[str] | None, Query()]


def alert_filter(
    state: StateDep,
    status: Annotated[list[str] | None, Query(description="new, acknowledged, in_progress, resolved (repeat or "
                                                          "comma-separate)", examples=["new,acknowledged"])] = None,
    level: Annotated[list[str] | None, Query(description="informational, low, medium, high, critical")] = None,
    severity: Annotated[list[str] | None, Query(description="Same as level")] = None,
    min_level: Annotated[str | None, Query(description="This level or higher", examples=["high"])] = None,
    rule_id: Multi = None,
    tactic: Annotated[list[str] | None, Query(description="ATT&CK tactic", examples=["credential-access"])] = None,
    technique: Annotated[list[str] | None, Query(description="ATT&CK technique (sub-techniques included)",
                                                 examples=["T1110"])] = None,
    system_id: Multi = None,
    agency_id: Multi = None,
    include_children: Annotated[bool, Query(description="agency_id also matches its child and merged agencies")
                                ] = False,
    level_gov: Annotated[list[str] | None, Query(description="province, district, commune")] = None,
    classification: Annotated[list[int] | None, Query(description="System security level 1–5")] = None,
    assignee: Annotated[list[str] | None, Query(description="User id, 'me' or 'none'")] = None,
    incident_id: Annotated[list[str] | None, Query(description="Incident id or 'none'")] = None,
    retro: Annotated[bool | None, Query(description="Raised by a retro-hunt")] = None,
    since: Annotated[str | None, Query(description="24h, 7d or ISO 8601 (on time_field)")] = None,
    until: Annotated[str | None, Query(description="24h, 7d or ISO 8601 (on time_field)")] = None,
    time_field: Annotated[Literal["last_seen", "first_seen", "created_at", "updated_at"], Query()] = "last_seen",
    q: Annotated[str | None, Query(max_length=200, description="Text in rule, summary or key fields "
                                                                "(case and accents ignored)",
                                   examples=["203.0.113.7"])] = None,
    sla_breached: Annotated[bool | None, Query(description="Only alerts whose SLA is (true) / is not (false) "
                                                           "breached")] = None,
    sla: Annotated[Literal["acknowledge", "resolve"] | None, Query(description="Which SLA sla_breached means "
                                                                                "(default: either)")] = None,
) -> AlertFilter:
    tz = state.cfg.tz
    return AlertFilter(
        status=split_values(status), level=split_values(level) + split_values(severity), min_level=min_level,
        rule_id=split_values(rule_id), tactic=split_values(tactic), technique=split_values(technique),
        system_id=split_values(system_id), agency_id=split_values(agency_id), include_children=include_children,
        level_gov=split_values(level_gov), classification=list(classification or []),
        assignee=split_values(assignee), incident_id=split_values(incident_id), retro=retro,
        since=parse_when(since, "since", tz), until=parse_when(until, "until", tz), time_field=time_field, q=q,
        sla_breached=sla_breached, sla=sla,
    ).validated()


FilterDep = Annotated[AlertFilter, Depends(alert_filter)]


def _render(state: StateDep) -> Any:
    def render(session: Session, alert: Alert) -> dict[str, Any]:
        return alert_views(session, [alert], sla_targets=state.cfg.triage.sla, now=utcnow())[0]

    return render


@router.get("/alerts", summary="Hàng đợi cảnh báo / Alert queue", response_model=AlertPage)
def list_alerts(
    principal: Reader, state: StateDep, flt: FilterDep,
    sort: Annotated[Literal["last_seen", "first_seen", "created_at", "updated_at", "level", "count", "status"],
                    Query()] = "last_seen",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = queries.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    facets: Annotated[list[str] | None, Query(description="Count by: " + ", ".join(queries.FACETS),
                                              examples=["status,level"])] = None,
    total: Annotated[bool, Query(description="Also count every matching alert")] = False,
) -> Response:
    now = utcnow()
    with state.db.read() as session:
        conds = queries.conditions(session, principal, flt, sla_targets=state.cfg.triage.sla, now=now)
        page = queries.list_page(session, conds, sort=sort, order=order, limit=limit, cursor=cursor)
        body: dict[str, Any] = {
            "items": alert_views(session, page.alerts, sla_targets=state.cfg.triage.sla, now=now),
            "next_cursor": page.next_cursor, "total": None, "facets": None}
        if total:
            body["total"] = queries.count(session, conds)
        names = split_values(facets)
        if names:
            body["facets"] = queries.facets(session, conds, names)
    return _json(body)


@router.get("/alerts/groups", summary="Nhóm cảnh báo theo luật, hệ thống / Alerts grouped by rule, system",
            response_model=AlertGroups)
def alert_groups(
    principal: Reader, state: StateDep, flt: FilterDep,
    by: Annotated[Literal["rule", "system", "rule,system", "system,rule"], Query()] = "rule",
    sort: Annotated[Literal["last_seen", "total", "open", "level"], Query()] = "last_seen",
    limit: Annotated[int, Query(ge=1, le=queries.MAX_GROUPS)] = 100,
) -> Response:
    with state.db.read() as session:
        conds = queries.conditions(session, principal, flt, sla_targets=state.cfg.triage.sla, now=utcnow())
        items, truncated = queries.groups(session, conds, by, limit=limit, sort=sort)
    return _json({"by": by, "items": items, "truncated": truncated})


@router.post("/alerts/bulk", summary="Xử lý hàng loạt / Bulk change", response_model=BulkOut)
def bulk_alerts(body: BulkIn, principal: Triager, state: StateDep) -> Response:
    if (body.ids is None) == (body.filter is None):
        raise TriageError(422, "triage.bulk_target", limit=MAX_BULK)
    more = False
    if body.filter is not None:
        now = utcnow()
        flt = _filter_of(body.filter, state)
        with state.db.read() as session:
            conds = queries.conditions(session, principal, flt, sla_targets=state.cfg.triage.sla, now=now)
            ids = list(session.scalars(queries.list_ids(conds, limit=MAX_BULK + 1)))
        more = len(ids) > MAX_BULK
        ids = ids[:MAX_BULK]
    else:
        ids = list(body.ids or [])
    results = bulk_change(state.db, principal, ids, body.action, resolution=body.resolution,
                          assignee_id=body.assignee_id, comment=body.comment, versions=body.versions)
    succeeded = sum(1 for r in results if r.ok)
    return _json({"results": [r.as_dict() for r in results], "succeeded": succeeded,
                  "failed": len(results) - succeeded, "more": more})


def _filter_of(body: AlertFilterIn, state: StateDep) -> AlertFilter:
    tz = state.cfg.tz
    return AlertFilter(
        status=split_values(body.status), level=split_values(body.level), min_level=body.min_level,
        rule_id=list(body.rule_id), tactic=list(body.tactic), technique=list(body.technique),
        system_id=list(body.system_id), agency_id=list(body.agency_id), include_children=body.include_children,
        level_gov=list(body.level_gov), classification=list(body.classification), assignee=list(body.assignee),
        incident_id=list(body.incident_id), retro=body.retro, since=parse_when(body.since, "since", tz),
        until=parse_when(body.until, "until", tz), time_field=body.time_field, q=body.q,
        sla_breached=body.sla_breached, sla=body.sla,
    ).validated()


@router.get("/alerts/{alert_id}", summary="Chi tiết cảnh báo / Alert detail", response_model=AlertDetail,
            responses=_PROBLEMS)
def get_alert(alert_id: str, principal: Reader, state: StateDep) -> Response:
    with state.db.read() as session:
        alert = visible_alert(session, principal, alert_id)
        body = alert_detail(session, alert, store=state.store, sla_targets=state.cfg.triage.sla, now=utcnow())
    return _json(body, version=alert.version)


@router.patch("/alerts/{alert_id}", summary="Đổi trạng thái, giao việc / Change status, assign",
              response_model=AlertOut, responses={
                  **_PROBLEMS,
                  409: {"description": "Transition not allowed from the current status (the allowed next "
                                       "statuses are named)"},
                  412: {"description": "Stale If-Match: the body's 'current' is the alert as it is now"},
                  422: {"description": "Missing resolution, unknown assignee or one outside the alert's agency"},
                  428: {"description": "If-Match missing"}})
def patch_alert(alert_id: str, body: AlertPatch, principal: Triager, state: StateDep,
                if_match: Annotated[str | None, Header(description='The ETag you read, e.g. "3"')] = None
                ) -> Response:
    versions = parse_if_match(if_match)
    change = AlertChange(status=body.status, resolution=body.resolution,
                         assign="assignee_id" in body.model_fields_set, assignee_id=body.assignee_id,
                         comment=body.comment)
    view = update_alert(state.db, principal, alert_id, versions, change, _render(state))
    return _json(view, version=view["version"])


@router.get("/alerts/{alert_id}/comments", summary="Bình luận / Comments", response_model=CommentList,
            responses=_PROBLEMS)
def list_comments(alert_id: str, principal: Reader, state: StateDep) -> Response:
    with state.db.read() as session:
        alert = visible_alert(session, principal, alert_id)
        items = comments_of(session, alert.id)
    return _json({"items": items})


@router.post("/alerts/{alert_id}/comments", summary="Thêm bình luận / Add a comment", status_code=201,
             response_model=CommentOut, responses=_PROBLEMS)
def post_comment(alert_id: str, body: CommentIn, principal: Triager, state: StateDep) -> Response:
    return _json(add_comment(state.db, principal, alert_id, body.body), status_code=201)

"""``/api/v1/incidents``: alerts escalated into incidents, with the national
reporting fields (see :mod:`soc.triage.incidents`). Writes need the ``triage``
permission; incidents outside the caller's agency scope answer 404."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Response

from soc.api.deps import Reader, StateDep, Triager
from soc.api.etag import etag
from soc.db import utcnow
from soc.triage.changes import parse_if_match
from soc.triage.incidents import (
    IncidentFilter,
    NewIncident,
    add_action,
    create_incident,
    incident_detail,
    link_alerts,
    list_incidents,
    update_incident,
    visible_incident,
)
from soc.triage.queries import parse_when, split_values
from soc.triage.schemas import ActionIn, IncidentDetail, IncidentIn, IncidentPage, IncidentPatch, LinkIn

router = APIRouter(prefix="/api/v1", tags=["incidents"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such incident (or alert) in your agency scope / Không có trong phạm vi của bạn"},
}


def _json(body: Any, *, status_code: int = 200) -> Response:
    headers = {"ETag": etag(body["version"])} if isinstance(body, dict) and "version" in body else None
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers)


@router.post("/incidents", summary="Tạo sự cố từ cảnh báo / Escalate alerts into an incident", status_code=201,
             response_model=IncidentDetail, responses={
                 **_NOT_FOUND, 409: {"description": "An alert already belongs to another incident"},
                 422: {"description": "Alerts of several agencies without agency_id, or an agency outside scope"}})
def post_incident(body: IncidentIn, principal: Triager, state: StateDep) -> Response:
    new = NewIncident(title=body.title, alert_ids=list(body.alert_ids), description=body.description,
                      severity=body.severity, classification=body.classification, occurred_at=body.occurred_at,
                      detected_at=body.detected_at, agency_id=body.agency_id,
                      affected_systems=body.affected_systems, impact=body.impact)
    return _json(create_incident(state.db, principal, new, state.cfg), status_code=201)


@router.get("/incidents", summary="Danh sách sự cố / Incidents", response_model=IncidentPage)
def get_incidents(
    principal: Reader, state: StateDep,
    status: Annotated[list[str] | None, Query(description="open, investigating, contained, resolved, closed")] = None,
    severity: Annotated[list[str] | None, Query(description="low, medium, high, critical")] = None,
    classification: Annotated[list[str] | None, Query()] = None,
    agency_id: Annotated[list[str] | None, Query()] = None,
    since: Annotated[str | None, Query(description="detected at or after (24h, 7d or ISO 8601)")] = None,
    until: Annotated[str | None, Query(description="detected before")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    tz = state.cfg.tz
    flt = IncidentFilter(status=split_values(status), severity=split_values(severity),
                         classification=split_values(classification), agency_id=split_values(agency_id),
                         since=parse_when(since, "since", tz), until=parse_when(until, "until", tz))
    with state.db.read() as session:
        items, next_cursor = list_incidents(session, principal, flt, limit=limit, cursor=cursor, now=utcnow())
    return _json({"items": items, "next_cursor": next_cursor})


@router.get("/incidents/{incident_id}", summary="Chi tiết sự cố / Incident detail", response_model=IncidentDetail,
            responses=_NOT_FOUND)
def get_incident(incident_id: str, principal: Reader, state: StateDep) -> Response:
    with state.db.read() as session:
        incident = visible_incident(session, principal, incident_id)
        body = incident_detail(session, incident, state.cfg, utcnow())
    return _json(body)


@router.patch("/incidents/{incident_id}", summary="Cập nhật sự cố / Update an incident",
              response_model=IncidentDetail, responses={
                  **_NOT_FOUND, 412: {"description": "Stale If-Match: 'current' is the incident as it is now"},
                  428: {"description": "If-Match missing"}})
def patch_incident(incident_id: str, body: IncidentPatch, principal: Triager, state: StateDep,
                   if_match: Annotated[str | None, Header(description='The ETag you read, e.g. "2"')] = None
                   ) -> Response:
    versions = parse_if_match(if_match)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return _json(update_incident(state.db, principal, incident_id, versions, changes, state.cfg))


@router.post("/incidents/{incident_id}/actions", summary="Ghi biện pháp đã thực hiện / Record an action taken",
             status_code=201, response_model=IncidentDetail, responses=_NOT_FOUND)
def post_action(incident_id: str, body: ActionIn, principal: Triager, state: StateDep) -> Response:
    return _json(add_action(state.db, principal, incident_id, body.action, body.at, state.cfg), status_code=201)


@router.post("/incidents/{incident_id}/alerts", summary="Gắn thêm cảnh báo / Link more alerts",
             response_model=IncidentDetail, responses={
                 **_NOT_FOUND, 409: {"description": "An alert already belongs to another incident"}})
def post_alerts(incident_id: str, body: LinkIn, principal: Triager, state: StateDep) -> Response:
    return _json(link_alerts(state.db, principal, incident_id, body.alert_ids, state.cfg))

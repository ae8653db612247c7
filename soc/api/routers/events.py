"""``GET /api/v1/events``: search stored events with the analyst query language,
within the caller's agency scope."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from soc.api.deps import Reader, StateDep, query_time
from soc.api.errors import ApiError
from soc.store.base import QueryError, TimeRange
from soc.triage.examples import EVENT

router = APIRouter(prefix="/api/v1", tags=["events"])


@router.get("/events", summary="Tìm kiếm sự kiện / Search events (within your agencies)", responses={200: {
    "content": {"application/json": {"example": {"returned": 1, "events": [EVENT], "total": 25}}}}})
def search_events(
    state: StateDep,
    principal: Reader,
    q: Annotated[str, Query(description="Query, e.g. event.outcome:failure AND source.ip:10.0.0.0/8",
                            examples=["user.name:root AND event.category:authentication"])] = "*",
    since: Annotated[str | None, Query(description="24h, 7d or ISO 8601")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 or relative")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    count: Annotated[bool, Query(description="Also return the total number of matches")] = False,
) -> dict[str, Any]:
    rng = TimeRange(query_time(since, state), query_time(until, state))
    # Only events of the caller's agencies; a reader of every agency also sees
    # events no system claims (``unassigned``, without gov.agency.id).
    agencies = None if principal.scope.all else principal.scope.agencies
    try:
        events = state.store.search(q, rng, limit=limit, agencies=agencies)
        body: dict[str, Any] = {"returned": len(events), "events": events}
        if count:
            body["total"] = state.store.count(q, rng, agencies=agencies)
    except QueryError as exc:
        raise ApiError(400, "api.bad_query", detail=str(exc)) from None
    return body

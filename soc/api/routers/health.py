"""Liveness (any signed-in user) and Prometheus metrics (``service.read``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from soc import __version__
from soc.api.deps import Reader, ServiceReader, StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Service health / Tình trạng dịch vụ", responses={200: {"content": {
    "application/json": {"example": {"status": "ok", "version": "0.1.0", "store": "elasticsearch", "systems": 9}}}}})
def healthz(state: StateDep, _: Reader) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "store": state.store.name,
            "systems": len(state.registry.systems)}


@router.get("/metrics", summary="Prometheus metrics / Chỉ số Prometheus", response_class=Response)
def metrics(state: StateDep, _: ServiceReader) -> Response:
    return Response(generate_latest(state.metrics.registry()), media_type=CONTENT_TYPE_LATEST)

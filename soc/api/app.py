"""The FastAPI application: routers per resource, authentication injected."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from soc import __version__
from soc.api import errors
from soc.api.deps import ServiceReader
from soc.api.openapi import keep_example_nulls
from soc.api.routers import (
    agencies,
    alerts,
    audit,
    auth,
    events,
    health,
    incidents,
    ingest,
    notifications,
    source_health,
    systems,
    users,
)
from soc.api.state import AppState


def create_app(state: AppState) -> FastAPI:
    # Every route needs credentials, the API description included: it is served by
    # an authenticated route below instead of FastAPI's open /openapi.json and /docs.
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        title="SOC tỉnh / Provincial SOC API",
        version=__version__,
        description="Giám sát an toàn thông tin cho chính quyền điện tử cấp tỉnh / "
                    "Security monitoring for provincial e-government.",
    )
    app.state.soc = state
    errors.install(app)
    for module in (health, auth, users, agencies, systems, source_health, alerts, incidents, audit, notifications,
                   ingest, events):
        app.include_router(module.router)
    keep_example_nulls(app)

    @app.get("/openapi.json", tags=["health"], include_in_schema=False)
    def openapi(_: ServiceReader) -> dict[str, Any]:
        return app.openapi()

    return app

"""The FastAPI application: routers per resource, authentication injected."""

from __future__ import annotations

from fastapi import FastAPI

from soc import __version__
from soc.api import errors
from soc.api.routers import events, health, ingest
from soc.api.state import AppState


def create_app(state: AppState) -> FastAPI:
    app = FastAPI(
        title="SOC tỉnh / Provincial SOC API",
        version=__version__,
        description="Giám sát an toàn thông tin cho chính quyền điện tử cấp tỉnh / "
                    "Security monitoring for provincial e-government.",
    )
    app.state.soc = state
    errors.install(app)
    app.include_router(health.router)
    app.include_router(ingest.router)
    app.include_router(events.router)
    return app

"""What the API routes need from the running service, injected as one object."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from collectors.batch import Batch
from soc.auth import AdminTokenVerifier
from soc.config import SocConfig
from soc.pipeline.core import BatchResult
from soc.pipeline.metrics import Metrics
from soc.store.base import EventStore
from soc.systems import SystemRegistry

Submit = Callable[[Batch], Awaitable[BatchResult]]


@dataclass
class AppState:
    cfg: SocConfig
    store: EventStore
    registry: SystemRegistry
    metrics: Metrics
    submit: Submit
    admin: AdminTokenVerifier
    ingest_source: str = "http"
    ingest_format: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

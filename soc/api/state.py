"""What the API routes need from the running service, injected as one object."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from collectors.batch import Batch
from soc.config import SocConfig
from soc.db import Database
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
    db: Database
    """The SOC state database (users, inventory, alerts, incidents, audit)."""
    ingest_source: str = "http"
    ingest_format: str | None = None
    activity: Any = None
    """Per system and log source arrival counters (:mod:`soc.inventory.activity`)."""
    extra: dict[str, object] = field(default_factory=dict)

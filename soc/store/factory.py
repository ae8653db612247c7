"""Open the event store a configuration names."""

from __future__ import annotations

from soc.config import SocConfig
from soc.store.base import EventStore


def open_store(cfg: SocConfig) -> EventStore:
    from soc.store.sqlite import SqliteEventStore

    return SqliteEventStore(cfg.store_path, synchronous=cfg.store.synchronous.upper())

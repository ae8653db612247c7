"""Open the event store a configuration names."""

from __future__ import annotations

from soc.config import SocConfig
from soc.store.base import EventStore


def open_store(cfg: SocConfig) -> EventStore:
    if cfg.store.type == "elasticsearch":
        from soc.store.elastic.store import ElasticEventStore

        return ElasticEventStore(cfg.elasticsearch)
    from soc.store.sqlite import SqliteEventStore

    return SqliteEventStore(cfg.store_path, synchronous=cfg.store.synchronous.upper())

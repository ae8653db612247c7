"""The event store interface: the only thing the pipeline, API and CLI know of a store.

The embedded SQLite store and the Elasticsearch store implement it; callers never
branch on which one they hold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collectors.event import Event


class StoreUnavailable(RuntimeError):
    """The store cannot take writes right now; the caller spools the batch."""


class QueryError(ValueError):
    """An analyst query that cannot be parsed or translated; the message says why
    in a way a person can act on."""


@dataclass(slots=True, frozen=True)
class TimeRange:
    since: datetime | None = None
    until: datetime | None = None


class EventStore(ABC):
    """Durable, idempotent event storage with the analyst query language."""

    name: str = "store"

    @abstractmethod
    def write(self, events: Sequence[Event]) -> int:
        """Store a batch durably; returns how many were new. Events whose
        ``event.id`` is already stored are ignored (redelivery is harmless).
        Raises :class:`StoreUnavailable` when the batch could not be stored."""

    def encode(self, events: Sequence[Event]) -> Any:
        """Serialise a slice of events for :meth:`write_encoded`. The pipeline calls
        it on small slices right after they are built, while they are still in the
        CPU cache; the default keeps the events as they are."""
        return list(events)

    def write_encoded(self, parts: Sequence[Any]) -> int:
        """Store, in one durable step, the slices :meth:`encode` returned."""
        return self.write([event for part in parts for event in part])

    @abstractmethod
    def search(self, query: str, time_range: TimeRange = TimeRange(), limit: int = 100,
               newest_first: bool = True) -> list[Event]:
        """Events matching the query in the time range. Raises QueryError."""

    @abstractmethod
    def count(self, query: str, time_range: TimeRange = TimeRange()) -> int:
        """How many events match. Raises QueryError."""

    @abstractmethod
    def delete_before(self, cutoff: datetime) -> int:
        """Retention: remove events older than ``cutoff``; returns how many."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release resources."""

"""The event store interface: the only thing the pipeline, API and CLI know of a store.

The embedded SQLite store and the Elasticsearch store implement it; callers never
branch on which one they hold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collectors.event import Event, get_field, parse_iso


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
               newest_first: bool = True, *, agencies: frozenset[str] | None = None) -> list[Event]:
        """Events matching the query in the time range. Raises QueryError.

        ``agencies``: only events whose ``gov.agency.id`` is one of these (a reader's
        agency scope); None means no restriction, an empty set matches nothing. It is
        a structured condition of its own, never text spliced into ``query``."""

    @abstractmethod
    def count(self, query: str, time_range: TimeRange = TimeRange(), *,
              agencies: frozenset[str] | None = None) -> int:
        """How many events match (``agencies`` as in :meth:`search`). Raises QueryError."""

    def iter_range(self, since: datetime | None = None, until: datetime | None = None, *, query: str = "*",
                   batch: int = 1000) -> Iterator[list[Event]]:
        """Every event matching ``query`` in ``[since, until)``, oldest first, in lists
        of about ``batch`` (retro-hunts read all of history through this with bounded
        memory). Raises QueryError.

        This default pages through :meth:`search` by ``@timestamp``, skipping the
        events already returned at the page boundary; a store with a cursor of its own
        overrides it."""
        size = max(1, batch)
        lower = since
        # Ids already returned at time ``lower``: ``since`` is inclusive, so the next
        # page starts with them again.
        boundary: set[str] = set()
        while True:
            want = size + len(boundary)
            page = self.search(query, TimeRange(lower, until), limit=want, newest_first=False)
            fresh = [e for e in page if _event_id(e) not in boundary]
            if fresh:
                yield fresh
            if len(page) < want:
                return
            try:
                newest = parse_iso(str(page[-1].get("@timestamp")))
            except ValueError:
                return  # no time to page on: the store keeps every event timed, so never expected
            stamp = page[-1].get("@timestamp")
            at_newest = {_event_id(e) for e in page if e.get("@timestamp") == stamp}
            if lower is not None and newest == lower:
                boundary |= at_newest  # more than a page of events share this instant
            else:
                lower, boundary = newest, at_newest

    @abstractmethod
    def delete_before(self, cutoff: datetime) -> int:
        """Retention: remove events older than ``cutoff``; returns how many."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release resources."""


def _event_id(event: Event) -> str:
    return str(get_field(event, "event.id") or "")

"""Pipeline transforms, registered by name so the topology in YAML can list them.

``parse`` turns a batch of raw records into ECS events (and normalizes the common
fields); every later transform takes and returns a list of events. The detection
engine registers itself as the ``detect`` transform.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collectors.batch import Batch, Origin
from collectors.event import NO_TIMESTAMP_TAG, PARSE_FAILURE_TAG, Event, iso_from_epoch, unique_ids
from collectors.parsers import Dispatcher, JsonMapping, ParseContext
from collectors.parsers.dispatch import original_text
from soc.systems import SystemRegistry


@dataclass(slots=True)
class StageContext:
    """What the service hands every transform when it builds the topology."""

    registry: SystemRegistry
    tz: Any
    json_mappings: dict[str, JsonMapping]
    options: dict[str, Any]
    config: Any = None
    """The whole :class:`~soc.config.SocConfig` (paths, data directory)."""


class Transform(ABC):
    name: str = "transform"

    @abstractmethod
    def apply(self, events: list[Event], origin: Origin) -> list[Event]:
        """Transform a batch of events (may drop, add or change events)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most have nothing to release
        """Release resources (the detection engine flushes its state here)."""


TransformFactory = Callable[[StageContext], Transform]
TRANSFORMS: dict[str, TransformFactory] = {}


def register_transform(name: str) -> Callable[[TransformFactory], TransformFactory]:
    def deco(factory: TransformFactory) -> TransformFactory:
        TRANSFORMS[name] = factory
        return factory

    return deco


class ParseStage:
    """Raw records → ECS events, never losing one: unreadable records come out as
    failure events (tagged ``_parse_failure``) that are stored like the rest."""

    _MAX_STREAMS = 4096

    def __init__(self, tz: Any, json_mappings: dict[str, JsonMapping]) -> None:
        self._tz = tz
        self._mappings = json_mappings
        self._dispatcher = Dispatcher()
        # One parse context per stream (file, TCP peer, …): IIS #Fields headers and
        # the last successful parser are stream state.
        self._contexts: OrderedDict[tuple[str, str | None, str | None], ParseContext] = OrderedDict()

    def _context(self, origin: Origin) -> ParseContext:
        key = (origin.source, origin.peer, origin.path)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = ParseContext(tz=self._tz, json_mappings=self._mappings)
            self._contexts[key] = ctx
            if len(self._contexts) > self._MAX_STREAMS:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(key)
        ctx.now = datetime.fromtimestamp(origin.received, UTC)
        return ctx

    def run(self, batch: Batch) -> tuple[list[Event], int]:
        """The batch's events and how many of them are parse failures."""
        origin = batch.origin
        ctx = self._context(origin)
        fmt = origin.format if origin.format and origin.format != "auto" else None
        ids = batch.ids or unique_ids(len(batch.records))
        ingested = iso_from_epoch(time.time())
        received = iso_from_epoch(origin.received)
        extra = _origin_fields(origin)
        parse = self._dispatcher.parse
        events: list[Event] = []
        failures = 0
        for i, record in enumerate(batch.records):
            event = parse(record, fmt, ctx)
            meta = event.get("event")
            if not isinstance(meta, dict):
                meta = event["event"] = {}
            meta["id"] = ids[i]
            if "original" not in meta:
                meta["original"] = record if isinstance(record, str) else original_text(record)
            meta["ingested"] = ingested
            meta.setdefault("kind", "event")
            if "@timestamp" not in event:
                event["@timestamp"] = received
                tags = event.get("tags")
                if tags is None:
                    event["tags"] = [NO_TIMESTAMP_TAG]
                elif NO_TIMESTAMP_TAG not in tags:
                    tags.append(NO_TIMESTAMP_TAG)
            if extra:
                for key, value in extra.items():
                    event.setdefault(key, {}).update(value)
            if batch.offsets is not None:
                event.setdefault("log", {})["offset"] = batch.offsets[i]
            tags = event.get("tags")
            if tags and PARSE_FAILURE_TAG in tags:
                failures += 1
            events.append(event)
        return events, failures


def _origin_fields(origin: Origin) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"input": {"type": origin.kind}}
    if origin.peer:
        out["log"] = {"source": {"address": origin.peer}}
    if origin.path:
        out.setdefault("log", {})["file"] = {"path": origin.path}
    return out


def _host_names(event: Event) -> Iterator[str]:
    """Host names a log carries about its sender, most specific first. Written out
    rather than looked up by dotted path: this runs for every unattributed event."""
    for obj_name, keys in (("host", ("hostname", "name")), ("observer", ("name", "hostname"))):
        obj = event.get(obj_name)
        if isinstance(obj, dict):
            for key in keys:
                value = obj.get(key)
                if isinstance(value, str) and value:
                    yield value
    syslog = (event.get("log") or {}).get("syslog")
    if isinstance(syslog, dict) and isinstance(syslog.get("hostname"), str):
        yield syslog["hostname"]


class EnrichStage(Transform):
    """Adds ``gov.*``: the system, agency, level and classification of each event.

    Attribution order: the system named by the ingest key / source / ``--system``;
    else the sender's IP; else a host name the log itself carries; else
    ``unassigned``. The ``gov`` objects are shared between events: read-only."""

    name = "enrich"

    def __init__(self, registry: SystemRegistry) -> None:
        self._registry = registry

    def apply(self, events: list[Event], origin: Origin) -> list[Event]:
        reg = self._registry
        system_id = origin.system_id
        if system_id is None and origin.peer:
            system_id = reg.system_for_ip(origin.peer)
        if system_id is not None:
            gov = reg.attribution(system_id).fields
            for event in events:
                event["gov"] = gov
            return events
        by_host: dict[str, str | None] = {}
        for event in events:
            found: str | None = None
            for host in _host_names(event):
                if host not in by_host:
                    by_host[host] = reg.system_for_host(host)
                found = by_host[host]
                if found:
                    break
            event["gov"] = reg.attribution(found).fields
        return events


@register_transform("enrich")
def _enrich(ctx: StageContext) -> Transform:
    return EnrichStage(ctx.registry)

"""Build the topology a configuration declares: stages, sinks, the registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from collectors.parsers import JsonMapping
from collectors.parsers.json_audit import load_json_mappings
from soc.config import ConfigError, FileSinkConfig, SocConfig
from soc.pipeline.alarm import OnAlarm, SpoolAlarm
from soc.pipeline.core import Pipeline
from soc.pipeline.metrics import Metrics
from soc.pipeline.sinks import FileSink, Sink, SpoolingSink, StoreSink
from soc.pipeline.spool import DiskSpool
from soc.pipeline.stages import TRANSFORMS, ParseStage, StageContext, Transform
from soc.store.base import EventStore
from soc.store.factory import open_store
from soc.systems import SystemRegistry

if TYPE_CHECKING:
    from soc.db import Database


@dataclass
class Topology:
    pipeline: Pipeline
    store: EventStore
    registry: SystemRegistry
    metrics: Metrics

    def set_on_alarm(self, on_alarm: OnAlarm | None) -> None:
        """Send every sink's spool alarm to ``on_alarm`` (the service raises SOC
        alerts with :func:`~soc.pipeline.alarm.spool_alert_handler`). A spool already
        in warning or full — a restart in the middle of an outage — is announced
        to it at once."""
        for sink in self.pipeline.sinks:
            sink.alarm.on_alarm = on_alarm
            sink.alarm.announce_current(sink.last_error)


def load_mappings(cfg: SocConfig) -> dict[str, JsonMapping]:
    directory = cfg.json_mappings_dir
    if directory is None or not directory.is_dir():
        return {}
    try:
        return load_json_mappings(directory)
    except ValueError as exc:
        raise ConfigError(directory, "-", str(exc), "sửa tệp ánh xạ JSON / correct the JSON mapping file") from exc


def inventory_registry(cfg: SocConfig, db: Database | None = None) -> SystemRegistry:
    """The registry of the inventory database (``db``, else the configured one),
    after importing what the YAML seed adds."""
    from soc.db import open_database
    from soc.inventory.registry import load_registry
    from soc.inventory.seed import seed_inventory

    db = db if db is not None else open_database(cfg)
    seed_inventory(db, cfg)
    return load_registry(db)


def build_topology(cfg: SocConfig, *, metrics: Metrics | None = None,
                   registry: SystemRegistry | None = None, on_alarm: OnAlarm | None = None,
                   db: Database | None = None) -> Topology:
    """Build what ``cfg`` declares. Without ``registry``, events are attributed from
    the inventory database (``db``, else the configured one), seeded first.
    ``on_alarm`` hears of every spool alarm transition (see :mod:`soc.pipeline.alarm`);
    it can also be set later with :meth:`Topology.set_on_alarm`."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    if registry is None:
        registry = inventory_registry(cfg, db)
    metrics = metrics or Metrics()
    mappings = load_mappings(cfg)
    transforms: list[Transform] = []
    if any(spec.type == "detect" for spec in cfg.transforms):
        import soc.detect.stage  # noqa: F401  (registers the ``detect`` transform)
    for i, spec in enumerate(cfg.transforms[1:], start=1):
        factory = TRANSFORMS.get(spec.type)
        if factory is None:
            where = cfg.config_path or Path("config/soc.yaml")
            raise ConfigError(where, f"transforms.{i}.type", f"unknown transform {spec.type!r}",
                              f"dùng một trong / use one of: {', '.join(sorted(TRANSFORMS))}")
        transforms.append(factory(StageContext(registry, cfg.tz, mappings, spec.options, cfg)))
    store = open_store(cfg)
    sinks: list[SpoolingSink] = []
    for name, sink_spec in cfg.sinks.items():
        sink: Sink
        if isinstance(sink_spec, FileSinkConfig):
            path = sink_spec.path if sink_spec.path.is_absolute() else cfg.data_dir / sink_spec.path
            sink = FileSink(name, path)
        else:
            sink = StoreSink(name, store)
        spool = DiskSpool(cfg.spool_dir / name, cfg.pipeline.spool_max_bytes)
        alarm = SpoolAlarm(name, spool, cfg.pipeline.spool_alarm_ratio, on_alarm)
        spooling = SpoolingSink(sink, spool, cfg.pipeline.spool_replay_interval, alarm=alarm)
        metrics.spools[name] = spooling.reading
        sinks.append(spooling)
    # The event store comes first: its counts are what callers are told was stored
    # (and, being idempotent, it is the one that may see a refused batch again).
    sinks.sort(key=lambda s: not isinstance(s.sink, StoreSink))
    for spooling in sinks:
        # A spool left past the threshold by the last run: log it (and tell on_alarm) now.
        spooling.alarm.check(None)
    pipeline = Pipeline(ParseStage(cfg.tz, mappings), transforms, sinks, metrics)
    return Topology(pipeline, store, registry, metrics)

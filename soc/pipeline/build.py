"""Build the topology a configuration declares: stages, sinks, the registry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collectors.parsers import JsonMapping
from collectors.parsers.json_audit import load_json_mappings
from soc.config import ConfigError, FileSinkConfig, SocConfig
from soc.pipeline.core import Pipeline
from soc.pipeline.metrics import Metrics
from soc.pipeline.sinks import FileSink, Sink, SpoolingSink, StoreSink
from soc.pipeline.spool import DiskSpool
from soc.pipeline.stages import TRANSFORMS, ParseStage, StageContext, Transform
from soc.store.base import EventStore
from soc.store.factory import open_store
from soc.systems import SystemRegistry, load_registry


@dataclass
class Topology:
    pipeline: Pipeline
    store: EventStore
    registry: SystemRegistry
    metrics: Metrics


def load_mappings(cfg: SocConfig) -> dict[str, JsonMapping]:
    directory = cfg.json_mappings_dir
    if directory is None or not directory.is_dir():
        return {}
    try:
        return load_json_mappings(directory)
    except ValueError as exc:
        raise ConfigError(directory, "-", str(exc), "sửa tệp ánh xạ JSON / correct the JSON mapping file") from exc


def build_topology(cfg: SocConfig, *, metrics: Metrics | None = None,
                   registry: SystemRegistry | None = None) -> Topology:
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    registry = registry or load_registry(cfg.systems_dir, cfg.data_dir)
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
        sinks.append(SpoolingSink(sink, DiskSpool(cfg.spool_dir / name), cfg.pipeline.spool_replay_interval))
    # The event store comes first: its counts are what callers are told was stored.
    sinks.sort(key=lambda s: not isinstance(s.sink, StoreSink))
    pipeline = Pipeline(ParseStage(cfg.tz, mappings), transforms, sinks, metrics)
    return Topology(pipeline, store, registry, metrics)

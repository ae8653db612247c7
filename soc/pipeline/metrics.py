"""Pipeline counters per source and stage, exposed on ``/metrics`` and in the
status line of ``soc run``."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry


@dataclass(frozen=True, slots=True)
class SpoolReading:
    """One sink spool's state for ``/metrics`` (read at scrape time, cheap)."""

    bytes: int
    max_bytes: int | None
    fill_ratio: float
    segments: int
    alarm: int
    """0 ok, 1 warning, 2 full (see :mod:`soc.pipeline.alarm`)."""
    refused: int
    """Batches the spool refused (monotonic)."""
    transitions: dict[str, int] = field(default_factory=dict)
    """Alarm state → transitions into it (monotonic)."""


STAGES = ("received", "parsed", "parse_failures", "stored", "spooled", "dropped")


@dataclass
class Metrics:
    """Thread-safe counters: ``counts[(source, stage)]``."""

    counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    gauges: dict[str, Callable[[], float]] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    """Each running source's own stats object (``as_dict()``: received, dropped …)."""
    spools: dict[str, Callable[[], SpoolReading]] = field(default_factory=dict)
    """Sink name → reads its spool (``soc_spool_*{sink}``)."""
    started: float = field(default_factory=time.time)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rate_mark: tuple[float, int] = (0.0, 0)
    last_rate: float = 0.0
    """Events/s over the last status interval (what :meth:`rate` last measured)."""

    def add(self, source: str, stage: str, n: int) -> None:
        if n:
            with self._lock:
                self.counts[(source, stage)] += n

    def total(self, stage: str) -> int:
        with self._lock:
            total = sum(v for (_, s), v in self.counts.items() if s == stage)
        if stage == "dropped":
            # Records a source lost before the pipeline saw them (UDP overflow).
            total += sum(stats.dropped for stats in self.sources.values())
        return total

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            out: dict[str, dict[str, int]] = defaultdict(dict)
            for (source, stage), value in self.counts.items():
                out[source][stage] = value
        for name, stats in self.sources.items():
            out[name]["dropped"] = out[name].get("dropped", 0) + stats.dropped
        return dict(out)

    def rate(self) -> float:
        """Events/s stored or spooled since the previous call (the status interval)."""
        now = time.time()
        done = self.total("stored") + self.total("spooled")
        last_t, last_n = self._rate_mark
        self._rate_mark = (now, done)
        if last_t == 0.0:
            elapsed = now - self.started
            self.last_rate = done / elapsed if elapsed > 0 else 0.0
        else:
            self.last_rate = (done - last_n) / (now - last_t) if now > last_t else 0.0
        return self.last_rate

    def registry(self) -> CollectorRegistry:
        reg = CollectorRegistry(auto_describe=False)
        reg.register(_PipelineCollector(self))
        return reg


class _PipelineCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily("soc_pipeline_events", "Events per source and pipeline stage",
                                     labels=["source", "stage"])
        for source, stages in sorted(self._m.snapshot().items()):
            for stage in STAGES:
                events.add_metric([source, stage], stages.get(stage, 0))
        yield events
        source_stats = CounterMetricFamily("soc_source", "Counters kept by each source",
                                           labels=["source", "counter"])
        for name, stats in sorted(self._m.sources.items()):
            for counter, value in stats.as_dict().items():
                if counter != "active":
                    source_stats.add_metric([name, counter], value)
        yield source_stats
        for name, read in sorted(self._m.gauges.items()):
            gauge = GaugeMetricFamily(f"soc_{name}", name.replace("_", " "))
            gauge.add_metric([], float(read()))
            yield gauge
        yield from _spool_metrics(self._m.spools)
        rate = GaugeMetricFamily("soc_pipeline_events_per_second",
                                 "Events stored or spooled per second over the last status interval")
        rate.add_metric([], self._m.last_rate)
        yield rate
        up = GaugeMetricFamily("soc_uptime_seconds", "Seconds since the pipeline started")
        up.add_metric([], time.time() - self._m.started)
        yield up


def _spool_metrics(spools: dict[str, Callable[[], SpoolReading]]) -> Iterator[Metric]:
    readings = {name: read() for name, read in sorted(spools.items())}
    if not readings:
        return
    size = GaugeMetricFamily("soc_spool_bytes", "Bytes waiting in the sink's disk spool", labels=["sink"])
    quota = GaugeMetricFamily("soc_spool_max_bytes", "Disk quota of the sink's spool", labels=["sink"])
    fill = GaugeMetricFamily("soc_spool_fill_ratio", "Spool bytes / quota", labels=["sink"])
    segments = GaugeMetricFamily("soc_spool_segments", "Batches waiting in the sink's spool", labels=["sink"])
    alarm = GaugeMetricFamily("soc_spool_alarm", "Spool alarm: 0 ok, 1 warning, 2 full", labels=["sink"])
    refused = CounterMetricFamily("soc_spool_refused_batches", "Batches the full spool refused (not acknowledged)",
                                  labels=["sink"])
    transitions = CounterMetricFamily("soc_spool_alarm_transitions", "Spool alarm transitions into each state",
                                      labels=["sink", "state"])
    for name, r in readings.items():
        size.add_metric([name], r.bytes)
        if r.max_bytes is not None:
            quota.add_metric([name], r.max_bytes)
        fill.add_metric([name], r.fill_ratio)
        segments.add_metric([name], r.segments)
        alarm.add_metric([name], r.alarm)
        refused.add_metric([name], r.refused)
        for state, count in sorted(r.transitions.items()):
            transitions.add_metric([name, state], count)
    yield from (size, quota, fill, segments, alarm, refused, transitions)

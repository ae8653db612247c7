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

STAGES = ("received", "parsed", "parse_failures", "stored", "spooled", "dropped")


@dataclass
class Metrics:
    """Thread-safe counters: ``counts[(source, stage)]``."""

    counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    gauges: dict[str, Callable[[], float]] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    """Each running source's own stats object (``as_dict()``: received, dropped …)."""
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
        rate = GaugeMetricFamily("soc_pipeline_events_per_second",
                                 "Events stored or spooled per second over the last status interval")
        rate.add_metric([], self._m.last_rate)
        yield rate
        up = GaugeMetricFamily("soc_uptime_seconds", "Seconds since the pipeline started")
        up.add_metric([], time.time() - self._m.started)
        yield up

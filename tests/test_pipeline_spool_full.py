"""A sink down long enough to fill its spool: the pipeline stops acknowledging
batches (sources back off and resend), never half-stores one, and everything flows
again, in order, once the sink is back."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from collectors.batch import Batch, Origin, RawRecord
from collectors.event import Event
from collectors.sources.base import Batcher, SourceStats
from soc.config import FileSinkConfig, PipelineConfig, SocConfig, StoreSinkConfig
from soc.pipeline.alarm import SpoolAlarmEvent
from soc.pipeline.build import build_topology
from soc.pipeline.core import AsyncPipeline, Pipeline
from soc.pipeline.metrics import Metrics
from soc.pipeline.sinks import FileSink, Sink, SpoolingSink, StoreSink
from soc.pipeline.spool import DiskSpool, SpoolFull, encode_batch
from soc.pipeline.stages import EnrichStage, ParseStage, Transform
from soc.store.base import TimeRange
from soc.store.sqlite import SqliteEventStore
from soc.systems import load_registry
from tests.conftest import DATASETS, REPO
from tests.sources.helpers import run, wait_until

SSHD = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"
LINES = SSHD.read_text().splitlines()[:40]
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def _batch(i: int) -> Batch:
    """The i-th batch of ten sshd lines, with the stable ids a file source gives."""
    lines: list[RawRecord] = list(LINES[i * 10:(i + 1) * 10])
    return Batch(Origin("auth", "file", path="/var/log/auth.log"), lines, ids=[f"auth-{i}-{j}" for j in range(10)])


class Switch(Sink):
    """A real sink behind a switch: down, it fails as a lost cluster does."""

    def __init__(self, inner: Sink) -> None:
        self.name = inner.name
        self.inner = inner
        self.up = True

    def write(self, events: Sequence[Event]) -> int:
        self._check()
        return self.inner.write(events)

    def encode(self, events: Sequence[Event]) -> Any:
        return self.inner.encode(events)

    def write_encoded(self, parts: Sequence[Any]) -> int:
        self._check()
        return self.inner.write_encoded(parts)

    def _check(self) -> None:
        if not self.up:
            raise ConnectionError("cluster unreachable")

    def close(self) -> None:
        self.inner.close()


class Recorder(Sink):
    def __init__(self, name: str = "store") -> None:
        self.name = name
        self.events: list[Event] = []

    def write(self, events: Sequence[Event]) -> int:
        self.events.extend(events)
        return len(events)


class Counting(Transform):
    """Counts the events it sees (as detection would feed them to correlation windows)."""

    name = "counting"

    def __init__(self) -> None:
        self.seen = 0

    def apply(self, events: list[Event], origin: Origin) -> list[Event]:
        self.seen += len(events)
        return events


def _pipeline(*sinks: tuple[Sink, DiskSpool], counting: Counting | None = None) -> Pipeline:
    registry = load_registry(REPO / "config" / "systems")
    spooling = [SpoolingSink(sink, spool, replay_interval=0) for sink, spool in sinks]
    transforms: list[Transform] = [EnrichStage(registry), *([counting] if counting else [])]
    return Pipeline(ParseStage(TZ, {}), transforms, spooling, Metrics())


def _spooled_sizes(n: int) -> list[int]:
    """What each of the first ``n`` batches takes in a spool, measured on a twin
    pipeline whose sink works (same lines and ids, so the same size)."""
    recorder = Recorder()
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        twin = _pipeline((recorder, DiskSpool(Path(tmp))))
        for i in range(n):
            start = len(recorder.events)
            twin.process(_batch(i))
            sizes.append(len(encode_batch(recorder.events[start:])))
    return sizes


SIZES = _spooled_sizes(4)
QUOTA = SIZES[0] + SIZES[1] + SIZES[2] // 2
"""Room for two batches, not three."""


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# --- one sink ----------------------------------------------------------------------------

@pytest.fixture
def down(tmp_path: Path) -> Iterator[tuple[Pipeline, Switch, Recorder]]:
    recorder = Recorder()
    switch = Switch(recorder)
    switch.up = False
    pipeline = _pipeline((switch, DiskSpool(tmp_path / "spool", QUOTA)))
    yield pipeline, switch, recorder
    pipeline.close()


def test_batches_are_spooled_until_the_quota_then_the_pipeline_refuses(
        down: tuple[Pipeline, Switch, Recorder]) -> None:
    pipeline, _, _ = down
    assert [pipeline.process(_batch(i)).spooled for i in (0, 1)] == [10, 10]
    with pytest.raises(SpoolFull):
        pipeline.process(_batch(2))


def test_a_refused_batch_is_neither_spooled_nor_counted(down: tuple[Pipeline, Switch, Recorder],
                                                        tmp_path: Path) -> None:
    pipeline, _, _ = down
    pipeline.process(_batch(0))
    pipeline.process(_batch(1))
    before = _files(tmp_path / "spool")
    with pytest.raises(SpoolFull):
        pipeline.process(_batch(2))
    assert _files(tmp_path / "spool") == before
    assert pipeline.metrics.snapshot()["auth"].get("spooled") == 20
    assert pipeline.metrics.snapshot()["auth"].get("stored", 0) == 0


def test_after_recovery_the_spool_drains_in_order_and_the_refused_batch_follows(
        down: tuple[Pipeline, Switch, Recorder], tmp_path: Path) -> None:
    pipeline, switch, recorder = down
    pipeline.process(_batch(0))
    pipeline.process(_batch(1))
    with pytest.raises(SpoolFull):
        pipeline.process(_batch(2))
    switch.up = True
    assert pipeline.process(_batch(2)).stored == 10  # the source resends it
    assert pipeline.process(_batch(3)).stored == 10
    assert [e["event"]["original"] for e in recorder.events] == LINES[:40]
    assert not list((tmp_path / "spool").glob("*.ndjson"))


def test_while_the_spool_is_full_a_resent_batch_is_refused_before_the_transforms(tmp_path: Path) -> None:
    counting = Counting()
    switch = Switch(Recorder())
    switch.up = False
    pipeline = _pipeline((switch, DiskSpool(tmp_path / "spool", QUOTA)), counting=counting)
    pipeline.process(_batch(0))
    pipeline.process(_batch(1))
    with pytest.raises(SpoolFull):
        pipeline.process(_batch(2))
    seen = counting.seen
    for _ in range(3):  # the source retries
        with pytest.raises(SpoolFull):
            pipeline.process(_batch(2))
    assert counting.seen == seen == 30


def test_a_replay_that_drains_the_spool_lets_batches_in_again(tmp_path: Path) -> None:
    recorder = Recorder()
    switch = Switch(recorder)
    switch.up = False
    pipeline = _pipeline((switch, DiskSpool(tmp_path / "spool", QUOTA)))
    pipeline.process(_batch(0))
    pipeline.process(_batch(1))
    with pytest.raises(SpoolFull):
        pipeline.process(_batch(2))
    switch.up = True
    assert pipeline.replay_spools() == 20
    assert pipeline.process(_batch(2)).stored == 10


def test_the_spool_alarm_reports_full_with_the_sinks_error(down: tuple[Pipeline, Switch, Recorder]) -> None:
    pipeline, _, _ = down
    heard: list[SpoolAlarmEvent] = []
    pipeline.sinks[0].alarm.on_alarm = heard.append
    pipeline.process(_batch(0))
    pipeline.process(_batch(1))
    with pytest.raises(SpoolFull):
        pipeline.process(_batch(2))
    assert heard[-1].state == "full"
    assert heard[-1].last_error == "ConnectionError: cluster unreachable"


# --- what the source sees ---------------------------------------------------------------------

def test_submit_raises_spool_full_to_the_source(down: tuple[Pipeline, Switch, Recorder]) -> None:
    pipeline, _, _ = down

    async def main() -> BaseException | None:
        runner = AsyncPipeline(pipeline, queue_batches=4)
        runner.start()
        try:
            await runner.submit(_batch(0))
            await runner.submit(_batch(1))
            try:
                await runner.submit(_batch(2))
            except SpoolFull as exc:
                return exc
            return None
        finally:
            await runner.drain_and_stop()

    assert isinstance(run(main()), SpoolFull)


def test_a_batcher_holds_a_refused_batch_and_delivers_it_once_the_sink_is_back(
        down: tuple[Pipeline, Switch, Recorder]) -> None:
    pipeline, switch, recorder = down
    stats = SourceStats()

    async def main() -> None:
        runner = AsyncPipeline(pipeline, queue_batches=4)
        runner.start()
        batcher = Batcher(runner.submit, Origin("auth", "file", path="/var/log/auth.log"), stats,
                          max_records=10, max_delay=3600)

        async def add(lines: list[str]) -> None:
            for line in lines:
                await batcher.add(line)

        try:
            await add(LINES[:20])
            third = asyncio.create_task(add(LINES[20:30]))
            await wait_until(lambda: stats.errors >= 2, what="the refused batch retried")
            assert (stats.batches, third.done()) == (2, False)
            switch.up = True
            await asyncio.wait_for(third, 10)
            assert stats.batches == 3
        finally:
            await batcher.close()
            await runner.drain_and_stop()

    run(main())
    assert [e["event"]["original"] for e in recorder.events] == LINES[:30]


# --- two sinks: the event store and a file archive ----------------------------------------------

@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Pipeline, Switch, Switch, SqliteEventStore, Path]]:
    store = SqliteEventStore(tmp_path / "events.db")
    archive = tmp_path / "archive.ndjson"
    store_sink, file_sink = Switch(StoreSink("store", store)), Switch(FileSink("archive", archive))
    pipeline = _pipeline((store_sink, DiskSpool(tmp_path / "spool" / "store", QUOTA)),
                         (file_sink, DiskSpool(tmp_path / "spool" / "archive", QUOTA)))
    yield pipeline, store_sink, file_sink, store, archive
    pipeline.close()
    store.close()


def _archived(archive: Path) -> list[str]:
    return [orjson.loads(line)["event"]["original"] for line in archive.read_bytes().splitlines()]


def test_a_full_archive_spool_keeps_the_refused_batch_out_of_the_event_store(
        two: tuple[Pipeline, Switch, Switch, SqliteEventStore, Path]) -> None:
    pipeline, _, file_sink, store, _ = two
    file_sink.up = False
    pipeline.process(_batch(0))
    pipeline.process(_batch(1))
    with pytest.raises(SpoolFull):
        pipeline.process(_batch(2))
    assert store.count("*", TimeRange()) == 20


def test_a_full_store_spool_keeps_the_refused_batch_out_of_the_archive(
        two: tuple[Pipeline, Switch, Switch, SqliteEventStore, Path]) -> None:
    pipeline, store_sink, _, _, archive = two
    store_sink.up = False
    pipeline.process(_batch(0))
    pipeline.process(_batch(1))
    with pytest.raises(SpoolFull):
        pipeline.process(_batch(2))
    assert _archived(archive) == LINES[:20]


def test_a_resent_refused_batch_is_stored_once_in_each_sink_after_recovery(
        two: tuple[Pipeline, Switch, Switch, SqliteEventStore, Path]) -> None:
    pipeline, _, file_sink, store, archive = two
    file_sink.up = False
    pipeline.process(_batch(0))
    pipeline.process(_batch(1))
    with pytest.raises(SpoolFull):
        pipeline.process(_batch(2))
    file_sink.up = True
    pipeline.process(_batch(2))
    assert store.count("*", TimeRange()) == 30
    assert _archived(archive) == LINES[:30]


# --- the topology built from the configuration ------------------------------------------------------

def _config(tmp_path: Path, max_bytes: int = 1 << 20, ratio: float = 0.5) -> SocConfig:
    return SocConfig(data_dir=tmp_path / "var", systems_dir=REPO / "config" / "systems", json_mappings_dir=None,
                     pipeline=PipelineConfig(spool_max_bytes=max_bytes, spool_alarm_ratio=ratio),
                     sinks={"store": StoreSinkConfig(type="store"),
                            "archive": FileSinkConfig(type="file", path=Path("archive.ndjson"))})


def test_every_sink_spool_gets_the_configured_quota_alarm_ratio_and_metrics(tmp_path: Path) -> None:
    topo = build_topology(_config(tmp_path, max_bytes=123_456, ratio=0.6))
    try:
        assert {s.name: (s.spool.max_bytes, s.alarm.ratio) for s in topo.pipeline.sinks} == {
            "store": (123_456, 0.6), "archive": (123_456, 0.6)}
        assert set(topo.metrics.spools) == {"store", "archive"}
    finally:
        topo.pipeline.close()
        topo.store.close()


def test_a_spool_left_full_by_the_last_run_is_announced_when_the_service_attaches(tmp_path: Path) -> None:
    cfg = _config(tmp_path, max_bytes=SIZES[0])
    DiskSpool(cfg.spool_dir / "store").append([{"message": "x" * SIZES[0]}])
    topo = build_topology(cfg)
    heard: list[SpoolAlarmEvent] = []
    try:
        topo.set_on_alarm(heard.append)
        assert [(e.sink, e.state) for e in heard] == [("store", "full")]
    finally:
        topo.pipeline.close()
        topo.store.close()


def test_build_topology_hands_alarm_transitions_to_on_alarm(tmp_path: Path) -> None:
    cfg = _config(tmp_path, max_bytes=SIZES[0])
    DiskSpool(cfg.spool_dir / "archive").append([{"message": "x" * SIZES[0]}])
    heard: list[SpoolAlarmEvent] = []
    topo = build_topology(cfg, on_alarm=heard.append)
    try:
        assert [(e.sink, e.previous, e.state) for e in heard] == [("archive", "ok", "full")]
    finally:
        topo.pipeline.close()
        topo.store.close()

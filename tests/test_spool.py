"""The disk spool: a quota it never exceeds, a size it keeps across restarts, batches
replayed oldest first; and the alarm that tells people it is filling up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.event import Event
from collectors.parsers import Dispatcher, ParseContext
from soc.pipeline.alarm import SpoolAlarm, SpoolAlarmEvent
from soc.pipeline.metrics import Metrics
from soc.pipeline.sinks import Sink, SpoolingSink
from soc.pipeline.spool import DiskSpool, SpoolFull, encode_batch
from soc.store.base import StoreUnavailable
from tests.conftest import DATASETS

SSHD = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"
BATCH = 5


def _parsed(n: int) -> list[Event]:
    ctx = ParseContext(now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    dispatcher = Dispatcher()
    return [dispatcher.parse(line, None, ctx) for line in SSHD.read_text().splitlines()[:n]]


EVENTS = _parsed(8 * BATCH)
BATCHES = [EVENTS[i:i + BATCH] for i in range(0, len(EVENTS), BATCH)]
SIZES = [len(encode_batch(b)) for b in BATCHES]


def _segment_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.ndjson"))


def _drain(spool: DiskSpool) -> list[list[Event]]:
    got: list[list[Event]] = []
    spool.replay(got.append)
    return got


# --- quota ---------------------------------------------------------------------------

def test_a_batch_that_would_pass_the_quota_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=SIZES[0] + SIZES[1] + SIZES[2] - 1)
    spool.append(BATCHES[0])
    spool.append(BATCHES[1])
    files = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SpoolFull):
        spool.append(BATCHES[2])
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    assert spool.pending_segments() == 2
    assert spool.pending_bytes() == SIZES[0] + SIZES[1]


def test_a_batch_that_fits_exactly_is_taken(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=SIZES[0] + SIZES[1])
    spool.append(BATCHES[0])
    spool.append(BATCHES[1])
    assert spool.fill_ratio() == 1.0


def test_the_refusal_names_quota_directory_and_sizes_in_both_languages(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=2048)
    with pytest.raises(SpoolFull) as err:
        spool.append(EVENTS)
    message = str(err.value)
    assert "hạn mức 2.0 KiB" in message and "quota 2.0 KiB" in message
    assert str(tmp_path) in message
    refusal = err.value
    assert (refusal.max_bytes, refusal.pending_bytes, refusal.needed_bytes) == (2048, 0, len(encode_batch(EVENTS)))


def test_without_a_quota_the_spool_takes_everything(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    for batch in BATCHES:
        spool.append(batch)
    assert spool.pending_segments() == len(BATCHES)
    assert spool.fill_ratio() == 0.0


# --- size accounting -------------------------------------------------------------------

def test_pending_bytes_is_what_the_segments_take_on_disk(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    for batch in BATCHES[:3]:
        spool.append(batch)
    assert spool.pending_bytes() == _segment_bytes(tmp_path) == sum(SIZES[:3])


def test_size_and_fill_ratio_are_measured_again_after_a_restart(tmp_path: Path) -> None:
    quota = 4 * sum(SIZES[:3])
    first = DiskSpool(tmp_path, max_bytes=quota)
    for batch in BATCHES[:3]:
        first.append(batch)
    reopened = DiskSpool(tmp_path, max_bytes=quota)
    assert reopened.pending_segments() == 3
    assert reopened.pending_bytes() == sum(SIZES[:3])
    assert reopened.fill_ratio() == pytest.approx(0.25)


def test_a_reopened_spool_still_enforces_the_quota(tmp_path: Path) -> None:
    quota = SIZES[0] + SIZES[1]
    DiskSpool(tmp_path, max_bytes=quota).append(BATCHES[0])
    reopened = DiskSpool(tmp_path, max_bytes=quota)
    with pytest.raises(SpoolFull):
        reopened.append(BATCHES[1] + BATCHES[2])


def test_replay_gives_back_the_bytes_of_each_segment_it_drains(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    for batch in BATCHES[:3]:
        spool.append(batch)
    _drain(spool)
    assert (spool.pending_segments(), spool.pending_bytes(), spool.fill_ratio()) == (0, 0, 0.0)
    assert _segment_bytes(tmp_path) == 0


def test_a_failed_replay_keeps_the_failing_segment_and_its_bytes(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    for batch in BATCHES[:3]:
        spool.append(batch)
    taken: list[list[Event]] = []

    def write(events: list[Event]) -> None:
        if taken:
            raise StoreUnavailable("down again")
        taken.append(events)

    with pytest.raises(StoreUnavailable):
        spool.replay(write)
    assert taken == [BATCHES[0]]
    assert spool.pending_bytes() == SIZES[1] + SIZES[2] == _segment_bytes(tmp_path)
    assert _drain(spool) == BATCHES[1:3]


# --- order and content -------------------------------------------------------------------

def test_batches_come_back_oldest_first_and_unchanged_after_a_restart(tmp_path: Path) -> None:
    first = DiskSpool(tmp_path, max_bytes=1 << 20)
    for batch in BATCHES[:4]:
        first.append(batch)
    reopened = DiskSpool(tmp_path, max_bytes=1 << 20)
    reopened.append(BATCHES[4])
    assert _drain(reopened) == BATCHES[:5]


def test_numbering_continues_after_a_restart_so_order_holds_past_ten_segments(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    for i in range(12):
        if i % 5 == 0:
            spool = DiskSpool(tmp_path)
        spool.append(BATCHES[i % len(BATCHES)])
    assert _drain(DiskSpool(tmp_path)) == [BATCHES[i % len(BATCHES)] for i in range(12)]


def test_a_batch_appended_during_a_replay_waits_behind_it_for_the_next_one(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    spool.append(BATCHES[0])
    spool.append(BATCHES[1])
    got: list[list[Event]] = []

    def write(events: list[Event]) -> None:
        got.append(events)
        if len(got) == 1:
            # A new batch arrives while the spool is draining (the sink is slow).
            spool.append(BATCHES[2])

    assert spool.replay(write) == 2 * BATCH
    assert got == BATCHES[:2]
    assert spool.pending_segments() == 1
    assert _drain(spool) == [BATCHES[2]]


def test_a_leftover_temporary_file_of_an_interrupted_append_is_discarded(tmp_path: Path) -> None:
    DiskSpool(tmp_path).append(BATCHES[0])
    (tmp_path / "000000000001.tmp").write_bytes(encode_batch(BATCHES[1])[:100])
    reopened = DiskSpool(tmp_path)
    assert not list(tmp_path.glob("*.tmp"))
    assert reopened.pending_bytes() == SIZES[0]
    assert _drain(reopened) == [BATCHES[0]]


def test_a_damaged_segment_is_set_aside_and_does_not_block_later_batches(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path)
    spool.append(BATCHES[0])
    spool.append(BATCHES[1])
    damaged = sorted(tmp_path.glob("*.ndjson"))[0]
    damaged.write_bytes(b'{"truncated": \n')
    assert _drain(DiskSpool(tmp_path)) == [BATCHES[1]]
    assert damaged.with_suffix(".corrupt").exists()


# --- the alarm ---------------------------------------------------------------------------

class DownSink(Sink):
    """A destination that refuses writes until it comes back."""

    def __init__(self) -> None:
        self.name = "store"
        self.up = False
        self.got: list[Event] = []

    def write(self, events: Sequence[Event]) -> int:
        if not self.up:
            raise ConnectionError("cluster unreachable")
        self.got.extend(events)
        return len(events)


@pytest.fixture
def alarmed(tmp_path: Path) -> tuple[SpoolingSink, DownSink, list[SpoolAlarmEvent]]:
    """A sink that is down, whose spool takes four batches (warning from the third)."""
    heard: list[SpoolAlarmEvent] = []
    spool = DiskSpool(tmp_path / "spool", max_bytes=sum(SIZES[:4]))
    ratio = (SIZES[0] + SIZES[1] + SIZES[2] / 2) / sum(SIZES[:4])
    sink = DownSink()
    spooling = SpoolingSink(sink, spool, replay_interval=3600,
                            alarm=SpoolAlarm("store", spool, ratio=ratio, on_alarm=heard.append))
    return spooling, sink, heard


def _fill(spooling: SpoolingSink, stop: int, start: int = 0) -> None:
    for batch in BATCHES[start:stop]:
        spooling.write(batch)


def test_the_alarm_stays_quiet_below_its_ratio(alarmed: tuple[SpoolingSink, DownSink, list[SpoolAlarmEvent]]) -> None:
    spooling, _, heard = alarmed
    _fill(spooling, 2)
    assert (spooling.alarm.state, heard) == ("ok", [])


def test_the_alarm_goes_ok_warning_full_and_back_to_ok(
        alarmed: tuple[SpoolingSink, DownSink, list[SpoolAlarmEvent]]) -> None:
    spooling, sink, heard = alarmed
    _fill(spooling, 3)
    assert [(e.previous, e.state) for e in heard] == [("ok", "warning")]
    _fill(spooling, 4, start=3)  # the fourth batch fills the quota exactly
    assert [(e.previous, e.state) for e in heard][-1] == ("warning", "full")
    sink.up = True
    spooling.replay()
    assert [(e.previous, e.state) for e in heard] == [("ok", "warning"), ("warning", "full"), ("full", "ok")]


def test_a_refused_batch_sets_the_alarm_to_full(alarmed: tuple[SpoolingSink, DownSink, list[SpoolAlarmEvent]]) -> None:
    spooling, _, heard = alarmed
    _fill(spooling, 3)
    with pytest.raises(SpoolFull):
        spooling.write(BATCHES[3] + BATCHES[4])
    assert spooling.alarm.state == "full"
    assert heard[-1].state == "full"
    assert spooling.alarm.refused == 1


def test_full_holds_after_a_refusal_even_if_a_smaller_batch_still_fits(
        alarmed: tuple[SpoolingSink, DownSink, list[SpoolAlarmEvent]]) -> None:
    spooling, _, heard = alarmed
    _fill(spooling, 3)
    with pytest.raises(SpoolFull):
        spooling.write(BATCHES[3] + BATCHES[4])
    spooling.write(BATCHES[3][:1])
    assert spooling.alarm.state == "full"
    assert [e.state for e in heard] == ["warning", "full"]


def test_a_partial_drain_brings_full_back_to_warning(
        alarmed: tuple[SpoolingSink, DownSink, list[SpoolAlarmEvent]]) -> None:
    spooling, sink, heard = alarmed
    _fill(spooling, 4)
    taken: list[list[Event]] = []

    def write_one(events: list[Event]) -> None:
        if taken:
            raise ConnectionError("cluster unreachable")
        taken.append(events)

    sink.write = write_one  # type: ignore[method-assign, assignment]  # takes one batch, then fails again
    spooling.replay()
    assert [e.state for e in heard] == ["warning", "full", "warning"]


def test_an_alarm_event_carries_the_sink_sizes_and_the_last_error(
        alarmed: tuple[SpoolingSink, DownSink, list[SpoolAlarmEvent]], tmp_path: Path) -> None:
    spooling, _, heard = alarmed
    _fill(spooling, 3)
    event = heard[0]
    assert (event.sink, event.state, event.segments) == ("store", "warning", 3)
    assert event.pending_bytes == sum(SIZES[:3])
    assert event.max_bytes == sum(SIZES[:4])
    assert event.fill_ratio == pytest.approx(sum(SIZES[:3]) / sum(SIZES[:4]))
    assert event.directory == tmp_path / "spool"
    assert event.last_error == "ConnectionError: cluster unreachable"


def test_each_transition_is_logged_once_in_both_languages_at_its_level(
        alarmed: tuple[SpoolingSink, DownSink, list[SpoolAlarmEvent]], caplog: pytest.LogCaptureFixture) -> None:
    spooling, sink, _ = alarmed
    caplog.set_level(logging.INFO, logger="soc.pipeline.spool")
    _fill(spooling, 4)
    sink.up = True
    spooling.replay()
    records = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in records] == [logging.WARNING, logging.ERROR, logging.INFO]
    warning, full, cleared = (message for _, message in records)
    assert "spool của sink store đầy" in warning and "spool of sink store is" in warning
    assert "ConnectionError: cluster unreachable" in warning
    assert "đã đầy" in full and "is full" in full and "ConnectionError: cluster unreachable" in full
    assert "xuống dưới ngưỡng" in cleared and "back below the alarm threshold" in cleared


def test_metrics_show_bytes_fill_and_alarm_per_sink(
        alarmed: tuple[SpoolingSink, DownSink, list[SpoolAlarmEvent]]) -> None:
    spooling, _, _ = alarmed
    metrics = Metrics()
    metrics.spools["store"] = spooling.reading
    _fill(spooling, 3)
    registry = metrics.registry()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"sink": "store", **labels})

    assert value("soc_spool_bytes") == sum(SIZES[:3])
    assert value("soc_spool_max_bytes") == sum(SIZES[:4])
    assert value("soc_spool_fill_ratio") == pytest.approx(sum(SIZES[:3]) / sum(SIZES[:4]))
    assert value("soc_spool_segments") == 3
    assert value("soc_spool_alarm") == 1
    assert value("soc_spool_alarm_transitions_total", state="warning") == 1


def test_metrics_count_refused_batches_and_show_full(
        alarmed: tuple[SpoolingSink, DownSink, list[SpoolAlarmEvent]]) -> None:
    spooling, _, _ = alarmed
    metrics = Metrics()
    metrics.spools["store"] = spooling.reading
    _fill(spooling, 3)
    for _ in range(2):
        with pytest.raises(SpoolFull):
            spooling.write(BATCHES[3] + BATCHES[4])
    registry = metrics.registry()
    assert registry.get_sample_value("soc_spool_alarm", {"sink": "store"}) == 2
    assert registry.get_sample_value("soc_spool_refused_batches_total", {"sink": "store"}) == 2


def test_a_batch_larger_than_the_whole_quota_waits_for_the_sink_without_jamming_the_spool(
        tmp_path: Path) -> None:
    sink = DownSink()
    spooling = SpoolingSink(sink, DiskSpool(tmp_path, max_bytes=SIZES[0] - 1))
    with pytest.raises(SpoolFull):
        spooling.write(BATCHES[0])
    assert spooling.alarm.state == "full"
    spooling.ensure_open()  # an empty spool holds nothing back
    sink.up = True
    assert spooling.write(BATCHES[0]).stored == BATCH
    assert spooling.alarm.state == "ok"


def test_a_failing_alarm_callback_does_not_fail_the_spooled_batch(tmp_path: Path) -> None:
    def broken(_event: SpoolAlarmEvent) -> None:
        raise RuntimeError("alert database locked")

    spool = DiskSpool(tmp_path, max_bytes=SIZES[0])
    spooling = SpoolingSink(DownSink(), spool, alarm=SpoolAlarm("store", spool, ratio=0.5, on_alarm=broken))
    assert spooling.write(BATCHES[0]).spooled == BATCH
    assert spooling.alarm.state == "full"


def test_the_sink_names_itself_and_its_last_error_when_its_spool_refuses(tmp_path: Path) -> None:
    spooling = SpoolingSink(DownSink(), DiskSpool(tmp_path, max_bytes=SIZES[0] - 1))
    with pytest.raises(SpoolFull) as err:
        spooling.write(BATCHES[0])
    assert err.value.sink == "store"
    assert err.value.last_error == "ConnectionError: cluster unreachable"
    assert "sink store" in str(err.value) and "ConnectionError: cluster unreachable" in str(err.value)

"""The pipeline: parse → normalize → enrich → sinks, with spooling on sink failure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from collectors.batch import Batch, Origin
from collectors.event import Event
from soc.config import load_config
from soc.pipeline.build import build_topology
from soc.pipeline.core import Pipeline
from soc.pipeline.metrics import Metrics
from soc.pipeline.sinks import Sink, SpoolingSink
from soc.pipeline.spool import DiskSpool
from soc.pipeline.stages import EnrichStage, ParseStage
from soc.store.base import StoreUnavailable, TimeRange
from soc.systems import load_registry
from tests.conftest import DATASETS, REPO

SSHD = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"


@pytest.fixture
def topo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SOC_DATA_DIR", str(tmp_path / "var"))
    topology = build_topology(load_config(REPO / "config" / "soc.yaml"))
    yield topology
    topology.pipeline.close()
    topology.store.close()


def test_every_event_gets_id_original_ingested_and_timestamp(topo) -> None:  # type: ignore[no-untyped-def]
    lines = SSHD.read_text().splitlines()[:50]
    result = topo.pipeline.process(Batch(Origin("t", "file", path="/x/auth.log"), lines))
    assert result.stored == 50
    for event in topo.store.search("*", TimeRange(), limit=100):
        assert event["event"]["id"] and event["event"]["ingested"] and event["@timestamp"]
        assert event["event"]["original"] in lines
        assert event["log"]["file"]["path"] == "/x/auth.log"


def test_a_malformed_line_is_kept_tagged_and_counted(topo) -> None:  # type: ignore[no-untyped-def]
    garbage = "\x00\x01 not a log line at all ]]]"
    result = topo.pipeline.process(Batch(Origin("t", "syslog", peer="127.0.0.1"), [garbage]))
    assert (result.failed, result.stored) == (1, 1)
    stored = topo.store.search("tags:_parse_failure", TimeRange())
    assert stored[0]["event"]["original"] == garbage
    assert stored[0]["error"]["message"]
    assert topo.metrics.snapshot()["t"]["parse_failures"] == 1


def test_events_from_a_registered_sender_are_attributed(topo) -> None:  # type: ignore[no-untyped-def]
    line = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186"
    topo.pipeline.process(Batch(Origin("t", "syslog", peer="10.10.4.7"), [line]))
    event = topo.store.search("*", TimeRange())[0]
    assert event["gov"]["system"]["id"] == "mail"
    assert event["gov"]["agency"]["id"] == "so-khcn"
    assert event["gov"]["classification"] == 3


def test_declared_system_wins_over_sender_ip(topo) -> None:  # type: ignore[no-untyped-def]
    line = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186"
    topo.pipeline.process(Batch(Origin("t", "http", peer="10.10.4.7", system_id="ioffice"), [line]))
    assert topo.store.search("*", TimeRange())[0]["gov"]["system"]["id"] == "ioffice"


def test_redelivered_batch_with_the_same_ids_is_stored_once(topo) -> None:  # type: ignore[no-untyped-def]
    lines = SSHD.read_text().splitlines()[:10]
    batch = Batch(Origin("t", "file"), lines, ids=[f"id-{i}" for i in range(10)])
    assert topo.pipeline.process(batch).stored == 10
    assert topo.pipeline.process(batch).stored == 0
    assert topo.store.count("*", TimeRange()) == 10


class FlakySink(Sink):
    """Fails until told to recover, like a store that went down."""

    def __init__(self) -> None:
        self.name = "flaky"
        self.up = False
        self.events: list[Event] = []

    def write(self, events: Sequence[Event]) -> int:
        if not self.up:
            raise StoreUnavailable("store is down")
        self.events.extend(events)
        return len(events)


def _pipeline(tmp_path: Path, sink: Sink) -> Pipeline:
    from zoneinfo import ZoneInfo

    spooling = SpoolingSink(sink, DiskSpool(tmp_path / "spool"), replay_interval=0)
    registry = load_registry(REPO / "config" / "systems")
    return Pipeline(ParseStage(ZoneInfo("Asia/Ho_Chi_Minh"), {}), [EnrichStage(registry)], [spooling], Metrics())


def test_a_failing_sink_spools_to_disk_and_replays_everything_in_order(tmp_path: Path) -> None:
    sink = FlakySink()
    pipeline = _pipeline(tmp_path, sink)
    lines = SSHD.read_text().splitlines()[:30]
    for start in (0, 10, 20):
        result = pipeline.process(Batch(Origin("t", "file"), lines[start:start + 10]))
        assert result.spooled == 10 and result.stored == 0
    assert list((tmp_path / "spool").glob("*.ndjson"))
    sink.up = True
    assert pipeline.replay_spools() == 30
    assert [e["event"]["original"] for e in sink.events] == lines
    assert not list((tmp_path / "spool").glob("*.ndjson"))


def test_spool_survives_a_restart(tmp_path: Path) -> None:
    sink = FlakySink()
    _pipeline(tmp_path, sink).process(Batch(Origin("t", "file"), ["Dec 10 06:55:46 h sshd[1]: x"]))
    sink.up = True
    restarted = _pipeline(tmp_path, sink)
    assert restarted.replay_spools() == 1
    assert len(sink.events) == 1


def test_redelivered_unparseable_line_is_stored_once(topo) -> None:  # type: ignore[no-untyped-def]
    first = Batch(Origin("t", "file", received=1_700_000_000.0), ["@@@ junk"], ids=["junk-1"])
    later = Batch(Origin("t", "file", received=1_700_000_900.0), ["@@@ junk"], ids=["junk-1"])
    assert topo.pipeline.process(first).stored == 1
    assert topo.pipeline.process(later).stored == 0
    assert topo.store.search("tags:_no_timestamp", TimeRange())[0]["event"]["original"] == "@@@ junk"


def test_a_batch_larger_than_a_slice_is_stored_whole_and_in_order(topo) -> None:  # type: ignore[no-untyped-def]
    lines = SSHD.read_text().splitlines()[:700]
    result = topo.pipeline.process(Batch(Origin("t", "file"), lines, ids=[f"s-{i:04d}" for i in range(700)],
                                         offsets=list(range(700))))
    assert (result.received, result.stored) == (700, 700)
    stored = topo.store.search("*", TimeRange(), limit=1000)
    assert {e["log"]["offset"] for e in stored} == set(range(700))
    assert {e["event"]["id"]: e["event"]["original"] for e in stored} == {f"s-{i:04d}": line
                                                                          for i, line in enumerate(lines)}

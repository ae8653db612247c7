"""Reading .evtx files: record counts, ids, agreement with the JSON-lines
conversions, and damaged files."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

import collectors.parsers  # noqa: F401  (registers the parsers)
import collectors.sources.evtx as evtx_source
from collectors.event import PARSE_FAILURE_TAG
from collectors.parsers import Dispatcher, ParseContext
from collectors.sources.evtx import EvtxReadStats, is_evtx_file, iter_evtx_batches
from tests.conftest import DATASETS

SAMPLES = (
    "evtx/Credential Access/kerberos_pwd_spray_4771.evtx",
    "evtx/Credential Access/MSSQL_multiple_failed_logon_EventID_18456.evtx",
    "evtx/Defense Evasion/DE_1102_security_log_cleared.evtx",
    "evtx/Execution/revshell_cmd_svchost_sysmon_1.evtx",
)


@cache
def _index() -> dict[str, dict[str, Any]]:
    rows = (orjson.loads(line) for line in (DATASETS / "evtx" / "index.jsonl").read_text().splitlines())
    return {row["file"]: row for row in rows}


def _records(path: Path, **kwargs: Any) -> list[Any]:
    return [record for batch in iter_evtx_batches(path, **kwargs) for record in batch.records]


@pytest.mark.parametrize("name", SAMPLES)
def test_reads_exactly_the_indexed_number_of_records(name: str) -> None:
    records = _records(DATASETS / name)
    assert len(records) == _index()[name]["event_count"]
    assert all(isinstance(r, dict) for r in records)


@pytest.mark.parametrize("name", SAMPLES)
def test_parsed_records_equal_the_parsed_jsonl_conversion(name: str, ctx: ParseContext) -> None:
    dispatcher = Dispatcher()
    from_evtx = [dispatcher.parse(r, "windows", ctx) for r in _records(DATASETS / name)]
    jsonl = DATASETS / _index()[name]["jsonl"]
    from_jsonl = [dispatcher.parse(line, None, ctx) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert {e["winlog"]["record_id"] for e in from_evtx} == {e["winlog"]["record_id"] for e in from_jsonl}
    assert from_evtx == from_jsonl


def test_ids_are_stable_across_reads_and_unique() -> None:
    path = DATASETS / SAMPLES[2]
    first = [i for b in iter_evtx_batches(path) for i in b.ids or []]
    second = [i for b in iter_evtx_batches(path, batch_size=7) for i in b.ids or []]
    assert first == second
    assert len(set(first)) == len(first) == _index()[SAMPLES[2]]["event_count"]


def test_ids_depend_on_the_file(tmp_path: Path) -> None:
    path = DATASETS / SAMPLES[0]
    copy = tmp_path / "copy.evtx"
    shutil.copyfile(path, copy)
    original = [i for b in iter_evtx_batches(path) for i in b.ids or []]
    copied = [i for b in iter_evtx_batches(copy) for i in b.ids or []]
    assert not set(original) & set(copied)


def test_batches_respect_batch_size_and_carry_the_origin() -> None:
    path = DATASETS / SAMPLES[2]
    batches = list(iter_evtx_batches(path, batch_size=50, source="cli", system_id="so-noi-vu"))
    assert [len(b) for b in batches] == [50, 50, 12]
    origin = batches[0].origin
    assert (origin.kind, origin.format, origin.source, origin.system_id) == ("evtx", "windows", "cli", "so-noi-vu")
    assert origin.path == str(path)
    assert all(b.ids is not None and len(b.ids) == len(b.records) for b in batches)


def test_is_evtx_file_checks_the_magic(tmp_path: Path) -> None:
    text = tmp_path / "not.evtx"
    text.write_text("ElfFile but not really\n")
    assert is_evtx_file(DATASETS / SAMPLES[0])
    assert not is_evtx_file(text)
    assert not is_evtx_file(tmp_path / "missing.evtx")


def test_non_evtx_file_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "log.txt"
    text.write_text("hello\n")
    with pytest.raises(ValueError, match="not an EVTX file"):
        list(iter_evtx_batches(text))


def _corrupt_copy(tmp_path: Path) -> Path:
    """A copy of a one-chunk log with garbage in its string table."""
    source = DATASETS / SAMPLES[2]
    data = bytearray(source.read_bytes())
    chunk = 0x1000  # the first chunk follows the 4 KiB file header
    for offset in range(chunk + 0x200 + 3000, chunk + 0x200 + 3400):
        data[offset] = (offset * 131 + 7) & 0xFF
    path = tmp_path / "damaged.evtx"
    path.write_bytes(bytes(data))
    return path


def test_damaged_chunk_is_counted_and_kept_as_text(tmp_path: Path, ctx: ParseContext) -> None:
    stats = EvtxReadStats()
    records = _records(_corrupt_copy(tmp_path), stats=stats)
    assert stats.errors >= 1
    assert stats.error_messages and "damaged.evtx" in stats.error_messages[0]
    errors = [r for r in records if isinstance(r, str)]
    assert len(errors) == stats.errors
    assert len(records) == stats.records + stats.errors
    failure = Dispatcher().parse(errors[0], "windows", ctx)
    assert PARSE_FAILURE_TAG in failure["tags"]
    assert "evtx read error" in failure["event"]["original"]


class _FakeParser:
    """Stands in for PyEvtxParser: one good record, one bad JSON, one raise."""

    def __init__(self, path: str) -> None:
        self.path = path

    def records_json(self) -> Iterator[dict[str, Any]]:
        good = (DATASETS / _index()[SAMPLES[0]]["jsonl"]).read_text(encoding="utf-8").splitlines()[0]
        yield {"event_record_id": 1, "timestamp": "", "data": good}
        yield {"event_record_id": 2, "timestamp": "", "data": '{"Event": {"System": '}
        raise RuntimeError("chunk 3 is damaged")


def test_undecodable_record_is_kept_as_raw_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evtx_source, "PyEvtxParser", _FakeParser)
    stats = EvtxReadStats()
    batches = list(iter_evtx_batches(DATASETS / SAMPLES[0], stats=stats))
    records = [r for b in batches for r in b.records]
    assert isinstance(records[0], dict)
    assert records[1] == '{"Event": {"System": '
    assert "chunk 3 is damaged" in records[2]
    assert (stats.records, stats.undecodable, stats.errors) == (1, 1, 1)

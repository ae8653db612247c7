from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

from collectors.batch import Batch
from collectors.event import stable_id
from collectors.sources import file_tail
from collectors.sources.file_tail import FileTailSource, LineSplitter, iter_file_batches
from tests.conftest import DATASETS
from tests.sources.helpers import FakeSubmit, run, running, wait_until

SSHD_LOG = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"


@pytest.fixture(scope="module")
def sshd_lines() -> list[str]:
    if not SSHD_LOG.exists():
        pytest.skip(f"dataset missing: {SSHD_LOG}")
    return SSHD_LOG.read_text(encoding="utf-8").splitlines()


def tail(tmp_path: Path, include: list[str], **kw: object) -> FileTailSource:
    kw.setdefault("poll_interval", 0.02)
    kw.setdefault("glob_interval", 0.05)
    return FileTailSource("files", include, checkpoint_path=tmp_path / "state" / "tail.json",
                          **kw)  # type: ignore[arg-type]


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def checkpoint_offsets(tmp_path: Path) -> dict[str, int]:
    doc = json.loads((tmp_path / "state" / "tail.json").read_text())
    return {entry["path"]: entry["offset"] for entry in doc["files"]}


def acked_by_id(batches: list[Batch]) -> dict[str, tuple[object, int]]:
    out: dict[str, tuple[object, int]] = {}
    for batch in batches:
        assert batch.ids is not None and batch.offsets is not None
        for record, id_, end in zip(batch.records, batch.ids, batch.offsets, strict=True):
            assert id_ not in out, "an acknowledged line was delivered twice"
            out[id_] = (record, end)
    return out


def test_appended_lines_are_read(tmp_path: Path, sshd_lines: list[str]) -> None:
    log = tmp_path / "auth.log"
    log.write_text("\n".join(sshd_lines[:3]) + "\n")

    async def main() -> None:
        submit = FakeSubmit()
        source = tail(tmp_path, [str(log)], format="linux_auth", system_id="portal")
        async with running(source, submit):
            await wait_until(lambda: len(submit.records) == 3)
            append(log, sshd_lines[3] + "\r\n" + sshd_lines[4] + "\n\n")
            await wait_until(lambda: len(submit.records) == 5)
        assert submit.records == sshd_lines[:5]
        batch = submit.acked[0]
        assert batch.origin.kind == "file"
        assert batch.origin.path == str(log)
        assert batch.origin.format == "linux_auth"
        assert batch.origin.system_id == "portal"
        offsets = [o for b in submit.acked for o in b.offsets or []]
        assert offsets[0] == len(sshd_lines[0]) + 1
        assert offsets[4] == log.stat().st_size - 1  # the blank line is not a record
        assert checkpoint_offsets(tmp_path) == {str(log): log.stat().st_size}

    run(main())


def test_partial_line_is_held_until_completed(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"first\nsecond-")

    async def main() -> None:
        submit = FakeSubmit()
        async with running(tail(tmp_path, [str(log)], partial_line_timeout=30), submit):
            await wait_until(lambda: submit.records == ["first"])
            await asyncio.sleep(0.15)  # several polls
            assert submit.records == ["first"]
            append(log, "part\n")
            await wait_until(lambda: len(submit.records) == 2)
        assert submit.records == ["first", "second-part"]

    run(main())


def test_partial_line_is_emitted_after_idle_timeout(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"first\nno newline yet")

    async def main() -> None:
        submit = FakeSubmit()
        async with running(tail(tmp_path, [str(log)], partial_line_timeout=0.2), submit):
            await wait_until(lambda: len(submit.records) == 2)
            append(log, "next\n")
            await wait_until(lambda: len(submit.records) == 3)
        assert submit.records == ["first", "no newline yet", "next"]
        offsets = [o for b in submit.acked for o in b.offsets or []]
        assert offsets == [6, 20, 25]

    run(main())


def test_rename_rotation_reads_old_file_to_end_first(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Read the old file in small slices, so the new file would overtake it if it
    # were not held back until the old one is read out.
    monkeypatch.setattr(file_tail, "_PASS_BYTES", 128)
    log = tmp_path / "app.log"
    rotated = tmp_path / "app.log.1"

    async def main() -> None:
        submit = FakeSubmit()
        source = tail(tmp_path, [str(log)], partial_line_timeout=0.1)
        writer = open(log, "a", encoding="utf-8")  # noqa: SIM115 - the app's long-lived handle
        try:
            writer.write("".join(f"a{i}\n" for i in range(5)))
            writer.flush()
            async with running(source, submit):
                await wait_until(lambda: len(submit.records) == 5)
                # The app writes more, logrotate renames and creates, the app still
                # writes to its old descriptor before it reopens.
                writer.write("".join(f"b{i}\n" for i in range(200)))
                writer.flush()
                os.rename(log, rotated)
                log.write_text("".join(f"c{i}\n" for i in range(5)))
                writer.write("late\n")
                writer.flush()
                await wait_until(lambda: len(submit.records) == 211)
                await wait_until(lambda: source.stats.active == 1, what="old file retired")
        finally:
            writer.close()
        records = submit.records
        assert sorted(records) == sorted([f"a{i}" for i in range(5)] + [f"b{i}" for i in range(200)]
                                         + [f"c{i}" for i in range(5)] + ["late"])
        assert records[:205] == [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(200)]
        assert [r for r in records if str(r).startswith("c")] == [f"c{i}" for i in range(5)]
        assert len(set(acked_by_id(submit.acked))) == 211
        assert list(checkpoint_offsets(tmp_path).values()) == [log.stat().st_size]

    run(main())


def test_copytruncate_restarts_from_zero_with_new_ids(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"before {i}\n" for i in range(20)))

    async def main() -> None:
        submit = FakeSubmit()
        async with running(tail(tmp_path, [str(log)]), submit):
            await wait_until(lambda: len(submit.records) == 20)
            shutil.copy(log, tmp_path / "app.log.1")
            with open(log, "r+") as f:
                f.truncate(0)
            append(log, "after 0\nafter 1\n")
            await wait_until(lambda: len(submit.records) == 22)
            # Truncated again, and refilled past the old offset before we look.
            with open(log, "r+") as f:
                f.truncate(0)
                f.write("".join(f"refilled with a longer line {i}\n" for i in range(10)))
            await wait_until(lambda: len(submit.records) == 32)
        assert submit.records[20:22] == ["after 0", "after 1"]
        assert submit.records[22:] == [f"refilled with a longer line {i}" for i in range(10)]
        assert len(acked_by_id(submit.acked)) == 32  # ids differ across truncations

    run(main())


def test_restart_resumes_exactly_from_checkpoint(tmp_path: Path, sshd_lines: list[str]) -> None:
    log = tmp_path / "auth.log"
    log.write_text("\n".join(sshd_lines) + "\n")
    n = len(sshd_lines)

    async def first_run() -> FakeSubmit:
        submit = FakeSubmit(delay=0.005)
        task = asyncio.create_task(tail(tmp_path, [str(log)], max_records=50).run(submit))
        await wait_until(lambda: len(submit.acked) >= 5 and len(submit.attempts) > len(submit.acked))
        task.cancel()  # a crash while a batch is in flight
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return submit

    async def second_run(expected_remaining: int) -> FakeSubmit:
        submit = FakeSubmit()
        async with running(tail(tmp_path, [str(log)], max_records=50), submit):
            await wait_until(lambda: len(submit.records) >= expected_remaining)
            await asyncio.sleep(0.1)
        return submit

    first = run(first_run())
    acked_first = acked_by_id(first.acked)
    assert 0 < len(acked_first) < n
    assert checkpoint_offsets(tmp_path) == {str(log): first.acked[-1].offsets[-1]}  # type: ignore[index]
    second = run(second_run(n - len(acked_first)))
    acked_second = acked_by_id(second.acked)

    assert not set(acked_first) & set(acked_second), "acknowledged lines were repeated"
    union = {**acked_first, **acked_second}
    assert len(union) == n
    assert [rec for rec, _ in sorted(union.values(), key=lambda v: v[1])] == sshd_lines
    # What the first run sent but never saw acknowledged came again, with the same ids.
    unacked = [b for b in first.attempts if b not in first.acked]
    assert unacked
    for batch in unacked:
        for record, id_ in zip(batch.records, batch.ids or [], strict=True):
            assert acked_second[id_][0] == record
    assert checkpoint_offsets(tmp_path) == {str(log): log.stat().st_size}


def test_checkpoint_not_advanced_when_submit_raises(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(10)))

    async def main() -> None:
        submit = FakeSubmit()
        submit.fail = True
        source = tail(tmp_path, [str(log)], max_records=4)
        async with running(source, submit):
            await wait_until(lambda: len(submit.attempts) >= 2)  # failed, rewound, failed again
            assert checkpoint_offsets(tmp_path) == {str(log): 0}
            assert submit.acked == []
            assert source.stats.errors >= 2
            submit.fail = False
            await wait_until(lambda: len(submit.records) == 10)
            await asyncio.sleep(0.05)
        assert submit.records == [f"line {i}" for i in range(10)]
        assert submit.attempts[0].ids == submit.acked[0].ids
        assert checkpoint_offsets(tmp_path) == {str(log): log.stat().st_size}

    run(main())


def test_glob_picks_up_new_files_and_honours_exclude(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "sub").mkdir(parents=True)
    (logs / "a.log").write_text("a1\n")
    (logs / "debug.log").write_text("excluded\n")

    async def main() -> None:
        submit = FakeSubmit()
        source = tail(tmp_path, [str(logs / "**" / "*.log")], exclude=["debug*", "*/sub/skip.log"])
        async with running(source, submit):
            await wait_until(lambda: submit.records == ["a1"])
            (logs / "sub" / "b.log").write_text("b1\n")
            (logs / "sub" / "skip.log").write_text("excluded too\n")
            await wait_until(lambda: len(submit.records) == 2)
            await asyncio.sleep(0.15)  # a few more scans
        assert submit.records == ["a1", "b1"]
        assert {b.origin.path for b in submit.acked} == {str(logs / "a.log"), str(logs / "sub" / "b.log")}

    run(main())


def test_read_from_end_skips_history_only_at_first_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("old 1\nold 2\n")

    async def main() -> None:
        submit = FakeSubmit()
        source = tail(tmp_path, [str(log)], read_from="end")
        async with running(source, submit):
            await wait_until(lambda: source.stats.active == 1)
            append(log, "new 1\n")
            await wait_until(lambda: len(submit.records) == 1)
        append(log, "written while stopped\n")
        async with running(tail(tmp_path, [str(log)], read_from="end"), submit):
            await wait_until(lambda: len(submit.records) == 2)
        assert submit.records == ["new 1", "written while stopped"]

    run(main())


def test_long_lines_are_split_not_dropped(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    long_line = "Nguyễn Văn Đức " * 20
    log.write_text(long_line + "\nshort\n" + long_line)

    async def main() -> None:
        submit = FakeSubmit()
        source = tail(tmp_path, [str(log)], max_line_bytes=64, partial_line_timeout=0.1)
        async with running(source, submit):
            await wait_until(lambda: "".join(map(str, submit.records)) == long_line + "short" + long_line)
        assert all(len(str(r).encode()) <= 64 for r in submit.records)
        assert not any("\ufffd" in str(r) for r in submit.records)
        assert "short" in submit.records
        assert source.stats.truncated > 0

    run(main())


def test_line_splitter_offsets() -> None:
    splitter = LineSplitter(100, max_line_bytes=8)
    lines = splitter.feed(b"ab\r\ncd") + splitter.feed(b"efghijkl\nx")
    assert lines == [(b"ab", 100, 104, False), (b"cdefghij", 104, 112, True),
                     (b"kl", 112, 115, False)]
    assert splitter.take_held() == [(b"x", 115, 116, False)]
    assert splitter.end == 116


def test_iter_file_batches_plain_and_gzip_with_stable_ids(tmp_path: Path, sshd_lines: list[str]) -> None:
    content = "\n".join(sshd_lines[:6]) + "\r\n\n" + sshd_lines[6]  # CRLF, blank, no final LF
    plain = tmp_path / "auth.log"
    plain.write_text(content)
    gz = tmp_path / "auth.log.gz"
    with gzip.open(gz, "wt") as f:
        f.write(content)

    for path in (plain, gz):
        batches = list(iter_file_batches(path, batch_size=3, system_id="portal", format="linux_auth"))
        assert [len(b) for b in batches] == [3, 3, 1]
        assert [r for b in batches for r in b.records] == sshd_lines[:7]
        first = batches[0]
        assert first.origin.path == str(path.resolve())
        assert first.origin.source == "cli" and first.origin.system_id == "portal"
        assert first.ids is not None and first.offsets is not None
        assert first.ids[0] == stable_id("file", str(path.resolve()), 0)
        assert first.ids[1] == stable_id("file", str(path.resolve()), first.offsets[0])
        again = list(iter_file_batches(path, batch_size=3))
        assert [b.ids for b in again] == [b.ids for b in batches]
        assert batches[-1].offsets == [len(content.encode())]

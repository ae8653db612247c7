from __future__ import annotations

import asyncio

from collectors.batch import Origin
from collectors.sources.base import Batcher, SourceStats, utf8_boundary
from tests.sources.helpers import FakeSubmit, run, wait_until


def _batcher(submit: FakeSubmit, **kw: float) -> tuple[Batcher, SourceStats]:
    stats = SourceStats()
    origin = Origin(source="t", kind="syslog", peer="10.0.0.1")
    return Batcher(submit, origin, stats, **kw), stats  # type: ignore[arg-type]


def test_flushes_when_full() -> None:
    async def main() -> None:
        submit = FakeSubmit()
        batcher, stats = _batcher(submit, max_records=3, max_delay=60)
        for i in range(7):
            await batcher.add(f"m{i}")
        assert [b.records for b in submit.acked] == [["m0", "m1", "m2"], ["m3", "m4", "m5"]]
        assert batcher.pending == 1
        await batcher.close()
        assert submit.records == [f"m{i}" for i in range(7)]
        assert stats.batches == 3
        ids = [i for b in submit.acked for i in b.ids or []]
        assert len(set(ids)) == 7
        assert all(b.origin.peer == "10.0.0.1" for b in submit.acked)

    run(main())


def test_flushes_after_max_delay() -> None:
    async def main() -> None:
        submit = FakeSubmit()
        batcher, _ = _batcher(submit, max_records=1000, max_delay=0.05)
        await batcher.add("a", received=123.0)
        await batcher.add("b")
        assert submit.acked == []
        await wait_until(lambda: len(submit.acked) == 1, timeout=1)
        assert submit.acked[0].records == ["a", "b"]
        assert submit.acked[0].origin.received == 123.0
        await batcher.add("c")
        await wait_until(lambda: len(submit.acked) == 2, timeout=1)
        assert batcher.idle

    run(main())


def test_failed_submit_is_retried_with_the_same_ids() -> None:
    async def main() -> None:
        submit = FakeSubmit()
        submit.fail = True
        batcher, stats = _batcher(submit, max_records=2, max_delay=60)
        await batcher.add("a")
        adding = asyncio.create_task(batcher.add("b"))
        await wait_until(lambda: len(submit.attempts) >= 2)
        assert not adding.done()  # the caller is held back while the store fails
        submit.fail = False
        await adding
        assert submit.records == ["a", "b"]
        assert stats.errors >= 2
        assert stats.dropped == 0
        assert len({tuple(b.ids or []) for b in submit.attempts}) == 1

    run(main())


def test_close_drops_and_counts_when_submit_keeps_failing() -> None:
    async def main() -> None:
        submit = FakeSubmit()
        submit.fail = True
        batcher, stats = _batcher(submit, max_records=10, max_delay=60)
        await batcher.add("a")
        await batcher.add("b")
        await batcher.close()
        assert stats.dropped == 2
        assert stats.batches == 0

    run(main())


def test_utf8_boundary_does_not_split_characters() -> None:
    data = "aé€😀".encode()  # 1 + 2 + 3 + 4 bytes
    for limit in range(1, len(data)):
        cut = utf8_boundary(data, limit)
        assert cut <= limit
        data[:cut].decode("utf-8")  # raises if a character was split
    assert utf8_boundary(data, 100) == len(data)
    assert utf8_boundary(b"\x80\x80\x80\x80\x80", 2) == 2  # not UTF-8 at all: cut where asked

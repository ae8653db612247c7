"""Test doubles and helpers for driving sources without pytest-asyncio."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from collectors.batch import Batch
from collectors.sources.base import Source

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
    """Run a test coroutine with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class FakeSubmit:
    """Records what it was given; can be slow, gated or failing.

    ``acked`` holds the batches for which the call returned (the acknowledgement
    point); ``attempts`` every batch it was called with."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.acked: list[Batch] = []
        self.attempts: list[Batch] = []

    async def __call__(self, batch: Batch) -> None:
        self.attempts.append(batch)
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("store unavailable")
        self.acked.append(batch)

    @property
    def records(self) -> list[Any]:
        return [r for b in self.acked for r in b.records]


async def wait_until(cond: Callable[[], bool], timeout: float = 3.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(source: Source, submit: FakeSubmit) -> AsyncIterator[asyncio.Task[None]]:
    """Run a source in the background; stop it gracefully on exit."""
    start = getattr(source, "start", None)
    if start is not None:
        await start()
    task = asyncio.create_task(source.run(submit))
    try:
        yield task
    finally:
        if task.done():
            task.result()
        else:
            await source.stop()
            await task

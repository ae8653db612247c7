"""Windows ``.evtx`` files dropped into an inbox folder (exported logs, evidence).

Each file matching the globs is read once when its size has stopped changing (a
copy in progress is not read half-way), submitted batch by batch, and then
remembered in a checkpoint by path, size and modification time. A file that
changes later is read again; its record ids are stable, so records already stored
are not duplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
from pathlib import Path

from collectors.sources.base import Source, SourceStats, Submit
from collectors.sources.evtx import is_evtx_file, iter_evtx_batches


class EvtxInboxSource(Source):
    def __init__(self, name: str, *, include: list[str], checkpoint_path: Path,
                 system_id: str | None = None, poll_interval: float = 5.0, batch_size: int = 1000) -> None:
        self.name = name
        self.include = include
        self.checkpoint_path = checkpoint_path
        self.system_id = system_id
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.stats = SourceStats()
        self._done: dict[str, list[float]] = self._load()
        self._sizes: dict[str, int] = {}
        self._stopping = asyncio.Event()

    def _load(self) -> dict[str, list[float]]:
        try:
            data: dict[str, list[float]] = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data

    def _save(self) -> None:
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self._done, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.checkpoint_path)

    def _ready_files(self) -> list[tuple[str, list[float]]]:
        ready: list[tuple[str, list[float]]] = []
        seen: set[str] = set()
        for pattern in self.include:
            for name in sorted(glob.glob(pattern, recursive=True)):
                if name in seen or not os.path.isfile(name):
                    continue
                seen.add(name)
                st = os.stat(name)
                mark = [float(st.st_size), st.st_mtime]
                if self._done.get(name) == mark:
                    continue
                # Read only once the size held still for one poll: the copy is complete.
                if self._sizes.get(name) != st.st_size:
                    self._sizes[name] = st.st_size
                    continue
                if is_evtx_file(name):
                    ready.append((name, mark))
        return ready

    async def run(self, submit: Submit) -> None:
        self.stats.active = 1
        try:
            while not self._stopping.is_set():
                for name, mark in await asyncio.to_thread(self._ready_files):
                    await self._read(name, submit)
                    self._done[name] = mark
                    await asyncio.to_thread(self._save)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_interval)
        finally:
            self.stats.active = 0

    async def _read(self, name: str, submit: Submit) -> None:
        batches = iter_evtx_batches(name, batch_size=self.batch_size, source=self.name,
                                    system_id=self.system_id)
        while True:
            batch = await asyncio.to_thread(next, batches, None)
            if batch is None:
                return
            self.stats.received += len(batch)
            await submit(batch)
            self.stats.batches += 1

    async def stop(self) -> None:
        self._stopping.set()

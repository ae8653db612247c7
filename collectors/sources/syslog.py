"""Syslog receivers: UDP (RFC 5426) and TCP, plain or TLS (RFC 6587, RFC 5425).

Lifecycle, the same for both sources:

* ``await source.start()`` binds the socket and sets :attr:`bound_port` (useful with
  ``port=0``). It is optional: :meth:`run` calls it when it has not been called.
* ``await source.run(submit)`` serves until cancelled or until :meth:`stop`.
* ``await source.stop()`` is the graceful stop: stop listening, submit every
  message already read (TCP: what the connections had buffered too), and wait
  for ``run`` to return. Cancelling ``run`` instead abandons unsubmitted messages.

Every message is one record: text decoded as UTF-8 with U+FFFD for bad bytes,
trailing CR/LF/NUL stripped. Batches are per sender IP, because enrichment
attributes events by sender. Records get :func:`unique_ids` so that a retried
batch keeps its ids.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import ssl
import time
from abc import abstractmethod
from typing import Any, Literal

from collectors.batch import Origin
from collectors.sources.base import (
    Batcher,
    Source,
    SourceStats,
    Submit,
    decode_text,
    utf8_boundary,
)

log = logging.getLogger(__name__)

Framing = Literal["auto", "lf", "octet"]

DEFAULT_MAX_MESSAGE = 64 * 1024
_READ_SIZE = 64 * 1024
_TERMINATOR = re.compile(rb"[\n\x00]")
_TRAILER = b"\r\n\x00"
_MAX_LENGTH_DIGITS = 10
_PRUNE_INTERVAL = 1.0


def _peer_ip(addr: Any) -> str | None:
    if not addr:
        return None
    ip = str(addr[0])
    # A dual-stack listener reports IPv4 senders as ::ffff:a.b.c.d; enrichment
    # and allow-lists know them as a.b.c.d.
    if ip.startswith("::ffff:") and "." in ip:
        ip = ip[7:]
    return ip


class FrameDecoder:
    """Splits a TCP byte stream into syslog messages (RFC 6587).

    ``octet``: ``LEN SP MSG`` frames, where MSG may contain newlines; a length that
    is not digits is a framing error and switches the stream to LF framing from
    that byte on (so the bytes still become records). ``lf``: messages end at LF,
    CRLF or NUL. ``auto`` picks per stream from the first byte: a digit means octet
    counting. Messages longer than ``max_size`` are cut at ``max_size`` (the rest is
    discarded) and counted in ``stats.truncated``; empty messages are skipped.
    """

    def __init__(self, framing: Framing, max_size: int, stats: SourceStats) -> None:
        self.mode: Framing = framing
        self._max = max(1, max_size)
        self._stats = stats
        self._buf = bytearray()
        self._discarding = False  # LF: skipping the tail of an oversized message
        self._need = 0  # octet: body bytes still to come for the current frame
        self._body = bytearray()
        self._body_cut = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        if not data:
            return out
        if self.mode == "auto":
            self.mode = "octet" if data[:1].isdigit() else "lf"
        self._buf += data
        if self.mode == "octet":
            self._octet(out)
        else:
            self._lf(out)
        return out

    def finish(self) -> list[bytes]:
        """End of stream: whatever is buffered becomes a record."""
        out: list[bytes] = []
        if self._need:
            self._emit(self._body, out, self._body_cut)
            self._need = 0
        elif self._buf and not self._discarding:
            if self.mode == "octet" and self._buf.strip(b" " + _TRAILER):
                self._stats.framing_errors += 1  # a length header without its frame
            self._emit(self._buf, out)
        self._buf.clear()
        self._body.clear()
        return out

    def _emit(self, msg: bytes | bytearray, out: list[bytes], cut: bool = False) -> None:
        msg = bytes(msg).rstrip(_TRAILER)
        if len(msg) > self._max:
            msg = msg[: utf8_boundary(msg, self._max)]
            cut = True
        if cut:
            self._stats.truncated += 1
        if msg:
            out.append(msg)

    def _lf(self, out: list[bytes]) -> None:
        buf = self._buf
        start = 0
        while (m := _TERMINATOR.search(buf, start)) is not None:
            if self._discarding:
                self._discarding = False
            else:
                self._emit(buf[start : m.start()], out)
            start = m.end()
        del buf[:start]
        if self._discarding:
            buf.clear()
        elif len(buf) > self._max:
            # No terminator within the limit: keep the head, skip to the next one.
            self._emit(buf, out)
            buf.clear()
            self._discarding = True

    def _octet(self, out: list[bytes]) -> None:
        buf = self._buf
        while True:
            if self._need:
                take = min(self._need, len(buf))
                room = self._max - len(self._body)
                if room > 0:
                    self._body += buf[: min(take, room)]
                if take > max(room, 0):
                    self._body_cut = True
                del buf[:take]
                self._need -= take
                if self._need:
                    return
                self._emit(self._body, out, self._body_cut)
                self._body.clear()
                self._body_cut = False
            # Senders often add a newline after each frame; tolerate it.
            skip = 0
            while skip < len(buf) and buf[skip] in b" \r\n\x00":
                skip += 1
            del buf[:skip]
            if not buf:
                return
            space = buf.find(b" ", 0, _MAX_LENGTH_DIGITS + 1)
            if space < 0:
                if len(buf) <= _MAX_LENGTH_DIGITS and buf.isdigit():
                    return  # the length continues in the next segment
                break
            head = bytes(buf[:space])
            if not head.isdigit():
                break
            del buf[: space + 1]
            self._need = int(head)
        self._stats.framing_errors += 1
        self.mode = "lf"
        self._lf(out)


class _ListenerSource(Source):
    """start / run / stop plumbing shared by the UDP and TCP sources."""

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        format: str | None,
        system_id: str | None,
        max_message_size: int,
        max_records: int,
        max_delay: float,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.format = format
        self.system_id = system_id
        self.max_message_size = max_message_size
        self.max_records = max_records
        self.max_delay = max_delay
        self.stats = SourceStats()
        self._bound_port: int | None = None
        self._stopping = asyncio.Event()
        self._running = False
        self._done = asyncio.Event()

    @property
    def bound_port(self) -> int:
        """The port actually bound (differs from ``port`` when that was 0)."""
        if self._bound_port is None:
            raise RuntimeError(f"{self.name}: not started")
        return self._bound_port

    def _origin(self, peer: str | None) -> Origin:
        return Origin(source=self.name, kind="syslog", peer=peer, format=self.format,
                      system_id=self.system_id)

    def _batcher(self, submit: Submit, peer: str | None) -> Batcher:
        return Batcher(submit, self._origin(peer), self.stats, max_records=self.max_records,
                       max_delay=self.max_delay)

    @abstractmethod
    async def start(self) -> None:
        """Bind the socket (idempotent)."""

    async def stop(self) -> None:
        self._stopping.set()
        if self._running:
            await self._done.wait()
        else:
            self._close()

    @abstractmethod
    def _close(self) -> None:
        """Stop listening."""


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SyslogUdpSource) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._owner._enqueue(data, _peer_ip(addr))

    def error_received(self, exc: Exception) -> None:
        self._owner.stats.errors += 1
        log.warning("%s: receive error: %s", self._owner.name, exc)


class SyslogUdpSource(_ListenerSource):
    """RFC 5426: one datagram is one message, kept whole even if it holds LFs.

    Datagrams wait in a queue bounded by ``queue_size`` datagrams and
    ``queue_bytes`` bytes while a batch is being submitted; a datagram arriving at
    a full queue is dropped and counted in ``stats.dropped`` (UDP cannot push back).
    """

    def __init__(
        self,
        name: str,
        *,
        port: int,
        host: str = "127.0.0.1",
        format: str | None = None,
        system_id: str | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE,
        max_records: int = 1000,
        max_delay: float = 0.2,
        queue_size: int = 10_000,
        queue_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        super().__init__(name, host=host, port=port, format=format, system_id=system_id,
                         max_message_size=max_message_size, max_records=max_records,
                         max_delay=max_delay)
        self.queue_size = queue_size
        self.queue_bytes = queue_bytes
        self._queue: collections.deque[tuple[bytes, str | None, float]] = collections.deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None
        self._batchers: dict[str | None, Batcher] = {}

    async def start(self) -> None:
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.host, self.port))
        self._transport = transport
        self._bound_port = transport.get_extra_info("sockname")[1]

    def _enqueue(self, data: bytes, peer: str | None) -> None:
        if self._stopping.is_set():
            return
        self.stats.bytes += len(data)
        data = data.rstrip(_TRAILER)
        if not data:
            return
        if len(self._queue) >= self.queue_size or self._queued_bytes + len(data) > self.queue_bytes:
            self.stats.dropped += 1
            return
        self.stats.received += 1
        self._queue.append((data, peer, time.time()))
        self._queued_bytes += len(data)
        self._wakeup.set()

    async def run(self, submit: Submit) -> None:
        await self.start()
        self._running = True
        try:
            await self._consume(submit)
            await asyncio.gather(*(b.close() for b in self._batchers.values()))
        finally:
            self._close()
            for batcher in self._batchers.values():
                batcher.cancel()
            self._running = False
            self._done.set()

    async def _consume(self, submit: Submit) -> None:
        while True:
            self._wakeup.clear()
            while self._queue:
                data, peer, received = self._queue.popleft()
                self._queued_bytes -= len(data)
                if len(data) > self.max_message_size:
                    data = data[: utf8_boundary(data, self.max_message_size)]
                    self.stats.truncated += 1
                batcher = self._batchers.get(peer)
                if batcher is None:
                    batcher = self._batchers[peer] = self._batcher(submit, peer)
                await batcher.add(decode_text(data), received)
            if self._stopping.is_set():
                return
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=_PRUNE_INTERVAL)
            except TimeoutError:
                # Forget senders that went quiet, so spoofed or one-off source
                # addresses do not accumulate.
                for peer in [p for p, b in self._batchers.items() if b.idle]:
                    del self._batchers[peer]

    async def stop(self) -> None:
        # Close first so nothing arrives after the queue is drained.
        self._close()
        self._wakeup.set()
        await super().stop()

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class SyslogTcpSource(_ListenerSource):
    """RFC 6587 syslog over TCP, or over TLS (RFC 5425) when ``tls`` is given.

    Each connection has its own decoder and batcher, so batches never mix senders.
    A connection stops reading while a full batch is being submitted: at most two
    batches per connection (one in flight, one filling) plus the socket buffers are
    un-submitted, and TCP flow control pushes back on the sender.
    """

    def __init__(
        self,
        name: str,
        *,
        port: int,
        host: str = "127.0.0.1",
        format: str | None = None,
        system_id: str | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE,
        tls: ssl.SSLContext | None = None,
        framing: Framing = "auto",
        max_records: int = 1000,
        max_delay: float = 0.2,
    ) -> None:
        super().__init__(name, host=host, port=port, format=format, system_id=system_id,
                         max_message_size=max_message_size, max_records=max_records,
                         max_delay=max_delay)
        if framing not in ("auto", "lf", "octet"):
            raise ValueError(f"framing must be auto, lf or octet, not {framing!r}")
        self.tls = tls
        self.framing: Framing = framing
        self._server: asyncio.Server | None = None
        self._submit: Submit | None = None
        self._ready = asyncio.Event()
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        if self._server is not None:
            return
        # Listening from start() on, so a client may connect before run(); its
        # handler waits for run() to supply submit (the socket buffers meanwhile).
        self._server = await asyncio.start_server(self._handle, self.host, self.port, ssl=self.tls)
        self._bound_port = self._server.sockets[0].getsockname()[1]

    async def run(self, submit: Submit) -> None:
        await self.start()
        assert self._server is not None
        self._submit = submit
        self._ready.set()
        self._running = True
        try:
            await self._stopping.wait()
            self._server.close()
            # Closing our side makes each reader see EOF after the data it has
            # already buffered; the handlers then flush and finish.
            for writer in list(self._connections.values()):
                writer.close()
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)
        finally:
            self._close()
            tasks = list(self._connections)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self._running = False
            self._done.set()

    def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        if not self._running:
            # Stopped before run(): connections waiting for submit will never get it.
            for task in self._connections:
                task.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._stopping.is_set() or task is None:
            writer.close()
            return
        self._connections[task] = writer
        try:
            await self._ready.wait()
        except asyncio.CancelledError:
            self._connections.pop(task, None)
            writer.close()
            raise
        assert self._submit is not None
        peer = _peer_ip(writer.get_extra_info("peername"))
        self.stats.connections += 1
        self.stats.active += 1
        batcher = self._batcher(self._submit, peer)
        decoder = FrameDecoder(self.framing, self.max_message_size, self.stats)
        try:
            try:
                while data := await reader.read(_READ_SIZE):
                    self.stats.bytes += len(data)
                    for message in decoder.feed(data):
                        self.stats.received += 1
                        await batcher.add(decode_text(message))
            except OSError as exc:  # resets, TLS errors: keep what was received
                self.stats.errors += 1
                log.warning("%s: connection from %s failed: %s", self.name, peer, exc)
            for message in decoder.finish():
                self.stats.received += 1
                await batcher.add(decode_text(message))
            await batcher.close()
        except asyncio.CancelledError:
            batcher.cancel()
            raise
        finally:
            writer.close()
            self.stats.active -= 1
            self._connections.pop(task, None)

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from collectors.sources.base import SourceStats
from collectors.sources.syslog import FrameDecoder, SyslogTcpSource, SyslogUdpSource
from tests.sources.helpers import FakeSubmit, run, running, wait_until

MSG1 = "<34>1 2026-11-23T10:00:00Z host1 sshd 123 - - Failed password for root from 10.1.1.1"
MSG2 = "<86>Nov 23 10:00:01 host1 sudo: admin : TTY=pts/0 ; USER=root ; COMMAND=/bin/ls"


def udp_send(port: int, payloads: list[bytes], local: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((local, 0))
        for payload in payloads:
            sock.sendto(payload, ("127.0.0.1", port))


async def tcp_send(
    port: int,
    chunks: list[bytes],
    *,
    local: str = "127.0.0.1",
    pause: float = 0.0,
    tls: ssl.SSLContext | None = None,
) -> None:
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(local, 0), ssl=tls,
        server_hostname="127.0.0.1" if tls else None)
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
        if pause:
            await asyncio.sleep(pause)
    writer.close()
    await writer.wait_closed()


def tcp_source(**kw: object) -> SyslogTcpSource:
    kw.setdefault("max_delay", 0.02)
    return SyslogTcpSource("syslog_tcp", port=0, **kw)  # type: ignore[arg-type]


async def tcp_records(chunks: list[bytes], n: int, *, pause: float = 0.0,
                      **kw: object) -> tuple[list[object], SyslogTcpSource]:
    """Send ``chunks`` over one connection; return the first ``n`` records."""
    source = tcp_source(**kw)
    submit = FakeSubmit()
    async with running(source, submit):
        await tcp_send(source.bound_port, chunks, pause=pause)
        await wait_until(lambda: len(submit.records) >= n, what=f"{n} records")
        await asyncio.sleep(0.05)  # nothing extra arrives
    return submit.records, source


# --- UDP -------------------------------------------------------------------------


def test_udp_messages_become_records_with_peer() -> None:
    async def main() -> None:
        source = SyslogUdpSource("syslog_udp", port=0, format="rfc5424", system_id="dvc-hanoi",
                                 max_delay=0.02)
        submit = FakeSubmit()
        async with running(source, submit):
            assert source.bound_port > 0
            udp_send(source.bound_port, [MSG1.encode() + b"\n", MSG2.encode() + b"\x00",
                                         b"line one\nline two\r\n"])
            await wait_until(lambda: len(submit.records) == 3)
        assert submit.records == [MSG1, MSG2, "line one\nline two"]  # one datagram, one message
        for batch in submit.acked:
            assert batch.origin.kind == "syslog"
            assert batch.origin.peer == "127.0.0.1"
            assert batch.origin.source == "syslog_udp"
            assert batch.origin.format == "rfc5424"
            assert batch.origin.system_id == "dvc-hanoi"
            assert batch.ids is not None and len(batch.ids) == len(batch)
        assert source.stats.received == 3
        assert source.stats.dropped == 0

    run(main())


def test_udp_invalid_utf8_is_replaced_not_lost() -> None:
    async def main() -> None:
        source = SyslogUdpSource("u", port=0, max_delay=0.02)
        submit = FakeSubmit()
        async with running(source, submit):
            udp_send(source.bound_port, [b"<13>user \xff\xfe admin \xc3"])
            await wait_until(lambda: len(submit.records) == 1)
        assert submit.records == ["<13>user \ufffd\ufffd admin \ufffd"]

    run(main())


def test_udp_batches_never_mix_peers() -> None:
    async def main() -> None:
        source = SyslogUdpSource("u", port=0, max_delay=0.05)
        submit = FakeSubmit()
        async with running(source, submit):
            for i in range(10):
                udp_send(source.bound_port, [f"a{i}".encode()], local="127.0.0.1")
                udp_send(source.bound_port, [f"b{i}".encode()], local="127.0.0.2")
            await wait_until(lambda: len(submit.records) == 20)
        by_peer: dict[str, list[object]] = {}
        for batch in submit.acked:
            assert batch.origin.peer is not None
            assert len({str(r)[0] for r in batch.records}) == 1
            by_peer.setdefault(batch.origin.peer, []).extend(batch.records)
        assert by_peer == {"127.0.0.1": [f"a{i}" for i in range(10)],
                           "127.0.0.2": [f"b{i}" for i in range(10)]}

    run(main())


def test_udp_queue_overflow_is_counted() -> None:
    async def main() -> None:
        source = SyslogUdpSource("u", port=0, max_records=1, max_delay=0.02, queue_size=5)
        submit = FakeSubmit()
        submit.gate = asyncio.Event()  # the store is stuck
        async with running(source, submit):
            udp_send(source.bound_port, [f"m{i}".encode() for i in range(50)])
            stats = source.stats
            await wait_until(lambda: stats.received + stats.dropped == 50)
            assert stats.dropped > 0
            submit.gate.set()
            await wait_until(lambda: len(submit.records) == stats.received)
        assert len(submit.records) + source.stats.dropped == 50

    run(main())


def test_udp_graceful_stop_flushes_pending() -> None:
    async def main() -> None:
        source = SyslogUdpSource("u", port=0, max_delay=30)
        submit = FakeSubmit()
        await source.start()
        task = asyncio.create_task(source.run(submit))
        udp_send(source.bound_port, [b"one", b"two"])
        await wait_until(lambda: source.stats.received == 2)
        assert submit.acked == []
        await source.stop()
        await task
        assert submit.records == ["one", "two"]

    run(main())


# --- TCP framing -------------------------------------------------------------------


def test_tcp_lf_crlf_and_nul_framing() -> None:
    async def main() -> None:
        records, _ = await tcp_records([b"first\nsecond\r\nthird\x00\nfourth"], 4)
        assert records == ["first", "second", "third", "fourth"]  # fourth: flushed at close

    run(main())


def test_tcp_octet_counting_keeps_newlines() -> None:
    multi = b"<13>1 - h app - - - line one\nline two\n"
    frames = b"%d %s%d %s" % (len(multi), multi, len(MSG1), MSG1.encode())

    async def main() -> None:
        for framing in ("octet", "auto"):
            records, source = await tcp_records([frames], 2, framing=framing)
            assert records == ["<13>1 - h app - - - line one\nline two", MSG1]
            assert source.stats.framing_errors == 0

    run(main())


def test_tcp_auto_detects_lf_framing() -> None:
    async def main() -> None:
        records, _ = await tcp_records([f"{MSG1}\n{MSG2}\n".encode()], 2)
        assert records == [MSG1, MSG2]

    run(main())


def test_tcp_message_split_across_segments() -> None:
    frame = b"%d %s" % (len(MSG1), MSG1.encode())

    async def main() -> None:
        octet = [frame[:1], frame[1:2], frame[2:20], frame[20:], b"5 hel", b"lo"]
        records, _ = await tcp_records(octet, 2, pause=0.02)
        assert records == [MSG1, "hello"]
        lf = [MSG1.encode()[:10], MSG1.encode()[10:] + b"\r", b"\n" + MSG2.encode()[:5],
              MSG2.encode()[5:] + b"\n"]
        records, _ = await tcp_records(lf, 2, pause=0.02)
        assert records == [MSG1, MSG2]

    run(main())


def test_tcp_oversized_message_is_truncated_not_dropped() -> None:
    async def main() -> None:
        long = b"x" * 250
        records, source = await tcp_records([long + b"\nnext\n"], 2, max_message_size=100)
        assert records == ["x" * 100, "next"]
        assert source.stats.truncated == 1
        # Longer than the limit before its terminator arrives.
        records, source = await tcp_records([b"y" * 150, b"y" * 150 + b"\nafter\n"], 2,
                                            pause=0.02, max_message_size=100)
        assert records == ["y" * 100, "after"]
        assert source.stats.truncated == 1
        frames = b"250 " + long + b"4 tail"
        records, source = await tcp_records([frames], 2, max_message_size=100)
        assert records == ["x" * 100, "tail"]
        assert source.stats.truncated == 1

    run(main())


def test_tcp_malformed_octet_frame_falls_back_to_lf() -> None:
    async def main() -> None:
        records, source = await tcp_records([b"5 hello12x4 oops\nlast\n"], 3, framing="octet")
        assert records == ["hello", "12x4 oops", "last"]
        assert source.stats.framing_errors == 1

    run(main())


def test_tcp_partial_octet_frame_is_flushed_on_close() -> None:
    async def main() -> None:
        records, _ = await tcp_records([b"100 only part of it"], 1)
        assert records == ["only part of it"]

    run(main())


def test_tcp_invalid_utf8_kept() -> None:
    async def main() -> None:
        records, _ = await tcp_records([b"bad \xff byte\n\xe1\xbb good \xe1\xbb\x87\n"], 2)
        assert records == ["bad \ufffd byte", "\ufffd good ệ"]

    run(main())


def test_tcp_batches_never_mix_peers() -> None:
    async def main() -> None:
        source = tcp_source(max_records=4)
        submit = FakeSubmit()
        async with running(source, submit):
            port = source.bound_port
            await asyncio.gather(
                tcp_send(port, [f"a{i}\n".encode() for i in range(10)], pause=0.005),
                tcp_send(port, [f"b{i}\n".encode() for i in range(10)], pause=0.005,
                         local="127.0.0.2"),
            )
            await wait_until(lambda: len(submit.records) == 20)
        for batch in submit.acked:
            prefix = {"127.0.0.1": "a", "127.0.0.2": "b"}[batch.origin.peer or ""]
            assert all(str(r).startswith(prefix) for r in batch.records)
        assert source.stats.connections == 2
        assert source.stats.active == 0

    run(main())


def test_tcp_backpressure_stops_reading_while_submit_is_pending() -> None:
    async def main() -> None:
        source = tcp_source(max_records=10, max_delay=0.01)
        submit = FakeSubmit()
        submit.gate = asyncio.Event()
        n = 5000
        async with running(source, submit):
            _, writer = await asyncio.open_connection("127.0.0.1", source.bound_port)
            writer.write(b"".join(b"message %05d\n" % i for i in range(n)))
            await wait_until(lambda: len(submit.attempts) >= 1)
            await asyncio.sleep(0.1)
            # One batch in flight, at most one more buffered: the rest waits in the socket.
            assert source.stats.received <= 2 * 10 + 1
            submit.gate.set()
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            await wait_until(lambda: len(submit.records) == n)
        assert submit.records == [f"message {i:05d}" for i in range(n)]

    run(main())


def test_tcp_graceful_stop_flushes_buffered_messages() -> None:
    async def main() -> None:
        source = SyslogTcpSource("t", port=0, max_delay=30)
        submit = FakeSubmit()
        await source.start()
        task = asyncio.create_task(source.run(submit))
        _, writer = await asyncio.open_connection("127.0.0.1", source.bound_port)
        writer.write(b"one\ntwo\nthree-partial")
        await writer.drain()
        await wait_until(lambda: source.stats.received == 2)
        await source.stop()
        await task
        assert submit.records == ["one", "two", "three-partial"]
        writer.close()

    run(main())


def test_bound_port_requires_start() -> None:
    source = SyslogTcpSource("t", port=0)
    with pytest.raises(RuntimeError):
        _ = source.bound_port


# --- TLS -------------------------------------------------------------------------------


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_tls_octet_counted_messages(tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server, client = tls_pair

    async def main() -> None:
        source = SyslogTcpSource("syslog_tls", port=0, tls=server, max_delay=0.02)
        submit = FakeSubmit()
        async with running(source, submit):
            frames = b"".join(b"%d %s" % (len(m), m) for m in (MSG1.encode(), MSG2.encode()))
            await tcp_send(source.bound_port, [frames[:30], frames[30:]], tls=client, pause=0.01)
            await wait_until(lambda: len(submit.records) == 2)
        assert submit.records == [MSG1, MSG2]
        assert submit.acked[0].origin.peer == "127.0.0.1"

    run(main())


# --- decoder unit tests --------------------------------------------------------------


def test_decoder_length_header_split_and_leading_newlines() -> None:
    stats = SourceStats()
    dec = FrameDecoder("auto", 1000, stats)
    out = dec.feed(b"1") + dec.feed(b"1 hello world") + dec.feed(b"\n\n3 abc")
    assert out == [b"hello world", b"abc"]
    assert dec.finish() == []
    assert stats.framing_errors == 0


def test_decoder_lf_skips_empty_messages() -> None:
    dec = FrameDecoder("lf", 1000, SourceStats())
    assert dec.feed(b"\n\r\n\x00a\n\n") == [b"a"]

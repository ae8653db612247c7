"""The embedded SQLite store: durability, idempotency, retention and every query form
against a small corpus of realistic ECS events."""

from __future__ import annotations

import contextlib
import copy
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from soc.query.parse import parse_query
from soc.query.sql import to_sql
from soc.store.base import QueryError, StoreUnavailable, TimeRange
from soc.store.sqlite import SqliteEventStore

REPO = Path(__file__).resolve().parents[2]

CORPUS: list[dict[str, Any]] = [
    {
        "@timestamp": "2024-01-01T10:00:00.000Z",
        "event": {"id": "ssh-1", "kind": "event", "category": ["authentication"], "type": ["start"],
                  "outcome": "failure", "action": "ssh_login", "dataset": "system.auth"},
        "message": "Failed password for invalid user admin from 203.0.113.5 port 52211 ssh2",
        "source": {"ip": "203.0.113.5", "port": 52211},
        "user": {"name": "admin"},
        "host": {"name": "srv-01"},
        "process": {"name": "sshd", "pid": 1234},
        "related": {"ip": ["203.0.113.5"], "user": ["admin"]},
    },
    {
        "@timestamp": "2024-01-01T11:00:00.000Z",
        "event": {"id": "web-404", "category": ["web"], "type": ["access"], "outcome": "failure",
                  "dataset": "nginx.access", "ingested": "2024-01-01T11:00:05.000Z"},
        "message": '198.51.100.7 - - [01/Jan/2024:18:00:00 +0700] "GET /wp-login.php HTTP/1.1" 404 162 '
                   '"-" "curl/8.0"',
        "source": {"ip": "198.51.100.7"},
        "url": {"path": "/wp-login.php"},
        "http": {"request": {"method": "GET"}, "response": {"status_code": 404, "body": {"bytes": 162}}},
        "user_agent": {"original": "curl/8.0"},
        "tags": ["nginx", "scanner"],
    },
    {
        "@timestamp": "2024-01-01T12:00:00.000Z",
        "event": {"id": "web-500", "category": ["web"], "type": ["access"], "outcome": "failure",
                  "dataset": "nginx.access"},
        "message": '2001:db8::7 - - [01/Jan/2024:19:00:00 +0700] "POST /dichvucong/api/hoso HTTP/1.1" 500 37',
        "source": {"ip": "2001:db8::7"},
        "url": {"path": "/dichvucong/api/hoso"},
        "http": {"request": {"method": "POST"}, "response": {"status_code": 500, "body": {"bytes": 37}}},
        "tags": ["nginx"],
    },
    {
        "@timestamp": "2024-01-02T09:00:00.000Z",
        "event": {"id": "fgt-deny", "category": ["network"], "type": ["denied", "connection"],
                  "outcome": "failure", "action": "deny", "dataset": "fortinet.firewall"},
        "message": "type=traffic subtype=forward action=deny srcip=10.1.2.3 dstip=8.8.8.8 dstport=53",
        "source": {"ip": "10.1.2.3", "port": 50123},
        "destination": {"ip": "8.8.8.8", "port": 53},
        "network": {"transport": "udp"},
        "observer": {"vendor": "Fortinet", "product": "FortiGate"},
        "fortinet": {"firewall": {"policyid": "12", "srcintf": "port1"}},
        "related": {"ip": ["10.1.2.3", "8.8.8.8"]},
    },
    {
        "@timestamp": "2024-01-02T10:00:00.000Z",
        "event": {"id": "win-4625", "code": "4625", "category": ["authentication"], "type": ["start"],
                  "outcome": "failure", "provider": "Microsoft-Windows-Security-Auditing"},
        "message": "An account failed to log on.",
        "winlog": {"event_id": 4625, "channel": "Security", "computer_name": "DC01.tinh.gov.vn",
                   "event_data": {"TargetUserName": "Administrator", "IpAddress": "192.168.1.50",
                                  "LogonType": "3"}},
        "source": {"ip": "192.168.1.50"},
        "user": {"name": "Administrator", "domain": "TINH"},
    },
    {
        "@timestamp": "2024-01-03T08:00:00.000Z",
        "event": {"id": "vn-login", "category": ["authentication"], "outcome": "failure",
                  "dataset": "dvc.audit"},
        "message": "Đăng nhập thất bại cho tài khoản nguyenvana",
        "user": {"name": "nguyenvana"},
        "gov": {"system": {"id": "dvc", "name": "Cổng Dịch vụ công"}},
    },
]
ALL = {e["event"]["id"] for e in CORPUS}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqliteEventStore(tmp_path / "db" / "events.db")
    assert s.write(copy.deepcopy(CORPUS)) == len(CORPUS)
    yield s
    s.close()


def ids(store: SqliteEventStore, query: str, time_range: TimeRange = TimeRange()) -> set[str]:
    found = {e["event"]["id"] for e in store.search(query, time_range, limit=1000)}
    assert store.count(query, time_range) == len(found)
    return found


def test_round_trip_and_order(store: SqliteEventStore) -> None:
    newest = store.search("*", limit=100)
    assert [e["event"]["id"] for e in newest] == [e["event"]["id"] for e in reversed(CORPUS)]
    assert newest[-1] == CORPUS[0]
    oldest = store.search("*", limit=2, newest_first=False)
    assert [e["event"]["id"] for e in oldest] == ["ssh-1", "web-404"]
    assert store.search("*", limit=0) == []


def test_redelivery_is_idempotent(store: SqliteEventStore) -> None:
    assert store.write(copy.deepcopy(CORPUS)) == 0
    assert store.count("*") == len(CORPUS)
    extra = {"@timestamp": "2024-01-04T00:00:00.000Z", "event": {"id": "new-1"}, "message": "x"}
    assert store.write([*copy.deepcopy(CORPUS), extra]) == 1
    assert store.count("*") == len(CORPUS) + 1


def test_large_batches_span_statements_and_transactions(tmp_path: Path) -> None:
    def events(first: int, last: int) -> list[dict[str, Any]]:
        return [{"@timestamp": f"2024-01-01T00:00:{i % 60:02d}.{i % 1000:03d}Z", "event": {"id": f"e{i}"}}
                for i in range(first, last)]

    with SqliteEventStore(tmp_path / "e.db", batch_rows=300) as s:
        assert s.write(events(0, 1000)) == 1000
        assert s.write(events(500, 1501)) == 501
        assert s.count("*") == 1501
        assert s.write(events(0, 1501)) == 0


def test_missing_id_is_generated_and_stored(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db") as s:
        event: dict[str, Any] = {"@timestamp": "2024-01-01T00:00:00.000Z", "message": "no id"}
        assert s.write([event]) == 1
        generated = event["event"]["id"]
        assert s.search("*")[0]["event"]["id"] == generated
        assert s.write([event]) == 0  # the same event again is a redelivery
        bare: dict[str, Any] = {"message": "neither id nor time"}
        assert s.write([bare]) == 1
        assert "@timestamp" in bare
        assert s.write([bare]) == 0


def test_timestamp_fallbacks(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db") as s:
        s.write([
            {"event": {"id": "ingested", "ingested": "2024-02-01T00:00:00+07:00"}},
            {"@timestamp": "2024-02-01T00:00:00.5+00:00", "event": {"id": "offset"}},
            {"event": {"id": "now"}},
        ])
        feb1 = TimeRange(datetime(2024, 1, 31, 17, tzinfo=UTC), datetime(2024, 1, 31, 17, 0, 1, tzinfo=UTC))
        assert ids(s, "*", feb1) == {"ingested"}
        assert ids(s, "@timestamp:2024-02-01T00:00:00.500Z") == {"offset"}
        assert ids(s, "*", TimeRange(since=datetime.now(UTC).replace(year=2025))) == {"now"}
        stored = {e["event"]["id"]: e["@timestamp"] for e in s.search("*")}
        assert stored["ingested"] == "2024-01-31T17:00:00.000Z"  # the fallback is written back
        assert stored["offset"] == "2024-02-01T00:00:00.5+00:00"  # a present value is kept as is


def test_time_range(store: SqliteEventStore) -> None:
    jan2 = TimeRange(datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC))
    assert ids(store, "*", jan2) == {"fgt-deny", "win-4625"}
    assert ids(store, "event.category:authentication", jan2) == {"win-4625"}
    # since is inclusive, until exclusive
    exact = TimeRange(datetime(2024, 1, 2, 9, tzinfo=UTC), datetime(2024, 1, 2, 10, tzinfo=UTC))
    assert ids(store, "*", exact) == {"fgt-deny"}
    assert ids(store, "*", TimeRange(since=datetime(2024, 1, 3))) == {"vn-login"}  # naive = UTC


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("*", ALL),
        ("*:*", ALL),
        ("", ALL),
        ("user.name:admin", {"ssh-1"}),
        ("user.name:ADMIN", {"ssh-1"}),
        ("user.name:administrator", {"win-4625"}),
        ("user.name:adm*", {"ssh-1", "win-4625"}),
        ("user.name:*ISTRATOR", {"win-4625"}),
        ("http.request.method:P?ST", {"web-500"}),
        ("user.name:adm_n", set()),  # LIKE metacharacters are literal
        ("user.name:%", set()),
        ('message:"invalid user admin"', {"ssh-1"}),
        ('message:"INVALID USER"', {"ssh-1"}),
        ("message:invalid", {"ssh-1"}),
        ('user.name:"nguyenvana"', {"vn-login"}),
        ("event.category:authentication AND event.outcome:failure", {"ssh-1", "win-4625", "vn-login"}),
        ("event.category:authentication event.outcome:failure", {"ssh-1", "win-4625", "vn-login"}),
        ("event.category:web OR event.category:network", {"web-404", "web-500", "fgt-deny"}),
        ("event.category:web or event.category:network", {"web-404", "web-500", "fgt-deny"}),
        ("event.category:authentication AND NOT user.name:admin", {"win-4625", "vn-login"}),
        ("event.category:authentication not user.name:admin", {"win-4625", "vn-login"}),
        ("event.category:authentication -user.name:admin", {"win-4625", "vn-login"}),
        ("NOT user.name:admin", ALL - {"ssh-1"}),
        ("(event.category:web OR event.category:network) AND source.ip:10.0.0.0/8", {"fgt-deny"}),
        ("event.category:(web OR network) AND NOT http.response.status_code:404", {"web-500", "fgt-deny"}),
        ("_exists_:winlog.event_data", {"win-4625"}),
        ("_exists_:user.name", {"ssh-1", "win-4625", "vn-login"}),
        ("user.name:*", {"ssh-1", "win-4625", "vn-login"}),
        ("NOT _exists_:user.name", {"web-404", "web-500", "fgt-deny"}),
        ("http.response.status_code:404", {"web-404"}),
        ("http.response.status_code:[500 TO 599]", {"web-500"}),
        ("http.response.status_code:[400 TO 599]", {"web-404", "web-500"}),
        ("http.response.status_code:{404 TO 500}", set()),
        ("http.response.status_code:[404 TO 500}", {"web-404"}),
        ("http.response.status_code:>=404", {"web-404", "web-500"}),
        ("http.response.status_code:>404", {"web-500"}),
        ("http.response.status_code:<500", {"web-404"}),
        ("http.response.status_code:[500 TO *]", {"web-500"}),
        ("http.response.status_code:[* TO 404]", {"web-404"}),
        ("http.response.status_code:[* TO *]", {"web-404", "web-500"}),
        ("destination.port:53", {"fgt-deny"}),
        ("source.port:>50000", {"ssh-1", "fgt-deny"}),
        ("source.ip:10.0.0.0/8", {"fgt-deny"}),
        ('source.ip:"10.0.0.0/8"', {"fgt-deny"}),
        ("source.ip:10.0.*", set()),
        ("source.ip:10.1.*", {"fgt-deny"}),
        ("source.ip:192.168.0.0/16", {"win-4625"}),
        ("source.ip:0.0.0.0/0", {"ssh-1", "web-404", "fgt-deny", "win-4625"}),
        ('source.ip:"2001:db8::/32"', {"web-500"}),
        ("source.ip:2001\\:db8\\:\\:/32", {"web-500"}),
        ('source.ip:"2001:0db8:0:0::7"', {"web-500"}),
        ("source.ip:203.0.113.5", {"ssh-1"}),
        ("source.ip:[10.0.0.0 TO 10.255.255.255]", {"fgt-deny"}),
        ("source.ip:[192.168.1.50 TO *]", {"win-4625", "ssh-1", "web-404", "web-500"}),
        ("related.ip:8.8.8.8", {"fgt-deny"}),
        ("related.ip:8.0.0.0/8", {"fgt-deny"}),
        ("event.category:authentication", {"ssh-1", "win-4625", "vn-login"}),
        ("event.type:denied", {"fgt-deny"}),
        ("tags:scanner", {"web-404"}),
        ("winlog.event_data.TargetUserName:administrator", {"win-4625"}),
        ("winlog.event_data:administrator", {"win-4625"}),  # flattened: any leaf
        ("fortinet.firewall.srcintf:port1", {"fgt-deny"}),
        ("winlog.event_id:4625", {"win-4625"}),  # keyword field holding a JSON number
        ("event.code:4625", {"win-4625"}),
        ("winlog.event_id:[4600 TO 4700]", {"win-4625"}),
        ("failed", {"ssh-1", "win-4625"}),
        ("FAILED", {"ssh-1", "win-4625"}),
        ("wp-login", {"web-404"}),
        ("fail*", {"ssh-1", "win-4625"}),
        ('"thất bại"', {"vn-login"}),
        ('"THẤT BẠI"', {"vn-login"}),
        ("đăng nhập", {"vn-login"}),
        ('message:"đăng nhập"', {"vn-login"}),
        ('message:"ĐĂNG NHẬP"', {"vn-login"}),
        ('gov.system.name:"cổng dịch vụ công"', {"vn-login"}),
        ("gov.system.name:cổng*", {"vn-login"}),
        ("gov.system.name:CỔNG*CÔNG", {"vn-login"}),
        ("url.path:/wp-login.php", {"web-404"}),
        ("url.path:/dichvucong/*", {"web-500"}),
        ("@timestamp:[2024-01-01 TO 2024-01-02]", ALL - {"vn-login"}),
        ("@timestamp:2024-01-03", {"vn-login"}),
        ("@timestamp:{2024-01-01 TO *]", {"fgt-deny", "win-4625", "vn-login"}),
        ("@timestamp:>=2024-01-02T09:30:00Z", {"win-4625", "vn-login"}),
        ("@timestamp:<2024-01-01T11:00:00Z", {"ssh-1"}),
        ("@timestamp:[2024-01-01T17:00:00+07:00 TO 2024-01-01T18:00:00+07:00]", {"ssh-1", "web-404"}),
        ("host.name:srv-01^2", {"ssh-1"}),
        ("event.ingested:2024-01-01", {"web-404"}),
        ("event.ingested:>=2024-01-01T11:00:05Z", {"web-404"}),
        ("event.ingested:>2024-01-01T11:00:05Z", set()),
        ("user:admin", set()),  # an object field is not its members
        ("winlog:*Administrator*", set()),  # nor the JSON text of a nested object
        ("_exists_:winlog", {"win-4625"}),
    ],
)
def test_query_forms(store: SqliteEventStore, query: str, expected: set[str]) -> None:
    assert ids(store, query) == expected


def _rows(path: Path) -> list[Any]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT id, ts, doc FROM events ORDER BY rowid").fetchall()


@pytest.mark.parametrize(
    "query",
    [
        "user.name:\"x' OR 1=1 --\"",
        "user.name:\"admin'; DROP TABLE events; --\"",
        "message:\"'); DELETE FROM events; --\"",
        "user.name:x\\'\\)\\ OR\\ 1=1",
        "\"%' OR '1'='1\"",
        "url.path:*\\'*",
    ],
)
def test_injection_in_values_matches_nothing(store: SqliteEventStore, query: str) -> None:
    before = _rows(store.path)
    assert store.search(query) == []
    assert store.count(query) == 0
    assert _rows(store.path) == before
    where, params = to_sql(parse_query(query))
    assert "'1'" not in where and "DROP" not in where and "DELETE" not in where
    assert params  # every value travels as a parameter


@pytest.mark.parametrize(
    "query",
    [
        "user'.name:x",
        'a"b:x',
        "user.name\\'\\)\\ OR\\ 1=1\\ --:x",
        "_exists_:user\\\"name",
        "x;DROP:1",
    ],
)
def test_injection_in_field_names_is_rejected(store: SqliteEventStore, query: str) -> None:
    before = _rows(store.path)
    with pytest.raises(QueryError):
        store.search(query)
    with pytest.raises(QueryError):
        store.count(query)
    assert _rows(store.path) == before


def test_garbage_queries_only_raise_query_error(store: SqliteEventStore) -> None:
    pieces = [*'abAND OR NOT:*?"\'\\/()[]{}<>=~^+-.@_%;019đĐ ', "source.ip:", "user.name:",
              "http.response.status_code:", "@timestamp:", " TO ", "_exists_:", "10.0.0.0/8",
              "2001:db8::/32", "and ", "not ", "winlog.event_data:", "message:"]
    rng = random.Random(7)
    before = _rows(store.path)
    for _ in range(3000):
        query = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 20)))
        with contextlib.suppress(QueryError):
            store.count(query)
    assert _rows(store.path) == before


def test_reader_cannot_write(store: SqliteEventStore) -> None:
    with pytest.raises(sqlite3.OperationalError):
        store._reader.execute("DELETE FROM events")
    assert store.count("*") == len(CORPUS)


def test_retention_deletes_only_older_events(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db", delete_chunk_rows=2) as s:
        s.write(copy.deepcopy(CORPUS))
        assert s.delete_before(datetime(2024, 1, 2, tzinfo=UTC)) == 3
        assert ids(s, "*") == {"fgt-deny", "win-4625", "vn-login"}
        assert s.delete_before(datetime(2024, 1, 2, tzinfo=UTC)) == 0
        assert s.delete_before(datetime(2024, 1, 2, 10, tzinfo=UTC)) == 1
        assert ids(s, "*") == {"win-4625", "vn-login"}


def test_odd_stored_values_never_break_a_query(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db") as s:
        odd: list[Any] = ["not-an-ip", "10.0.0.1\x00", "１０.0.0.1", 167772161, None, {"a": 1}, [],
                          ["10.9.9.9", "bogus"], "::ffff:10.2.3.4", "fe80::1%eth0", "::ffff:a02:305"]
        s.write([{"@timestamp": "2024-01-01T00:00:00.000Z", "event": {"id": str(i)},
                  "source": {"ip": value}, "http": {"response": {"status_code": value}}}
                 for i, value in enumerate(odd)])
        # SQLite hands text with a NUL to functions cut at the NUL: "1" may match.
        assert ids(s, "source.ip:10.0.0.0/8") - {"1"} == {"7", "8", "10"}
        assert ids(s, "source.ip:10.2.3.4") == {"8"}
        assert ids(s, "source.ip:10.2.3.5") == {"10"}
        assert ids(s, "source.ip:[10.0.0.0 TO 10.255.255.255]") - {"1"} == {"7", "8", "10"}
        assert ids(s, 'source.ip:"fe80::/10"') == set()
        assert ids(s, "http.response.status_code:>0") == {"3"}
        assert ids(s, "_exists_:source.ip") == {str(i) for i in range(len(odd))} - {"4", "6"}


def test_documents_orjson_cannot_write_as_is(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db") as s:
        s.write([{"@timestamp": "2024-01-01T00:00:00.000Z", "event": {"id": "big"},
                  "fortinet": {"firewall": {"sessionid": 1 << 70}}, "labels": {"ratio": float("nan")},
                  "host": {"name": "srv-02"}, "seen": datetime(2024, 1, 1, tzinfo=UTC)}])
        [doc] = s.search("host.name:srv-02")
        assert doc["fortinet"]["firewall"]["sessionid"] == str(1 << 70)
        assert doc["labels"]["ratio"] is None
        assert ids(s, f"fortinet.firewall.sessionid:{1 << 70}") == {"big"}


def test_stats(store: SqliteEventStore) -> None:
    stats = store.stats()
    assert stats["rows"] == len(CORPUS)
    assert stats["oldest"] == "2024-01-01T10:00:00.000Z"
    assert stats["newest"] == "2024-01-03T08:00:00.000Z"
    assert stats["file_bytes"] > 0


def test_schema_and_pragmas(store: SqliteEventStore) -> None:
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_closed_store_is_unavailable(tmp_path: Path) -> None:
    s = SqliteEventStore(tmp_path / "e.db")
    s.close()
    s.close()
    with pytest.raises(StoreUnavailable):
        s.write(copy.deepcopy(CORPUS))


def test_invalid_synchronous_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SqliteEventStore(tmp_path / "e.db", synchronous="SOMETIMES")


def test_locked_database_raises_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with SqliteEventStore(path, busy_timeout_ms=100) as s:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreUnavailable, match="locked"):
                s.write(copy.deepcopy(CORPUS))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert s.write(copy.deepcopy(CORPUS)) == len(CORPUS)


def test_slow_query_is_cut_off(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db", query_timeout_s=0) as s:
        s.write([{"@timestamp": "2024-01-01T00:00:00.000Z", "event": {"id": str(i)}, "message": f"m {i}"}
                 for i in range(20_000)])
        with pytest.raises(QueryError, match="narrow the time range"):
            s.count("message:m*")


def test_search_while_writing(tmp_path: Path) -> None:
    with SqliteEventStore(tmp_path / "e.db") as s:
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                for batch in range(20):
                    s.write([{"@timestamp": "2024-01-01T00:00:00.000Z", "event": {"id": f"{batch}-{i}"},
                              "message": "concurrent"} for i in range(200)])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        seen = 0
        while thread.is_alive():
            now = s.count("message:concurrent")
            assert now >= seen
            seen = now
        thread.join()
        assert not errors
        assert s.count("message:concurrent") == 4000


_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from soc.store.sqlite import SqliteEventStore

    store = SqliteEventStore(Path(sys.argv[1]))
    written = 0
    for batch in range(10_000):
        events = [{"@timestamp": "2024-01-01T00:00:00.000Z", "event": {"id": f"{batch}-{i}"},
                   "message": "x" * 500} for i in range(500)]
        store.write(events)
        written += len(events)
        print(written, flush=True)
""")


def test_acknowledged_batches_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acknowledged = 0
    try:
        for line in proc.stdout:
            acknowledged = int(line)
            if acknowledged >= 10_000:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert acknowledged >= 10_000
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with SqliteEventStore(path) as s:
        assert s.count("*") >= acknowledged


def test_an_event_without_its_own_time_is_deduplicated_by_id_alone(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "untimed.db")
    first = {"@timestamp": "2026-01-01T00:00:00.000Z", "event": {"id": "same"}, "tags": ["_no_timestamp"]}
    again = {"@timestamp": "2026-01-01T00:05:00.000Z", "event": {"id": "same"}, "tags": ["_no_timestamp"]}
    assert store.write([first]) == 1
    assert store.write([again]) == 0
    assert store.count("*") == 1
    store.close()


def test_retention_forgets_old_untimed_ids(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "untimed.db")
    event = {"@timestamp": "2020-01-01T00:00:00.000Z", "event": {"id": "old"}, "tags": ["_no_timestamp"]}
    store.write([event])
    assert store.delete_before(datetime(2021, 1, 1, tzinfo=UTC)) == 1
    assert store.write([event]) == 1
    store.close()

"""The audit chain on SQLite and PostgreSQL: appends verify, every kind of tampering
is found at the right entry, and the database itself refuses UPDATE and DELETE."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import DBAPIError

from soc.audit.models import AuditEntry
from soc.audit.trail import GENESIS, Actor, fields_hash, hashed_fields, record
from soc.audit.verify import verify_chain
from soc.db import Database, alembic_config, make_engine
from tests.service.audit_fixtures import append, head, stored, tamper


def test_an_empty_trail_verifies(db: Database) -> None:
    result = verify_chain(db)
    assert (result.ok, result.checked, result.last_seq, result.last_hash) == (True, 0, 0, GENESIS)


def test_recorded_entries_verify(db: Database) -> None:
    append(db, 3)
    append(db, 2, actor=Actor.system("retention"), action="system.update", target_type="system", agency_id=None)
    result = verify_chain(db)
    assert result.ok and result.checked == 5 and result.last_seq == 5
    assert result.last_hash == head(db)[1]


def test_each_entry_links_to_the_previous_hash(db: Database) -> None:
    append(db, 3)
    rows = stored(db)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert [r.prev_hash for r in rows] == [GENESIS, rows[0].hash, rows[1].hash]


def test_values_are_stored_as_hashed(db: Database) -> None:
    append(db, 1)
    entry = stored(db)[0]
    assert entry.before is not None and entry.before["seen"] == "2026-11-24T00:00:00+00:00"
    assert fields_hash(hashed_fields(entry)) == entry.hash


def test_an_entry_rolls_back_with_the_change_it_records(db: Database) -> None:
    append(db, 1)
    with pytest.raises(RuntimeError), db.write() as session:
        record(session, Actor.system("test"), "alert.update", "alert", "x")
        raise RuntimeError("the change failed")
    assert head(db)[0] == 1
    assert verify_chain(db).checked == 1


def test_verifying_in_small_pages_reads_every_entry(db: Database) -> None:
    append(db, 7)
    result = verify_chain(db, batch=2)
    assert result.ok and result.checked == 7


def test_an_edited_entry_is_reported_at_its_seq_as_a_hash_mismatch(db: Database) -> None:
    append(db, 5)
    tamper(db, "UPDATE audit_log SET actor_name = :name WHERE seq = 3", name="someone-else")
    result = verify_chain(db, batch=2)
    assert (result.ok, result.first_broken_seq, result.reason, result.checked) == (False, 3, "hash_mismatch", 2)
    assert result.found == stored(db)[2].hash and result.expected != result.found


def test_an_entry_rewritten_with_a_fresh_hash_breaks_the_next_link(db: Database) -> None:
    append(db, 5)
    row = stored(db)[2]
    fields = hashed_fields(row)
    fields["action"] = "alert.comment"
    tamper(db, "UPDATE audit_log SET action = :action, hash = :hash WHERE seq = 3", action="alert.comment",
           hash=fields_hash(fields))
    result = verify_chain(db)
    assert (result.first_broken_seq, result.reason) == (4, "broken_link")
    assert result.expected == fields_hash(fields) and result.found == row.hash


def test_a_deleted_middle_entry_is_reported_missing_at_its_seq(db: Database) -> None:
    append(db, 5)
    tamper(db, "DELETE FROM audit_log WHERE seq = 3")
    result = verify_chain(db)
    assert (result.ok, result.first_broken_seq, result.reason) == (False, 3, "missing_rows")
    assert (result.expected, result.found, result.checked) == ("3", "4", 2)


def test_a_deleted_last_entry_is_a_head_mismatch(db: Database) -> None:
    append(db, 5)
    tamper(db, "DELETE FROM audit_log WHERE seq = 5")
    result = verify_chain(db)
    assert (result.ok, result.first_broken_seq, result.reason, result.checked) == (False, 5, "head_mismatch", 4)


def test_an_emptied_table_is_a_head_mismatch(db: Database) -> None:
    append(db, 3)
    tamper(db, "DELETE FROM audit_log")
    result = verify_chain(db)
    assert (result.ok, result.first_broken_seq, result.reason, result.checked) == (False, 1, "head_mismatch", 0)


def test_the_reason_is_given_in_both_languages(db: Database) -> None:
    append(db, 2)
    tamper(db, "UPDATE audit_log SET source_ip = '127.0.0.1' WHERE seq = 2")
    body = verify_chain(db).as_dict()
    assert "#2" in body["message"] and "edited" in body["message"]
    assert "#2" in body["message_vi"] and "bị sửa" in body["message_vi"]


def test_update_is_refused_by_the_database(db: Database) -> None:
    append(db, 2)
    with pytest.raises(DBAPIError, match="append-only"), db.write() as session:
        session.execute(text("UPDATE audit_log SET actor_name = 'x' WHERE seq = 1"))
    assert verify_chain(db).ok


def test_delete_is_refused_by_the_database(db: Database) -> None:
    append(db, 2)
    with pytest.raises(DBAPIError, match="append-only"), db.write() as session:
        session.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    assert verify_chain(db).checked == 2


def test_truncate_is_refused_on_postgresql(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    append(db, 2)
    with pytest.raises(DBAPIError, match="append-only"), db.write() as session:
        session.execute(text("TRUNCATE audit_log"))
    assert verify_chain(db).checked == 2


def test_concurrent_appends_keep_one_chain(db: Database) -> None:
    threads, each = 4, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                with db.write() as session:
                    record(session, Actor(None, f"worker{n}"), "alert.update", "alert", f"{n}-{i}")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    result = verify_chain(db)
    assert result.ok and result.checked == threads * each
    with db.read() as session:
        targets = set(session.scalars(select(AuditEntry.target_id)))
    assert targets == {f"{n}-{i}" for n in range(threads) for i in range(each)}


def test_verifying_while_entries_are_appended_finds_no_break(db: Database) -> None:
    append(db, 5)
    done = threading.Event()

    def writer() -> None:
        try:
            for i in range(60):
                with db.write() as session:
                    record(session, Actor.system("writer"), "alert.update", "alert", str(i))
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    results = []
    while not done.is_set() or not results:
        results.append(verify_chain(db, batch=3))
    thread.join()
    assert [r.reason for r in results if not r.ok] == []
    assert verify_chain(db).checked == 65


def test_downgrade_removes_the_triggers_and_upgrade_restores_them(db: Database) -> None:
    append(db, 1)
    command.downgrade(alembic_config(db.url), "0005")
    engine = make_engine(db.url)
    try:
        assert "audit_log" not in inspect(engine).get_table_names()
        assert _triggers(engine) == set()
        command.upgrade(alembic_config(db.url), "head")
        assert _triggers(engine) >= {"audit_log_no_update", "audit_log_no_delete"}
    finally:
        engine.dispose()
    assert verify_chain(db).ok


def _triggers(engine: Engine) -> set[str]:
    query = ("SELECT name FROM sqlite_master WHERE type = 'trigger'" if engine.dialect.name == "sqlite" else
             "SELECT DISTINCT trigger_name FROM information_schema.triggers WHERE event_object_table = 'audit_log'")
    with engine.connect() as conn:
        return {str(r[0]) for r in conn.execute(text(query))}

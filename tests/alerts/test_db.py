"""The SOC database: URL, SQLite settings, migrations equal to the models."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import StatementError

import soc.models  # noqa: F401  (registers every table)
from soc.alerts.models import Alert
from soc.config import SocConfig
from soc.db import Base, alembic_config, database_url, make_engine, make_session_factory, migrate, write_session
from tests.conftest import REPO


def test_database_url_defaults_to_soc_db_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOC_DATABASE_URL", raising=False)
    assert database_url(SocConfig(data_dir=tmp_path)) == f"sqlite:///{tmp_path / 'soc.db'}"


def test_database_url_from_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_DATABASE_URL", "postgresql+psycopg://soc:s%40cret@db.soc.local/soc")
    assert database_url(SocConfig(data_dir=tmp_path)) == "postgresql+psycopg://soc:s%40cret@db.soc.local/soc"


def test_migrate_creates_the_schema_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "soc.db"
    url = f"sqlite:///{path}"
    migrate(url)
    migrate(url)  # idempotent: a restart finds the schema at head
    assert path.exists()
    engine = make_engine(url)
    try:
        insp = inspect(engine)
        assert {"alerts", "alembic_version"} <= set(insp.get_table_names())
        indexes = {ix["name"]: ix["column_names"] for ix in insp.get_indexes("alerts")}
        assert indexes["ix_alerts_status_last_seen"] == ["status", "last_seen"]
        assert indexes["ix_alerts_dedup_key_last_seen"] == ["dedup_key", "last_seen"]
        assert {"ix_alerts_system_id_last_seen", "ix_alerts_rule_id_last_seen", "ix_alerts_level_last_seen",
                "ix_alerts_agency_id_last_seen", "ix_alerts_classification"} <= set(indexes)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        with engine.connect() as conn:
            newest = max(path.stem.split("_")[0] for path in (REPO / "soc" / "migrations" / "versions").glob("0*.py"))
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head == newest
    finally:
        engine.dispose()


def test_migrations_at_head_equal_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(ctx, Base.metadata) == []


def test_migrations_render_for_postgresql_without_sqlite_specific_sql() -> None:
    buf = io.StringIO()
    cfg = alembic_config("postgresql://soc@db.soc.local/soc")
    cfg.output_buffer = buf
    command.upgrade(cfg, "head", sql=True)
    ddl = buf.getvalue()
    assert "CREATE TABLE alerts" in ddl
    assert "TIMESTAMP WITH TIME ZONE" in ddl
    assert "JSON" in ddl
    assert "PRAGMA" not in ddl and "AUTOINCREMENT" not in ddl


def test_sqlite_engine_uses_wal_foreign_keys_and_a_busy_timeout(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        busy_timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert busy_timeout is not None and busy_timeout >= 5000


def _alert(first_seen: datetime) -> Alert:
    return Alert(id="a1", rule_id="r", rule_title="t", level="low", kind="detection", dedup_key="k" * 64,
                 first_seen=first_seen, last_seen=first_seen, system_id="portal")


def test_timestamps_come_back_timezone_aware_in_utc(engine: Engine) -> None:
    hanoi = timezone(timedelta(hours=7))
    factory = make_session_factory(engine)
    with write_session(factory) as session:
        session.add(_alert(datetime(2026, 11, 23, 8, 30, tzinfo=hanoi)))
    with factory() as session:
        alert = session.scalars(select(Alert)).one()
    assert alert.first_seen == datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    assert alert.first_seen.tzinfo is not None and alert.created_at.tzinfo is not None
    assert alert.status == "new" and alert.version == 1 and alert.tactics == [] and alert.retro is False


def test_naive_timestamps_are_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), \
            write_session(make_session_factory(engine)) as session:
        session.add(_alert(datetime(2026, 11, 23, 8, 30)))
        session.flush()


def test_write_session_rolls_back_on_error(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with pytest.raises(RuntimeError), write_session(factory) as session:
        session.add(_alert(datetime(2026, 11, 23, 1, 0, tzinfo=UTC)))
        session.flush()
        raise RuntimeError("boom")
    with factory() as session:
        assert session.scalars(select(Alert)).all() == []

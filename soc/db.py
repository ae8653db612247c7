"""The SOC state database: alerts now; incidents, users and the audit trail later.

SQLite (``<data_dir>/soc.db``) by default, PostgreSQL through ``SOC_DATABASE_URL``.
The schema is owned by the Alembic migrations in ``soc/migrations``: production code
calls :func:`migrate`, never ``create_all``, so a database created by one release is
upgraded in place by the next.

Adding a table: declare it on :class:`Base`, then write the next migration in
``soc/migrations/versions`` (``alembic_config()`` gives a configuration for
``alembic.command.revision(cfg, autogenerate=True)``) and keep it portable: no
dialect-specific SQL, JSON through ``sqlalchemy.JSON``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import JSON, DateTime, Dialect, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from alembic.config import Config

    from soc.config import SocConfig

DATABASE_URL_ENV = "SOC_DATABASE_URL"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_IMMEDIATE = "soc_sqlite_immediate"
"""Execution option: begin the transaction with ``BEGIN IMMEDIATE`` on SQLite."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are stored
    as naive UTC (which also keeps its text comparison chronological) and come back
    with ``tzinfo=UTC``. Naive input is refused: a local time taken for UTC would
    shift an alert by seven hours."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every SOC table."""

    # Deterministic constraint names, so later migrations can alter or drop them on
    # PostgreSQL and in SQLite batch mode alike.
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
        list[dict[str, Any]]: JSON(),
    }


def database_url(cfg: SocConfig | None = None) -> str:
    """``SOC_DATABASE_URL`` if set, else ``sqlite:///<data_dir>/soc.db``."""
    env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if env:
        return env
    if cfg is None:
        from soc.config import SocConfig

        cfg = SocConfig()
    return f"sqlite:///{(Path(cfg.data_dir) / 'soc.db').resolve()}"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    On SQLite SQLAlchemy, not the ``sqlite3`` module, emits ``BEGIN`` (the driver's
    legacy mode would start transactions late and leave DDL outside them), and
    :func:`write_session` begins ``IMMEDIATE``: a writer takes the write lock before
    its first read, so two writers queue on the busy timeout instead of one failing
    with "database is locked" when it upgrades its read lock."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)

    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (they are handed to callers)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def write_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One read-write transaction: commits on success, rolls back on error."""
    with factory() as session, session.begin():
        # Procure the connection now, with the option the SQLite begin hook reads.
        session.connection(execution_options={_IMMEDIATE: True})
        yield session


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration built in code (no ``alembic.ini``), pointing at the
    packaged migration scripts."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolates '%', which URL-encoded passwords contain.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (``alembic upgrade head``)."""
    from alembic import command

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            # Immediate on SQLite: two processes starting together migrate one
            # after the other; the second then finds the schema at head.
            connection.execution_options(**{_IMMEDIATE: True})
            cfg = alembic_config(url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
            # Alembic commits only a transaction it began itself; one the connection
            # auto-began (a version read) is ours to commit.
            if connection.in_transaction():
                connection.commit()
    finally:
        engine.dispose()


def utcnow() -> datetime:
    return datetime.now(UTC)


class Database:
    """The SOC database as the API and jobs use it: one engine, one session factory."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine if engine is not None else make_engine(url)
        self.sessions = make_session_factory(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work (rolled back at the end)."""
        with self.sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One read-write transaction (see :func:`write_session`)."""
        with write_session(self.sessions) as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(cfg: SocConfig | None = None, url: str | None = None) -> Database:
    """Migrate the database to head and open it."""
    url = url or database_url(cfg)
    migrate(url)
    return Database(url)

"""Shared test fixtures: where the real datasets are, and a parse context."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
"""``../shared/datasets`` relative to the repository root."""


@pytest.fixture
def ctx():  # type: ignore[no-untyped-def]
    """A parse context with a fixed reference time, so year inference is stable."""
    from collectors.parsers import ParseContext

    return ParseContext(now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def postgres():  # type: ignore[no-untyped-def]
    """A real PostgreSQL server for the session (see :mod:`tests.pg`)."""
    from tests.pg import PostgresServer

    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres):  # type: ignore[no-untyped-def]
    """A database migrated to head once; each test's database is a copy of it."""
    from soc.db import migrate

    name = postgres.create_database()
    migrate(postgres.url(name))
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def service_db_url(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The URL of a fresh SOC database at head, on SQLite and on PostgreSQL: the
    service tests run on both backends."""
    if request.param == "sqlite":
        from soc.db import migrate

        url = f"sqlite:///{tmp_path / 'var' / 'soc.db'}"
        migrate(url)
        yield url
        return
    server = request.getfixturevalue("postgres")
    name = server.create_database(template=request.getfixturevalue("postgres_template"))
    yield server.url(name)
    server.drop_database(name)

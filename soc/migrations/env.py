"""Alembic environment of the SOC database.

:func:`soc.db.migrate` passes an open connection in ``config.attributes``; without
one (``alembic`` run by hand with a configuration from :func:`soc.db.alembic_config`)
the URL comes from ``sqlalchemy.url`` or ``SOC_DATABASE_URL``.
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy import Connection

import soc.models  # noqa: F401  (registers every table on Base.metadata)
from soc.db import DATABASE_URL_ENV, Base, make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise RuntimeError(f"no database URL: set sqlalchemy.url or {DATABASE_URL_ENV}")
    return url


DIALECT_ONLY_INDEXES = frozenset({"ix_alerts_search_text_trgm"})
"""Indexes a migration creates on one backend only (not on the models)."""


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "index" and reflected and name in DIALECT_ONLY_INDEXES)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """``--sql``: write the DDL instead of running it (for a DBA to review)."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

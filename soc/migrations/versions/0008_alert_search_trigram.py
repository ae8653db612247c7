"""Free-text alert search on PostgreSQL: a trigram GIN index on ``alerts.search_text``.

``q`` filters with ``search_text LIKE '%…%'``, which no B-tree can serve: on a million
alerts PostgreSQL would read the whole table for a rare term. ``pg_trgm`` (shipped
with PostgreSQL, a trusted extension since 13, so the database owner may create it)
lets the planner find the matching rows first. SQLite has no such index and does not
need one (its scan of the folded column stays under 100 ms at a million alerts).

A server where the extension cannot be created keeps working without the index (the
search is then a scan); the migration says so instead of failing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import context, op
from sqlalchemy.exc import DBAPIError

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_alerts_search_text_trgm"
"""Not declared on the model: it exists on PostgreSQL only (``soc/migrations/env.py``
keeps autogenerate from proposing to drop it)."""
log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    if context.is_offline_mode():
        # --sql for a DBA: the script states both steps.
        if context.get_context().dialect.name == "postgresql":
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON alerts USING gin (search_text gin_trgm_ops)")
        return
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        savepoint.rollback()
        log.warning("pg_trgm unavailable, alert free-text search will scan / không có pg_trgm, tìm kiếm "
                    "văn bản cảnh báo sẽ quét toàn bảng: %s", exc.orig)
        return
    savepoint.commit()
    op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON alerts USING gin (search_text gin_trgm_ops)")


def downgrade() -> None:
    if context.get_context().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")

"""Free-text alert search has a trigram index on PostgreSQL (migration 0008)."""

from __future__ import annotations

from sqlalchemy import inspect

from soc.db import Database


def test_postgresql_has_a_trigram_index_on_the_search_text_and_sqlite_none(db: Database) -> None:
    indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("alerts")}
    assert ("ix_alerts_search_text_trgm" in indexes) == (db.dialect == "postgresql")

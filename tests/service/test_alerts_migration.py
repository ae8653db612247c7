"""Migration 0005 fills the queue's derived columns of alerts that existed before it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from soc.alerts.models import Alert
from soc.db import Database, migrate


@pytest.fixture(params=["sqlite", "postgresql"])
def url_at_0004(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        migrate(url, "0004")
        yield url
        return
    server = request.getfixturevalue("postgres")
    name = server.create_database()
    url = server.url(name)
    migrate(url, "0004")
    yield url
    server.drop_database(name)


def test_upgrading_backfills_rank_attack_tags_and_search_text(url_at_0004: str) -> None:
    engine = sa.create_engine(url_at_0004)
    old = sa.table("alerts", *(sa.column(c) for c in (
        "id", "rule_id", "rule_title", "level", "kind", "status", "tactics", "techniques", "dedup_key", "count",
        "first_seen", "last_seen", "created_at", "updated_at", "version", "event_ids", "key_fields", "system_id",
        "retro", "summary")))
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    naive = now.replace(tzinfo=None) if engine.dialect.name == "sqlite" else now
    with engine.begin() as conn:
        conn.execute(old.insert().values(
            id="old-1", rule_id="ssh-brute", rule_title="Dò mật khẩu SSH / SSH brute force", level="critical",
            kind="correlation", status="new", tactics='["Credential Access"]', techniques='["T1110"]',
            dedup_key="k" * 64, count=3, first_seen=naive, last_seen=naive, created_at=naive, updated_at=naive,
            version=1, event_ids="[]", key_fields='{"source.ip": "203.0.113.7"}', system_id="ad-servers",
            retro=False, summary=""))
    engine.dispose()
    migrate(url_at_0004)
    db = Database(url_at_0004)
    try:
        with db.read() as session:
            alert = session.get(Alert, "old-1")
            assert alert is not None
            assert alert.level_rank == 4
            assert alert.attack_tags == ",credential-access,t1110,"
            assert "do mat khau ssh" in alert.search_text and "203.0.113.7" in alert.search_text
    finally:
        db.dispose()

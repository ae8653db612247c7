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

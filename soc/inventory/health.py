"""Onboarding state and per-source health of a system."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from soc.inventory.models import LogSourceRow, SystemRow

ONBOARDING_STATES = ("awaiting_first_log", "receiving", "silent", "decommissioned")


def onboarding_state(system: SystemRow, sources: Sequence[LogSourceRow], now: datetime) -> str:
    """``awaiting_first_log`` until the first event arrives, then ``receiving``;
    ``silent`` while every watched source of the system is silent."""
    if system.decommissioned_at is not None:
        return "decommissioned"
    if system.first_log_at is None:
        return "awaiting_first_log"
    if sources and all(source.silent_since is not None for source in sources):
        return "silent"
    return "receiving"

"""Times as analysts type them: ``24h``, ``7d``, ``30m``, ``2w``, ``90s`` ago, or ISO 8601."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, *, now: datetime | None = None, tz: tzinfo = UTC) -> datetime:
    """An aware datetime; a naive ISO value is read in ``tz``. Raises ValueError."""
    match = _RELATIVE.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    text = value.strip()
    if text.lower() == "now":
        return now or datetime.now(UTC)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)

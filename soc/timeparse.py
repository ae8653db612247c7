"""Times as analysts type them (``24h``, ``7d``, ``30m``, ``2w``, ``90s`` ago, or ISO 8601)
and intervals as the inventory writes them (``30s``, ``5m``, ``2h``, ``1d``, ``1w``)."""

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


_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_interval(value: str | int) -> int:
    """Seconds of an interval written ``30s``, ``5m``, ``2h``, ``1d``, ``1w`` or as seconds.
    Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"invalid interval {value!r}")
    if isinstance(value, int):
        seconds = value
    else:
        match = _INTERVAL.match(str(value))
        if not match:
            raise ValueError(f"invalid interval {value!r}: write 30s, 5m, 2h, 1d or a number of seconds")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"invalid interval {value!r}: it must be longer than zero")
    return seconds


def format_interval(seconds: int | None) -> str | None:
    """``300`` → ``5m``: the largest unit that divides the interval exactly."""
    if seconds is None:
        return None
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"

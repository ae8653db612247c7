"""Value semantics shared by the parser and every translator: field names, numbers,
IP addresses and time bounds, and the bilingual error messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address, ip_address

from collectors.event import parse_iso
from soc.store.base import QueryError

FIELD_NAME_RE = re.compile(r"^[A-Za-z_@][A-Za-z0-9_@.\-]*$")
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_DATE_ONLY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
V4_MAPPED = 0xFFFF_0000_0000
IP_KEY_MAX = (1 << 128) - 1


def query_error(en: str, vi: str) -> QueryError:
    """A QueryError whose message carries both languages: ``English / Tiếng Việt``."""
    return QueryError(f"{en} / {vi}")


def check_field(name: str) -> str:
    if not FIELD_NAME_RE.fullmatch(name):
        raise query_error(
            f"Invalid field name {name!r}: use letters, digits, '_', '@', '.', '-'",
            f"Tên trường không hợp lệ {name!r}: chỉ dùng chữ, số, '_', '@', '.', '-'",
        )
    return name


def parse_number(text: str) -> int | float | None:
    """The number a query value spells, or None."""
    if not _NUMBER_RE.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_ip(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


def ip_key(addr: IPv4Address | IPv6Address) -> int:
    """Position of an address in one IPv6-sized space where IPv4 sits at
    ``::ffff:0:0/96``, as Elasticsearch orders ``ip`` fields; an IPv4-mapped IPv6
    address gets the same key as the IPv4 address."""
    if isinstance(addr, IPv4Address):
        return V4_MAPPED | int(addr)
    return int(addr)


def is_date_only(text: str) -> bool:
    return bool(_DATE_ONLY_RE.fullmatch(text))


def parse_when(text: str) -> datetime:
    """An ISO 8601 date or date-time (naive means UTC); raises QueryError."""
    try:
        return parse_iso(text)
    except ValueError:
        raise query_error(
            f"Invalid date {text!r}: use ISO 8601, e.g. 2024-05-01 or 2024-05-01T10:00:00Z",
            f"Ngày giờ không hợp lệ {text!r}: dùng ISO 8601, ví dụ 2024-05-01 hoặc 2024-05-01T10:00:00Z",
        ) from None


def _epoch_ms(dt: datetime) -> int:
    delta = dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def time_bounds(low: str | None, high: str | None, include_low: bool = True,
                include_high: bool = True) -> tuple[int | None, int | None]:
    """Inclusive epoch-millisecond bounds of a time range (None = open).

    A date without a time stands for the whole day: ``[2024-01-01 TO 2024-01-02]``
    covers both days, ``{2024-01-01 TO …`` starts the day after. A date-time is
    exact to the millisecond.
    """
    lo = hi = None
    if low is not None:
        start = parse_when(low)
        if is_date_only(low):
            lo = _epoch_ms(start if include_low else start + timedelta(days=1))
        else:
            lo = _epoch_ms(start) + (0 if include_low else 1)
    if high is not None:
        end = parse_when(high)
        if is_date_only(high):
            hi = _epoch_ms(end + timedelta(days=1) if include_high else end) - 1
        else:
            hi = _epoch_ms(end) - (0 if include_high else 1)
    return lo, hi


def iso_from_ms(ms: int) -> str:
    """Canonical ``@timestamp`` form of epoch milliseconds."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"

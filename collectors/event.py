"""The event model shared by every stage: a nested ECS document (plain dicts).

Events are nested the way Elasticsearch stores them (``{"source": {"ip": ...}}``);
code addresses fields by their dotted ECS name through :func:`get_field` and
:func:`set_field`. ``@timestamp`` is always an ISO 8601 string in UTC with
millisecond precision and a ``Z`` suffix, so what a stage sees is exactly what the
store holds.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from itertools import count
from typing import Any

Event = dict[str, Any]

PARSE_FAILURE_TAG = "_parse_failure"
NO_TIMESTAMP_TAG = "_no_timestamp"
"""The record carried no time of its own: ``@timestamp`` is when the SOC received
it. Such events cannot be deduplicated by time and id, only by id."""
UNASSIGNED_SYSTEM = "unassigned"

_MISSING = object()


def get_field(doc: Event, path: str, default: Any = None) -> Any:
    """Value at a dotted ECS path; also finds keys that literally contain dots."""
    if path in doc:
        return doc[path]
    node: Any = doc
    parts = path.split(".")
    i = 0
    while i < len(parts):
        if not isinstance(node, dict):
            return default
        # Greedy: a key like "winlog.event_data" stored flat still resolves.
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node:
                node = node[key]
                i = j
                break
        else:
            return default
    return node


def set_field(doc: Event, path: str, value: Any) -> None:
    """Set a dotted ECS path, creating the intermediate objects."""
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def set_fields(doc: Event, values: dict[str, Any]) -> None:
    """Set several dotted paths at once, skipping ``None`` and empty strings."""
    for path, value in values.items():
        if value is None or value == "":
            continue
        set_field(doc, path, value)


def has_field(doc: Event, path: str) -> bool:
    return get_field(doc, path, _MISSING) is not _MISSING


def flatten(doc: Event, prefix: str = "") -> dict[str, Any]:
    """Dotted-key view of a nested document (lists are kept as values)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def add_tag(doc: Event, tag: str) -> None:
    tags = doc.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


# --- event ids --------------------------------------------------------------------

def _feed(h: Any, part: str | bytes | int) -> None:
    if isinstance(part, int):
        part = str(part)
    if isinstance(part, str):
        part = part.encode("utf-8", "surrogatepass")
    h.update(len(part).to_bytes(4, "little"))
    h.update(part)


def stable_id(*parts: str | bytes | int) -> str:
    """A deterministic 32-hex-digit id: the same inputs give the same id, so a
    redelivered record overwrites itself instead of duplicating."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        _feed(h, part)
    return h.hexdigest()


def stable_id_factory(*prefix: str | bytes | int) -> Callable[[str | bytes | int], str]:
    """``make(last) == stable_id(*prefix, last)``, hashing the common prefix once
    (ids of every line of a file share the file's identity)."""
    base = hashlib.blake2b(digest_size=16)
    for part in prefix:
        _feed(base, part)

    def make(last: str | bytes | int) -> str:
        h = base.copy()
        _feed(h, last)
        return h.hexdigest()

    return make


_run_prefix = os.urandom(6).hex()
_seq = count()


def unique_ids(n: int) -> list[str]:
    """Ids for records that have no natural identity (a syslog datagram): unique
    within and across runs, cheap to make in bulk."""
    base = f"{_run_prefix}{next(_seq):010x}"
    return [f"{base}{i:06x}" for i in range(n)]


# --- timestamps -------------------------------------------------------------------

def iso_utc(dt: datetime) -> str:
    """``2024-05-01T10:00:00.123Z`` for an aware datetime (naive means UTC)."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def iso_from_epoch(seconds: float) -> str:
    return iso_utc(datetime.fromtimestamp(seconds, UTC))


@lru_cache(maxsize=4096)
def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z``, offsets with or without colon, up to 9
    fractional digits). Naive values are taken as UTC. Raises ValueError."""
    v = value.strip()
    if v.endswith(("Z", "z")):
        v = v[:-1] + "+00:00"
    # Trim nanoseconds: Python parses at most 6 fractional digits.
    dot = v.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(v) and v[end].isdigit():
            end += 1
        if end - dot - 1 > 6:
            v = v[: dot + 7] + v[end:]
    # "-0400" → "-04:00"
    if len(v) >= 5 and v[-5] in "+-" and v[-4:].isdigit() and "T" in v:
        v = v[:-2] + ":" + v[-2:]
    dt = datetime.fromisoformat(v)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def normalize_timestamp(value: str) -> str:
    """Any ISO 8601 string → the canonical ``@timestamp`` form."""
    return iso_utc(parse_iso(value))


def timestamp_epoch(doc: Event) -> float:
    """Epoch seconds of a document's ``@timestamp`` (0.0 when absent or invalid)."""
    ts = doc.get("@timestamp")
    if not isinstance(ts, str):
        return 0.0
    try:
        return parse_iso(ts).timestamp()
    except ValueError:
        return 0.0

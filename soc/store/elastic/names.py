"""Index and data stream names.

Events go to ``logs-<dataset>-<namespace>.l<level>`` (``logs-linux.auth-soc.l3``):
Elastic's data stream naming scheme, with the system's security level (cấp độ) in
the namespace because retention is decided per level (one ILM policy per level)
and a data stream has exactly one policy. Events of systems without a level go to
``<namespace>.unclassified``.
"""

from __future__ import annotations

import re

EVENTS_PATTERN = "logs-*"
"""Every ``logs-*`` stream, the dead letters and other products' streams included;
searches use :func:`events_pattern`."""

LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
UNCLASSIFIED = "unclassified"
DEAD_LETTER_DATASET = "soc.deadletter"

_BAD = re.compile(r"[^a-z0-9._]+")


def clean_dataset(dataset: object) -> str:
    """A dataset name safe inside an index name (lowercase, ``[a-z0-9._]``, no ``-``)."""
    if not isinstance(dataset, str) or not dataset:
        return "generic"
    cleaned = _BAD.sub("_", dataset.lower()).strip("._")[:60]
    return cleaned or "generic"


def level_suffix(level: object) -> str:
    if isinstance(level, int) and not isinstance(level, bool) and level in LEVELS:
        return f"l{level}"
    if isinstance(level, str) and level.isdigit() and int(level) in LEVELS:
        return f"l{level}"
    return UNCLASSIFIED


def events_pattern(namespace: str) -> str:
    """The event streams of one SOC namespace, every level, without the dead letters
    (``logs-*-soc.*``; the dead-letter stream ends in ``-soc``, not ``-soc.``)."""
    return f"logs-*-{namespace}.*"


def stream_name(dataset: object, level: object, namespace: str) -> str:
    return f"logs-{clean_dataset(dataset)}-{namespace}.{level_suffix(level)}"


def level_pattern(suffix: str) -> str:
    """The index pattern of every stream of one level (``logs-*-*.l3``)."""
    return f"logs-*-*.{suffix}"


def dead_letter_name(namespace: str) -> str:
    return f"logs-{DEAD_LETTER_DATASET}-{namespace}"


def policy_name(suffix: str) -> str:
    """ILM policy of a level (``soc-logs-l3``)."""
    return f"soc-logs-{suffix}"

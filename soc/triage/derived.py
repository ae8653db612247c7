"""Columns the triage queue filters and sorts on, derived from what an alert already
holds (see the ``level_rank``, ``attack_tags`` and ``search_text`` columns of
:class:`soc.alerts.models.Alert`, kept up to date by its mapper events).

They exist because the queue must stay fast with a million alerts on SQLite and
PostgreSQL alike, without JSON operators or dialect-specific text search:

- ``level_rank`` (0 informational … 4 critical) sorts by severity and answers
  ``min_level`` with an index;
- ``attack_tags`` (``,credential-access,t1110,t1110.001,``) makes an ATT&CK tactic or
  technique filter a plain ``LIKE '%,credential-access,%'``;
- ``search_text`` is rule id, title, summary and key fields folded (lower case,
  Vietnamese diacritics and ``đ`` removed), so the free-text filter is one ``LIKE``
  that finds ``Đăng nhập`` when an analyst types ``dang nhap`` on both backends
  (SQLite's and PostgreSQL's C-locale ``lower()`` only fold ASCII).

This module imports nothing of the alerts package: the alert model uses it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

LEVELS: tuple[str, ...] = ("informational", "low", "medium", "high", "critical")
LEVEL_RANK: dict[str, int] = {name: rank for rank, name in enumerate(LEVELS)}
SEARCH_TEXT_MAX = 4000
"""Characters of folded text kept per alert (key fields are already clipped)."""

_SEPARATOR = " | "
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
"""Combining marks (every Vietnamese tone and vowel mark is in the first block)."""


def level_rank(level: str | None) -> int:
    """0 (informational) … 4 (critical); an unknown level ranks with informational."""
    return LEVEL_RANK.get((level or "").lower(), 0)


def fold(text: str) -> str:
    """Lower case without diacritics (``Đăng nhập SSH`` → ``dang nhap ssh``): how the
    free-text filter compares, on both sides."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return _COMBINING.sub("", decomposed).casefold()


def slug(name: str) -> str:
    """``Credential Access`` / ``credential_access`` → ``credential-access``;
    ``T1110.001`` → ``t1110.001``."""
    return "-".join(name.strip().lower().replace("_", " ").replace("-", " ").split())


def attack_tags(tactics: Iterable[str] | None, techniques: Iterable[str] | None) -> str:
    """``,credential-access,t1110,`` (empty when the rule has no ATT&CK tags)."""
    tags = [slug(t) for t in (tactics or ()) if t] + [slug(t) for t in (techniques or ()) if t]
    tags = list(dict.fromkeys(t for t in tags if t))
    return f",{','.join(tags)}," if tags else ""


def _flatten(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _flatten(item)
    elif value is not None:
        yield str(value)


def search_text(rule_id: str | None, rule_title: str | None, summary: str | None,
                key_fields: Mapping[str, Any] | None) -> str:
    """The folded text the free-text filter searches."""
    parts = [rule_id or "", rule_title or "", summary or ""]
    for name, value in (key_fields or {}).items():
        parts.append(f"{name}={' '.join(_flatten(value))}")
    return fold(_SEPARATOR.join(p for p in parts if p))[:SEARCH_TEXT_MAX]


DERIVE: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "level_rank": lambda row: level_rank(row.get("level")),
    "attack_tags": lambda row: attack_tags(row.get("tactics"), row.get("techniques")),
    "search_text": lambda row: search_text(row.get("rule_id"), row.get("rule_title"), row.get("summary"),
                                           row.get("key_fields")),
}
"""Derived column → how it is computed from a row's other column values."""


def derived_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The derived columns of a row given as a mapping of column values."""
    return {name: derive(values) for name, derive in DERIVE.items()}

"""The analyst query AST shared by every store's translator.

Values keep the analyst's raw string; how they compare (numerically, as time, as
an IP, as text) is decided by the translators from the field's type in
:data:`collectors.ecs_fields.FIELD_TYPES`, so one AST serves SQLite and
Elasticsearch alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

TermKind = Literal["exact", "wildcard", "phrase"]


@dataclass(frozen=True, slots=True)
class MatchAll:
    """``*``, ``*:*`` or an empty query."""


@dataclass(frozen=True, slots=True)
class Term:
    """``field:value``; ``field`` is None for a bare term (searched in the default
    text fields).

    ``exact`` and ``phrase`` values are literal (escapes resolved). A ``wildcard``
    value is a Lucene pattern: ``*`` and ``?`` are wildcards and a backslash makes
    the next character literal (only ``\\*``, ``\\?`` and ``\\\\`` remain escaped),
    which is also Elasticsearch's wildcard syntax.
    """

    field: str | None
    value: str
    kind: TermKind = "exact"


@dataclass(frozen=True, slots=True)
class Range:
    """``field:[low TO high]``, ``{…}``, ``field:>=v`` …; ``None`` is an open bound (``*``)."""

    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True, slots=True)
class Exists:
    """``_exists_:field`` or ``field:*``: the field is present and not null."""

    field: str


@dataclass(frozen=True, slots=True)
class Cidr:
    """An IP field compared against a network (``source.ip:10.0.0.0/8``)."""

    field: str
    network: IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = MatchAll | Term | Range | Exists | Cidr | And | Or | Not

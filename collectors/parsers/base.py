"""Parser plugins and their registries (in the manner of pySigma's backends).

Three kinds of plugin:

* :class:`LineParser` turns one text line into an ECS event (nginx, FortiGate …).
* :class:`ObjectParser` turns one decoded JSON object into an ECS event (Suricata
  EVE, Winlogbeat, the ``evtx`` package's records …).
* program parsers read the message part of a syslog line whose header named a
  program (``sshd``, ``sudo``, ``postfix/smtpd`` …) and add fields to the event
  that the syslog parser already built.

A parser returns ``None`` when the input is not in its format (auto-detection then
tries the next one) and raises :class:`ParseError` when the input is in its format
but broken. Importing :mod:`collectors.parsers` registers every built-in plugin.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from collectors.event import Event, iso_utc


class ParseError(ValueError):
    """The input is in this parser's format but cannot be read."""


@dataclass(slots=True)
class JsonMapping:
    """A declared mapping for a generic JSON application audit log.

    ``fields`` maps an ECS field to a dotted path in the source object;
    ``static`` sets constant ECS values; ``timestamp_format`` is ``iso8601``,
    ``epoch``, ``epoch_ms`` or a :func:`datetime.strptime` pattern;
    ``outcome_values`` maps source values to ``success``/``failure``;
    ``category_by_action`` maps an ``event.action`` value to ECS
    ``event.category``/``event.type`` lists; ``match`` lists source keys whose
    presence identifies the format during auto-detection.
    """

    name: str
    fields: dict[str, str] = field(default_factory=dict)
    static: dict[str, Any] = field(default_factory=dict)
    timestamp_field: str | None = None
    timestamp_format: str = "iso8601"
    outcome_field: str | None = None
    outcome_values: dict[str, str] = field(default_factory=dict)
    category_by_action: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    match: list[str] = field(default_factory=list)
    dataset: str | None = None


@dataclass(slots=True)
class ParseContext:
    """What a parser may need beyond the record itself.

    One context lives per input stream (a file, a TCP connection, an ingest request),
    so ``state`` can carry stream state such as an IIS ``#Fields`` header.
    """

    tz: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    """Time zone for timestamps that carry no offset (syslog, IIS is UTC by spec)."""
    now: datetime | None = None
    """Reference time (aware) for year inference; ``None`` means the current time."""
    json_mappings: dict[str, JsonMapping] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    declared: str | None = None
    """The format the stream declares (``json:ioffice_audit``), ``None`` when it is
    auto-detected; set by the dispatcher for every record."""

    def local_iso(self, naive: datetime) -> str:
        """ISO UTC string for a wall-clock time of the sending device."""
        if naive.tzinfo is None:
            naive = naive.replace(tzinfo=self.tz)
        return iso_utc(naive)


class LineParser(ABC):
    """A plugin that reads one text line."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    priority: ClassVar[int] = 100
    """Auto-detection order: lower is tried first. Specific formats go before
    general ones (FortiGate key=value before plain syslog)."""
    embeddable: ClassVar[bool] = False
    """True when the format also arrives as the message of a syslog line
    (``Jan 11 10:13:05 web01 nginx: 10.0.0.1 - - [...] "GET / ..."``): the syslog
    parser then offers it the message part."""

    def sniff(self, line: str) -> bool:
        """Cheap test run before :meth:`parse` during auto-detection."""
        return True

    @abstractmethod
    def parse(self, line: str, ctx: ParseContext) -> Event | None:
        """The event, ``None`` when the line is not in this format."""


class ObjectParser(ABC):
    """A plugin that reads one decoded JSON object."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    priority: ClassVar[int] = 100

    def sniff(self, obj: dict[str, Any]) -> bool:
        return True

    @abstractmethod
    def parse(self, obj: dict[str, Any], ctx: ParseContext) -> Event | None:
        """The event, ``None`` when the object is not in this format."""


ProgramParser = Callable[[str, str, Event, ParseContext], bool]
"""``(program, message, event, ctx) -> recognised``: adds fields to ``event``."""

LINE_PARSERS: dict[str, LineParser] = {}
OBJECT_PARSERS: dict[str, ObjectParser] = {}
PROGRAM_PARSERS: dict[str, ProgramParser] = {}
FORMAT_ALIASES: dict[str, str] = {}


def register_line(cls: type[LineParser]) -> type[LineParser]:
    LINE_PARSERS[cls.name] = cls()
    for alias in cls.aliases:
        FORMAT_ALIASES[alias] = cls.name
    return cls


def register_object(cls: type[ObjectParser]) -> type[ObjectParser]:
    OBJECT_PARSERS[cls.name] = cls()
    for alias in cls.aliases:
        FORMAT_ALIASES[alias] = cls.name
    return cls


def register_program(*programs: str) -> Callable[[ProgramParser], ProgramParser]:
    """Register a syslog message parser for program names.

    Names are matched on the program's base name: ``postfix/smtpd`` and
    ``sshd(pam_unix)`` look up ``postfix`` and ``sshd`` after the full name.
    """

    def deco(func: ProgramParser) -> ProgramParser:
        for program in programs:
            PROGRAM_PARSERS[program] = func
        return func

    return deco


def program_parser(program: str) -> ProgramParser | None:
    found = PROGRAM_PARSERS.get(program)
    if found is not None:
        return found
    for sep in ("/", "(", "-", "["):
        base = program.split(sep, 1)[0]
        if base != program:
            found = PROGRAM_PARSERS.get(base)
            if found is not None:
                return found
    return None


def known_formats() -> list[str]:
    return sorted({*LINE_PARSERS, *OBJECT_PARSERS, *FORMAT_ALIASES, "auto"})


def resolve_format(name: str) -> str:
    """Canonical parser name for a declared format or alias; ``auto`` stays."""
    if ":" in name:
        # ``json:<mapping>`` names a parser and one of its configurations.
        return resolve_format(name.split(":", 1)[0])
    if name == "auto" or name in LINE_PARSERS or name in OBJECT_PARSERS:
        return name
    if name in FORMAT_ALIASES:
        return FORMAT_ALIASES[name]
    raise KeyError(name)

"""Exceptions (allowlists): known, accepted activity that must not become an alert.

Read from every ``*.yaml`` / ``*.yml`` file of a directory (``config/exceptions``),
each holding an ``exceptions:`` list; see ``config/exceptions/example.yaml``. An entry::

    - id: openvas-web-scan            # unique across all files
      rule: [5513deaf-f49a-46c2-a6c8-3f111b5cb453]   # rule ids or names, or "*"
      system: [portal, dvc-portal]    # gov.system.id values, or "*" (default)
      match:                          # every condition must hold (AND)
        source.ip|cidr: 10.10.99.20/32
      reason: Quét lỗ hổng định kỳ hằng tháng / monthly vulnerability scan
      owner: soc@phutho.gov.vn
      expires: 2027-05-31             # last day it applies (host's local date); then
                                      # ignored and reported

Conditions of ``match`` (``field`` is a dotted ECS name; a list of values means any
of them; a list-valued event field matches when any element does; string comparison
ignores case, as Sigma's does):

- ``field: value`` — equal;
- ``field|cidr: 10.0.0.0/8`` — an IP inside the network;
- ``field|startswith: value`` and ``field|contains: value``.

An exception with ``rule: "*"`` must have conditions: nothing may silence every rule.

A correlation detection is suppressed only when **every** contributing event it
carries matches (with a single-event rule that is its one event). An allowlisted
scanner among other sources must not hide the others: matching only the first event
would let an attacker who interleaves with the scanner go unseen.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from collectors.event import UNASSIGNED_SYSTEM, Event, get_field
from soc.config import ConfigError
from soc.detect.model import Detection

log = logging.getLogger("soc.alerts")

WILDCARD = "*"
OPERATORS = ("eq", "cidr", "startswith", "contains")
Scalar = str | int | float | bool
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Condition:
    """One compiled ``match`` entry."""

    __slots__ = ("field", "networks", "op", "values")

    def __init__(self, field: str, op: str, values: Sequence[Scalar]) -> None:
        self.field, self.op = field, op
        self.values = tuple(str(v).casefold() for v in values)
        self.networks: tuple[_Network, ...] = ()
        if op == "cidr":
            self.networks = tuple(ipaddress.ip_network(str(v), strict=False) for v in values)

    def holds(self, doc: Event) -> bool:
        value = get_field(doc, self.field)
        if value is None:
            return False
        items = value if isinstance(value, list) else [value]
        return any(self._one(item) for item in items if item is not None and not isinstance(item, dict))

    def _one(self, item: Any) -> bool:
        if self.op == "cidr":
            try:
                addr = ipaddress.ip_address(str(item))
            except ValueError:
                return False
            return any(addr.version == net.version and addr in net for net in self.networks)
        text = str(item).casefold()
        if self.op == "eq":
            return text in self.values
        if self.op == "startswith":
            return any(text.startswith(v) for v in self.values)
        return any(v in text for v in self.values)


def _compile(key: str, raw: Any) -> _Condition:
    field, _, op = key.partition("|")
    op = op or "eq"
    if not field.strip() or op not in OPERATORS:
        raise PydanticCustomError(
            "match_condition", "{condition}: unknown condition; use field, field|cidr, field|startswith "
            "or field|contains", {"condition": key})
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise PydanticCustomError("match_condition", "{condition}: empty list of values", {"condition": key})
    if op == "cidr":
        for value in values:
            try:
                ipaddress.ip_network(str(value), strict=False)
            except ValueError:
                raise PydanticCustomError(
                    "match_condition", "{condition}: '{value}' is not an IP network (e.g. 10.10.99.0/24)",
                    {"condition": key, "value": str(value)}) from None
    return _Condition(field, op, values)


class ExceptionEntry(BaseModel):
    """One allowlist entry (see the module docstring for the format)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    rule: str | list[str]
    """Rule id or Sigma name, a list of them, or ``"*"``."""
    system: str | list[str] = WILDCARD
    match: dict[str, Scalar | list[Scalar]] = {}
    reason: str
    owner: str
    """Who answers for it (a person or team address)."""
    expires: date
    """Last day the exception applies."""

    _conditions: tuple[_Condition, ...] = PrivateAttr(())
    _rules: frozenset[str] | None = PrivateAttr(None)
    _systems: frozenset[str] | None = PrivateAttr(None)
    _source: str | None = PrivateAttr(None)

    @property
    def source(self) -> str | None:
        """The file the entry was read from."""
        return self._source

    @field_validator("reason", "owner")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "must not be empty")
        return value.strip()

    @field_validator("rule", "system")
    @classmethod
    def _non_empty(cls, value: str | list[str]) -> str | list[str]:
        if not value or (isinstance(value, list) and not all(str(v).strip() for v in value)):
            raise ValueError('give an id, a list of ids, or "*"')
        return value

    @field_validator("match")
    @classmethod
    def _valid_conditions(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, raw in value.items():
            _compile(key, raw)
        return value

    @model_validator(mode="after")
    def _not_everything(self) -> ExceptionEntry:
        if _scope(self.rule) is None and not self.match:
            raise PydanticCustomError("match_everything",
                                      'rule "*" without match conditions would silence every rule')
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._conditions = tuple(_compile(k, v) for k, v in self.match.items())
        self._rules = _scope(self.rule)
        self._systems = _scope(self.system)

    @property
    def rules(self) -> frozenset[str] | None:
        """Rule ids/names it covers; ``None`` for every rule."""
        return self._rules

    @property
    def systems(self) -> frozenset[str] | None:
        """System ids it covers; ``None`` for every system."""
        return self._systems

    def active(self, today: date) -> bool:
        return today <= self.expires

    def matches(self, event: Event) -> bool:
        """The event is in this exception's system scope and meets every condition."""
        systems = self.systems
        if systems is not None and str(get_field(event, "gov.system.id") or UNASSIGNED_SYSTEM) not in systems:
            return False
        return all(cond.holds(event) for cond in self._conditions)


def _scope(value: str | list[str]) -> frozenset[str] | None:
    items = [value] if isinstance(value, str) else value
    return None if WILDCARD in items else frozenset(str(v) for v in items)


class ExceptionSet:
    """The loaded exceptions, indexed by rule for a cheap per-detection check."""

    def __init__(self, entries: Iterable[ExceptionEntry] = ()) -> None:
        self.entries: list[ExceptionEntry] = list(entries)
        self._by_rule: dict[str, list[ExceptionEntry]] = {}
        self._any_rule: list[ExceptionEntry] = []
        for entry in self.entries:
            rules = entry.rules
            if rules is None:
                self._any_rule.append(entry)
            else:
                for rule in rules:
                    self._by_rule.setdefault(rule, []).append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def load(cls, directory: Path | str, today: date | None = None) -> ExceptionSet:
        """Every ``*.yaml``/``*.yml`` file of ``directory`` (sorted); expired entries are
        kept (see :meth:`expired`) but logged, since they no longer apply."""
        directory = Path(directory)
        if not directory.is_dir():
            raise ConfigError(directory, "-", "the exceptions directory does not exist",
                              "tạo thư mục hoặc sửa exceptions_dir / create it or correct exceptions_dir")
        entries: list[ExceptionEntry] = []
        seen: dict[str, str] = {}
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            for entry in _load_file(path):
                if entry.id in seen:
                    raise ConfigError(path, f"exceptions.{entry.id}.id", f"duplicate id (also in {seen[entry.id]})",
                                      "đặt id khác cho mỗi ngoại lệ / give each exception its own id")
                seen[entry.id] = str(path)
                entries.append(entry)
        loaded = cls(entries)
        for entry in loaded.expired(today):
            log.warning("exception %s (%s) expired on %s and is ignored; owner %s",
                        entry.id, entry.source, entry.expires.isoformat(), entry.owner)
        return loaded

    def expired(self, today: date | None = None) -> list[ExceptionEntry]:
        """Entries past their ``expires`` date (ignored; to be renewed or removed)."""
        day = today or date.today()
        return [entry for entry in self.entries if not entry.active(day)]

    def suppresses(self, detection: Detection, today: date | None = None) -> ExceptionEntry | None:
        """The first active exception covering the detection's rule that every
        contributing event matches, else ``None``."""
        rule = detection.rule
        candidates = self._by_rule.get(rule.id, [])
        if rule.name and rule.name != rule.id:
            candidates = candidates + self._by_rule.get(rule.name, [])
        candidates = candidates + self._any_rule
        if not candidates:
            return None
        # A correlation carrying no events is judged by its group values, which hold
        # the grouping fields under their dotted names.
        docs: list[Event] = detection.events or [dict(detection.group)]
        day = today or date.today()
        for entry in candidates:
            if entry.active(day) and all(entry.matches(doc) for doc in docs):
                return entry
        return None


# --- loading ----------------------------------------------------------------------

_FIXES = {
    "missing": "thêm khóa này (id, rule, reason, owner, expires là bắt buộc) / "
               "add this key (id, rule, reason, owner and expires are required)",
    "extra_forbidden": "xóa khóa này hoặc kiểm tra chính tả / remove this key or check its spelling",
    "date_from_datetime_parsing": "dùng ngày dạng YYYY-MM-DD / use a date as YYYY-MM-DD",
    "date_parsing": "dùng ngày dạng YYYY-MM-DD / use a date as YYYY-MM-DD",
    "date_type": "dùng ngày dạng YYYY-MM-DD / use a date as YYYY-MM-DD",
    "date_from_datetime_inexact": "dùng ngày dạng YYYY-MM-DD, không kèm giờ / use a date as YYYY-MM-DD, no time",
    "blank": "ghi rõ lý do và người chịu trách nhiệm / state the reason and the owner",
    "match_everything": "ghi id quy tắc cụ thể hoặc thêm điều kiện match / name the rules or add match conditions",
    "string_pattern_mismatch": "id chỉ gồm chữ, số, '-', '_', '.' / use letters, digits, '-', '_', '.' in ids",
    "match_condition": "xem cú pháp match trong config/exceptions/example.yaml / "
                       "see the match syntax in config/exceptions/example.yaml",
}

_DEFAULT_FIX = "sửa giá trị theo thông báo / correct the value as the message says"


def _load_file(path: Path) -> list[ExceptionEntry]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "-"
        raise ConfigError(path, where, f"invalid YAML: {exc}", "kiểm tra thụt lề / check indentation") from exc
    if not isinstance(raw, dict) or set(raw) - {"exceptions"}:
        key = next(iter(sorted(set(raw) - {"exceptions"})), "-") if isinstance(raw, dict) else "-"
        raise ConfigError(path, key, "the file must hold a mapping with one key, exceptions:",
                          "xem config/exceptions/example.yaml / see config/exceptions/example.yaml")
    items = raw.get("exceptions") or []
    if not isinstance(items, list):
        raise ConfigError(path, "exceptions", "must be a list", "dùng danh sách YAML (- id: …) / use a YAML list")
    return [_validated(path, i, item) for i, item in enumerate(items)]


def _validated(path: Path, index: int, item: Any) -> ExceptionEntry:
    name = item.get("id", index) if isinstance(item, dict) else index
    try:
        entry = ExceptionEntry.model_validate(item)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        condition = (err.get("ctx") or {}).get("condition")
        if condition:
            loc = ["match", condition]
        elif loc[:1] == ["match"] and len(loc) > 2:
            loc = loc[:2]  # drop pydantic's union-branch detail after the condition key
        elif err["type"] == "match_everything":
            loc = ["rule"]
        elif loc[:1] in (["rule"], ["system"]):
            loc = loc[:1]
        key = ".".join(["exceptions", str(name), *loc])
        default = _FIXES["match_condition"] if loc[:1] == ["match"] else _DEFAULT_FIX
        fix = _FIXES.get(err["type"], default)
        raise ConfigError(path, key, err["msg"], fix) from None
    entry._source = str(path)
    return entry

"""Pick the parser for a record (declared or auto-detected) and never lose a record.

:func:`parse_record` always returns an event. When nothing can read the record it
returns a *failure event*: the raw text in ``event.original``, the tag
``_parse_failure`` and the reason in ``error.message``, so the line is stored,
counted and searchable like any other.
"""

from __future__ import annotations

from typing import Any

import orjson

from collectors.batch import RawRecord
from collectors.event import PARSE_FAILURE_TAG, Event
from collectors.parsers.base import (
    LINE_PARSERS,
    OBJECT_PARSERS,
    LineParser,
    ObjectParser,
    ParseContext,
    ParseError,
    resolve_format,
)

_LAST_LINE = "_dispatch.last_line"
_LAST_OBJECT = "_dispatch.last_object"


def failure_event(original: str, reason: str) -> Event:
    return {
        "event": {"kind": "event", "original": original},
        "message": original,
        "tags": [PARSE_FAILURE_TAG],
        "error": {"message": reason, "type": "parse_failure"},
    }


def original_text(record: RawRecord) -> str:
    if isinstance(record, str):
        return record
    return orjson.dumps(record, default=str).decode()


def _ordered(parsers: dict[str, Any]) -> list[Any]:
    return sorted(parsers.values(), key=lambda p: (p.priority, p.name))


class Dispatcher:
    """Auto-detection over the registered parsers, remembering per stream which
    parser read the last record so that a homogeneous stream costs one try."""

    def __init__(self) -> None:
        self._lines: list[LineParser] = _ordered(LINE_PARSERS)
        self._objects: list[ObjectParser] = _ordered(OBJECT_PARSERS)

    def parse(self, record: RawRecord, fmt: str | None, ctx: ParseContext) -> Event:
        try:
            if fmt and fmt != "auto":
                ctx.declared = fmt
                return self._declared(record, fmt, ctx)
            ctx.declared = None
            return self._auto(record, ctx)
        except ParseError as exc:
            return failure_event(original_text(record), str(exc))
        except Exception as exc:  # a parser bug must not cost the record
            return failure_event(original_text(record), f"parser error: {type(exc).__name__}: {exc}")

    # -- declared format ---------------------------------------------------------
    def _declared(self, record: RawRecord, fmt: str, ctx: ParseContext) -> Event:
        try:
            name = resolve_format(fmt)
        except KeyError:
            return failure_event(original_text(record), f"unknown format {fmt!r}")
        if name in OBJECT_PARSERS:
            obj = record if isinstance(record, dict) else _decode_json(record)
            if obj is None:
                return failure_event(original_text(record), f"format {name!r} expects a JSON object")
            event = OBJECT_PARSERS[name].parse(obj, ctx)
        else:
            text = record if isinstance(record, str) else original_text(record)
            event = LINE_PARSERS[name].parse(text, ctx)
        if event is None:
            return failure_event(original_text(record), f"not in the declared format {name!r}")
        return event

    # -- auto-detection ----------------------------------------------------------
    def _auto(self, record: RawRecord, ctx: ParseContext) -> Event:
        if isinstance(record, dict):
            return self._auto_object(record, ctx, original_text(record))
        stripped = record.lstrip()
        if stripped.startswith("{"):
            obj = _decode_json(stripped)
            if obj is not None:
                return self._auto_object(obj, ctx, record)
        if not stripped:
            return failure_event(record, "empty line")
        last: LineParser | None = ctx.state.get(_LAST_LINE)
        if last is not None and last.sniff(record):
            event = last.parse(record, ctx)
            if event is not None:
                return event
        for parser in self._lines:
            if parser is last or not parser.sniff(record):
                continue
            event = parser.parse(record, ctx)
            if event is not None:
                ctx.state[_LAST_LINE] = parser
                return event
        return failure_event(record, "no parser recognised the line")

    def _auto_object(self, obj: dict[str, Any], ctx: ParseContext, original: str) -> Event:
        last: ObjectParser | None = ctx.state.get(_LAST_OBJECT)
        if last is not None and last.sniff(obj):
            event = last.parse(obj, ctx)
            if event is not None:
                return event
        for parser in self._objects:
            if parser is last or not parser.sniff(obj):
                continue
            event = parser.parse(obj, ctx)
            if event is not None:
                ctx.state[_LAST_OBJECT] = parser
                return event
        return failure_event(original, "no parser recognised the JSON object")


def _decode_json(text: str) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None

"""What the parser tests share: parse through auto-detection or a declared format,
recognise a failure event, read the log lines of a Wazuh test file."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import orjson

from collectors.event import PARSE_FAILURE_TAG, Event
from collectors.parsers import Dispatcher, ParseContext


def parse(line: str, ctx: ParseContext, fmt: str | None = None) -> Event:
    return Dispatcher().parse(line, fmt, ctx)


def failed(event: Event) -> bool:
    return PARSE_FAILURE_TAG in event.get("tags", ())


@cache
def wazuh_logs(path: Path) -> tuple[str, ...]:
    """The ``log`` lines of a Wazuh test file converted to JSON lines."""
    rows = path.read_text(encoding="utf-8").splitlines()
    return tuple(orjson.loads(row)["log"] for row in rows if row.strip())

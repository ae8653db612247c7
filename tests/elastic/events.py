"""Real events for the Elasticsearch tests: loghub OpenSSH lines, parsed as the
pipeline parses them, with stable ids and a system's security level."""

from __future__ import annotations

from datetime import UTC, datetime

from collectors.event import Event, set_field, stable_id
from collectors.parsers import Dispatcher, ParseContext
from tests.conftest import DATASETS

OPENSSH = DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1"


def sshd_events(n: int, *, level: int | None = 3, system: str = "sys-ssh", offset: int = 0) -> list[Event]:
    lines = OPENSSH.read_text(encoding="utf-8").splitlines()[offset:offset + n]
    ctx = ParseContext(now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    dispatcher = Dispatcher()
    events = []
    for i, line in enumerate(lines, start=offset):
        event = dispatcher.parse(line, None, ctx)
        set_field(event, "event.id", stable_id("es-test", OPENSSH.name, i))
        gov: dict[str, object] = {"system": {"id": system}}
        if level is not None:
            gov["classification"] = level
        event["gov"] = gov
        events.append(event)
    return events

"""Syslog lines: RFC 5424, RFC 3164 and the variants devices really send.

:func:`split_header` reads the header into an event and hands back the message;
:class:`SyslogParser` then gives the message to the program parser named by the
header's tag (``sshd``, ``postfix/smtpd`` …), else to an embeddable line parser
(a web access line or FortiGate key=value sent over syslog), else stores a generic
syslog event.

Accepted headers, each with an optional ``<PRI>`` in front:

* RFC 5424: ``1 2003-10-11T22:14:15.003Z host app procid msgid [sd] msg``;
* RFC 3164: ``Mmm dd hh:mm:ss [host] tag[pid]: msg``, also with a year before the
  month (``2015 Nov 13 …``) or after the day (``Nov 13 2015 …``, Cisco), and with
  an ISO 8601 timestamp instead (``2024-01-02T03:04:05+07:00 host prog[1]: msg``);
* loghub's Thunderbird prefix ``- 1131566461 2005.11.09 node Mmm d hh:mm:ss …``;
* ``<PRI>`` followed by anything (``<188>date=2020-04-23 …``).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, ClassVar

from collectors.event import Event, iso_from_epoch, iso_utc, parse_iso
from collectors.parsers.base import (
    LINE_PARSERS,
    LineParser,
    ParseContext,
    ProgramParser,
    program_parser,
    register_line,
)

__all__ = ["SyslogParser", "infer_year", "parse_structured_data", "split_header"]

FACILITY_NAMES: tuple[str, ...] = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
SEVERITY_NAMES: tuple[str, ...] = (
    "emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug",
)

_MONTHS: dict[str, int] = {}
for _i, _name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
):
    _MONTHS[_name] = _MONTHS[_name.upper()] = _MONTHS[_name.lower()] = _i

# Dovecot's own log file (and some appliances) put a level where the tag would be.
_LEVEL_TAGS = {"Info": "info", "Warning": "warning", "Error": "error", "Fatal": "fatal",
               "Panic": "panic", "Debug": "debug"}

# Octet counting (RFC 6587) only frames TCP streams; a framed line may still reach us.
_RE_PRI = re.compile(r"(?:\d{1,5} )?<(\d{1,3})>")
_RE_5424 = re.compile(
    r"(\d{1,2}) (-|\d{4}-\d\d-\d\dT\S+) (\S+) (\S+) (\S+) (\S+)(?: |$)"
)
_RE_3164_TS = re.compile(
    r"(?:(\d{4}) )?([A-Za-z]{3}) +(\d{1,2})(?: (\d{4}))? (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6})\d*)?:? +"
)
_RE_ISO_TS = re.compile(
    r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:?\d\d)?:? +"
)
# loghub Thunderbird: alert label, epoch seconds, date, node, then a 3164 line.
_RE_LOGHUB_PREFIX = re.compile(r"\S+ (\d{9,10}) \d{4}\.\d\d\.\d\d (\S+) (?=[A-Za-z]{3} +\d)")
# Host then tag, or a tag alone. A tag may carry a version (``syslogd 1.4.1``) or
# the ``-- `` of old login(1) lines; ``%`` starts a Cisco mnemonic, never a tag.
_RE_HOST_TAG = re.compile(
    r"(?:([^\s\[\]=]*[^\s\[\]=:]) +)?"
    r"((?:-- )?[^\s\[\]:%=][^\s\[\]:=]*(?: \d[\w.]*)?)"
    r"(?:\[([^\]\s]*)\])?:(?: |$)"
)
_RE_TOKEN = re.compile(r"(\S+) *")
_RE_SD_ELEMENT = re.compile(r'\[([^\s\]=]+)((?:\s+[^\s=\]"]+="(?:[^"\\]|\\.)*")*)\s*\]')
_RE_SD_PARAM = re.compile(r'([^\s=\]"]+)="((?:[^"\\]|\\.)*)"')
_RE_SD_ESCAPE = re.compile(r"\\([\"\\\]])")

_MESSAGE_STRIP = " \t\r\n\x00"


# --- timestamps -----------------------------------------------------------------

@lru_cache(maxsize=64)
def _limit_tuple(now: datetime, tz: tzinfo) -> tuple[int, int, int, int, int, int]:
    """The latest wall-clock time (in ``tz``) a yearless timestamp may denote:
    ``now`` plus one day, for devices whose clocks run ahead."""
    limit = now.astimezone(tz) + timedelta(days=1)
    return (limit.year, limit.month, limit.day, limit.hour, limit.minute, limit.second)


@lru_cache(maxsize=8)
def _limit_for_second(epoch_second: int, tz: tzinfo) -> tuple[int, int, int, int, int, int]:
    return _limit_tuple(datetime.fromtimestamp(epoch_second, UTC), tz)


def _year_below(month: int, day: int, clock: tuple[int, int, int],
                limit: tuple[int, int, int, int, int, int]) -> int:
    year = limit[0]
    if (month, day, *clock) > limit[1:]:
        year -= 1
    # 29 February only exists in leap years: take the latest one.
    while month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        year -= 1
    return year


def _limit(now: datetime | None, tz: tzinfo) -> tuple[int, int, int, int, int, int]:
    if now is None:
        return _limit_for_second(int(time.time()), tz)
    return _limit_tuple(now if now.tzinfo else now.replace(tzinfo=UTC), tz)


def infer_year(month: int, day: int, hour: int, minute: int, second: int,
               now: datetime | None, tz: tzinfo) -> int:
    """The most recent year in which this wall-clock time (in ``tz``) is not more
    than one day after ``now`` (the current time when ``None``)."""
    return _year_below(month, day, (hour, minute, second), _limit(now, tz))


@lru_cache(maxsize=8192)
def _wall_iso(year: int, month: int, day: int, hour: int, minute: int, second: int,
              micro: int, tz: tzinfo) -> str | None:
    # Same conversion as ParseContext.local_iso, cached: a busy stream repeats each
    # second's timestamp on many lines.
    try:
        return iso_utc(datetime(year, month, day, hour, minute, second, micro, tzinfo=tz))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _iso_to_utc(date: str, clock: str, offset: str | None, tz: tzinfo) -> str | None:
    try:
        dt = parse_iso(f"{date}T{clock}{offset or ''}")
    except ValueError:
        return None
    if offset is None:
        dt = dt.replace(tzinfo=tz)
    return iso_utc(dt)


def _micro(frac: str | None) -> int:
    return int(frac.ljust(6, "0")) if frac else 0


# --- header pieces ----------------------------------------------------------------

def _pri_fields(pri: int) -> dict[str, Any]:
    facility, severity = pri >> 3, pri & 7
    return {
        "priority": pri,
        "facility": {"code": facility, "name": FACILITY_NAMES[facility]},
        "severity": {"code": severity, "name": SEVERITY_NAMES[severity]},
    }


def parse_structured_data(text: str) -> tuple[dict[str, dict[str, str]], str] | None:
    """RFC 5424 STRUCTURED-DATA at the start of ``text``: ``({sd-id: {param:
    value}}, rest)``; ``None`` when ``text`` does not start with an SD element."""
    sd: dict[str, dict[str, str]] = {}
    pos = 0
    while pos < len(text) and text[pos] == "[":
        m = _RE_SD_ELEMENT.match(text, pos)
        if m is None:
            return None
        params = sd.setdefault(m.group(1), {})
        for name, value in _RE_SD_PARAM.findall(m.group(2)):
            params[name] = _RE_SD_ESCAPE.sub(r"\1", value) if "\\" in value else value
        pos = m.end()
    if pos == 0:
        return None
    return sd, text[pos:]


def _clean_message(text: str) -> str:
    text = text.strip(_MESSAGE_STRIP)
    return text[1:] if text.startswith("\ufeff") else text


def _header_5424(m: re.Match[str], line: str, event: Event, syslog: dict[str, Any],
                 ctx: ParseContext) -> str:
    version, ts, host, app, procid, msgid = m.groups()
    syslog["version"] = version
    if ts != "-":
        iso = _RE_ISO_TS.match(ts + " ")
        stamp = _iso_to_utc(iso.group(1), iso.group(2), iso.group(3), ctx.tz) if iso else None
        if stamp:
            event["@timestamp"] = stamp
    if host != "-":
        syslog["hostname"] = host
        event["host"] = {"hostname": host}
    process: dict[str, Any] = {}
    if app != "-":
        syslog["appname"] = app
        process["name"] = app
    if procid != "-":
        syslog["procid"] = procid
        if procid.isdigit():
            process["pid"] = int(procid)
    if process:
        event["process"] = process
    if msgid != "-":
        syslog["msgid"] = msgid
    rest = line[m.end():]
    if rest.startswith("-"):
        return rest[1:]
    parsed = parse_structured_data(rest)
    if parsed is None:
        return rest
    sd, rest = parsed
    syslog["structured_data"] = sd
    return rest


def _timestamp_3164(m: re.Match[str], ctx: ParseContext) -> str | None:
    return _stamp_3164(m.groups(), _limit(ctx.now, ctx.tz), ctx.tz)


@lru_cache(maxsize=8192)
def _stamp_3164(groups: tuple[str | None, ...], limit: tuple[int, int, int, int, int, int],
                tz: tzinfo) -> str | None:
    """UTC stamp for the groups of ``_RE_3164_TS``; ``None`` for an impossible date."""
    year_a, mon, day_s, year_b, hh, mm, ss, frac = groups
    month = _MONTHS.get(mon or "")
    if month is None or day_s is None or hh is None or mm is None or ss is None:
        return None
    day, hour, minute, second = int(day_s), int(hh), int(mm), int(ss)
    explicit = year_a or year_b
    year = int(explicit) if explicit else _year_below(month, day, (hour, minute, second), limit)
    return _wall_iso(year, month, day, hour, minute, second, _micro(frac), tz)


def _host_and_tag(rest: str, m: re.Match[str] | None, event: Event, syslog: dict[str, Any]) -> str:
    """Store ``host tag[pid]:`` (``m``, any part may be missing); return the message."""
    if m is not None:
        host, tag, pid = m.groups()
        if host is None and tag in _LEVEL_TAGS:
            event["log"]["level"] = _LEVEL_TAGS[tag]
        else:
            syslog["appname"] = tag
            process: dict[str, Any] = {"name": tag}
            if pid:
                syslog["procid"] = pid
                if pid.isdigit():
                    process["pid"] = int(pid)
            event["process"] = process
        if host is not None:
            syslog["hostname"] = host
            event["host"] = {"hostname": host}
        return rest[m.end():]
    # No tag: a key=value body (FortiGate) or a Cisco "%ASA-…" may follow directly.
    t = _RE_TOKEN.match(rest)
    if t is not None:
        token = t.group(1)
        if "=" not in token and not token.startswith("%") and not token.endswith(":"):
            syslog["hostname"] = token
            event["host"] = {"hostname": token}
            rest = rest[t.end():]
    if rest.startswith(": "):
        rest = rest[2:]
    return rest


def _leading_timestamp(line: str, pos: int, ctx: ParseContext) -> tuple[str | None, int, bool] | None:
    """``(UTC stamp or None when the date is impossible, end, strict)`` for a
    timestamp at ``pos``. ``strict``: an ISO date with a space, which many
    non-syslog formats (IIS, application logs) also start with."""
    if line[pos:pos + 1].isdigit():
        iso = _RE_ISO_TS.match(line, pos)
        if iso is not None:
            stamp = _iso_to_utc(iso.group(1), iso.group(2), iso.group(3), ctx.tz)
            return stamp, iso.end(), line[pos + 10] == " "
    ts = _RE_3164_TS.match(line, pos)
    if ts is not None:
        return _timestamp_3164(ts, ctx), ts.end(), False
    return None


def _loghub_header(line: str, event: Event, syslog: dict[str, Any],
                   ctx: ParseContext) -> tuple[Event, str] | None:
    prefix = _RE_LOGHUB_PREFIX.match(line)
    if prefix is None:
        return None
    ts = _RE_3164_TS.match(line, prefix.end())
    if ts is None:
        return None
    rest = line[ts.end():]
    message = _host_and_tag(rest, _RE_HOST_TAG.match(rest), event, syslog)
    # The collector's epoch is exact; the node's wall clock has no zone.
    event["@timestamp"] = iso_from_epoch(int(prefix.group(1)))
    event["host"] = {"hostname": prefix.group(2)}
    return event, _clean_message(message)


def _finish(event: Event, syslog: dict[str, Any], message: str) -> tuple[Event, str]:
    if not syslog:
        del event["log"]["syslog"]
        if not event["log"]:
            del event["log"]
    return event, _clean_message(message)


def split_header(line: str, ctx: ParseContext) -> tuple[Event, str] | None:
    """Read a leading syslog header.

    Returns ``(event, message)``: an event holding the header's fields
    (``@timestamp``, ``host.hostname``, ``log.syslog.*``, ``process.name``/``pid``)
    and the message after the header. ``None`` when the line starts with no
    ``<PRI>`` and no recognised timestamp (nor with an ISO date and a space
    that no ``program:`` follows).
    """
    syslog: dict[str, Any] = {}
    event: Event = {"log": {"syslog": syslog}}
    pos = 0
    m = _RE_PRI.match(line)
    has_pri = m is not None and int(m.group(1)) < 192
    if m is not None and has_pri:
        syslog.update(_pri_fields(int(m.group(1))))
        pos = m.end()
    if line.startswith("1 ", pos) or (has_pri and line[pos:pos + 1].isdigit()):
        m5 = _RE_5424.match(line, pos)
        if m5 is not None:
            return event, _clean_message(_header_5424(m5, line, event, syslog, ctx))
    found = _leading_timestamp(line, pos, ctx)
    if found is None:
        if has_pri:
            return _finish(event, syslog, line[pos:])
        return _loghub_header(line, event, syslog, ctx)
    stamp, pos, strict = found
    rest = line[pos:]
    tagged = _RE_HOST_TAG.match(rest)
    if tagged is None and strict and not has_pri:
        return None
    if stamp is not None:
        event["@timestamp"] = stamp
    return _finish(event, syslog, _host_and_tag(rest, tagged, event, syslog))


# --- the parser -------------------------------------------------------------------

def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base`` (in place): objects merge, other values of
    ``over`` replace, tags are united."""
    for key, value in over.items():
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _merge(current, value)
        elif key == "tags" and isinstance(value, list) and isinstance(current, list):
            current.extend(v for v in value if v not in current)
        else:
            base[key] = value
    return base


def _lookup_program(program: str, message: str) -> ProgramParser | None:
    found = program_parser(program)
    if found is not None:
        return found
    # "foo(pam_unix)" and "foo: pam_unix(foo:session): …" are PAM whatever foo is.
    open_paren = program.find("(")
    if open_paren != -1:
        found = program_parser(program[open_paren + 1:].rstrip(")"))
        if found is not None:
            return found
    if message.startswith("pam_"):
        return program_parser(message.split("(", 1)[0])
    return None


@register_line
class SyslogParser(LineParser):
    """Syslog header plus a program, embedded-format or generic body."""

    name = "syslog"
    aliases = ("rfc3164", "rfc5424")
    description = "Syslog (RFC 3164 / RFC 5424) with program-specific message parsing"
    priority = 90
    embeddable = False

    _SNIFF = frozenset("<-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    _embedded_cache: ClassVar[tuple[int, list[LineParser]]] = (-1, [])

    def sniff(self, line: str) -> bool:
        return bool(line) and line[0] in self._SNIFF

    def parse(self, line: str, ctx: ParseContext) -> Event | None:
        split = split_header(line, ctx)
        if split is None:
            return None
        event, message = split
        program = event.get("process", {}).get("name")
        parser = _lookup_program(program, message) if program else None
        if parser is None or not parser(program, message, event, ctx):
            body = self._embedded(message, ctx)
            if body is not None:
                event = self._merge_body(event, body, line)
            else:
                generic = event.setdefault("event", {})
                generic.setdefault("kind", "event")
                generic.setdefault("dataset", "syslog")
        event["message"] = message
        return event

    @staticmethod
    def _embedded_parsers() -> list[LineParser]:
        # Other modules register after this one is imported; rebuild on change.
        size, parsers = SyslogParser._embedded_cache
        if size != len(LINE_PARSERS):
            parsers = sorted((p for p in LINE_PARSERS.values() if p.embeddable),
                             key=lambda p: (p.priority, p.name))
            SyslogParser._embedded_cache = (len(LINE_PARSERS), parsers)
        return parsers

    def _embedded(self, message: str, ctx: ParseContext) -> Event | None:
        if not message:
            return None
        for parser in self._embedded_parsers():
            if parser.sniff(message):
                body = parser.parse(message, ctx)
                if body is not None:
                    return body
        return None

    @staticmethod
    def _merge_body(header: Event, body: Event, line: str) -> Event:
        """The body's fields over the header's, except the header's host and
        ``log.syslog`` (the sender), which describe the transport truthfully."""
        kept_host = header.pop("host", None)
        kept_syslog = header.get("log", {}).pop("syslog", None)
        event = _merge(header, body)
        if kept_host is not None:
            body_host = event.get("host")
            event["host"] = _merge(body_host, kept_host) if isinstance(body_host, dict) else kept_host
        if kept_syslog is not None:
            log = event.setdefault("log", {})
            body_syslog = log.get("syslog")
            log["syslog"] = _merge(body_syslog, kept_syslog) if isinstance(body_syslog, dict) else kept_syslog
        if "original" in event.get("event", {}):
            event["event"]["original"] = line
        return event

"""FortiGate (FortiOS v4–v7) key=value logs.

Every pair is kept verbatim under ``fortinet.firewall.<key>`` (as Elastic's
integration does) so nothing the device said is lost; the well-known keys are
also mapped to ECS. Lines may carry a syslog header in front of the pairs
(``<189>date=…``, ``Feb 20 12:26:25 date=…``, ``Mar 22 19:21:00 10.1.1.1 date=…``);
the header is read with the syslog parser's :func:`split_header`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any

from collectors.event import Event, iso_utc
from collectors.parsers.base import LineParser, ParseContext, register_line
from collectors.parsers.web_access import is_ip

# A pair, or (fourth group) a fragment that is no pair. A quoted value may hold
# escaped quotes; an unterminated one runs to the end of the line.
_PAIR = re.compile(r'([A-Za-z_][\w.-]*)=(?:"([^"\\]*(?:\\.[^"\\]*)*)(?:"|$)|(\S*))|(\S+)')
_FIRST_KEY = re.compile(r"(?:^|(?<=[\s>]))[A-Za-z_][\w.-]*=")
_QUOTE_ESCAPE = re.compile(r'\\(["\\])')
_TZ_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2}):?(\d{2})")
_UI_ADDRESS = re.compile(r"\(([0-9A-Fa-f.:]+)\)")
_IDENTIFYING_KEYS = ("logid", "log_id", "devname", "devid", "device_id")

_TRANSPORTS = {
    "1": "icmp", "2": "igmp", "6": "tcp", "17": "udp", "41": "ipv6", "47": "gre",
    "50": "esp", "51": "ah", "58": "ipv6-icmp", "89": "ospf", "132": "sctp",
}  # fmt: skip
_SUCCESS_ACTIONS = frozenset(
    {"accept", "pass", "passthrough", "close", "timeout", "allow", "permit", "client-rst", "server-rst"}
)
_FAILURE_ACTIONS = frozenset({"deny", "block", "blocked", "dropped", "drop", "reject", "reset"})
_NULLS = frozenset({"", "N/A", "n/a", "none"})
_DIRECTIONS = {"incoming": "inbound", "outgoing": "outbound", "inbound": "inbound", "outbound": "outbound"}


def _value(kv: dict[str, str], *keys: str) -> str | None:
    """The first present, non-null value among ``keys``."""
    for key in keys:
        value = kv.get(key)
        if value is not None and value not in _NULLS:
            return value
    return None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _ip(value: str | None) -> str | None:
    return value if value is not None and is_ip(value) else None


def split_pairs(content: str) -> tuple[dict[str, str], list[str]]:
    """``key=value`` pairs (quotes removed, escapes undone) and the fragments that
    are not pairs, in order."""
    pairs: dict[str, str] = {}
    leftover: list[str] = []
    # findall gives "" for groups that did not take part: an empty quoted value and
    # an empty bare one read the same, which is what they mean.
    for key, quoted, bare, fragment in _PAIR.findall(content):
        if not key:
            leftover.append(fragment)
        elif quoted:
            pairs[key] = _QUOTE_ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            pairs[key] = bare
    return pairs, leftover


# --- timestamps -------------------------------------------------------------------


def _epoch_iso(raw: str) -> str | None:
    """``eventtime`` in s, ms, µs or ns since the epoch (told apart by magnitude)."""
    value = _int(raw)
    if value is None or value <= 0:
        return None
    if value >= 10**17:
        micros = value // 1000
    elif value >= 10**14:
        micros = value
    elif value >= 10**11:
        micros = value * 1000
    else:
        micros = value * 1_000_000
    try:
        dt = datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
    except (OverflowError, OSError, ValueError):
        return None
    return iso_utc(dt)


def _zone(raw: str | None, default: tzinfo) -> tzinfo:
    if raw:
        m = _TZ_OFFSET.fullmatch(raw.strip())
        if m:
            offset = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
            return timezone(-offset if m.group(1) == "-" else offset)
    return default


def _timestamp(kv: dict[str, str], leftover: list[str], ctx: ParseContext) -> str | None:
    eventtime = kv.get("eventtime")
    if eventtime:
        iso = _epoch_iso(eventtime)
        if iso is not None:
            return iso
    date, clock = kv.get("date"), kv.get("time")
    if not date or not clock:
        return None
    if clock.endswith(":") and leftover:
        # FortiOS 4 wrote "time=12: 26:24"; the rest of the clock is the first fragment.
        clock += leftover[0]
    try:
        naive = datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return iso_utc(naive.replace(tzinfo=_zone(kv.get("tz"), ctx.tz)))


# --- ECS mapping -------------------------------------------------------------------


def _outcome(kv: dict[str, str], action: str | None) -> str | None:
    status = (kv.get("status") or "").lower()
    if status in ("success", "succeeded"):
        return "success"
    if status in ("failed", "failure", "fail"):
        return "failure"
    if action:
        lowered = action.lower()
        if lowered in _SUCCESS_ACTIONS:
            return "success"
        if lowered in _FAILURE_ACTIONS or lowered.endswith("-fail"):
            return "failure"
    if status in _FAILURE_ACTIONS:
        return "failure"
    if status in _SUCCESS_ACTIONS:
        return "success"
    return None


def _is_login(kv: dict[str, str], action: str | None) -> str | None:
    """``"start"``/``"end"`` when the log records a login/logout, else ``None``."""
    text = f"{action or ''} {kv.get('logdesc', '')}".lower()
    if "logout" in text or "logoff" in text or "log out" in text:
        return "end"
    if "login" in text or "logon" in text or "log in" in text or "auth" in text:
        return "start"
    return None


def _classify(kv: dict[str, str], action: str | None, outcome: str | None) -> dict[str, Any]:
    """``event.kind``/``category``/``type`` from the log's type and subtype."""
    log_type = (kv.get("type") or "").lower()
    subtype = (kv.get("subtype") or "").lower()
    verdict = {"success": "allowed", "failure": "denied"}.get(outcome or "")
    if log_type == "traffic":
        return {"event.category": ["network"], "event.type": ["connection", verdict] if verdict else ["connection"]}
    if log_type == "anomaly" or subtype in ("ips", "anomaly", "waf"):
        types = ["denied"] if verdict == "denied" else ["info"]
        return {"event.kind": "alert", "event.category": ["intrusion_detection"], "event.type": types}
    if subtype in ("virus", "av"):
        return {"event.kind": "alert", "event.category": ["malware"], "event.type": ["info"]}
    if log_type == "utm":
        if subtype == "dns":
            return {"event.category": ["network"], "event.type": ["protocol"]}
        return {"event.category": ["network"], "event.type": ["connection", verdict] if verdict else ["info"]}
    if log_type == "event":
        login = _is_login(kv, action)
        if login is not None and subtype in ("user", "vpn", "system", "endpoint", "wad"):
            return {"event.category": ["authentication"], "event.type": [login]}
        config = _config_change(kv, action) if "cfgpath" in kv or subtype == "system" else None
        if config is not None:
            return {"event.category": ["configuration"], "event.type": [config]}
        if subtype == "vpn" and action in ("tunnel-up", "tunnel-down"):
            return {"event.category": ["network"], "event.type": ["start" if action == "tunnel-up" else "end"]}
    return {"event.type": ["info"]}


def _config_change(kv: dict[str, str], action: str | None) -> str | None:
    lowered = (action or "").lower()
    if lowered == "add":
        return "creation"
    if lowered == "delete":
        return "deletion"
    if "cfgpath" in kv or lowered == "edit" or "configur" in kv.get("logdesc", "").lower():
        return "change"
    return None


def _url(kv: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {"url.domain": _value(kv, "hostname")}
    url = _value(kv, "url")
    if url is None:
        return fields
    fields["url.original"] = url
    if "://" in url:
        scheme, _, rest = url.partition("://")
        host, slash, path = rest.partition("/")
        fields["url.scheme"] = scheme.lower()
        fields["url.domain"] = fields["url.domain"] or host.split(":", 1)[0]
        url = slash + path
    path, _, query = url.partition("?")
    fields["url.path"] = path
    fields["url.query"] = query
    return fields


def _mac(value: str | None) -> str | None:
    return value.upper().replace(":", "-") if value else None


def _endpoints(kv: dict[str, str]) -> dict[str, Any]:
    src_ip = _ip(_value(kv, "srcip", "src", "remip"))
    if src_ip is None:
        ui = _UI_ADDRESS.search(kv.get("ui", ""))
        src_ip = _ip(ui.group(1)) if ui else None
    dst_ip = _ip(_value(kv, "dstip", "dst", "locip"))
    nat_ip = _ip(_value(kv, "transip"))
    sent, received = _int(_value(kv, "sentbyte", "sent")), _int(_value(kv, "rcvdbyte", "rcvd"))
    sent_pkts, received_pkts = _int(_value(kv, "sentpkt")), _int(_value(kv, "rcvdpkt"))
    proto = _value(kv, "proto")
    return {
        "source.ip": src_ip,
        "source.port": _int(_value(kv, "srcport", "src_port", "remport")),
        "source.mac": _mac(_value(kv, "srcmac")),
        "source.nat.ip": nat_ip,
        "source.nat.port": _int(_value(kv, "transport")),
        "source.bytes": sent,
        "source.packets": sent_pkts,
        "destination.ip": dst_ip,
        "destination.port": _int(_value(kv, "dstport", "dst_port", "locport")),
        "destination.bytes": received,
        "destination.packets": received_pkts,
        "network.bytes": sent + received if sent is not None and received is not None else None,
        "network.packets": (sent_pkts + received_pkts if sent_pkts is not None and received_pkts is not None else None),
        "network.iana_number": proto,
        "network.transport": _TRANSPORTS.get(proto or ""),
        "network.direction": _DIRECTIONS.get((kv.get("direction") or "").lower()),
        "network.application": (_value(kv, "app") or "").lower() or None,
        "observer.ingress.interface.name": _value(kv, "srcintf", "src_int"),
        "observer.egress.interface.name": _value(kv, "dstintf", "dst_int"),
        "related.ip": list(dict.fromkeys(ip for ip in (src_ip, dst_ip, nat_ip) if ip)) or None,
    }


@lru_cache(maxsize=512)
def _path(dotted: str) -> tuple[tuple[str, ...], str]:
    *parents, leaf = dotted.split(".")
    return tuple(parents), leaf


def _put(doc: Event, values: dict[str, Any]) -> None:
    """:func:`collectors.event.set_fields` with the dotted paths split once per
    process rather than once per field and line (a traffic log sets ~30 fields)."""
    for dotted, value in values.items():
        if value is None or value == "":
            continue
        parents, leaf = _path(dotted)
        node = doc
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value


def _ecs(kv: dict[str, str], leftover: list[str], ctx: ParseContext) -> Event:
    action = _value(kv, "action")
    if action is None and (kv.get("type") or "").lower() == "traffic":
        action = _value(kv, "status")  # FortiOS 4 traffic logs say status=deny/accept
    outcome = _outcome(kv, action)
    user = _value(kv, "user", "xauthuser", "unauthuser")
    duration = _int(kv.get("duration"))
    event: Event = {"fortinet": {"firewall": kv}}
    values: dict[str, Any] = {
        "@timestamp": _timestamp(kv, leftover, ctx),
        "event.kind": "event",
        "event.module": "fortinet",
        "event.dataset": "fortinet.firewall",
        "event.code": _value(kv, "logid", "log_id"),
        "event.action": action,
        "event.outcome": outcome,
        "event.reason": _value(kv, "reason"),
        "event.duration": duration * 1_000_000_000 if duration is not None else None,
        "observer.vendor": "Fortinet",
        "observer.product": "FortiGate",
        "observer.type": "firewall",
        "observer.name": _value(kv, "devname"),
        "observer.serial_number": _value(kv, "devid", "device_id"),
        "log.level": _value(kv, "level", "pri"),
        "message": _value(kv, "msg"),
        "rule.id": _value(kv, "policyid"),
        "rule.name": _value(kv, "policyname"),
        "rule.uuid": _value(kv, "poluuid"),
        "user.name": user,
        "related.user": [user] if user else None,
        "user_agent.original": _value(kv, "agent"),
        "file.name": _value(kv, "filename"),
        "dns.question.name": _value(kv, "qname"),
        "dns.question.type": _value(kv, "qtype"),
        "dns.id": _value(kv, "xid"),
        "dns.resolved_ip": [ip for ip in (kv.get("ipaddr") or "").replace(" ", "").split(",") if _ip(ip)] or None,
    }
    values.update(_endpoints(kv))
    values.update(_url(kv))
    values.update(_classify(kv, action, outcome))
    _put(event, values)
    if leftover:
        event["fortinet"]["unparsed"] = " ".join(leftover)
    return event


# --- syslog prefix -----------------------------------------------------------------


def with_syslog_header(line: str, start: int, event: Event, ctx: ParseContext) -> Event:
    """``event`` merged over the fields of the syslog header in ``line[:start]``
    (``<PRI>``, timestamp, host); the event's own values win."""
    if start == 0:
        return event
    from collectors.parsers.syslog import split_header

    split = split_header(line, ctx)
    if split is None:
        return event
    header = split[0]
    for key, value in event.items():
        below = header.get(key)
        if isinstance(below, dict) and isinstance(value, dict):
            below.update(value)
        else:
            header[key] = value
    return header


class FortigateParser(LineParser):
    """FortiOS key=value logs (traffic, utm, event, anomaly)."""

    name = "fortigate"
    aliases = ("fortinet", "fortios")
    description = "Fortinet FortiGate (FortiOS v4-v7) key=value logs"
    priority = 10
    embeddable = True

    def sniff(self, line: str) -> bool:
        return "devname=" in line or "logid=" in line or "log_id=" in line

    def parse(self, line: str, ctx: ParseContext) -> Event | None:
        text = line.rstrip("\r\n")
        first = _FIRST_KEY.search(text)
        if first is None:
            return None
        kv, leftover = split_pairs(text[first.start() :])
        if not any(key in kv for key in _IDENTIFYING_KEYS) or ("type" not in kv and "subtype" not in kv):
            return None
        event = _ecs(kv, leftover, ctx)
        return with_syslog_header(text, first.start(), event, ctx)


register_line(FortigateParser)

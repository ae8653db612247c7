"""Cisco ASA / FTD / FWSM / PIX syslog messages (``%ASA-6-302013: …``).

Every message parses: the message id, severity and text are always kept. For the
ids a SOC works with (connections, ACL denies, NAT, AAA and VPN logins, admin
commands, threat detection, IPS) the text is also cut into ECS fields. Patterns
only *extract* named parts (``s_ip``, ``d_port``, ``user`` …); one mapping turns
those parts into ECS, and a table per id says what the message means (action,
category, type, outcome).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from collectors.event import Event, set_fields
from collectors.parsers.base import LineParser, ParseContext, register_line
from collectors.parsers.fortigate import with_syslog_header
from collectors.parsers.web_access import is_ip

_MARKER = re.compile(r"%(ASA|FTD|FWSM|PIX)-(?:[A-Za-z]+-)?([0-7])-(\d{6}):? ?")

_LEVELS = (
    "emergencies", "alerts", "critical", "errors",
    "warnings", "notifications", "informational", "debugging",
)  # fmt: skip
_PRODUCTS = {"ASA": "ASA", "PIX": "PIX", "FWSM": "FWSM", "FTD": "Firepower Threat Defense"}
_TRANSPORTS = {"1": "icmp", "6": "tcp", "17": "udp", "47": "gre", "50": "esp", "51": "ah", "58": "ipv6-icmp"}
_IANA = {name: number for number, name in _TRANSPORTS.items()}
_SERVICES = {
    "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "www": 80,
    "pop3": 110, "ntp": 123, "netbios-ssn": 139, "imap4": 143, "snmp": 161, "ldap": 389,
    "https": 443, "isakmp": 500, "syslog": 514, "ldaps": 636, "sqlnet": 1521, "rdp": 3389,
}  # fmt: skip

# --- patterns ---------------------------------------------------------------------

_IDFW = r"(?: \((?!type )[^()]*\))?"  # "(LOCAL\user)" identity-firewall user or FQDN after an address


def _side(p: str, port: str = r"[\w-]+") -> str:
    """``iface:addr/port`` with the named groups ``{p}_if``, ``{p}_ip``, ``{p}_port``."""
    return rf"(?P<{p}_if>[^\s:/]+):(?P<{p}_ip>[^\s/()]+)/(?P<{p}_port>{port})"


_CONNECTION = re.compile(
    r"(?P<verb>Built|Teardown)(?: (?P<dir>inbound|outbound))?(?: (?:dynamic|static|stub|local-host))?"
    r" (?P<proto>\w+) connection(?: (?P<cid>\d+))? (?:for|from) "
    + _side("s", r"\d+")
    + r"(?: \((?P<sn_ip>[^\s/()]+)/(?P<sn_port>\d+)\))?(?: \((?P<s_user>[^()]*)\))? to "
    + _side("d", r"\d+")
    + r"(?: \((?P<dn_ip>[^\s/()]+)/(?P<dn_port>\d+)\))?(?: \((?P<d_user>[^()]*)\))?"
    r"(?: duration (?P<dur>[\d:dhms ]+?))?(?: (?:forwarded )?bytes (?P<bytes>\d+))?"
    r"(?: (?:reason )?(?P<reason>[^()]+?))?(?: \((?P<user>[^()]*)\))?\.?$"
)
_ICMP_CONNECTION = re.compile(
    r"(?P<verb>Built|Teardown)(?: (?P<dir>inbound|outbound))? (?P<proto>ICMPv6|ICMP) connection"
    r"(?: (?P<cid>\d+))? for faddr (?P<f_ip>[^\s/]+)/(?P<f_id>\d+)"
    + _IDFW
    + r" gaddr (?P<g_ip>[^\s/]+)/(?P<g_id>\d+) laddr (?P<l_ip>[^\s/]+)/(?P<l_id>\d+)"
    + _IDFW
    + r"(?: type (?P<icmp_type>\d+) code (?P<icmp_code>\d+))?(?: \((?P<user>[^()]*)\))?"
)
_SRC_DST = re.compile(
    r"src (?P<s_if>[^\s:]+):(?P<s_ip>[^\s/()]+)(?:/(?P<s_port>\d+))?"
    + _IDFW
    + r" dst (?P<d_if>[^\s:]+):(?P<d_ip>[^\s/()]+)(?:/(?P<d_port>\d+))?"
    + _IDFW
    + r"(?: \(type (?P<icmp_type>\d+), code (?P<icmp_code>\d+)\))?"
    r"(?: by access-group \"(?P<acl>[^\"]+)\")?"
)
_IPV4_OR_6 = r"\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+"
_FROM_TO = re.compile(
    rf"from (?:(?P<s_if>[^\s:/]+):)?(?P<s_ip>{_IPV4_OR_6})(?:/(?P<s_port>[\w-]+))?"
    + _IDFW
    + rf" to (?:(?P<d_if>[^\s:/]+):)?(?P<d_ip>{_IPV4_OR_6})(?:/(?P<d_port>[\w-]+))?"
)
_PROTO_AFTER_DENY = re.compile(r"Deny (?:(?P<dir>inbound|outbound) )?(?:protocol )?(?P<proto>\w+)")
_PROTO_WORD = re.compile(r"\b(?P<proto>TCP|UDP|ICMPv6|ICMP|GRE|SCTP|ESP|tcp|udp|icmp)\b")
_ON_INTERFACE = re.compile(r"on interface (?P<s_if>[^\s.,]+)")
_ACCESS_LIST = re.compile(
    r"access-list (?P<acl>\S+) (?P<verdict>permitted|denied|est-allowed) (?P<proto>\w+)"
    r"(?: for user '?(?P<user>[^\s']*)'?)?"
    r" (?P<s_if>[^\s/]+)/(?P<s_ip>[^\s(]+)(?:\((?P<s_port>\d+)\)| (?P<s_port2>\d+))"
    + _IDFW
    + r"(?: ->)? (?P<d_if>[^\s/]+)/(?P<d_ip>[^\s(]+)(?:\((?P<d_port>\d+)\)| (?P<d_port2>\d+))"
    + _IDFW
    + r" hit-cnt (?P<hits>\d+)"
)
_TRANSLATION = re.compile(
    r"(?P<verb>Built|Teardown) (?:dynamic|static) (?P<proto>\w+) translation from "
    + _side("s")
    + _IDFW
    + r" to (?P<d_if>[^\s:/]+):(?P<sn_ip>[^\s/]+)/(?P<sn_port>\w+)"
    r"(?: duration (?P<dur>[\d:]+))?"
)
_AAA = re.compile(
    r"(?:reason = (?P<reason>.+?) ?: )?(?:server = (?P<server>[^\s,:]+)[ ,:]*)?"
    r"(?:local database ?: )?[Uu]ser = (?P<user>[^,:]+?) ?(?:[,:]|$)(?: user IP = (?P<s_ip>[^\s,]+))?"
)
_LOCKED_OUT = re.compile(r"User (?:'(?P<quoted>[^']+)'|(?P<user>\S+)) locked out")
_SESSION_DISCONNECTED = re.compile(
    r"Group = (?P<group>[^,]+), Username = (?P<user>[^,]+), IP = (?P<s_ip>[^,\s]+), Session disconnected"
    r"(?:.*?Duration: (?P<dur>[^,]+))?(?:, Bytes xmt: (?P<xmt>\d+))?(?:, Bytes rcv: (?P<rcv>\d+))?"
    r"(?:, Reason: (?P<reason>.+))?"
)
_LOGIN = re.compile(
    r"Login (?P<verdict>denied|permitted) from (?P<s_ip>[^\s/]+)/(?P<s_port>\d+) to "
    r"(?P<d_if>[^\s:]+):(?P<d_ip>[^\s/]+)/(?P<d_port>\S+) for user \"(?P<user>[^\"]*)\""
)
_UNAME = re.compile(r"Uname: (?P<user>\S+?),?(?: |$)")
_ANY_IP = re.compile(r"(?<![\w.:])(?P<s_ip>\d{1,3}(?:\.\d{1,3}){3})(?![\w.])")
_COMMAND = re.compile(
    r"User '?(?P<user>[^',\s]+)'?"
    r"(?:, running '(?P<app>[^']*)' from IP (?P<s_ip>[^\s,]+))?,? executed "
    r"(?:the '(?P<cmd1>.*)' command|cmd: ?(?P<cmd2>.*?)|'(?P<cmd3>.*)'|(?P<cmd4>.*?))\.?$"
)
_CONFIG = re.compile(
    r"(?:Begin configuration: (?P<s_ip>\S+) (?:reading|writing)|(?P<s_ip2>\S+) end configuration: "
    r"(?P<result>\w+))"
)
_PRIV = re.compile(r"User priv level changed: Uname: (?P<user>\S+) From: (?P<from>\d+) To: (?P<to>\d+)")
_VPN = re.compile(
    r"Group <?(?P<group>[^<>]+?)>? User <?(?P<user>[^<>]+?)>? IP <?(?P<s_ip>[^<>\s]+?)>?"
    r"(?: |,|$)(?:.*?IPv4 Address <?(?P<assigned>[\d.]+)>?)?"
)
_THREAT = re.compile(
    r"\[\s*(?P<object>[^\]]+?)\s*\] drop rate-(?P<rate>\d+) exceeded\. Current burst rate is "
    r"(?P<burst>\d+) per second, max configured rate is (?P<burst_max>\d+); Current average rate is "
    r"(?P<average>\d+) per second, max configured rate is (?P<average_max>\d+); "
    r"Cumulative total count is (?P<total>\d+)"
)
_ICMP_DENIED = re.compile(
    r"Denied ICMP type=(?P<icmp_type>\d+),? (?:code=(?P<icmp_code>\d+),? )?from (?:laddr )?"
    r"(?P<s_ip>\S+) on interface (?P<s_if>[^\s:]+)(?: to (?P<d_ip>[^\s:]+))?"
)
_IPS = re.compile(r"IPS:(?P<sig>\d+) (?P<signature>.+?) from (?P<s_ip>\S+) to (?P<d_ip>\S+) on interface (?P<s_if>\S+)")
_URL = re.compile(
    r"(?:(?P<s_ip>\S+?)(?:\([^)]*\))? Accessed URL (?P<d_ip>[^:\s]+):(?P<url>\S+)"
    r"|Access denied URL (?P<url2>\S+) SRC (?P<s_ip2>\S+) DEST (?P<d_ip2>\S+) on interface (?P<s_if>\S+))"
)


# --- what each message means -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Meaning:
    action: str
    category: tuple[str, ...] = ("network",)
    type: tuple[str, ...] = ("info",)
    outcome: str | None = None
    kind: str = "event"


_DENY = _Meaning("firewall-rule", type=("connection", "denied"), outcome="failure")
_PERMIT = _Meaning("firewall-rule", type=("connection", "allowed"), outcome="success")
_LOGON_OK = _Meaning("logon-success", ("authentication",), ("start",), "success")
_LOGON_FAILED = _Meaning("logon-failed", ("authentication",), ("start",), "failure")
_LOGOFF = _Meaning("logoff", ("authentication",), ("end",), "success")
_COMMAND_RUN = _Meaning("command-executed", ("configuration",), ("change",))
_CONFIGURATION = _Meaning("configuration-change", ("configuration",), ("change",))

_MEANINGS: dict[str, _Meaning] = {
    **{i: _DENY for i in ("106001", "106006", "106007", "106010", "106014", "106015", "106021",
                          "106023", "710003", "710005", "313001", "313004", "313008")},
    "106100": _PERMIT, "106102": _PERMIT, "710002": _PERMIT,  # refined by the verdict
    "710004": _Meaning("connection-limit-exceeded", type=("connection", "denied"), outcome="failure"),
    "313005": _Meaning("no-matching-connection", type=("connection", "denied"), outcome="failure"),
    "305011": _Meaning("translation-built", type=("connection", "start"), outcome="success"),
    "305012": _Meaning("translation-teardown", type=("connection", "end")),
    "419002": _Meaning("duplicate-syn", type=("connection", "info")),
    "421001": _Meaning("flow-dropped", type=("connection", "denied"), outcome="failure"),
    "421002": _Meaning("flow-bypassed", type=("connection", "allowed")),
    "421007": _Meaning("flow-skipped", type=("connection", "info")),
    "113004": _LOGON_OK, "113008": _LOGON_OK, "113012": _LOGON_OK,
    "113005": _LOGON_FAILED, "113015": _LOGON_FAILED,
    "113006": _Meaning("account-locked", ("authentication",), ("info",), "failure"),
    "113019": _Meaning("vpn-session-disconnected", ("authentication", "session"), ("end",), "success"),
    "605004": _LOGON_FAILED, "605005": _LOGON_OK,
    "611101": _LOGON_OK, "611102": _LOGON_FAILED, "611103": _LOGOFF,
    "111008": _COMMAND_RUN, "111010": _COMMAND_RUN,
    "111009": _Meaning("command-executed", ("configuration",), ("info",)),
    **{i: _CONFIGURATION for i in ("111001", "111002", "111003", "111004", "111005", "111007")},
    "502103": _Meaning("privilege-changed", ("iam",), ("user", "change"), "success"),
    "716001": _Meaning("vpn-session-started", ("authentication", "session"), ("start",), "success"),
    "716002": _Meaning("vpn-session-ended", ("authentication", "session"), ("end",), "success"),
    "722022": _Meaning("vpn-connection-established", type=("connection", "start"), outcome="success"),
    "722023": _Meaning("vpn-connection-terminated", type=("connection", "end")),
    "722051": _Meaning("vpn-address-assigned", type=("connection", "info")),
    "733100": _Meaning("threat-detected", ("intrusion_detection",), kind="alert"),
    "304001": _Meaning("url-accessed", ("network", "web"), ("access",), "success"),
    "304002": _Meaning("url-denied", ("network", "web"), ("access", "denied"), "failure"),
}  # fmt: skip
_IPS_MEANING = _Meaning("intrusion-detected", ("intrusion_detection",), kind="alert")
_CONNECTION_BUILT = _Meaning("connection-built", type=("connection", "start"), outcome="success")
_CONNECTION_TEARDOWN = _Meaning("connection-teardown", type=("connection", "end"))

_ID_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    **{i: (_SRC_DST,) for i in ("106010", "106014", "106023", "313005")},
    "106100": (_ACCESS_LIST,), "106102": (_ACCESS_LIST,),
    "305011": (_TRANSLATION,), "305012": (_TRANSLATION,),
    **{i: (_AAA,) for i in ("113004", "113005", "113008", "113012", "113015")},
    "113006": (_LOCKED_OUT,), "113019": (_SESSION_DISCONNECTED,),
    "605004": (_LOGIN,), "605005": (_LOGIN,),
    "611101": (_UNAME, _ANY_IP), "611102": (_UNAME, _ANY_IP), "611103": (_UNAME,),
    **{i: (_COMMAND,) for i in ("111008", "111009", "111010")},
    **{i: (_CONFIG,) for i in ("111001", "111002", "111003", "111004", "111005", "111007")},
    "502103": (_PRIV,),
    **{i: (_VPN,) for i in ("716001", "716002", "722022", "722023", "722051")},
    "733100": (_THREAT,),
    "313001": (_ICMP_DENIED,), "313004": (_ICMP_DENIED,),
    "304001": (_URL,), "304002": (_URL,),
}  # fmt: skip


# --- extraction --------------------------------------------------------------------


def _extract(msg_id: str, text: str) -> dict[str, str]:
    """The named parts of the message text (empty when nothing applies)."""
    parts = _specific(msg_id, text)
    if not any(key in parts for key in ("s_ip", "d_ip", "user")):
        parts = {**_generic(text), **parts}
    if "proto" not in parts:
        found = _PROTO_AFTER_DENY.match(text) or _PROTO_WORD.search(text)
        if found is not None:
            parts.update(_present(found))
    if "s_if" not in parts and "s_ip" in parts:
        iface = _ON_INTERFACE.search(text)
        if iface is not None:
            parts["s_if"] = iface.group("s_if")
    return parts


def _specific(msg_id: str, text: str) -> dict[str, str]:
    """Parts found by the patterns written for this message id."""
    if msg_id.startswith("302"):
        m = _CONNECTION.match(text)
        if m is not None:
            found = _present(m)
            # "for" names the lower-security side; an outbound connection was
            # opened from the "to" side, which is therefore the source.
            return _swap(found) if found.get("dir") == "outbound" else found
        m = _ICMP_CONNECTION.match(text)
        return _icmp_parts(_present(m)) if m else {}
    if msg_id.startswith("4000"):
        m = _IPS.search(text)
        return _present(m) if m else {}
    parts: dict[str, str] = {}
    for pattern in _ID_PATTERNS.get(msg_id, ()):
        m = pattern.search(text)
        if m is not None:
            for key, value in _merge_alternates(_present(m)).items():
                parts.setdefault(key, value)
    return parts


def _generic(text: str) -> dict[str, str]:
    """Addresses of any message written ``from A to B`` or ``src A dst B``."""
    for pattern in (_FROM_TO, _SRC_DST):
        m = pattern.search(text)
        if m is not None:
            return _present(m)
    return {}


def _present(m: re.Match[str]) -> dict[str, str]:
    return {k: v for k, v in m.groupdict().items() if v is not None and v != ""}


def _merge_alternates(parts: dict[str, str]) -> dict[str, str]:
    """Fold the groups a pattern needed twice (``s_ip2``, ``cmd3`` …) into one name."""
    for key in list(parts):
        base = key.rstrip("0123456789")
        if base != key:
            parts.setdefault(base, parts.pop(key))
    return parts


def _swap(parts: dict[str, str]) -> dict[str, str]:
    swapped: dict[str, str] = {}
    for key, value in parts.items():
        if key.startswith("s_") or key.startswith("sn_"):
            swapped["d" + key[1:]] = value
        elif key.startswith("d_") or key.startswith("dn_"):
            swapped["s" + key[1:]] = value
        else:
            swapped[key] = value
    return swapped


def _icmp_parts(parts: dict[str, str]) -> dict[str, str]:
    """faddr (foreign), gaddr (global, mapped) and laddr (local) → source and
    destination by the connection's direction."""
    out = {k: v for k, v in parts.items() if k[:2] not in ("f_", "g_", "l_")}
    if parts.get("dir") == "inbound":
        out.update(s_ip=parts["f_ip"], d_ip=parts["l_ip"], dn_ip=parts["g_ip"])
    else:
        out.update(s_ip=parts["l_ip"], sn_ip=parts["g_ip"], d_ip=parts["f_ip"])
    return out


# --- ECS ---------------------------------------------------------------------------


def _port(value: str | None) -> tuple[int | None, str | None]:
    """``(port, service name)`` of ``443``, ``https`` or ``echo-reply``."""
    if value is None:
        return None, None
    if value.isdigit():
        return int(value), None
    return _SERVICES.get(value.lower()), value.lower()


def _duration_ns(value: str | None) -> int | None:
    """``0:02:32`` / ``1:02:03:04`` / ``0h:05m:22s`` / ``1d 2h:03m:04s`` → ns."""
    if not value:
        return None
    numbers = [int(n) for n in re.findall(r"\d+", value)]
    if not numbers:
        return None
    weights = (1, 60, 3600, 86400)
    seconds = sum(n * w for n, w in zip(reversed(numbers), weights, strict=False))
    return seconds * 1_000_000_000


def _address_fields(side: str, ip: str | None, port: str | None) -> dict[str, Any]:
    if ip is None:
        return {}
    number, service = _port(port)
    fields: dict[str, Any] = {f"{side}.port": number}
    if is_ip(ip):
        fields[f"{side}.ip"] = ip
    else:
        fields[f"{side}.address"] = ip
    if service and side == "destination":
        fields["network.protocol"] = service
    return fields


def _ecs_fields(parts: dict[str, str]) -> dict[str, Any]:
    """ECS and ``cisco.asa.*`` fields from the extracted parts."""
    g = parts.get
    fields: dict[str, Any] = {}
    fields.update(_address_fields("source", g("s_ip"), g("s_port")))
    fields.update(_address_fields("destination", g("d_ip"), g("d_port")))
    if g("sn_ip") and g("sn_ip") != g("s_ip"):
        fields.update(_address_fields("source.nat", g("sn_ip"), g("sn_port")))
    if g("dn_ip") and g("dn_ip") != g("d_ip"):
        fields.update(_address_fields("destination.nat", g("dn_ip"), g("dn_port")))
    proto = (g("proto") or "").lower()
    transport = _TRANSPORTS.get(proto, proto) or None
    user = g("user") or g("s_user") or g("d_user")
    server = g("server")
    fields.update(
        {
            "network.transport": transport,
            "network.iana_number": _IANA.get(transport or "", proto if proto.isdigit() else None),
            "network.direction": g("dir"),
            "network.bytes": int(parts["bytes"]) if "bytes" in parts else None,
            "event.duration": _duration_ns(g("dur")),
            "event.reason": g("reason"),
            "observer.ingress.interface.name": g("s_if"),
            "observer.egress.interface.name": g("d_if"),
            "user.name": user,
            "group.name": g("group"),
            "rule.name": g("acl") or g("signature") or g("object"),
            "rule.id": g("sig"),
            "server.ip": server if server and is_ip(server) else None,
            "url.original": g("url"),
        }
    )
    fields.update(_vendor_fields(parts))
    if g("xmt") or g("rcv"):
        sent, received = int(g("xmt") or 0), int(g("rcv") or 0)
        fields.update({"destination.bytes": sent, "source.bytes": received, "network.bytes": sent + received})
    related = [ip for ip in (g("s_ip"), g("d_ip"), g("sn_ip"), g("dn_ip")) if ip and is_ip(ip)]
    fields["related.ip"] = list(dict.fromkeys(related)) or None
    fields["related.user"] = [user] if user else None
    return fields


def _vendor_fields(parts: dict[str, str]) -> dict[str, Any]:
    """``cisco.asa.*``: what ECS has no field for, named as Elastic's integration does."""
    g = parts.get
    return {
        "cisco.asa.source_interface": g("s_if"),
        "cisco.asa.destination_interface": g("d_if"),
        "cisco.asa.connection_id": g("cid"),
        "cisco.asa.rule_name": g("acl"),
        "cisco.asa.icmp_type": g("icmp_type"),
        "cisco.asa.icmp_code": g("icmp_code"),
        "cisco.asa.command_line": g("cmd"),
        "cisco.asa.assigned_ip": g("assigned"),
        "cisco.asa.hit_count": g("hits"),
        "cisco.asa.threat_level": f"rate-{parts['rate']}" if "rate" in parts else None,
        "cisco.asa.burst_rate": g("burst"),
        "cisco.asa.average_rate": g("average"),
        "cisco.asa.cumulative_total_count": g("total"),
        "cisco.asa.privilege.old": g("from"),
        "cisco.asa.privilege.new": g("to"),
    }


def _meaning(msg_id: str, parts: dict[str, str]) -> _Meaning | None:
    if msg_id.startswith("302") and "verb" in parts:
        return _CONNECTION_BUILT if parts["verb"] == "Built" else _CONNECTION_TEARDOWN
    if msg_id.startswith("4000"):
        return _IPS_MEANING
    meaning = _MEANINGS.get(msg_id)
    verdict = parts.get("verdict") or parts.get("result")
    if meaning is None or verdict is None:
        return meaning
    failed = verdict in ("denied", "FAILED")
    if meaning.action == "firewall-rule":
        return _DENY if failed else _PERMIT
    return replace(meaning, outcome="failure" if failed else "success")


def _build(product: str, severity: int, msg_id: str, text: str) -> Event:
    parts = _extract(msg_id, text)
    fields = _ecs_fields(parts)
    fields.update(
        {
            "event.kind": "event",
            "event.module": "cisco",
            "event.dataset": "cisco.asa",
            "event.code": msg_id,
            "event.severity": severity,
            "log.level": _LEVELS[severity],
            "message": text,
            "observer.vendor": "Cisco",
            "observer.product": _PRODUCTS[product],
            "observer.type": "firewall",
            "cisco.asa.message_id": msg_id,
        }
    )
    meaning = _meaning(msg_id, parts)
    if meaning is not None:
        fields.update(
            {
                "event.kind": meaning.kind,
                "event.action": meaning.action,
                "event.category": list(meaning.category),
                "event.type": list(meaning.type),
                "event.outcome": meaning.outcome,
            }
        )
    event: Event = {}
    set_fields(event, fields)
    return event


class CiscoAsaParser(LineParser):
    """Cisco ASA, FTD, FWSM and PIX ``%ASA-<severity>-<id>: text`` messages."""

    name = "cisco_asa"
    aliases = ("asa", "cisco", "cisco_ftd")
    description = "Cisco ASA / Firepower Threat Defense syslog messages"
    priority = 20
    embeddable = True

    def sniff(self, line: str) -> bool:
        return "%ASA-" in line or "%FTD-" in line or "%FWSM-" in line or "%PIX-" in line

    def parse(self, line: str, ctx: ParseContext) -> Event | None:
        text = line.rstrip("\r\n")
        m = _MARKER.search(text)
        if m is None:
            return None
        product, severity, msg_id = m.groups()
        event = _build(product, int(severity), msg_id, text[m.end() :].strip())
        event = with_syslog_header(text, m.start(), event, ctx)
        hostname = event.get("host", {}).get("hostname")
        if hostname:
            event["observer"]["hostname"] = hostname
        return event


register_line(CiscoAsaParser)

"""Wazuh alerts (``wazuh-alerts-4.x-*`` documents) → our events.

A Wazuh alert is Wazuh's verdict on one log record: the rule that fired (``rule``),
the agent that collected the record (``agent``), the record itself (``full_log``
for text logs, ``data.win`` for Windows event channel records) and what Wazuh's
decoders extracted from it (``data.srcip``, ``data.dstuser`` …).

The record is read by our own parsers, so that an sshd line or a Windows 4732 gives
the same event whether it came by syslog, as an EVTX file or through Wazuh, and our
Sigma rules fire on it the same way:

* ``data.win`` → the Windows parser's Wazuh eventchannel path (Wazuh writes
  EventData names in lowerCamelCase; the Windows capital is restored:
  ``targetUserName`` → ``TargetUserName``). ``@timestamp`` is the record's
  ``systemTime`` (exact and in UTC), ``event.created`` the alert's time;
* otherwise ``full_log`` → the line dispatcher (syslog with sshd, sudo, pam,
  postfix …, web access logs, JSON). ``@timestamp`` is the alert's time: a syslog
  line carries neither a year nor a time zone;
* otherwise (syscheck, rootcheck, vulnerability alerts, or a line no parser reads)
  an event of dataset ``wazuh.alerts`` with ``full_log`` or the rule's description
  as ``message``.

Wazuh's own view is kept under ``wazuh.*`` (``rule``, ``decoder``, ``location``,
``manager``, the decoded ``data`` …; a vendor root like ``fortinet.firewall``). The
agent becomes ECS ``agent.*`` and, when the record names no host, ``host.name``;
the rule level becomes ``event.severity`` and its MITRE ATT&CK mapping
``threat.*``. What Wazuh decoded (``srcip``, ``srcuser``, ``dstuser`` …) fills
``source.*``, ``destination.*`` and ``user.*`` only where our parser found nothing.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from collectors.event import PARSE_FAILURE_TAG, Event, parse_iso
from collectors.parsers.base import ObjectParser, ParseContext, register_object
from collectors.parsers.dispatch import Dispatcher
from collectors.parsers.ecs_doc import add_origin, canonical_timestamp, copy_document, is_wazuh_alert, unwrap_hit
from collectors.parsers.windows import WindowsEventParser

_WINDOWS = WindowsEventParser()
_LINE_CONTEXT = "_wazuh.line_context"
# Top-level alert keys that become other fields (or are in event.original only).
_NOT_KEPT = frozenset({"timestamp", "@timestamp", "@version", "agent", "full_log"})


class _Lines:
    """The line dispatcher, built on first use: parsers register as their modules
    are imported, and this module may be imported before some of them."""

    dispatcher: Dispatcher | None = None

    @classmethod
    def get(cls) -> Dispatcher:
        if cls.dispatcher is None:
            cls.dispatcher = Dispatcher()
        return cls.dispatcher


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _ip(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _port(value: Any) -> int | None:
    port = _int(value)
    return port if port is not None and 0 < port < 65536 else None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _child(node: dict[str, Any], key: str) -> dict[str, Any]:
    value = node.get(key)
    if not isinstance(value, dict):
        value = node[key] = {}
    return value


def _line_event(text: str, ctx: ParseContext, stamp: str | None) -> Event | None:
    """Our event for a ``full_log`` line, ``None`` when no parser reads it."""
    sub: ParseContext | None = ctx.state.get(_LINE_CONTEXT)
    if sub is None:
        # A context of its own: the dispatcher records the last parser that worked
        # and the declared format in it, which must not leak into the outer stream.
        sub = ParseContext(tz=ctx.tz, json_mappings=ctx.json_mappings)
        ctx.state[_LINE_CONTEXT] = sub
    now: datetime | None = ctx.now
    if stamp is not None:
        now = parse_iso(stamp)  # the year of a syslog line is the alert's year
    sub.now = now
    event = _Lines.get().parse(text, None, sub)
    tags = event.get("tags")
    if tags and PARSE_FAILURE_TAG in tags:
        return None
    return event


@register_object
class WazuhAlertParser(ObjectParser):
    """Wazuh alerts from the Wazuh indexer, bare or as search hits."""

    name = "wazuh"
    aliases = ("wazuh_alert", "wazuh_alerts")
    description = "Wazuh alerts (wazuh-alerts-* documents): full_log and data.win read by our parsers"
    priority = 12

    def sniff(self, obj: dict[str, Any]) -> bool:
        return is_wazuh_alert(unwrap_hit(obj)[0])

    def parse(self, obj: dict[str, Any], ctx: ParseContext) -> Event | None:
        doc, index, doc_id = unwrap_hit(obj)
        if type(doc.get("rule")) is not dict:
            return None
        alert, original = copy_document(doc)
        rule: dict[str, Any] = alert["rule"]
        stamp = canonical_timestamp(alert.get("timestamp")) or canonical_timestamp(alert.get("@timestamp"))
        data: dict[str, Any] = alert["data"] if type(alert.get("data")) is dict else {}
        full_log = alert.get("full_log")
        if not (isinstance(full_log, str) and full_log.strip()):
            full_log = None

        event: Event | None = None
        win = data.get("win")
        if type(win) is dict and type(win.get("system")) is dict:
            event = _WINDOWS.parse({"win": win}, ctx)
        if event is None and full_log is not None:
            event = _line_event(full_log, ctx, stamp)
            if event is not None and stamp is not None:
                event["@timestamp"] = stamp
        if event is None:
            event = {"event": {"kind": "event", "module": "wazuh", "dataset": "wazuh.alerts"}}
            message = full_log or rule.get("description")
            if isinstance(message, str) and message:
                event["message"] = message

        meta = _child(event, "event")
        meta.setdefault("kind", "event")
        if stamp is not None:
            if "@timestamp" not in event:
                event["@timestamp"] = stamp
            elif event["@timestamp"] != stamp:
                meta.setdefault("created", stamp)
        level = _int(rule.get("level"))
        if level is not None:
            meta.setdefault("severity", level)
        if not meta.get("original"):
            meta["original"] = original

        event["wazuh"] = _wazuh_section(alert, data, win)
        _agent(event, alert.get("agent"))
        _decoded(event, data)
        _threat(event, rule.get("mitre"))
        add_origin(event, index, doc_id)
        return event


def _wazuh_section(alert: dict[str, Any], data: dict[str, Any], win: Any) -> dict[str, Any]:
    section = {k: v for k, v in alert.items() if k not in _NOT_KEPT}
    if win is not None:
        # The Windows record is in winlog.* already.
        rest = {k: v for k, v in data.items() if k != "win"}
        if rest:
            section["data"] = rest
        else:
            section.pop("data", None)
    return section


def _agent(event: Event, agent: Any) -> None:
    if not isinstance(agent, dict):
        return
    ecs_agent = _child(event, "agent")
    ecs_agent.setdefault("type", "wazuh")
    for key in ("id", "name"):
        value = agent.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            ecs_agent.setdefault(key, str(value))
    name = agent.get("name")
    host = _child(event, "host")
    if isinstance(name, str) and name and not host.get("name"):
        host["name"] = name
    ip = _ip(agent.get("ip"))
    if ip is not None and not host.get("ip"):
        host["ip"] = [ip]
    if not host:
        del event["host"]


def _related(event: Event, kind: str, value: str) -> None:
    related = _child(event, "related")
    values = related.get(kind)
    if not isinstance(values, list):
        values = related[kind] = []
    if value not in values:
        values.append(value)


def _decoded(event: Event, data: dict[str, Any]) -> None:
    """What Wazuh's decoders extracted, where our parser found nothing."""
    for prefix, section in (("src", "source"), ("dst", "destination")):
        ip = _ip(data.get(prefix + "ip"))
        node = event.get(section)
        if ip is None or (isinstance(node, dict) and node.get("ip")):
            continue
        node = _child(event, section)
        node["ip"] = ip
        port = _port(data.get(prefix + "port"))
        if port is not None:
            node.setdefault("port", port)
        _related(event, "ip", ip)
    src_user = data.get("srcuser") if isinstance(data.get("srcuser"), str) else None
    dst_user = data.get("dstuser") if isinstance(data.get("dstuser"), str) else None
    user = event.get("user")
    if (src_user or dst_user) and not (isinstance(user, dict) and user.get("name")):
        user = _child(event, "user")
        # sudo/su: srcuser acts, dstuser is who they become; sshd: dstuser logs in.
        user["name"] = src_user or dst_user
        if src_user and dst_user and dst_user != src_user:
            _child(user, "target").setdefault("name", dst_user)
        for name in (src_user, dst_user):
            if name:
                _related(event, "user", name)


def _threat(event: Event, mitre: Any) -> None:
    if not isinstance(mitre, dict) or "threat" in event:
        return
    threat: dict[str, Any] = {}
    technique: dict[str, Any] = {}
    ids = _strings(mitre.get("id"))
    if ids:
        technique["id"] = ids
    names = _strings(mitre.get("technique"))
    if names:
        technique["name"] = names
    if technique:
        threat["technique"] = technique
    tactics = _strings(mitre.get("tactic"))
    if tactics:
        threat["tactic"] = {"name": tactics}
    if threat:
        threat["framework"] = "MITRE ATT&CK"
        event["threat"] = threat

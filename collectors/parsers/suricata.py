"""Suricata EVE JSON → ECS, field for field as Elastic's Suricata integration maps it.

Every EVE line has ``timestamp``, ``event_type`` and, for traffic events, the flow
5-tuple; the protocol details sit in an object named after the protocol (``alert``,
``dns``, ``http``, ``tls``, ``flow``, ``fileinfo`` …). An event may carry several of
them (an alert on TLS traffic has ``alert``, ``tls`` and ``flow``), so each object
present is mapped, and ``event_type`` decides the ECS category. The whole EVE object
is kept under ``suricata.eve`` so nothing Suricata wrote is lost.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from collectors.event import Event, normalize_timestamp, parse_iso
from collectors.parsers.base import ObjectParser, ParseContext, ParseError, register_object

# event_type → (event.category, event.type)
_CLASSES: dict[str, tuple[list[str], list[str]]] = {
    "alert": (["network", "intrusion_detection"], ["allowed"]),
    "drop": (["network", "intrusion_detection"], ["denied"]),
    "anomaly": (["network"], ["info"]),
    "dns": (["network"], ["protocol"]),
    "http": (["network", "web"], ["access", "protocol"]),
    "tls": (["network"], ["protocol"]),
    "ssh": (["network"], ["protocol"]),
    "smb": (["network"], ["protocol"]),
    "flow": (["network"], ["connection", "end"]),
    "netflow": (["network"], ["connection"]),
    "fileinfo": (["file"], ["info"]),
}
_PROTOCOL_EVENTS = frozenset({"dns", "http", "tls", "ssh", "smb", "ftp", "smtp", "dhcp", "krb5", "nfs", "rdp",
                              "sip", "snmp", "tftp", "ike", "mqtt", "http2", "quic", "ldap", "pgsql"})
_DNS_FLAGS = (("qr", "QR"), ("aa", "AA"), ("tc", "TC"), ("rd", "RD"), ("ra", "RA"), ("ad", "AD"), ("cd", "CD"))
_OBSERVER = {"product": "Suricata", "vendor": "OISF", "type": "ids"}


@lru_cache(maxsize=16384)
def _ip_text(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _ip(value: Any) -> str | None:
    return _ip_text(value) if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _time(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return normalize_timestamp(value)
    except ValueError:
        return None


class _Related:
    __slots__ = ("hashes", "hosts", "ips")

    def __init__(self) -> None:
        self.ips: list[str] = []
        self.hosts: list[str] = []
        self.hashes: list[str] = []

    @staticmethod
    def _add(bucket: list[str], value: Any) -> None:
        if isinstance(value, str) and value and value not in bucket:
            bucket.append(value)

    def store(self, out: Event) -> None:
        related: dict[str, Any] = {}
        for name, bucket in (("ip", self.ips), ("hosts", self.hosts), ("hash", self.hashes)):
            if bucket:
                related[name] = bucket
        if related:
            out["related"] = related


def _endpoints(out: Event, obj: dict[str, Any], related: _Related) -> None:
    for ip_key, port_key, section in (("src_ip", "src_port", "source"), ("dest_ip", "dest_port", "destination")):
        node: dict[str, Any] = {}
        ip = _ip(obj.get(ip_key))
        if ip is not None:
            node["ip"] = ip
            related._add(related.ips, ip)
        port = _int(obj.get(port_key))
        if port is not None:
            node["port"] = port
        if node:
            out[section] = node
    network: dict[str, Any] = {}
    proto = obj.get("proto")
    if isinstance(proto, str) and proto:
        network["transport"] = proto.lower()
    elif isinstance(proto, int):
        network["iana_number"] = str(proto)
    app = obj.get("app_proto")
    if isinstance(app, str) and app and app != "failed":
        network["protocol"] = app.lower()
    elif obj.get("event_type") in _PROTOCOL_EVENTS:
        network["protocol"] = obj["event_type"]
    if obj.get("community_id"):
        network["community_id"] = obj["community_id"]
    if network:
        out["network"] = network


def _alert(out: Event, event: dict[str, Any], alert: dict[str, Any]) -> None:
    rule: dict[str, Any] = {}
    if alert.get("signature_id") is not None:
        rule["id"] = str(alert["signature_id"])
    if alert.get("signature"):
        rule["name"] = alert["signature"]
        out["message"] = alert["signature"]
    if alert.get("category"):
        rule["category"] = alert["category"]
    if rule:
        out["rule"] = rule
    severity = _int(alert.get("severity"))
    if severity is not None:
        event["severity"] = severity
    action = alert.get("action")
    if isinstance(action, str) and action:
        event["action"] = action
        if action == "blocked" and "type" in event:
            event["type"] = ["denied"]


def _http(out: Event, http: dict[str, Any], related: _Related) -> None:
    url: dict[str, Any] = {}
    original = http.get("url")
    if isinstance(original, str) and original:
        url["original"] = original
        target = original
        scheme, sep, rest = original.partition("://")
        if sep and "/" not in scheme:
            url["scheme"] = scheme.lower()
            slash = rest.find("/")
            target = rest[slash:] if slash != -1 else "/"
        path, qmark, query = target.partition("?")
        url["path"] = path
        if qmark and query:
            url["query"] = query
        dot = path.rfind(".")
        if dot > path.rfind("/") and dot != len(path) - 1:
            url["extension"] = path[dot + 1:].lower()
    hostname = http.get("hostname")
    if isinstance(hostname, str) and hostname:
        url["domain"] = hostname
        related._add(related.hosts, hostname)
    port = _int(http.get("http_port"))
    if port is not None:
        url["port"] = port
    if url:
        out["url"] = url
    request: dict[str, Any] = {}
    if http.get("http_method"):
        request["method"] = http["http_method"]
    if http.get("http_refer"):
        request["referrer"] = http["http_refer"]
    response: dict[str, Any] = {}
    status = _int(http.get("status"))
    if status is not None:
        response["status_code"] = status
    length = _int(http.get("length"))
    if length is not None:
        response["body"] = {"bytes": length}
    if http.get("http_content_type"):
        response["mime_type"] = http["http_content_type"]
    node: dict[str, Any] = {}
    if request:
        node["request"] = request
    if response:
        node["response"] = response
    protocol = http.get("protocol")
    if isinstance(protocol, str) and protocol.upper().startswith("HTTP/"):
        node["version"] = protocol[5:]
    if node:
        out["http"] = node
    if http.get("http_user_agent"):
        out["user_agent"] = {"original": http["http_user_agent"]}


def _dns(out: Event, dns: dict[str, Any], related: _Related) -> None:
    node: dict[str, Any] = {}
    kind = dns.get("type")
    if kind in ("query", "request"):
        node["type"] = "query"
    elif kind in ("answer", "response"):
        node["type"] = "answer"
    if dns.get("id") is not None:
        node["id"] = str(dns["id"])
    queries = dns.get("queries")  # EVE DNS v3
    question = queries[0] if isinstance(queries, list) and queries and isinstance(queries[0], dict) else dns
    q: dict[str, Any] = {}
    if question.get("rrname"):
        q["name"] = question["rrname"]
        related._add(related.hosts, question["rrname"])
    if question.get("rrtype"):
        q["type"] = question["rrtype"]
    if q:
        node["question"] = q
    if dns.get("rcode"):
        node["response_code"] = dns["rcode"]
    flags = [flag for key, flag in _DNS_FLAGS if dns.get(key) is True]
    if flags:
        node["header_flags"] = flags
    answers = _dns_answers(dns, kind)
    if answers:
        node["answers"] = answers
        ips = [ip for ip in (_ip(d) for d in answers.get("data", ()) if isinstance(d, str)) if ip]
        if ips:
            node["resolved_ip"] = ips
            for ip in ips:
                related._add(related.ips, ip)
    if node:
        out["dns"] = node


def _dns_answers(dns: dict[str, Any], kind: Any) -> dict[str, list[Any]]:
    """Answers as parallel lists (``dns.answers.data`` …): EVE v1 writes one answer
    per event at top level, v2/v3 an ``answers`` list (or only ``grouped``)."""
    records: list[dict[str, Any]] = []
    listed = dns.get("answers")
    if isinstance(listed, list):
        records = [a for a in listed if isinstance(a, dict)]
    elif kind == "answer" and "rdata" in dns:
        records = [dns]
    elif isinstance(dns.get("grouped"), dict):
        for rrtype, values in dns["grouped"].items():
            for value in values if isinstance(values, list) else [values]:
                records.append({"rrtype": rrtype, "rdata": value})
    out: dict[str, list[Any]] = {}
    for record in records:
        for src, dst in (("rrname", "name"), ("rrtype", "type"), ("ttl", "ttl"), ("rdata", "data")):
            value = record.get(src)
            if value is not None:
                out.setdefault(dst, []).append(value if isinstance(value, str | int) else str(value))
    return out


def _tls(out: Event, tls: dict[str, Any], related: _Related) -> None:
    node: dict[str, Any] = {}
    version = tls.get("version")
    if isinstance(version, str) and " " in version:
        protocol, _, number = version.partition(" ")
        node["version_protocol"] = protocol.lower()
        node["version"] = number
    if isinstance(tls.get("session_resumed"), bool):
        node["resumed"] = tls["session_resumed"]
    client: dict[str, Any] = {}
    if tls.get("sni"):
        client["server_name"] = tls["sni"]
        related._add(related.hosts, tls["sni"])
    ja3 = tls.get("ja3")
    if isinstance(ja3, dict) and ja3.get("hash"):
        client["ja3"] = ja3["hash"]
    if client:
        node["client"] = client
    server: dict[str, Any] = {}
    ja3s = tls.get("ja3s")
    if isinstance(ja3s, dict) and ja3s.get("hash"):
        server["ja3s"] = ja3s["hash"]
    if tls.get("subject"):
        server["subject"] = tls["subject"]
    if tls.get("issuerdn"):
        server["issuer"] = tls["issuerdn"]
    for src, dst in (("notbefore", "not_before"), ("notafter", "not_after")):
        stamp = _time(tls.get(src))
        if stamp:
            server[dst] = stamp
    fingerprint = tls.get("fingerprint")
    if isinstance(fingerprint, str) and fingerprint:
        server["hash"] = {"sha1": fingerprint.replace(":", "").upper()}
    serial = tls.get("serial")
    if isinstance(serial, str) and serial:
        server["x509"] = {"serial_number": serial.replace(":", "")}
    if server:
        node["server"] = server
    if node:
        out["tls"] = node


def _flow(out: Event, event: dict[str, Any], flow: dict[str, Any]) -> None:
    totals = {"bytes": 0, "packets": 0}
    seen = False
    for section, direction in (("source", "toserver"), ("destination", "toclient")):
        for unit, key in (("bytes", "bytes_"), ("packets", "pkts_")):
            value = _int(flow.get(key + direction))
            if value is not None:
                out.setdefault(section, {})[unit] = value
                totals[unit] += value
                seen = True
    if seen:
        network = out.setdefault("network", {})
        network["bytes"] = totals["bytes"]
        network["packets"] = totals["packets"]
    start, end = _time(flow.get("start")), _time(flow.get("end"))
    if start:
        event["start"] = start
    if end:
        event["end"] = end
    if start and end:
        delta = parse_iso(end) - parse_iso(start)
        event["duration"] = int(delta.total_seconds() * 1_000_000_000)


def _fileinfo(out: Event, info: dict[str, Any], related: _Related) -> None:
    file: dict[str, Any] = {}
    name = info.get("filename")
    if isinstance(name, str) and name:
        base = name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        file["name"] = base or name
        if base != name:
            file["path"] = name
    size = _int(info.get("size"))
    if size is not None:
        file["size"] = size
    hashes = {algo: info[algo] for algo in ("md5", "sha1", "sha256") if info.get(algo)}
    if hashes:
        file["hash"] = hashes
        for digest in hashes.values():
            related._add(related.hashes, digest)
    if file:
        out["file"] = file


@register_object
class SuricataEveParser(ObjectParser):
    """Suricata EVE JSON (one event object per line)."""

    name = "suricata"
    aliases = ("eve", "suricata_eve")
    description = "Suricata EVE JSON (alert, dns, http, tls, flow, fileinfo, ssh, anomaly, smb, stats …)"
    priority = 10

    def sniff(self, obj: dict[str, Any]) -> bool:
        return "event_type" in obj and "timestamp" in obj

    def parse(self, obj: dict[str, Any], ctx: ParseContext) -> Event | None:
        event_type = obj.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            return None
        timestamp = _time(obj.get("timestamp"))
        if timestamp is None:
            raise ParseError(f"EVE timestamp is not ISO 8601: {obj.get('timestamp')!r}")
        kind = "alert" if event_type == "alert" else "metric" if event_type == "stats" else "event"
        event: dict[str, Any] = {"kind": kind, "module": "suricata", "dataset": "suricata.eve"}
        classes = _CLASSES.get(event_type)
        if classes is None and "src_ip" in obj:
            classes = (["network"], ["protocol"])
        if classes is not None:
            event["category"] = list(classes[0])
            event["type"] = list(classes[1])
        out: Event = {"@timestamp": timestamp, "event": event, "suricata": {"eve": dict(obj)}}
        observer: dict[str, Any] = dict(_OBSERVER)
        if obj.get("host"):
            observer["hostname"] = obj["host"]
        if obj.get("in_iface"):
            observer["ingress"] = {"interface": {"name": obj["in_iface"]}}
        out["observer"] = observer
        related = _Related()
        _endpoints(out, obj, related)
        self._details(out, event, obj, related)
        related.store(out)
        return out

    @staticmethod
    def _details(out: Event, event: dict[str, Any], obj: dict[str, Any], related: _Related) -> None:
        alert = obj.get("alert")
        if isinstance(alert, dict):
            _alert(out, event, alert)
        http = obj.get("http")
        if isinstance(http, dict):
            _http(out, http, related)
        dns = obj.get("dns")
        if isinstance(dns, dict):
            _dns(out, dns, related)
        tls = obj.get("tls")
        if isinstance(tls, dict):
            _tls(out, tls, related)
        flow = obj.get("flow")
        if isinstance(flow, dict):
            _flow(out, event, flow)
        info = obj.get("fileinfo")
        if isinstance(info, dict):
            _fileinfo(out, info, related)
        anomaly = obj.get("anomaly")
        if isinstance(anomaly, dict) and anomaly.get("event"):
            out["message"] = f"anomaly: {anomaly['event']}"

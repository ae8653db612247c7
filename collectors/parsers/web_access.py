"""Web server logs: NCSA access logs (nginx, Apache, Tomcat), IIS W3C, error logs.

The access-log parser is on the pipeline's hot path (tens of thousands of lines a
second per core), so its common case is one precompiled regex and one dict literal;
everything unusual (a virtual host or proxy address in front, lines wrapped in
quotes, a broken request line, a truncated user agent) goes through a slower
tolerant path instead of costing the fast one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from ipaddress import ip_address
from typing import Any

from collectors.event import Event, iso_utc
from collectors.parsers.base import LineParser, ParseContext, ParseError, register_line

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip

# --- shared helpers -----------------------------------------------------------------


@lru_cache(maxsize=65536)
def is_ip(value: str) -> bool:
    """True for an IPv4/IPv6 literal (cached: client addresses repeat a lot)."""
    try:
        ip_address(value)
    except ValueError:
        return False
    return True


def _outcome(status: int) -> str:
    return "success" if status < 400 else "failure"


def _url_fields(target: str) -> dict[str, Any]:
    """ECS url.* for a request target (path, query, extension)."""
    url: dict[str, Any] = {"original": target}
    path, sep, query = target.partition("?")
    if path.startswith("/") or "://" in path:
        if "://" in path:
            scheme, _, rest = path.partition("://")
            host, slash, tail = rest.partition("/")
            url["scheme"] = scheme.lower()
            if host:
                url["domain"] = host.rsplit("@", 1)[-1].split(":", 1)[0]
            path = slash + tail
        url["path"] = path
        last = path.rpartition("/")[2]
        dot = last.rfind(".")
        if dot > 0 and dot < len(last) - 1:
            url["extension"] = last[dot + 1 :]
    if sep and query:
        url["query"] = query
    return url


_ESCAPED = re.compile(r'\\(["\\])')


def _unescape(value: str) -> str:
    """Undo Apache's ``\\"`` and ``\\\\`` escapes (``\\xhh`` is left as written)."""
    if "\\" not in value:
        return value
    return _ESCAPED.sub(r"\1", value)


def _web_event(dataset: str, module: str, kind_type: str) -> dict[str, Any]:
    return {
        "kind": "event",
        "category": ["web"],
        "type": [kind_type],
        "dataset": dataset,
        "module": module,
    }


# --- NCSA common / combined --------------------------------------------------------


def _fast_iso(dt: datetime) -> str:
    """:func:`collectors.event.iso_utc` without ``strftime`` (same output, a few
    times faster; timestamps are on the hot path)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    elif dt.utcoffset():
        dt = dt.astimezone(UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


@lru_cache(maxsize=8192)
def _clf_timestamp(value: str, tz: tzinfo) -> str | None:
    """``10/Oct/2000:13:55:36 -0700`` → ISO UTC; ``None`` when unreadable."""
    m = _CLF_TIME.fullmatch(value.strip())
    if m is None:
        return None
    day, mon, year, hh, mi, ss, frac, sign, oh, om = m.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        return None
    zone: tzinfo = tz
    if sign:
        offset = timedelta(hours=int(oh), minutes=int(om))
        zone = timezone(-offset if sign == "-" else offset)
    micro = int((frac or "0")[:6].ljust(6, "0"))
    try:
        dt = datetime(int(year), month, int(day), int(hh), int(mi), int(ss), micro, tzinfo=zone)
    except ValueError:
        return None
    return _fast_iso(dt)


_CLF_TIME = re.compile(
    r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:\s*([+-])(\d{2}):?(\d{2}))?"
)

_TIME_THEN_REQUEST = re.compile(r'\[([^\]]+)\] "')
# The request ends at the first quote followed by a status and a byte count; the
# request itself may hold escaped or (old Apache) bare quotes.
_REQUEST_END = re.compile(r'(.*?)" (\d{3}|-) (\d+|-)(?=\s|"|$)')
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)(?:"|$)|(\S+))')
_HTTP_METHOD = re.compile(r"[A-Z][A-Z_-]{1,19}")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:]+):(\d{1,5})")


def _split_request(request: str) -> tuple[str | None, str | None, str | None]:
    """``(method, target, version)`` of an HTTP request line; odd lines keep what
    can be kept (``-`` and empty requests give nothing)."""
    parts = request.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/"):
        method, target, proto = parts
        if _HTTP_METHOD.fullmatch(method):
            return method, target, proto[5:]
    request = request.strip()
    if not request or request == "-":
        return None, None, None
    parts = request.split()
    version = None
    if len(parts) >= 2 and parts[-1].startswith("HTTP/"):
        version = parts[-1][5:]
        parts = parts[:-1]
    if len(parts) >= 2 and _HTTP_METHOD.fullmatch(parts[0]):
        # Spaces inside the target (scanners send them raw) stay in the target.
        return parts[0], " ".join(parts[1:]), version
    if len(parts) == 1 and _HTTP_METHOD.fullmatch(parts[0]) and version:
        return parts[0], None, version
    return None, " ".join(parts) if parts else None, version


def _access_event(
    client: str,
    user: str,
    ts: str | None,
    request: str,
    status: str,
    size: str,
    referrer: str | None,
    agent: str | None,
) -> Event:
    method, target, version = _split_request(request)
    http: dict[str, Any] = {}
    req: dict[str, Any] = {}
    if method:
        req["method"] = method
    if referrer and referrer != "-":
        req["referrer"] = referrer
    if req:
        http["request"] = req
    if version:
        http["version"] = version
    meta = _web_event("web.access", "web", "access")
    if status != "-":
        code = int(status)
        response: dict[str, Any] = {"status_code": code}
        meta["outcome"] = _outcome(code)
        if size != "-":
            response["body"] = {"bytes": int(size)}
        http["response"] = response
    event: Event = {"event": meta, "http": http}
    if ts is not None:
        event["@timestamp"] = ts
    if is_ip(client):
        event["source"] = {"ip": client}
        event["client"] = {"ip": client}
        event["related"] = {"ip": [client]}
    elif client != "-":
        event["source"] = {"domain": client}
        event["client"] = {"domain": client}
    if user != "-":
        event["user"] = {"name": user}
    if target:
        event["url"] = _url_fields(target)
    if agent and agent != "-":
        event["user_agent"] = {"original": agent}
    return event


# The common case: nothing after the user agent, no escapes (lines with a
# backslash skip it). ``[^"]`` rather than ``[^"\\]``: a single negated literal is
# several times faster in ``re`` than a character class.
_FAST = re.compile(r'(\S+) \S+ (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+|-)(?: "([^"]*)" "([^"]*)")?( .*)?')


def _fast_event(m: re.Match[str], tz: tzinfo) -> Event | None:
    """The event of a line matched by ``_FAST`` with a well-formed request line,
    built as one literal; ``None`` sends the line to the tolerant path."""
    client, user, ts, req, status, size, referrer, agent, rest = m.groups()
    if rest and agent is None:
        return None  # a common-format line followed by something odd
    parts = req.split(" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    if not target.startswith("/") or not version.startswith("HTTP/") or not method.isupper():
        return None
    iso = _clf_timestamp(ts, tz)
    if iso is None or not is_ip(client):
        return None
    code = int(status)
    path, _, query = target.partition("?")
    url: dict[str, Any] = {"original": target, "path": path}
    if query:
        url["query"] = query
    dot = path.rfind(".")
    if dot > path.rfind("/") + 1 and dot < len(path) - 1:
        url["extension"] = path[dot + 1 :]
    request: dict[str, Any] = {"method": method}
    response: dict[str, Any] = {"status_code": code}
    if size != "-":
        response["body"] = {"bytes": int(size)}
    event: Event = {
        "@timestamp": iso,
        "event": {
            "kind": "event",
            "category": ["web"],
            "type": ["access"],
            "outcome": "success" if code < 400 else "failure",
            "dataset": "web.access",
            "module": "web",
        },
        "source": {"ip": client},
        "client": {"ip": client},
        "related": {"ip": [client]},
        "http": {"request": request, "response": response, "version": version[5:]},
        "url": url,
    }
    if user != "-":
        event["user"] = {"name": user}
    if referrer and referrer != "-":
        request["referrer"] = referrer
    if agent and agent != "-":
        event["user_agent"] = {"original": agent}
    if rest:
        # Extra fields of extended formats (request time, upstream time, X-Forwarded-For …).
        event["web"] = {"access": {"extra": _tokens(rest)}}
    return event


def _tokens(rest: str) -> list[str]:
    """Quoted strings and bare words after the byte count (an unterminated quote
    runs to the end of the line: truncated lines keep their user agent)."""
    out: list[str] = []
    for m in _TOKEN.finditer(rest):
        quoted, bare = m.groups()
        if quoted is not None:
            out.append(_unescape(quoted))
        elif bare is not None:
            out.append(bare)
    return out


def _addresses(head: str) -> tuple[str, str, str, str | None, list[str]] | None:
    """Read ``[vhost[:port]] client [more clients] ident user`` before the time.

    Returns ``(client, ident, user, vhost, other_clients)``, or ``None`` when the
    words are not addresses (a syslog header in front, say)."""
    words = head.replace(", ", ",").split()
    if len(words) < 3:
        return None
    ident, user = words[-2], words[-1]
    addrs = words[:-2]
    vhost = None
    if (
        len(addrs) >= 2
        and not is_ip(addrs[0].split(",")[0])
        and (_HOST_PORT.fullmatch(addrs[0]) or _HOSTNAME.fullmatch(addrs[0]))
    ):
        vhost = addrs.pop(0)
    clients: list[str] = []
    for word in addrs:
        for part in word.split(","):
            if part and part != "-":
                clients.append(part)
    if not clients or len(clients) > 8:
        return None
    for client in clients:
        if not is_ip(client) and not _HOSTNAME.fullmatch(client):
            return None
    return clients[0], ident, user, vhost, clients[1:]


# A stream declared as a named server's log says which server wrote it.
_DECLARED_DATASETS = {"nginx": "nginx.access", "apache": "apache.access", "tomcat": "tomcat.access"}


class AccessLogParser(LineParser):
    """NCSA common/combined access logs (nginx, Apache, Tomcat AccessLogValve)."""

    name = "access"
    aliases = ("nginx", "apache", "combined", "common", "tomcat", "web_access")
    description = "NCSA common/combined web access log (nginx, Apache httpd, Tomcat)"
    priority = 40
    embeddable = True

    def sniff(self, line: str) -> bool:
        return '] "' in line

    def parse(self, line: str, ctx: ParseContext) -> Event | None:
        event = self._content(line, ctx)
        if event is None:
            event = _with_syslog_header(line, ctx, self._content)
        if event is not None and ctx.declared in _DECLARED_DATASETS:
            event["event"]["dataset"] = _DECLARED_DATASETS[ctx.declared]
        return event

    def _content(self, line: str, ctx: ParseContext) -> Event | None:
        if line[-1:] in ("\r", "\n"):
            line = line.rstrip("\r\n")
        if line[:1] == '"' and line[1:2].isalnum():
            # ocatak-style lines: the whole record wrapped in one more pair of quotes.
            line = line[1:-1] if line[-1:] == '"' else line[1:]
        m = _FAST.fullmatch(line) if "\\" not in line else None
        if m is not None:
            event = _fast_event(m, ctx.tz)
            if event is not None:
                return event
        return self._tolerant(line, ctx)

    def _tolerant(self, text: str, ctx: ParseContext) -> Event | None:
        found = _TIME_THEN_REQUEST.search(text)
        if found is None:
            return None
        ts = _clf_timestamp(found.group(1), ctx.tz)
        if ts is None:
            return None
        who = _addresses(text[: found.start()])
        if who is None:
            return None
        client, _ident, user, vhost, others = who
        tail = text[found.end() :]
        end = _REQUEST_END.match(tail)
        if end is None:
            return None
        request, status, size = end.groups()
        extra = _tokens(tail[end.end() :])
        referrer = extra[0] if extra else None
        agent = extra[1] if len(extra) > 1 else None
        event = _access_event(client, user, ts, _unescape(request), status, size, referrer, agent)
        _add_extras(event, vhost, others, extra[2:])
        return event


def _add_extras(event: Event, vhost: str | None, others: list[str], trailing: list[str]) -> None:
    if vhost:
        hp = _HOST_PORT.fullmatch(vhost)
        host, port = (hp.group(1), hp.group(2)) if hp else (vhost, None)
        dest: dict[str, Any] = {"ip" if is_ip(host) else "domain": host}
        if port:
            dest["port"] = int(port)
        event["destination"] = dest
        event.setdefault("url", {}).setdefault("domain", host)
    ips = [ip for ip in others if is_ip(ip)]
    if ips:
        # The first address is the one the server saw; the rest is the proxy chain
        # (X-Forwarded-For), kept so that neither side of a proxy is lost.
        event.setdefault("network", {})["forwarded_ip"] = ips[0]
        related = event.setdefault("related", {}).setdefault("ip", [])
        related.extend(ip for ip in ips if ip not in related)
    if trailing:
        event["web"] = {"access": {"extra": trailing}}


def _with_syslog_header(
    line: str, ctx: ParseContext, parse: Callable[[str, ParseContext], Event | None]
) -> Event | None:
    """Read ``<header> nginx: <access line>`` (reached when the format was declared;
    under auto-detection the syslog parser hands the message over itself)."""
    from collectors.parsers.syslog import split_header

    split = split_header(line, ctx)
    if split is None:
        return None
    header, message = split
    if not message or message == line:
        return None
    event = parse(message, ctx)
    if event is None:
        return None
    return _merge_over(header, event)


def _merge_over(base: Event, top: Event) -> Event:
    """``top`` merged over ``base`` (nested objects merged, ``top`` wins)."""
    for key, value in top.items():
        below = base.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            base[key] = _merge_over(below, value)
        else:
            base[key] = value
    return base


# --- IIS W3C extended --------------------------------------------------------------

_W3C_STATE = "web_access.iis_fields"
_W3C_DIRECTIVE = re.compile(r"#(Software|Version|Date|Fields|Remark|Start-Date|End-Date):\s*(.*)")
_W3C_ROW = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)? ")

_IIS_DEFAULT = [
    "date",
    "time",
    "s-ip",
    "cs-method",
    "cs-uri-stem",
    "cs-uri-query",
    "s-port",
    "cs-username",
    "c-ip",
    "cs(User-Agent)",
    "cs(Referer)",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "time-taken",
]
_IIS7_DEFAULT = [f for f in _IIS_DEFAULT if f != "cs(Referer)"]
_IIS6_DEFAULT = [
    "date",
    "time",
    "s-sitename",
    "s-ip",
    "cs-method",
    "cs-uri-stem",
    "cs-uri-query",
    "s-port",
    "cs-username",
    "c-ip",
    "cs(User-Agent)",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
]
_IIS6_FULL = [
    "date",
    "time",
    "s-sitename",
    "s-computername",
    "s-ip",
    "cs-method",
    "cs-uri-stem",
    "cs-uri-query",
    "s-port",
    "cs-username",
    "c-ip",
    "cs-version",
    "cs(User-Agent)",
    "cs(Cookie)",
    "cs(Referer)",
    "cs-host",
    "sc-status",
    "sc-substatus",
    "sc-win32-status",
    "sc-bytes",
    "cs-bytes",
    "time-taken",
]
_IIS_BY_COUNT = {len(_IIS_DEFAULT): _IIS_DEFAULT, len(_IIS7_DEFAULT): _IIS7_DEFAULT}
_IIS6_BY_COUNT = {len(_IIS6_DEFAULT): _IIS6_DEFAULT, len(_IIS6_FULL): _IIS6_FULL}

# Whole messages, headers included, so not the ECS ``body`` counts.
_W3C_BYTES = {"sc-bytes": "response", "cs-bytes": "request"}


@lru_cache(maxsize=4096)
def _w3c_timestamp(date: str, time: str) -> str | None:
    try:
        return iso_utc(datetime.fromisoformat(f"{date}T{time}").replace(tzinfo=UTC))
    except ValueError:
        return None


def _w3c_layout(values: list[str], declared: list[str] | None) -> list[str] | None:
    if declared is not None and len(declared) == len(values):
        return declared
    if len(values) > 2 and values[2].startswith("W3SVC"):
        return _IIS6_BY_COUNT.get(len(values))
    return _IIS_BY_COUNT.get(len(values))


def _plausible_row(row: dict[str, str]) -> bool:
    """A guessed (header-less) layout must put a method, a status and addresses
    where IIS writes them; otherwise the line is something else that starts with
    a date."""
    method = row.get("cs-method", "")
    status = row.get("sc-status", "")
    return bool(_HTTP_METHOD.fullmatch(method)) and status.isdigit() and len(status) == 3 and is_ip(row.get("c-ip", ""))


def _dash(value: str | None) -> str | None:
    return None if value is None or value == "-" else value


def _iis_addresses(row: dict[str, str], event: Event) -> None:
    related: list[str] = []
    client = _dash(row.get("c-ip"))
    if client:
        if is_ip(client):
            event["source"] = {"ip": client}
            related.append(client)
        else:
            event["source"] = {"address": client}
    dest: dict[str, Any] = {}
    server = _dash(row.get("s-ip"))
    if server and is_ip(server):
        dest["ip"] = server
        related.append(server)
    port = _dash(row.get("s-port"))
    if port and port.isdigit():
        dest["port"] = int(port)
    if dest:
        event["destination"] = dest
    if related:
        event["related"] = {"ip": related}


def _iis_http(row: dict[str, str]) -> dict[str, Any]:
    http: dict[str, Any] = {}
    request: dict[str, Any] = {}
    method = _dash(row.get("cs-method"))
    if method:
        request["method"] = method
    referrer = _dash(row.get("cs(Referer)"))
    if referrer:
        request["referrer"] = referrer
    if request:
        http["request"] = request
    version = _dash(row.get("cs-version"))
    if version:
        http["version"] = version.removeprefix("HTTP/")
    status = row.get("sc-status", "")
    if status.isdigit():
        http["response"] = {"status_code": int(status)}
    for column, side in _W3C_BYTES.items():
        value = row.get(column, "")
        if value.isdigit():
            http.setdefault(side, {})["bytes"] = int(value)
    return http


def _iis_event(row: dict[str, str]) -> Event:
    meta = _web_event("iis.access", "iis", "access")
    event: Event = {"event": meta, "iis": dict(row)}
    ts = _w3c_timestamp(row.get("date", ""), row.get("time", ""))
    if ts:
        event["@timestamp"] = ts
    _iis_addresses(row, event)
    path = _dash(row.get("cs-uri-stem"))
    if path:
        query = _dash(row.get("cs-uri-query"))
        url = _url_fields(f"{path}?{query}" if query else path)
        host = _dash(row.get("cs-host"))
        if host:
            url["domain"] = host.split(":", 1)[0]
        event["url"] = url
    http = _iis_http(row)
    if http:
        event["http"] = http
        status = http.get("response", {}).get("status_code")
        if status is not None:
            meta["outcome"] = _outcome(status)
    agent = _dash(row.get("cs(User-Agent)"))
    if agent:
        # W3C writes spaces in the user agent as "+".
        event["user_agent"] = {"original": agent.replace("+", " ")}
    user = _dash(row.get("cs-username"))
    if user:
        event["user"] = {"name": user}
    taken = row.get("time-taken", "")
    if taken.isdigit():
        meta["duration"] = int(taken) * 1_000_000  # milliseconds → ns
    return event


class IisW3cParser(LineParser):
    """IIS W3C extended log; ``#Fields`` headers set the columns of the stream."""

    name = "iis"
    aliases = ("w3c", "iis_w3c")
    description = "Microsoft IIS W3C extended log format"
    priority = 45

    def sniff(self, line: str) -> bool:
        return line.startswith("#") or _W3C_ROW.match(line) is not None

    def parse(self, line: str, ctx: ParseContext) -> Event | None:
        text = line.rstrip("\r\n")
        if text.startswith("#"):
            return self._directive(text, ctx)
        if _W3C_ROW.match(text) is None:
            return None
        values = text.split()
        declared: list[str] | None = ctx.state.get(_W3C_STATE)
        layout = _w3c_layout(values, declared)
        if layout is None:
            if declared is not None:
                raise ParseError(f"W3C row has {len(values)} columns, #Fields declares {len(declared)}")
            return None
        row = dict(zip(layout, values, strict=True))
        if layout is not declared and not _plausible_row(row):
            return None
        return _iis_event(row)

    def _directive(self, text: str, ctx: ParseContext) -> Event | None:
        m = _W3C_DIRECTIVE.fullmatch(text)
        if m is None:
            return None
        name, value = m.group(1), m.group(2).strip()
        if name == "Fields":
            ctx.state[_W3C_STATE] = value.split()
        event: Event = {
            "event": {"kind": "event", "action": "w3c_directive", "dataset": "iis.access", "module": "iis"},
            "message": text,
            "iis": {"directive": {"name": name, "value": value}},
        }
        if name == "Date":
            date, _, time = value.partition(" ")
            ts = _w3c_timestamp(date, time or "00:00:00")
            if ts:
                event["@timestamp"] = ts
        return event


# --- error logs ---------------------------------------------------------------------

_LEVELS = r"emerg|alert|crit|error|warn|warning|notice|info|debug|trace[1-8]"
_APACHE_ERROR = re.compile(
    r"(?:\[(?P<ts>[A-Z][a-z]{2} [A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4})\] )?"
    rf"\[(?:(?P<module>[\w.-]*):)?(?P<level>{_LEVELS})\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\])?"
    r"(?: \[client (?P<client>[^\]]+)\])?"
    r" ?(?P<msg>.*)",
    re.DOTALL,
)
_APACHE_TIME = re.compile(r"[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))? (\d{4})")
_APACHE_CODE = re.compile(r"(AH\d{5}): ")
_REFERER = re.compile(r", referer: (\S+)$")
_MODSEC_ITEM = re.compile(
    r'\[(id|msg|uri|hostname|severity|ver|unique_id|tag|data|file|line|rev) "((?:[^"\\]|\\.)*)"\]'
)
_MODSEC_DENIED = re.compile(r"Access denied with code (\d{3})")
_NGINX_ERROR = re.compile(
    r"(?P<ts>\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(?P<level>\w+)\]"
    r"(?: (?P<pid>\d+)[#:](?P<tid>\d+):?)?(?: \*(?P<conn>\d+))? ?(?P<msg>.*)",
    re.DOTALL,
)
_NGINX_CONTEXT = re.compile(r', (client|server|request|upstream|host|referrer|subrequest): ("(?:[^"\\]|\\.)*"|[^,]*)')


@lru_cache(maxsize=1024)
def _apache_timestamp(value: str, tz: tzinfo) -> str | None:
    m = _APACHE_TIME.fullmatch(value)
    if m is None:
        return None
    mon, day, hh, mi, ss, frac, year = m.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        return None
    micro = int((frac or "0")[:6].ljust(6, "0"))
    try:
        dt = datetime(int(year), month, int(day), int(hh), int(mi), int(ss), micro, tzinfo=tz)
    except ValueError:
        return None
    return iso_utc(dt)


@lru_cache(maxsize=1024)
def _nginx_timestamp(value: str, tz: tzinfo) -> str | None:
    try:
        dt = datetime.strptime(value, "%Y/%m/%d %H:%M:%S")
    except ValueError:
        return None
    return iso_utc(dt.replace(tzinfo=tz))


def _client_address(value: str) -> tuple[str | None, int | None]:
    """``1.2.3.4:5678``, ``1.2.3.4``, ``::1`` or ``[::1]:5678`` → (ip, port)."""
    value = value.strip()
    if is_ip(value):
        return value, None
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if is_ip(host) and port.isdigit():
        return host, int(port)
    return None, None


def _set_client(event: Event, client: str | None) -> None:
    if not client:
        return
    ip, port = _client_address(client)
    if ip is None:
        event["source"] = {"address": client}
        return
    source: dict[str, Any] = {"ip": ip}
    if port is not None:
        source["port"] = port
    event["source"] = source
    event["client"] = dict(source)
    event["related"] = {"ip": [ip]}


def _modsecurity(event: Event, message: str) -> None:
    items: dict[str, Any] = {}
    for key, value in _MODSEC_ITEM.findall(message):
        if key == "tag":
            items.setdefault("tag", []).append(value)
        else:
            items.setdefault(key, value)
    rule: dict[str, Any] = {}
    if "id" in items:
        rule["id"] = items["id"]
    if "msg" in items:
        rule["name"] = items["msg"]
    if "ver" in items:
        rule["ruleset"] = items["ver"]
    if rule:
        event["rule"] = rule
    if "uri" in items:
        url = _url_fields(items["uri"])
        if "hostname" in items:
            url["domain"] = items["hostname"]
        event["url"] = url
    if "unique_id" in items:
        event.setdefault("http", {}).setdefault("request", {})["id"] = items["unique_id"]
    denied = _MODSEC_DENIED.search(message)
    if denied:
        event.setdefault("http", {})["response"] = {"status_code": int(denied.group(1))}
        event["event"]["outcome"] = "failure"
        event["event"]["type"].append("denied")
    event["modsecurity"] = items


class WebErrorLogParser(LineParser):
    """Apache httpd (2.2/2.4, incl. ModSecurity messages) and nginx error logs."""

    name = "web_error"
    aliases = ("apache_error", "nginx_error")
    description = "Apache httpd and nginx error logs"
    priority = 42
    embeddable = True

    def sniff(self, line: str) -> bool:
        first = line[:1]
        return first == "[" or (first.isdigit() and line[4:5] == "/")

    def parse(self, line: str, ctx: ParseContext) -> Event | None:
        text = line.rstrip("\r\n")
        if text.startswith("["):
            return self._apache(text, ctx)
        return self._nginx(text, ctx)

    def _apache(self, text: str, ctx: ParseContext) -> Event | None:
        m = _APACHE_ERROR.fullmatch(text)
        if m is None:
            return None
        msg = m.group("msg")
        event: Event = {
            "event": _web_event("apache.error", "apache", "error"),
            "log": {"level": m.group("level")},
            "message": msg,
        }
        if m.group("ts"):
            ts = _apache_timestamp(m.group("ts"), ctx.tz)
            if ts:
                event["@timestamp"] = ts
        if m.group("module"):
            event["log"]["logger"] = m.group("module")
        if m.group("pid"):
            process: dict[str, Any] = {"pid": int(m.group("pid"))}
            if m.group("tid"):
                process["thread"] = {"id": int(m.group("tid"))}
            event["process"] = process
        _set_client(event, m.group("client"))
        code = _APACHE_CODE.match(msg)
        if code:
            event["error"] = {"code": code.group(1)}
        referer = _REFERER.search(msg)
        if referer:
            event["http"] = {"request": {"referrer": referer.group(1)}}
        if "ModSecurity" in msg:
            _modsecurity(event, msg)
        return event

    def _nginx(self, text: str, ctx: ParseContext) -> Event | None:
        m = _NGINX_ERROR.fullmatch(text)
        if m is None:
            return None
        msg = m.group("msg")
        event: Event = {
            "event": _web_event("nginx.error", "nginx", "error"),
            "log": {"level": m.group("level").lower()},
            "message": msg,
        }
        ts = _nginx_timestamp(m.group("ts"), ctx.tz)
        if ts:
            event["@timestamp"] = ts
        if m.group("pid"):
            event["process"] = {"pid": int(m.group("pid")), "thread": {"id": int(m.group("tid"))}}
        if m.group("conn"):
            event["nginx"] = {"error": {"connection_id": int(m.group("conn"))}}
        _nginx_context(event, msg)
        return event


def _nginx_context(event: Event, msg: str) -> None:
    """The ``, client: …, server: …, request: "…"`` tail nginx appends."""
    found = _NGINX_CONTEXT.findall(msg)
    if not found:
        return
    values = {k: v[1:-1] if v.startswith('"') else v for k, v in found}
    _set_client(event, values.get("client"))
    if "server" in values:
        event["server"] = {"domain": values["server"]}
    if "request" in values:
        method, target, version = _split_request(_unescape(values["request"]))
        http: dict[str, Any] = event.setdefault("http", {})
        if method:
            http["request"] = {"method": method}
        if version:
            http["version"] = version
        if target:
            event["url"] = _url_fields(target)
    if "host" in values:
        event.setdefault("url", {})["domain"] = values["host"]
    if "referrer" in values:
        event.setdefault("http", {}).setdefault("request", {})["referrer"] = values["referrer"]
    if "upstream" in values:
        event.setdefault("nginx", {}).setdefault("error", {})["upstream"] = values["upstream"]


register_line(AccessLogParser)
register_line(IisW3cParser)
register_line(WebErrorLogParser)

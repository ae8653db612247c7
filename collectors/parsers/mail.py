"""Program parsers for the mail system (Postfix, Dovecot, and Zimbra's bundled
amavis, saslauthd, zimbramon and mailbox/audit logs) and for BIND ``named``, the
mail servers' resolver.

Each parser adds ECS fields to the event the syslog parser built from the header
and returns ``True`` when it recognised the message. Vendor details stay under the
product's namespace (``postfix.*``, ``dovecot.*``, ``amavis.*``, ``saslauthd.*``,
``zimbra.*``, ``named.*``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from collectors.event import Event
from collectors.parsers.base import ParseContext, register_program
from collectors.parsers.linux_auth import add_related, clean_ip, event_base, is_ip, set_source

__all__ = [
    "parse_amavis",
    "parse_dovecot",
    "parse_named",
    "parse_postfix",
    "parse_saslauthd",
    "parse_zimbra",
]


def _classify(ev: dict[str, Any], category: list[str], type_: list[str], action: str,
              outcome: str | None = None) -> None:
    ev["category"] = category
    ev["type"] = type_
    ev["action"] = action
    if outcome:
        ev["outcome"] = outcome


def _user(event: Event, name: str | None) -> None:
    if name:
        event.setdefault("user", {})["name"] = name
        add_related(event, users=(name,))


def _email(event: Event, key: str, value: str | list[str] | None) -> None:
    if value:
        event.setdefault("email", {})[key] = value


def _address(event: Event, key: str, address: str | None) -> None:
    """``email.from.address`` / ``email.to.address`` (the null sender stays out)."""
    if address:
        event.setdefault("email", {}).setdefault(key, {})["address"] = address


# --- Postfix ------------------------------------------------------------------------

# Short queue ids are hex; long ones (enable_long_queue_ids) use a vowel-free
# alphabet with a "z" separator, so words like "statistics" never match.
_RE_QUEUE_ID = re.compile(
    r"(NOQUEUE|[0-9A-F]{6,12}|[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]{10,}z[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]+): "
)
_CLIENT = r"([^\s\[]*)\[([^\]]*)\](?::(\d+))?"
_RE_REJECT = re.compile(
    r"(reject|reject_warning|milter-reject|discard|hold|filter|redirect|warn): (\S+) from " + _CLIENT
    + r": (.*)$"
)
_RE_SMTP_REPLY = re.compile(r"(\d{3})(?: (\d\.\d{1,3}\.\d{1,3}))? (.*)$")
_RE_ANGLE_KV = re.compile(r"(\w+)=(?:<([^>]*)>|([^\s,;]+))")
_RE_SASL_FAILED = re.compile(
    r"warning: " + _CLIENT + r": SASL (\S+) authentication failed:? ?(.*?)(?:, sasl_username=(\S+))?$"
)
_RE_CLIENT = re.compile(r"client=" + _CLIENT + r"(?:, (.*))?$")
_RE_QMGR_FROM = re.compile(r"from=<([^>]*)>, (?:size=(\d+), nrcpt=(\d+)|status=(\w+))(?:,? \(?(.*?)\)?)?$")
_RE_DELIVERY = re.compile(r"to=<([^>]*)>, (?:orig_to=<([^>]*)>, )?(.*?)status=(\w+)(?: \((.*)\))?$")
_RE_RELAY = re.compile(r"([^\s\[,]*)(?:\[([^\]]*)\](?::(\d+))?)?")
_RE_CONNECT = re.compile(r"(connect|disconnect) from " + _CLIENT + r"(?: (.*))?$")
_RE_AFTER = re.compile(r"(lost connection|timeout|too many errors) after (\S+)(?: \([^)]*\))? from " + _CLIENT)
_RE_POSTSCREEN = re.compile(
    r"([A-Z][A-Z -]*[A-Z])(?: rank (\d+)| \d+)?(?: after [\d.]+)?(?: for| from)? \[([^\]]+)\]:(\d+)"
)
_RE_UNRESOLVED = re.compile(
    r"warning: hostname (\S+) does not resolve to address ([0-9A-Fa-f.:]*[0-9A-Fa-f])"
)
_RE_ANY_CLIENT = re.compile(_CLIENT)
_RE_MESSAGE_ID = re.compile(r"message-id=<?([^>\s]*)>?")
_POSTSCREEN_DENIED = frozenset({"BLACKLISTED", "DENYLISTED", "DNSBL", "PREGREET", "BARE NEWLINE",
                                "COMMAND PIPELINING", "NON-SMTP COMMAND", "HANGUP"})
_LOCAL_TRANSPORTS = frozenset({"local", "virtual", "lmtp", "pipe", "maildrop", "dovecot"})


def _smtp_kv(text: str) -> dict[str, str]:
    return {k: b or a for k, a, b in _RE_ANGLE_KV.findall(text)}


def _postfix_reject(m: re.Match[str], event: Event, ev: dict[str, Any], pf: dict[str, Any]) -> None:
    kind, stage, host, ip, port, tail = m.groups()
    cut = tail.rfind("; from=")
    reply, fields = (tail[:cut], _smtp_kv(tail[cut + 2:])) if cut != -1 else (tail, {})
    r = _RE_SMTP_REPLY.match(reply)
    if r is not None:
        pf["response_code"] = r.group(1)
        if r.group(2):
            pf["dsn"] = r.group(2)
        reply = r.group(3)
    ev["reason"] = reply
    pf["action"] = kind
    pf["stage"] = stage
    denied = kind in ("reject", "milter-reject", "discard")
    _classify(ev, ["email"], ["denied" if denied else "info"], kind.replace("-", "_"),
              "failure" if denied else None)
    _client(event, host, ip, port)
    _address(event, "from", fields.get("from"))
    _address(event, "to", fields.get("to"))
    for key in ("proto", "helo"):
        if fields.get(key):
            pf[key] = fields[key]


def _client(event: Event, host: str | None, ip: str | None, port: str | None = None) -> None:
    if ip and ip != "unknown":
        set_source(event, ip, port)
        if host and host != "unknown":
            event["source"]["domain"] = host
            add_related(event, hosts=(host,))
    elif host and host != "unknown":
        set_source(event, host, port)


def _postfix_delivery(m: re.Match[str], program: str, event: Event, ev: dict[str, Any],
                      pf: dict[str, Any]) -> None:
    to, orig_to, middle, status, response = m.groups()
    _address(event, "to", to)
    if orig_to:
        pf["orig_to"] = orig_to
    fields = _smtp_kv(middle)
    relay = fields.get("relay", "")
    pf["relay"] = relay
    pf["status"] = status
    for key in ("delay", "delays", "dsn", "conn_use"):
        if key in fields:
            pf[key] = fields[key]
    if response:
        pf["response"] = response
    r = _RE_RELAY.match(relay)
    relay_host, relay_ip, relay_port = r.groups() if r is not None else (relay, None, None)
    if relay_ip:
        set_source(event, relay_ip, relay_port, prefix="destination")
        if relay_host and relay_host != relay_ip:
            event["destination"]["domain"] = relay_host
    transport = program.rsplit("/", 1)[-1]
    local = transport in _LOCAL_TRANSPORTS or relay_host in _LOCAL_TRANSPORTS or relay_host == "none"
    if status == "sent":
        _classify(ev, ["email"], ["info"], "delivered" if local else "relay", "success")
    elif status == "bounced":
        _classify(ev, ["email"], ["info"], "bounced", "failure")
    else:
        _classify(ev, ["email"], ["info"], status)


def _postfix_body(program: str, body: str, event: Event, ev: dict[str, Any], pf: dict[str, Any]) -> None:
    m = _RE_REJECT.match(body)
    if m is not None:
        _postfix_reject(m, event, ev, pf)
        return
    m = _RE_SASL_FAILED.match(body)
    if m is not None:
        host, ip, port, method, reason, username = m.groups()
        _classify(ev, ["authentication"], ["start"], "sasl_auth_failed", "failure")
        _client(event, host, ip, port)
        pf["sasl_method"] = method
        if reason:
            ev["reason"] = reason
        _user(event, username)
        return
    m = _RE_CLIENT.match(body)
    if m is not None:
        host, ip, port, rest = m.groups()
        _client(event, host, ip, port)
        fields = dict(part.split("=", 1) for part in (rest or "").split(", ") if "=" in part)
        pf.update(fields)
        if fields.get("sasl_username"):
            _classify(ev, ["authentication", "email"], ["start", "info"], "sasl_login", "success")
            _user(event, fields["sasl_username"])
        else:
            _classify(ev, ["email"], ["info"], "client")
        return
    m = _RE_DELIVERY.match(body)
    if m is not None:
        _postfix_delivery(m, program, event, ev, pf)
        return
    m = _RE_QMGR_FROM.match(body)
    if m is not None:
        sender, size, nrcpt, status, detail = m.groups()
        _address(event, "from", sender)
        if size:
            pf["size"] = int(size)
            pf["nrcpt"] = int(nrcpt)
            _classify(ev, ["email"], ["info"], "queued")
        else:
            pf["status"] = status
            _classify(ev, ["email"], ["info"], status)
        if detail:
            pf["detail"] = detail
        return
    if body.startswith("message-id="):
        m = _RE_MESSAGE_ID.match(body)
        if m is not None and m.group(1):
            _email(event, "message_id", m.group(1))
        _classify(ev, ["email"], ["info"], "cleanup")
        return
    if body == "removed":
        _classify(ev, ["email"], ["info"], "removed")
        return
    m = _RE_CONNECT.match(body)
    if m is not None:
        what, host, ip, port, stats = m.groups()
        _classify(ev, ["network"], ["connection", "start" if what == "connect" else "end"], what)
        _client(event, host, ip, port)
        if stats:
            pf["commands"] = stats
            auth = _smtp_kv(stats).get("auth")
            if auth:
                pf["auth"] = auth
        return
    m = _RE_AFTER.match(body)
    if m is not None:
        what, after, host, ip, port = m.groups()
        _classify(ev, ["network"], ["connection", "end"], what.replace(" ", "_"))
        pf["after"] = after
        _client(event, host, ip, port)
        return
    if program.endswith("postscreen"):
        m = _RE_POSTSCREEN.match(body)
        if m is not None:
            what, rank, ip, port = m.groups()
            denied = what in _POSTSCREEN_DENIED
            _classify(ev, ["network"], ["denied" if denied else "info"],
                      what.lower().replace(" ", "_").replace("-", "_"))
            if rank:
                pf["dnsbl_rank"] = int(rank)
            set_source(event, ip, port)
            return
    _postfix_other(body, event, ev)


def _postfix_other(body: str, event: Event, ev: dict[str, Any]) -> None:
    ev["category"] = ["email"]
    ev["type"] = ["info"]
    level, sep, _rest = body.partition(": ")
    if sep and level in ("warning", "error", "fatal", "panic"):
        event.setdefault("log", {})["level"] = level
        ev["action"] = level
    unresolved = _RE_UNRESOLVED.match(body)
    if unresolved is not None:
        _client(event, unresolved.group(1), unresolved.group(2))
        return
    m = _RE_ANY_CLIENT.search(body)
    if m is not None and is_ip(clean_ip(m.group(2))):
        _client(event, *m.groups())


@register_program("postfix", "postfix-script", "postsuper", "postdrop", "postqueue")
def parse_postfix(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """Any ``postfix/*`` component: SASL failures, rejects, deliveries, queue."""
    ev = event_base(event, "postfix", "postfix.log")
    pf: dict[str, Any] = {"component": program.split("/", 1)[1] if "/" in program else program}
    event["postfix"] = pf
    body = message
    q = _RE_QUEUE_ID.match(message)
    if q is not None:
        body = message[q.end():]
        if q.group(1) != "NOQUEUE":
            pf["queue_id"] = q.group(1)
            _email(event, "local_id", q.group(1))
    _postfix_body(program, body, event, ev, pf)
    return True


# --- Dovecot ------------------------------------------------------------------------

_DOVECOT_LEVELS = ("Info: ", "Warning: ", "Error: ", "Fatal: ", "Panic: ", "Debug: ")
_RE_LOGIN = re.compile(r"([\w-]+)-login: (.*)$")
_RE_LOGIN_KV_START = re.compile(r": (?=(?:user|method|rip)=)")
_RE_DOVECOT_KV = re.compile(r"(\w+)=(?:<([^>]*)>|([^,\s]*))")
_RE_ATTEMPTS = re.compile(r"auth failed, (\d+) attempts?")
_RE_AUTH_DB = re.compile(
    r"auth(?:-worker)?(?:\([^)]*\))?: (?:(?:Info|Error|Warning|Debug): )?"
    r"([\w-]+)\(([^,()]*),([^,()]+)(?:,[^)]*)?\): (.*)$"
)
_RE_MAIL_PROCESS = re.compile(
    r"(imap|pop3|lmtp|submission|managesieve|doveadm|indexer-worker)\(([^)]+)\)(?:<[^>]*>)*: "
    r"(?:(?:Info|Error|Warning|Debug|Fatal): )?(.*)$"
)


def _dovecot_kv(text: str) -> dict[str, str]:
    return {k: b or a for k, a, b in _RE_DOVECOT_KV.findall(text)}


def _dovecot_login(m: re.Match[str], event: Event, ev: dict[str, Any]) -> None:
    service, rest = m.groups()
    cut = _RE_LOGIN_KV_START.search(rest)
    what, fields = (rest[:cut.start()], _dovecot_kv(rest[cut.end():])) if cut else (rest, {})
    event.setdefault("network", {})["protocol"] = service
    user = fields.get("user")
    _user(event, user)
    if fields.get("rip"):
        set_source(event, fields["rip"])
    if fields.get("lip"):
        set_source(event, fields["lip"], prefix="destination")
    dovecot: dict[str, Any] = event.setdefault("dovecot", {})
    dovecot["service"] = service
    for key in ("method", "session", "mpid"):
        if fields.get(key):
            dovecot[key] = fields[key]
    attempts = _RE_ATTEMPTS.search(what)
    if attempts is not None:
        dovecot["attempts"] = int(attempts.group(1))
        _classify(ev, ["authentication"], ["start"], "login_failed", "failure")
    elif what.startswith("Login") and not what.startswith("Login aborted"):
        _classify(ev, ["authentication"], ["start"], "login", "success")
    elif what.startswith(("Aborted login", "Login aborted")):
        # A named user who gave up without success is a failed login.
        _classify(ev, ["authentication"], ["start"], "login_aborted", "failure" if user else None)
    elif what.startswith("Disconnected"):
        _classify(ev, ["network"], ["connection", "end"], "disconnected")
    else:
        _classify(ev, ["authentication"], ["info"], "login_process")
    if ev.get("outcome") != "success":
        ev["reason"] = what


def _dovecot_auth_db(m: re.Match[str], event: Event, ev: dict[str, Any]) -> None:
    driver, user, ip, text = m.groups()
    _user(event, user)
    set_source(event, ip)
    event.setdefault("dovecot", {})["passdb"] = driver
    lower = text.lower()
    if "mismatch" in lower or "invalid credentials" in lower or "invalid password" in lower:
        _classify(ev, ["authentication"], ["start"], "password_mismatch", "failure")
    elif "unknown user" in lower or "not known" in lower:
        _classify(ev, ["authentication"], ["start"], "unknown_user", "failure")
    elif "fail" in lower or "denied" in lower or "disabled" in lower or "expired" in lower:
        _classify(ev, ["authentication"], ["start"], "authentication_failure", "failure")
    else:
        _classify(ev, ["authentication"], ["info"], "auth_lookup")
    ev["reason"] = text


@register_program("dovecot", "imap-login", "pop3-login")
def parse_dovecot(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """Dovecot: logins (success, failure with attempts), passdb lookups, sessions."""
    ev = event_base(event, "dovecot", "dovecot.log")
    if program != "dovecot" and not message.startswith(program):
        message = f"{program}: {message}"
    for level in _DOVECOT_LEVELS:
        if message.startswith(level):
            event.setdefault("log", {})["level"] = level[:-2].lower()
            message = message[len(level):]
            break
    m = _RE_LOGIN.match(message)
    if m is not None:
        _dovecot_login(m, event, ev)
        return True
    m = _RE_AUTH_DB.match(message)
    if m is not None:
        _dovecot_auth_db(m, event, ev)
        return True
    m = _RE_MAIL_PROCESS.match(message)
    if m is not None:
        service, user, text = m.groups()
        event.setdefault("network", {})["protocol"] = service
        _user(event, user.split(",", 1)[0])
        if text.startswith(("Disconnected", "Connection closed")):
            _classify(ev, ["session"], ["end"], "disconnected")
        else:
            _classify(ev, ["session"], ["info"], service)
        return True
    ev["category"] = ["email"]
    ev["type"] = ["info"]
    return True


# --- Zimbra: amavis, saslauthd, zimbramon, mailbox/audit --------------------------------

_RE_AMAVIS = re.compile(
    r"\(([\w-]+)\) (Passed|Blocked|Not-Delivered|Discarded|Bounced|Rejected) ([A-Z][\w-]*)"
    r"(?: \(([^)]*)\))?(?: \{([^}]*)\})?,(.*)$"
)
_RE_AMAVIS_CLIENT = re.compile(r"(?:\s*(LOCAL|ORIGINATING|MYNETS))?\s*\[([0-9A-Fa-f.:]+)\](?::(\d+))?")
_RE_AMAVIS_ENVELOPE = re.compile(r"<([^>]*)> -> ((?:<[^>]*>,?)+)")
_RE_AMAVIS_FIELD = re.compile(r"(Queue-ID|Message-ID|mail_id|Hits|size|queued_as|quarantine): ([^,]+)")
_RE_BRACKET_KV = re.compile(r"\[(\w+)=([^\]]*)\]")
_RE_SASL_ZIMBRA = re.compile(r"auth_zimbra: (\S+) auth (failed|OK)(?:: (.*))?$")
_RE_ZIMBRAMON = re.compile(r"\d+:(\w+): (.*)$")
_RE_ZIMBRA_STATUS = re.compile(r"Service status change: (\S+) (\S+) changed from (\S+) to (\S+)")
_RE_ZIMBRA_LINE = re.compile(
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) (\w+) +\[([^\]]*)\] \[([^\]]*)\] (\S+) - (.*)$"
)
_RE_ZIMBRA_CTX = re.compile(r"(\w+)=(.*?);(?=\w+=|$)")
_RE_ZIMBRA_FIELDS = re.compile(r"(\w+)=(.*?);(?:\s|$)")
_RE_ZIMBRA_AUTH_FAILED = re.compile(r"authentication failed for \[([^\]]+)\]")


@register_program("amavis", "amavisd", "amavisd-new")
def parse_amavis(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """amavis verdicts: ``(1234-01) Passed CLEAN {RelayedInbound}, [ip]:port … <a> -> <b>, …``"""
    m = _RE_AMAVIS.match(message)
    if m is None:
        return False
    ev = event_base(event, "amavis", "amavis.log")
    log_id, verdict_action, verdict, detail, flags, rest = m.groups()
    amavis: dict[str, Any] = {"log_id": log_id, "action": verdict_action, "verdict": verdict}
    event["amavis"] = amavis
    if detail:
        amavis["detail"] = detail
    if flags:
        amavis["flags"] = flags.split(",")
    client = _RE_AMAVIS_CLIENT.match(rest)
    if client is not None:
        set_source(event, client.group(2), client.group(3))
        if client.group(1):
            amavis["origin"] = client.group(1)
    env = _RE_AMAVIS_ENVELOPE.search(rest)
    if env is not None:
        _address(event, "from", env.group(1))
        recipients = [r.strip("<>") for r in env.group(2).split(",") if r.strip("<>")]
        if recipients:
            event.setdefault("email", {})["to"] = {"address": recipients}
    for key, value in _RE_AMAVIS_FIELD.findall(rest):
        value = value.strip()
        if key == "Queue-ID":
            _email(event, "local_id", value)
        elif key == "Message-ID":
            _email(event, "message_id", value.strip("<>"))
        elif key == "Hits":
            if value != "-":
                try:
                    amavis["hits"] = float(value)
                except ValueError:
                    amavis["hits_text"] = value
        elif key == "size" and value.isdigit():
            amavis["size"] = int(value)
        else:
            amavis[key.lower()] = value
    passed = verdict_action == "Passed"
    category = ["email", "malware"] if verdict in ("INFECTED", "VIRUS") else ["email"]
    _classify(ev, category, ["allowed" if passed else "denied"], verdict_action.lower(),
              "success" if passed else "failure")
    ev["reason"] = f"{verdict} ({detail})" if detail else verdict
    return True


@register_program("saslauthd")
def parse_saslauthd(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """``auth failure: [user=x] [service=smtp] [realm=y] [mech=pam] [reason=…]`` and
    Zimbra's ``auth_zimbra: user auth failed: …``."""
    ev = event_base(event, "saslauthd", "saslauthd.log")
    body = message.removeprefix("do_auth: ")
    if body.startswith(("auth failure:", "auth success:")):
        fields = dict(_RE_BRACKET_KV.findall(body))
        success = body.startswith("auth success")
        _classify(ev, ["authentication"], ["start"], "authentication",
                  "success" if success else "failure")
        _user(event, fields.get("user"))
        event["saslauthd"] = {k: v for k, v in fields.items() if k != "user" and v}
        if fields.get("reason"):
            ev["reason"] = fields["reason"]
        return True
    m = _RE_SASL_ZIMBRA.match(body)
    if m is not None:
        user, result, reason = m.groups()
        _classify(ev, ["authentication"], ["start"], "authentication",
                  "success" if result == "OK" else "failure")
        _user(event, user)
        if reason:
            ev["reason"] = reason
        return True
    ev["category"] = ["authentication"]
    ev["type"] = ["info"]
    return True


def _zimbra_mailbox_line(m: re.Match[str], event: Event, ev: dict[str, Any], ctx: ParseContext) -> None:
    date, millis, level, thread, context, logger, text = m.groups()
    stamp = _local_stamp(f"{date}.{millis}", ctx)
    if stamp:
        event["@timestamp"] = stamp
    event.setdefault("log", {})["level"] = level.lower()
    event["log"]["logger"] = logger
    fields = dict(_RE_ZIMBRA_CTX.findall(context))
    fields.update(_RE_ZIMBRA_FIELDS.findall(text))
    zimbra: dict[str, Any] = {"thread": thread}
    zimbra.update({k: v for k, v in fields.items() if v})
    event["zimbra"] = zimbra
    account = fields.get("account") or fields.get("name")
    failed = _RE_ZIMBRA_AUTH_FAILED.search(text)
    if failed is not None:
        account = account or failed.group(1)
    _user(event, account)
    if fields.get("ua"):
        event["user_agent"] = {"original": fields["ua"]}
    set_source(event, fields.get("oip") or fields.get("ip"), fields.get("port"))
    if fields.get("protocol"):
        event.setdefault("network", {})["protocol"] = fields["protocol"]
    cmd = fields.get("cmd", "")
    if "Auth" in cmd or failed is not None:
        failure = failed is not None or "error" in fields
        _classify(ev, ["authentication"], ["start"], cmd.lower() or "auth",
                  "failure" if failure else "success")
        if fields.get("error"):
            ev["reason"] = fields["error"]
    elif cmd:
        _classify(ev, ["web"], ["access"], cmd.lower())
    else:
        _classify(ev, ["email"], ["info"], logger)


def _local_stamp(text: str, ctx: ParseContext) -> str | None:
    try:
        return ctx.local_iso(datetime.fromisoformat(text))
    except ValueError:
        return None


@register_program("zimbra", "zimbra-mailbox", "zimbra-audit", "mailboxd", "zmmailboxd", "zmmailboxdmgr",
                  "zimbramon", "zmconfigd", "zmauditswatch")
def parse_zimbra(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """Zimbra mailbox.log/audit.log lines forwarded over syslog, and zimbramon."""
    ev = event_base(event, "zimbra", "zimbra.log")
    m = _RE_ZIMBRA_LINE.match(message)
    if m is not None:
        _zimbra_mailbox_line(m, event, ev, ctx)
        return True
    m = _RE_ZIMBRAMON.match(message)
    body = message
    if m is not None:
        event.setdefault("log", {})["level"] = m.group(1)
        body = m.group(2)
    s = _RE_ZIMBRA_STATUS.search(body)
    if s is not None:
        host, service, old, new = s.groups()
        event["zimbra"] = {"server": host, "service": service, "status": new, "previous_status": old}
        _classify(ev, ["process"], ["change"], "service_status_change")
        return True
    ev["category"] = ["email"]
    ev["type"] = ["info"]
    return True


# --- BIND named -------------------------------------------------------------------------

_RE_NAMED_CLIENT = re.compile(
    r"client (?:@0x[0-9a-fA-F]+ )?([0-9A-Fa-f.:]+)#(\d+)(?: \(([^)]*)\))?: (?:view ([^:]+): )?(.*)$"
)
_RE_NAMED_QUERY = re.compile(r"query: (\S+) (\S+) (\S+) (\S+)(?: \(([^)]+)\))?")
_RE_NAMED_DENIED = re.compile(
    r"(query(?: \(cache\))?|zone transfer|update|notify)(?: '([^']*)')? (denied|approved)"
)
_NAMED_REQUESTS = {"query": "query", "query (cache)": "query", "zone transfer": "zone_transfer",
                   "update": "update", "notify": "notify"}


@register_program("named", "bind")
def parse_named(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """BIND: query log lines and denied queries, transfers and updates."""
    ev = event_base(event, "named", "named.log")
    m = _RE_NAMED_CLIENT.match(message)
    if m is None:
        ev["category"] = ["network"]
        ev["type"] = ["info"]
        return True
    ip, port, name, view, text = m.groups()
    set_source(event, ip, port)
    if view:
        event["named"] = {"view": view}
    q = _RE_NAMED_QUERY.match(text)
    if q is not None:
        qname, qclass, qtype, flags, server = q.groups()
        event["dns"] = {"type": "query", "question": {"name": qname, "type": qtype, "class": qclass}}
        event.setdefault("named", {})["flags"] = flags
        if server:
            set_source(event, server, prefix="destination")
        _classify(ev, ["network"], ["protocol"], "dns_query")
        return True
    d = _RE_NAMED_DENIED.match(text)
    if d is not None:
        what, target, verdict = d.groups()
        denied = verdict == "denied"
        _classify(ev, ["network"], ["denied" if denied else "allowed"], f"{_NAMED_REQUESTS[what]}_{verdict}",
                  "failure" if denied else "success")
        question = target or name
        if question:
            qname = question.split("/", 1)[0]
            event["dns"] = {"question": {"name": qname}}
            if target and target.count("/") == 2:
                event["dns"]["question"]["type"] = target.split("/")[1]
        return True
    _classify(ev, ["network"], ["protocol"], "dns_client")
    ev["reason"] = text
    return True

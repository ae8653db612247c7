"""Program parsers for Linux authentication and account logs (``/var/log/auth.log``,
``/var/log/secure``): sshd, PAM, sudo, su, login and the shadow-utils tools that
create, change and delete users and groups.

Each parser adds ECS fields to the event the syslog parser built from the header
and returns ``True`` when it recognised the message. Every event from this module
has ``event.kind`` "event", ``event.module`` "system" and ``event.dataset``
"system.auth".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from ipaddress import ip_address
from typing import Any

from collectors.event import Event
from collectors.parsers.base import ParseContext, register_program

__all__ = [
    "add_related",
    "clean_ip",
    "event_base",
    "is_ip",
    "parse_account_change",
    "parse_login",
    "parse_pam",
    "parse_pam_program",
    "parse_sshd",
    "parse_su",
    "parse_sudo",
    "parse_systemd_logind",
    "set_source",
]


# --- shared helpers (also used by the mail parsers) ---------------------------------

@lru_cache(maxsize=16384)
@lru_cache(maxsize=65536)
def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address (cached: the same clients recur)."""
    if not text or len(text) > 45 or (":" not in text and not text[0].isdigit()):
        return False
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def clean_ip(text: str) -> str:
    """``::ffff:1.2.3.4`` → ``1.2.3.4``, so one client has one address everywhere."""
    if text.startswith("::ffff:") and "." in text:
        return text[7:]
    return text


def event_base(event: Event, module: str, dataset: str) -> dict[str, Any]:
    """Set ``event.kind/module/dataset``; return the ``event`` object."""
    ev: dict[str, Any] = event.setdefault("event", {})
    ev["kind"] = "event"
    ev["module"] = module
    ev["dataset"] = dataset
    return ev


def add_related(event: Event, *, users: tuple[str | None, ...] = (), ips: tuple[str | None, ...] = (),
                hosts: tuple[str | None, ...] = ()) -> None:
    """Append to ``related.user``/``related.ip``/``related.hosts`` without repeats."""
    for key, values in (("user", users), ("ip", ips), ("hosts", hosts)):
        for value in values:
            if value:
                bucket: list[str] = event.setdefault("related", {}).setdefault(key, [])
                if value not in bucket:
                    bucket.append(value)


def set_source(event: Event, address: str | None, port: str | int | None = None,
               prefix: str = "source") -> None:
    """``source.address`` plus ``source.ip`` or ``source.domain`` (and the port)."""
    if not address or address in ("-", "unknown", "UNKNOWN"):
        return
    address = clean_ip(address)
    node: dict[str, Any] = event.setdefault(prefix, {})
    node["address"] = address
    if is_ip(address):
        node["ip"] = address
        add_related(event, ips=(address,))
    else:
        node["domain"] = address
        add_related(event, hosts=(address,))
    if port is not None and str(port).isdigit():
        node["port"] = int(port)


def _auth(event: Event) -> dict[str, Any]:
    return event_base(event, "system", "system.auth")


def _classify(event: Event, category: str, type_: str, action: str,
              outcome: str | None = None) -> dict[str, Any]:
    ev = _auth(event)
    ev["category"] = [category]
    ev["type"] = [type_]
    ev["action"] = action
    if outcome:
        ev["outcome"] = outcome
    return ev


def _user(event: Event, name: str | None, effective: str | None = None) -> None:
    if name:
        event.setdefault("user", {})["name"] = name
    if effective and effective != name:
        event.setdefault("user", {}).setdefault("effective", {})["name"] = effective
    add_related(event, users=(name, effective))


_RE_KV = re.compile(r"(\w+)=(\S*)")


def _kv(text: str) -> dict[str, str]:
    return dict(_RE_KV.findall(text))


# --- PAM --------------------------------------------------------------------------

_RE_PAM_PREFIX = re.compile(r"(pam_[\w-]+)\(([^:()]+):(\w+)\): ")
_RE_PAM_SESSION = re.compile(
    r"session (opened|closed) for user (\S+?)(?:\(uid=\d+\))?(?: by (\S*?)\(uid=\d+\))?\s*$"
)
_RE_PAM_MORE = re.compile(r"(?:PAM )?(\d+) more authentication failures?; (.*)$")
_RE_PAM_PASSWD = re.compile(r"password changed for (\S+)")
_RE_PAM_NO_PASSWORD = re.compile(r"auth could not identify password for \[(.*)\]")
_RE_PAM_BAD_USER = re.compile(r"bad username \[(.*)\]")
_RE_PAM_EXPIRED = re.compile(r"account (\S+) has expired")
_RE_PAM_SUCCEED_IF = re.compile(r'requirement ".*" not met by user "(.*)"')
_RE_PAM_LOCKED = re.compile(
    r"(?:Consecutive login failures for user (\S+) account temporarily locked"
    r"|user (\S+) \(\d+\) tally \d+, deny \d+)"
)
_PAM_TYPE_CATEGORY = {"auth": "authentication", "account": "authentication", "session": "session",
                      "password": "iam"}


def _pam_failure(event: Event, fields: dict[str, str], action: str) -> None:
    _classify(event, "authentication", "start", action, "failure")
    ruser, user = fields.get("ruser"), fields.get("user")
    # su/sudo: ruser asked to act as user; sshd/login leave ruser empty.
    if ruser and user and ruser != user:
        _user(event, ruser, user)
    else:
        _user(event, user or ruser)
    set_source(event, fields.get("rhost"))


def parse_pam(program: str, message: str, event: Event, ctx: ParseContext | None = None) -> bool:
    """PAM module messages, as ``pam_unix(sshd:auth): …`` or from a ``sshd(pam_unix)``
    tag. ``False`` when the message is not in PAM form."""
    prefix = _RE_PAM_PREFIX.match(message)
    if prefix is not None:
        module, service, kind = prefix.groups()
        body = message[prefix.end():]
    elif "(pam_" in program or message.startswith("PAM "):
        service, _, module = program.partition("(")
        module, kind, body = module.rstrip(")"), "", message
    else:
        return False
    pam = event.setdefault("system", {}).setdefault("auth", {}).setdefault("pam", {})
    pam["service"] = service
    if module:
        pam["module"] = module
    if kind:
        pam["type"] = kind

    if body.startswith("authentication failure; "):
        _pam_failure(event, _kv(body[24:]), "authentication_failure")
        return True
    more = _RE_PAM_MORE.match(body)
    if more is not None:
        _pam_failure(event, _kv(more.group(2)), "authentication_failure")
        pam["failures"] = int(more.group(1))
        return True
    if body.startswith("check pass; user unknown"):
        _classify(event, "authentication", "start", "user_unknown", "failure")
        return True
    m = _RE_PAM_SESSION.match(body)
    if m is not None:
        state, target, by = m.groups()
        opened = state == "opened"
        _classify(event, "session", "start" if opened else "end",
                  "session_opened" if opened else "session_closed", "success")
        if by and by != "LOGIN" and by != target:
            _user(event, by, target)
        else:
            _user(event, target)
        return True
    m = _RE_PAM_PASSWD.match(body)
    if m is not None:
        _classify(event, "iam", "user", "password_changed", "success")["type"] = ["user", "change"]
        _target_user(event, m.group(1))
        return True
    for regex, action in ((_RE_PAM_NO_PASSWORD, "authentication_failure"),
                          (_RE_PAM_BAD_USER, "user_unknown"),
                          (_RE_PAM_EXPIRED, "account_expired"),
                          (_RE_PAM_SUCCEED_IF, "access_denied"),
                          (_RE_PAM_LOCKED, "account_locked")):
        m = regex.search(body)
        if m is not None:
            _classify(event, "authentication", "start", action, "failure")
            _user(event, next((g for g in m.groups() if g), None))
            return True
    ev = _auth(event)
    ev["category"] = [_PAM_TYPE_CATEGORY.get(kind, "authentication")]
    ev["type"] = ["info"]
    return True


@register_program("pam_unix", "pam_sss", "pam_ldap", "pam_systemd", "pam_faillock", "pam_tally2")
def parse_pam_program(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """Programs whose only messages worth reading are PAM's (cron, display managers …)."""
    return parse_pam(program, message, event, ctx)


register_program(
    "cron", "CRON", "crond", "gdm", "gdm-password", "gdm-session-worker", "lightdm", "sddm-helper",
    "systemd", "systemd-user", "vsftpd", "xrdp-sesman", "runuser", "polkit-agent-helper-1",
    "xscreensaver", "kdm", "mdm", "unix_chkpwd",
)(parse_pam_program)


# --- sshd -------------------------------------------------------------------------

_PREAUTH = r"(?: \[preauth\])?\s*$"
_RE_ACCEPTED = re.compile(r"Accepted (\S+) for (.*?) from (\S+) port (\d+)(?: ssh\d?)?(?:: (.*))?$")
_RE_FAILED = re.compile(r"Failed (\S+) for (invalid user )?(.*?) from (\S+) port (\d+)")
_RE_POSTPONED = re.compile(r"Postponed (\S+) for (invalid user )?(.*?) from (\S+) port (\d+)")
_RE_INVALID = re.compile(r"(?:Invalid|Illegal) user (.*?) from (\S+?)(?: port (\d+))?" + _PREAUTH)
_RE_USERAUTH = re.compile(r"input_userauth_request: (?:invalid|illegal) user (.*?)" + _PREAUTH)
_RE_RECEIVED_DISCONNECT = re.compile(
    r"Received disconnect from (\S+?)(?: port (\d+))?: ?(\d+): (.*?)" + _PREAUTH
)
_RE_DISCONNECTED = re.compile(
    r"Disconnected from (?:(invalid|authenticating) user (\S+) |user (\S+) )?(\S+) port (\d+)" + _PREAUTH
)
_RE_DISCONNECTING = re.compile(
    r"Disconnecting (?:(invalid|authenticating) user (\S+) |user (\S+) )?(\S+) port (\d+)(?:: (.*?))?"
    + _PREAUTH
)
_RE_TOO_MANY = re.compile(r"Disconnecting: Too many authentication failures(?: for (?:invalid user )?(\S+))?")
_RE_CONNECTION_CLOSED = re.compile(
    r"Connection (closed|reset) by (?:(invalid|authenticating) user (\S+) |user (\S+) )?(\S+?)"
    r"(?: port (\d+))?" + _PREAUTH
)
_RE_CONNECTION_FROM = re.compile(r"Connection from (\S+) port (\d+)(?: on (\S+) port (\d+))?")
_RE_REVERSE = re.compile(r"reverse mapping checking getaddrinfo for (\S+) \[(\S+)\] failed")
_RE_ADDRESS_MAPS = re.compile(r"Address (\S+) maps to (\S+), but this does not map back")
_RE_NO_IDENT = re.compile(r"Did not receive identification string from (\S+?)(?: port (\d+))?\s*$")
_RE_MAX_AUTH = re.compile(
    r"maximum authentication attempts exceeded for (invalid user )?(.*?) from (\S+) port (\d+)"
)
_RE_REPEATED = re.compile(r"message repeated (\d+) times: \[ ?(.*?) ?\]\s*$")
_RE_NOT_ALLOWED = re.compile(r"User (\S+) from (\S+) not allowed because (.*)$")
_RE_PAM_ERROR = re.compile(
    r"PAM: (?:[Aa]uthentication (?:error|failure)|User not known to the underlying authentication module)"
    r" for (?:illegal user )?(.*?) from (\S+)"
)
_RE_BAD_PROTOCOL = re.compile(r"Bad protocol version identification '(.*)' from (\S+?)(?: port (\d+))?\s*$")
_RE_NEGOTIATE = re.compile(r"Unable to negotiate with (\S+?)(?: port (\d+))?: (.*?)" + _PREAUTH)
_RE_SUBSYSTEM = re.compile(r"subsystem request for (\S+) by user (\S+)")
_RE_ANY_IP = re.compile(r"\b(?:from|with|by) (\d{1,3}(?:\.\d{1,3}){3})\b")

_SSH_AUTH_WORDS = ("authentic", "password", "auth fail", "login", "publickey")

SshHandler = Callable[[str, Event], bool]


def _ssh_attempt(event: Event, method: str, user: str, ip: str, port: str, outcome: str,
                 invalid: bool = False) -> None:
    _classify(event, "authentication", "start", "ssh_login", outcome)
    _user(event, user)
    set_source(event, ip, port)
    ssh = event.setdefault("system", {}).setdefault("auth", {}).setdefault("ssh", {})
    ssh["method"] = method
    ssh["event"] = "Accepted" if outcome == "success" else ("Invalid" if invalid else "Failed")


def _ssh_accepted(msg: str, event: Event) -> bool:
    m = _RE_ACCEPTED.match(msg)
    if m is None:
        return False
    method, user, ip, port, signature = m.groups()
    _ssh_attempt(event, method, user, ip, port, "success")
    if signature:
        event["system"]["auth"]["ssh"]["signature"] = signature
    return True


def _ssh_failed(msg: str, event: Event) -> bool:
    m = _RE_FAILED.match(msg)
    if m is None:
        return False
    method, invalid, user, ip, port = m.groups()
    _ssh_attempt(event, method, user, ip, port, "failure", invalid=bool(invalid))
    return True


def _ssh_postponed(msg: str, event: Event) -> bool:
    m = _RE_POSTPONED.match(msg)
    if m is None:
        return False
    _classify(event, "authentication", "info", "ssh_postponed")
    _user(event, m.group(3))
    set_source(event, m.group(4), m.group(5))
    return True


def _ssh_invalid(msg: str, event: Event) -> bool:
    m = _RE_INVALID.match(msg) or _RE_USERAUTH.match(msg)
    if m is None:
        return False
    _classify(event, "authentication", "start", "invalid_user", "failure")
    groups = m.groups()
    _user(event, groups[0])
    if len(groups) > 1:
        set_source(event, groups[1], groups[2])
    return True


def _ssh_disconnect(event: Event, user: str | None, ip: str, port: str | None) -> None:
    _classify(event, "session", "end", "ssh_disconnect")
    _user(event, user)
    set_source(event, ip, port)


def _ssh_received(msg: str, event: Event) -> bool:
    m = _RE_RECEIVED_DISCONNECT.match(msg)
    if m is None:
        return False
    ip, port, code, reason = m.groups()
    _ssh_disconnect(event, None, ip, port)
    event["event"]["reason"] = reason
    event.setdefault("system", {}).setdefault("auth", {}).setdefault("ssh", {})["disconnect_code"] = code
    if "auth fail" in reason.lower() or "authentication methods" in reason:
        event["event"]["category"] = ["authentication"]
        event["event"]["type"] = ["end"]
        event["event"]["outcome"] = "failure"
    return True


def _ssh_disconnected(msg: str, event: Event) -> bool:
    m = _RE_DISCONNECTED.match(msg)
    if m is None:
        return False
    _kind, user, plain_user, ip, port = m.groups()
    _ssh_disconnect(event, user or plain_user, ip, port)
    return True


def _ssh_disconnecting(msg: str, event: Event) -> bool:
    m = _RE_DISCONNECTING.match(msg)
    if m is None:
        return False
    _kind, user, plain_user, ip, port, reason = m.groups()
    _ssh_disconnect(event, user or plain_user, ip, port)
    if reason:
        event["event"]["reason"] = reason
        if "authentication failures" in reason:
            _classify(event, "authentication", "start", "max_auth_attempts", "failure")
    return True


def _ssh_too_many(msg: str, event: Event) -> bool:
    m = _RE_TOO_MANY.match(msg)
    if m is None:
        if msg.startswith("Disconnecting: "):
            _classify(event, "network", "end", "ssh_disconnect")
            event["event"]["reason"] = msg[15:].removesuffix(" [preauth]")
            return True
        return False
    _classify(event, "authentication", "start", "max_auth_attempts", "failure")
    _user(event, m.group(1))
    return True


def _ssh_connection(msg: str, event: Event) -> bool:
    m = _RE_CONNECTION_CLOSED.match(msg)
    if m is not None and m.group(5) != "peer":
        how, _kind, user, plain_user, ip, port = m.groups()
        _ssh_disconnect(event, user or plain_user, ip, port)
        event["event"]["action"] = "ssh_connection_" + how
        return True
    m = _RE_CONNECTION_FROM.match(msg)
    if m is not None:
        _classify(event, "network", "start", "ssh_connection")
        set_source(event, m.group(1), m.group(2))
        if m.group(3):
            set_source(event, m.group(3), m.group(4), prefix="destination")
        return True
    return False


def _ssh_reverse(msg: str, event: Event) -> bool:
    m = _RE_REVERSE.match(msg)
    if m is None:
        return False
    _classify(event, "network", "info", "reverse_mapping_failed")
    set_source(event, m.group(2))
    event["source"]["domain"] = m.group(1)
    add_related(event, hosts=(m.group(1),))
    return True


def _ssh_address_maps(msg: str, event: Event) -> bool:
    m = _RE_ADDRESS_MAPS.match(msg)
    if m is None:
        return False
    _classify(event, "network", "info", "reverse_mapping_failed")
    set_source(event, m.group(1))
    event["source"]["domain"] = m.group(2)
    add_related(event, hosts=(m.group(2),))
    return True


def _ssh_no_ident(msg: str, event: Event) -> bool:
    m = _RE_NO_IDENT.match(msg)
    if m is None:
        return False
    _classify(event, "network", "connection", "no_identification_string")
    set_source(event, m.group(1), m.group(2))
    return True


def _ssh_user_not_allowed(msg: str, event: Event) -> bool:
    m = _RE_NOT_ALLOWED.match(msg)
    if m is None:
        return False
    _classify(event, "authentication", "start", "user_not_allowed", "failure")
    _user(event, m.group(1))
    set_source(event, m.group(2))
    event["event"]["reason"] = m.group(3)
    return True


def _ssh_bad_protocol(msg: str, event: Event) -> bool:
    m = _RE_BAD_PROTOCOL.match(msg)
    if m is None:
        return False
    _classify(event, "network", "protocol", "bad_protocol_version")
    set_source(event, m.group(2), m.group(3))
    return True


def _ssh_negotiate(msg: str, event: Event) -> bool:
    m = _RE_NEGOTIATE.match(msg)
    if m is None:
        return False
    _classify(event, "network", "protocol", "negotiation_failed", "failure")
    set_source(event, m.group(1), m.group(2))
    event["event"]["reason"] = m.group(3)
    return True


def _ssh_subsystem(msg: str, event: Event) -> bool:
    m = _RE_SUBSYSTEM.match(msg)
    if m is None:
        return False
    _classify(event, "session", "info", "ssh_subsystem")
    _user(event, m.group(2))
    event.setdefault("system", {}).setdefault("auth", {}).setdefault("ssh", {})["subsystem"] = m.group(1)
    return True


def _ssh_repeated(msg: str, event: Event) -> bool:
    m = _RE_REPEATED.match(msg)
    if m is None:
        return False
    _sshd_body(m.group(2), event)
    event.setdefault("system", {}).setdefault("auth", {})["repeated"] = int(m.group(1))
    return True


def _ssh_pam(msg: str, event: Event) -> bool:
    return parse_pam("sshd", msg, event)


def _ssh_error(msg: str, event: Event) -> bool:
    """``error:``/``fatal:`` lines: some carry an attempt, the rest a reason."""
    body = msg.split(": ", 1)[1] if ": " in msg else ""
    m = _RE_MAX_AUTH.match(body)
    if m is not None:
        _classify(event, "authentication", "start", "max_auth_attempts", "failure")
        _user(event, m.group(2))
        set_source(event, m.group(3), m.group(4))
        return True
    m = _RE_PAM_ERROR.match(body)
    if m is not None:
        _classify(event, "authentication", "start", "authentication_failure", "failure")
        _user(event, m.group(1))
        set_source(event, m.group(2))
        return True
    return bool(body) and _sshd_dispatch(body, event)


_SSHD_HANDLERS: dict[str, tuple[SshHandler, ...]] = {
    "Accepted": (_ssh_accepted,),
    "Failed": (_ssh_failed,),
    "Postponed": (_ssh_postponed,),
    "Invalid": (_ssh_invalid,),
    "Illegal": (_ssh_invalid,),
    "input_userauth_request:": (_ssh_invalid,),
    "Received": (_ssh_received,),
    "Disconnected": (_ssh_disconnected,),
    "Disconnecting": (_ssh_disconnecting,),
    "Disconnecting:": (_ssh_too_many,),
    "Connection": (_ssh_connection,),
    "reverse": (_ssh_reverse,),
    "Address": (_ssh_address_maps,),
    "Did": (_ssh_no_ident,),
    "User": (_ssh_user_not_allowed,),
    "Bad": (_ssh_bad_protocol,),
    "Unable": (_ssh_negotiate,),
    "subsystem": (_ssh_subsystem,),
    "message": (_ssh_repeated,),
    "PAM": (_ssh_pam,),
    "error:": (_ssh_error,),
    "fatal:": (_ssh_error,),
}


def _sshd_dispatch(msg: str, event: Event) -> bool:
    first = msg.split(" ", 1)[0]
    handlers = _SSHD_HANDLERS.get(first)
    if handlers is None:
        if first.startswith("pam_"):
            return parse_pam("sshd", msg, event)
        return False
    return any(handler(msg, event) for handler in handlers)


def _sshd_body(msg: str, event: Event) -> None:
    if _sshd_dispatch(msg, event):
        return
    ev = _auth(event)
    lower = msg.lower()
    if any(word in lower for word in _SSH_AUTH_WORDS):
        ev["category"] = ["authentication"]
        ev["type"] = ["info"]
    m = _RE_ANY_IP.search(msg)
    if m is not None:
        set_source(event, m.group(1))


@register_program("sshd", "sshd-session", "sshd-auth")
def parse_sshd(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """Every sshd message: logins, failures, disconnects, scans, PAM lines."""
    if "(pam_" in program:
        return parse_pam(program, message, event, ctx)
    _sshd_body(message, event)
    return True


# --- sudo -------------------------------------------------------------------------

_RE_SUDO = re.compile(r"\s*(\S+) : (.*)$")
_SUDO_DENIED = ("NOT in sudoers", "NOT authorized", "command not allowed")


def parse_sudo(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """``bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/ls`` and the
    refusals (``user NOT in sudoers``, ``3 incorrect password attempts``)."""
    if parse_pam(program, message, event, ctx):
        return True
    m = _RE_SUDO.match(message)
    if m is None:
        _auth(event)
        return True
    user, rest = m.groups()
    command = None
    cmd_at = rest.find("COMMAND=")
    if cmd_at != -1:
        command = rest[cmd_at + 8:].strip()
        rest = rest[:cmd_at]
    fields: dict[str, str] = {}
    reasons: list[str] = []
    for item in rest.split(";"):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if sep and key.isupper():
            fields[key] = value
        else:
            reasons.append(item)
    sudo: dict[str, Any] = {k.lower(): v for k, v in fields.items()}
    if command:
        sudo["command"] = command
        event.setdefault("process", {})["command_line"] = command
    if "PWD" in fields:
        event.setdefault("process", {})["working_directory"] = fields["PWD"]
    event.setdefault("system", {}).setdefault("auth", {})["sudo"] = sudo
    _user(event, user, fields.get("USER"))
    if not reasons:
        _classify(event, "process", "start", "sudo", "success")
        return True
    reason = "; ".join(reasons)
    if "incorrect password" in reason:
        action = "sudo_auth_failed"
    elif any(word in reason for word in _SUDO_DENIED):
        action = "sudo_denied"
    else:
        action = "sudo_failed"
    _classify(event, "authentication", "start", action, "failure")["reason"] = reason
    return True


register_program("sudo")(parse_sudo)


# --- su ---------------------------------------------------------------------------

_RE_SU_WORDS = re.compile(r"(Successful|FAILED) su for (\S+) by (\S+)")
_RE_SU_SIGN = re.compile(r"([+-]) (\S+) (\S+?):(\S+)\s*$")
_RE_SU_CHANGING = re.compile(r"failed: (\S+) changing from (\S+) to (\S+)")
_RE_SU_TO = re.compile(r"(FAILED SU )?\(to (\S+)\) (\S+) on (\S+)")
_RE_SU_QUOTED = re.compile(r"'su (\S+)' (failed|succeeded) for (\S+) on (\S+)")


def parse_su(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """su(1) in its various spellings (sulog, util-linux, shadow-utils, PAM)."""
    if parse_pam(program, message, event, ctx):
        return True
    outcome = tty = None
    m = _RE_SU_WORDS.match(message)
    if m is not None:
        outcome = "success" if m.group(1) == "Successful" else "failure"
        target, by = m.group(2), m.group(3)
    elif (m := _RE_SU_SIGN.match(message)) is not None:
        outcome = "success" if m.group(1) == "+" else "failure"
        tty, by, target = m.group(2), m.group(3), m.group(4)
    elif (m := _RE_SU_CHANGING.match(message)) is not None:
        outcome = "failure"
        tty, by, target = m.groups()
    elif (m := _RE_SU_TO.match(message)) is not None:
        outcome = "failure" if m.group(1) else "success"
        target, by, tty = m.group(2), m.group(3), m.group(4)
    elif (m := _RE_SU_QUOTED.match(message)) is not None:
        outcome = "success" if m.group(2) == "succeeded" else "failure"
        target, by, tty = m.group(1), m.group(3), m.group(4)
    if outcome is None:
        _auth(event)
        return True
    _classify(event, "authentication", "start", "su", outcome)
    _user(event, by, target)
    if tty:
        event.setdefault("system", {}).setdefault("auth", {})["su"] = {"tty": tty}
    return True


register_program("su")(parse_su)


# --- login, systemd-logind ----------------------------------------------------------

_RE_LOGIN_FAILED = re.compile(
    r"FAILED LOGIN \(?(\d+)\)? (?:on '?(\S+?)'? )?(?:FROM '?(\S*?)'? )?FOR '?(\S+?)'?, (.*)$"
)
_RE_LOGIN_OK = re.compile(
    r"(?:ROOT LOGIN +ON '?(\S+?)'?|LOGIN ON '?(\S+?)'? BY '?(\S+?)'?)(?: FROM '?(\S+?)'?)?\s*$"
)
_RE_LOGIND_NEW = re.compile(r"New session (\S+) of user (\S+?)\.?$")
_RE_LOGIND_REMOVED = re.compile(r"Removed session (\S+?)\.?$")


def parse_login(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """login(1): ``FAILED LOGIN 1 FROM tty1 FOR root, …``, ``ROOT LOGIN ON tty2``."""
    if parse_pam(program, message, event, ctx):
        return True
    m = _RE_LOGIN_FAILED.match(message)
    if m is not None:
        _classify(event, "authentication", "start", "login", "failure")["reason"] = m.group(5)
        _user(event, m.group(4))
        if m.group(3) and not m.group(3).startswith("tty"):
            set_source(event, m.group(3))
        return True
    m = _RE_LOGIN_OK.match(message)
    if m is not None:
        _classify(event, "authentication", "start", "login", "success")
        _user(event, m.group(3) or "root")
        set_source(event, m.group(4))
        return True
    return False


register_program("login")(parse_login)


@register_program("systemd-logind")
def parse_systemd_logind(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """``New session 3 of user bob.`` / ``Removed session 3.``"""
    m = _RE_LOGIND_NEW.match(message)
    if m is not None:
        _classify(event, "session", "start", "session_opened", "success")
        _user(event, m.group(2))
    elif (m := _RE_LOGIND_REMOVED.match(message)) is not None:
        _classify(event, "session", "end", "session_closed", "success")
    else:
        return False
    event.setdefault("system", {}).setdefault("auth", {})["session_id"] = m.group(1)
    return True


# --- users and groups (shadow-utils) -------------------------------------------------

def _target_user(event: Event, name: str | None, uid: str | None = None) -> None:
    if not name:
        return
    target: dict[str, Any] = event.setdefault("user", {}).setdefault("target", {})
    target["name"] = name
    if uid:
        target["id"] = uid
    add_related(event, users=(name,))


def _group(event: Event, name: str | None, gid: str | None = None) -> None:
    group: dict[str, Any] = event.setdefault("group", {})
    if name:
        group["name"] = name
    if gid:
        group["id"] = gid


AccountHandler = Callable[[re.Match[str], Event], None]


def _iam(event: Event, types: list[str], action: str, outcome: str = "success") -> None:
    ev = _auth(event)
    ev["category"] = ["iam"]
    ev["type"] = types
    ev["action"] = action
    ev["outcome"] = outcome


def _new_user(m: re.Match[str], event: Event) -> None:
    f = _kv_comma(m.group(1))
    _iam(event, ["user", "creation"], "user_created")
    _target_user(event, f.get("name"), f.get("UID"))
    _group(event, None, f.get("GID"))
    extra = {k: f[k] for k in ("home", "shell", "from") if f.get(k)}
    if extra:
        event.setdefault("system", {}).setdefault("auth", {})["useradd"] = extra


def _new_group(m: re.Match[str], event: Event) -> None:
    f = _kv_comma(m.group(1))
    _iam(event, ["group", "creation"], "group_created")
    _group(event, f.get("name"), f.get("GID"))


def _member_added(m: re.Match[str], event: Event) -> None:
    _iam(event, ["group", "change"], "group_member_added")
    _target_user(event, m.group(1))
    _group(event, m.group(2))


def _member_removed(m: re.Match[str], event: Event) -> None:
    _iam(event, ["group", "change"], "group_member_removed")
    _target_user(event, m.group(1))
    _group(event, m.group(2))


def _gpasswd_member(m: re.Match[str], event: Event) -> None:
    added = m.group(2) == "added"
    _iam(event, ["group", "change"], "group_member_added" if added else "group_member_removed")
    _target_user(event, m.group(1))
    _user(event, m.group(3))
    _group(event, m.group(4))


def _members_set(m: re.Match[str], event: Event) -> None:
    _iam(event, ["group", "change"], "group_members_set")
    _group(event, m.group(1))
    _user(event, m.group(2))
    event.setdefault("system", {}).setdefault("auth", {})["members"] = m.group(3)


def _user_deleted(m: re.Match[str], event: Event) -> None:
    _iam(event, ["user", "deletion"], "user_deleted")
    _target_user(event, m.group(1))


def _group_deleted(m: re.Match[str], event: Event) -> None:
    _iam(event, ["group", "deletion"], "group_deleted")
    _group(event, m.group(1))


def _group_changed(m: re.Match[str], event: Event) -> None:
    _iam(event, ["group", "change"], "group_modified")
    name, _, gid = m.group(1).partition("/")
    _group(event, name, gid or None)
    if m.group(2):
        event.setdefault("system", {}).setdefault("auth", {})["change"] = m.group(2)


def _password_changed(m: re.Match[str], event: Event) -> None:
    _iam(event, ["user", "change"], "password_changed")
    _target_user(event, m.group(1))
    if m.lastindex and m.lastindex >= 2:
        _user(event, m.group(2))


def _user_renamed(m: re.Match[str], event: Event) -> None:
    _iam(event, ["user", "change"], "user_renamed")
    _target_user(event, m.group(1))
    event.setdefault("user", {}).setdefault("changes", {})["name"] = m.group(2)
    add_related(event, users=(m.group(2),))


def _user_locked(m: re.Match[str], event: Event) -> None:
    _iam(event, ["user", "change"], f"user_{m.group(1)}ed")
    _target_user(event, m.group(2))


def _user_modified(m: re.Match[str], event: Event) -> None:
    _iam(event, ["user", "change"], "user_modified")
    _target_user(event, m.group(1))
    if m.lastindex and m.lastindex >= 2:
        event.setdefault("system", {}).setdefault("auth", {})["change"] = m.group(2)


def _expiry_changed(m: re.Match[str], event: Event) -> None:
    _iam(event, ["user", "change"], "password_expiry_changed")
    _target_user(event, m.group(1))


def _add_user_failed(m: re.Match[str], event: Event) -> None:
    _iam(event, ["user", "creation"], "user_created", "failure")
    _target_user(event, m.group(1))


def _group_password(m: re.Match[str], event: Event) -> None:
    _iam(event, ["group", "change"], "group_password_changed")
    _group(event, m.group(1))
    _user(event, m.group(2))


_Q = r"'?([^',\s]+)'?"
_ACCOUNT_RULES: tuple[tuple[re.Pattern[str], AccountHandler], ...] = (
    (re.compile(r"new user: (.*)$"), _new_user),
    (re.compile(r"(?:new group|group added to \S+): (.*)$"), _new_group),
    (re.compile(rf"add {_Q} to (?:shadow )?group {_Q}"), _member_added),
    (re.compile(rf"delete {_Q} from (?:shadow )?group {_Q}"), _member_removed),
    (re.compile(r"user (\S+) (added|removed) by (\S+) (?:to|from) group (\S+)"), _gpasswd_member),
    (re.compile(r"members of group (\S+) set by (\S+) to (.*)$"), _members_set),
    (re.compile(rf"delete user {_Q}"), _user_deleted),
    (re.compile(rf"removed (?:shadow )?group {_Q} owned by"), _group_deleted),
    (re.compile(rf"group {_Q} removed"), _group_deleted),
    (re.compile(r"group changed in \S+ \(group ([^,\s)]+),? ?(.*)\)$"), _group_changed),
    (re.compile(rf"change user {_Q} password"), _password_changed),
    (re.compile(rf"password for {_Q} changed by {_Q}"), _password_changed),
    (re.compile(r"password changed for (\S+)"), _password_changed),
    (re.compile(rf"change user name {_Q} to {_Q}"), _user_renamed),
    (re.compile(rf"(lock|unlock) user {_Q} password"), _user_locked),
    (re.compile(rf"change user {_Q} (.*)$"), _user_modified),
    (re.compile(rf"changed user {_Q} (.*)$"), _user_modified),
    (re.compile(r"changed password expiry for (\S+)"), _expiry_changed),
    (re.compile(rf"failed adding user {_Q}"), _add_user_failed),
    (re.compile(r"password of group (\S+) (?:changed|removed) by (\S+)"), _group_password),
)


def _kv_comma(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            out[key] = value
    return out


@register_program("useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "passwd",
                  "chpasswd", "gpasswd", "chage", "chsh", "chfn", "newusers", "adduser", "deluser",
                  "addgroup", "delgroup")
def parse_account_change(program: str, message: str, event: Event, ctx: ParseContext) -> bool:
    """User and group creation, change and deletion by the shadow-utils tools."""
    if _RE_PAM_PREFIX.match(message) is not None and parse_pam(program, message, event, ctx):
        return True
    for regex, handler in _ACCOUNT_RULES:
        m = regex.match(message)
        if m is not None:
            handler(m, event)
            return True
    return False

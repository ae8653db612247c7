"""Real receivers for the notification tests and alerts to notify about.

- :class:`HttpReceiver`: a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 and a free
  port that records every request and answers from a script (then 200).
- :class:`SmtpReceiver`: an aiosmtpd ``Controller`` on 127.0.0.1 and a free port that
  keeps every message (optionally requiring a login).
- :func:`raise_alert`: an alert opened through the real :class:`AlertStore` from a
  parsed sshd event attributed to a system of an agency of the test province.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from collectors.event import Event, stable_id
from soc.alerts.store import AlertStore
from soc.config import SocConfig
from soc.db import Database
from soc.detect.model import Detection, RuleInfo
from soc.inventory.models import SystemRow

RULES: dict[str, RuleInfo] = {
    level: RuleInfo(id=f"7d1c0a3e-0000-4000-8000-00000000000{i}", title=f"Dò mật khẩu SSH ({level}) / SSH brute "
                    f"force ({level})", level=level, tags=("attack.credential-access", "attack.t1110.001"))
    for i, level in enumerate(("informational", "low", "medium", "high", "critical"))
}
SYSTEMS: dict[str, str] = {
    # system id → agency id (agencies of tests/service/conftest.py)
    "motcua-xa-thanh-son": "xa-thanh-son",
    "motcua-xa-hy-cuong": "xa-hy-cuong",
    "motcua-xa-chu-hoa": "xa-chu-hoa",
    "cong-so-khcn": "so-khcn",
}
_serial = itertools.count(1)


def sshd_event(system: str, ip: str, user: str = "root") -> Event:
    n = next(_serial)
    ts = f"2026-11-23T01:{n % 60:02d}:00.000Z"
    return {
        "@timestamp": ts,
        "message": f"Failed password for {user} from {ip} port {40000 + n} ssh2",
        "event": {"id": stable_id("auth.log", system, ip, user, ts, n), "kind": "event",
                  "category": ["authentication"], "type": ["start"], "action": "ssh_login", "outcome": "failure",
                  "module": "system", "dataset": "system.auth"},
        "source": {"ip": ip, "port": 40000 + n},
        "user": {"name": user},
        "host": {"name": f"{system}-01"},
        "process": {"name": "sshd", "pid": 4242},
        "gov": {"system": {"id": system, "name": f"Hệ thống {system}", "type": "one_stop_portal"},
                "agency": {"id": SYSTEMS[system]}, "classification": 2, "level": "commune"},
    }


def add_systems(db: Database) -> None:
    """The systems of :data:`SYSTEMS` in the inventory (needs the ``agencies`` fixture)."""
    with db.write() as session:
        for system_id, agency_id in SYSTEMS.items():
            session.add(SystemRow(id=system_id, name=f"Một cửa {agency_id}", type="one_stop_portal",
                                  agency_id=agency_id, classification=2))


def raise_alert(db: Database, level: str = "high", system: str = "motcua-xa-thanh-son",
                ip: str | None = None, *, retro: bool = False) -> str:
    """Open one alert through the alert store; returns its id."""
    event = sshd_event(system, ip or f"203.0.113.{next(_serial) % 250 + 1}")
    detection = Detection(rule=RULES[level], events=[event], event_ids=[event["event"]["id"]],
                          first_seen=event["@timestamp"], last_seen=event["@timestamp"], retro=retro)
    result = AlertStore(db.engine).raise_detections([detection], hunt_id="0" * 36 if retro else None)
    assert result.created == 1, result
    return result.alert_ids[0]


def notify_config(base: SocConfig, channels: dict[str, dict[str, Any]], routes: list[dict[str, Any]],
                  **settings: Any) -> SocConfig:
    """``base`` with a ``notifications`` section, validated as the file would be."""
    raw = base.model_dump(exclude={"config_path"})
    raw["notifications"] = {"channels": channels, "routes": routes, **settings}
    return SocConfig.model_validate(raw)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- HTTP ----------------------------------------------------------------------------

@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Answers each POST with the next scripted ``(status, body, headers)``, then 200."""

    script: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    default: tuple[int, Any, dict[str, str]] = (200, {"ok": True, "result": {"message_id": 1}}, {})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.script.append((status, body, headers or {}))


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                status, answer, headers = receiver.script.pop(0) if receiver.script else receiver.default
            payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="http-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- SMTP ----------------------------------------------------------------------------

@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpReceiver:
    port: int
    mails: list[Mail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.receiver.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_receiver(credentials: tuple[str, str] | None = None) -> Iterator[SmtpReceiver]:
    """A local SMTP server; with ``credentials`` it requires that login (AUTH
    without TLS, which only a loopback test may allow)."""
    receiver = SmtpReceiver(port=free_port())

    def authenticate(server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and credentials is not None and \
            (data.login.decode(), data.password.decode()) == credentials
        if ok:
            receiver.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    options: dict[str, Any] = {}
    if credentials is not None:
        options = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": False}
    controller = Controller(_Handler(receiver), hostname="127.0.0.1", port=receiver.port, **options)
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()

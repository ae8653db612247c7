"""Where notifications go: a registry of channel kinds (``email``, ``webhook``,
``telegram``) and what each does with one notice.

A channel sends one message and reports an :class:`Outcome`: sent, a failure worth
retrying (the receiver is down, busy or slow) or a permanent one (the receiver
refused the message; sending it again would be refused again). Retrying is the
dispatcher's business, not the channel's. Secrets (SMTP password, bot token,
signing key) are read from the environment when a message is sent and appear in
no outcome, target or error.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import smtplib
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from soc.config import SmtpChannel, SocConfig, WebhookChannel
from soc.db import utcnow
from soc.notify.message import Notice, Rendering, html_body, subject, telegram_text, text_body, webhook_body

SIGNATURE_HEADER = "X-SOC-Signature"
DELIVERY_HEADER = "X-SOC-Delivery"
USER_AGENT = "soc-toolkit-notify/1"
RESPONSE_CHARS = 1000
"""What is kept of a receiver's answer."""
RETRYABLE_HTTP = frozenset({408, 425, 429})
"""4xx answers that mean "later", not "never"."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt to send gave."""

    ok: bool
    retryable: bool = False
    error: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    """What the receiver answered (HTTP status and body, SMTP refusals)."""
    retry_after: float | None = None
    """Seconds the receiver asked to wait (``Retry-After``, Telegram's ``retry_after``)."""

    @classmethod
    def sent(cls, **response: Any) -> Outcome:
        return cls(ok=True, response=response)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None, **response: Any) -> Outcome:
        return cls(ok=False, retryable=True, error=error, response=response, retry_after=retry_after)

    @classmethod
    def refused(cls, error: str, **response: Any) -> Outcome:
        return cls(ok=False, retryable=False, error=error, response=response)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "retryable": self.retryable, "error": self.error, "response": self.response,
                "retry_after": self.retry_after}


class MissingSecret(Exception):
    """A secret's environment variable is not set: a configuration problem no retry fixes."""

    def __init__(self, variable: str) -> None:
        super().__init__(f"environment variable {variable} is not set")


def _env_secret(variable: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise MissingSecret(variable)
    return value


class Channel(ABC):
    """One configured destination. Subclasses register under their kind name."""

    kind: ClassVar[str]
    config_type: ClassVar[type[Any]]

    def __init__(self, name: str, spec: Any, rendering: Rendering) -> None:
        self.name = name
        self.spec = spec
        self.rendering = rendering

    @property
    @abstractmethod
    def target(self) -> str:
        """Where messages go, without credentials (recorded on each delivery)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The channel's settings a reader may see (no secrets, no header values)."""

    @abstractmethod
    async def send(self, notice: Notice, delivery_id: str | None = None) -> Outcome:
        """Send one message; never raises for a receiver's or network's failure."""


CHANNEL_KINDS: dict[str, type[Channel]] = {}
"""Kind name (the ``type`` of a channel in the configuration) → channel class."""


def register_kind(kind: str) -> Callable[[type[Channel]], type[Channel]]:
    def add(cls: type[Channel]) -> type[Channel]:
        if kind in CHANNEL_KINDS:
            raise ValueError(f"channel kind {kind!r} registered twice")
        cls.kind = kind
        CHANNEL_KINDS[kind] = cls
        return cls

    return add


def build_channel(name: str, spec: SmtpChannel | WebhookChannel, rendering: Rendering) -> Channel:
    cls = CHANNEL_KINDS.get(spec.type)
    if cls is None:
        raise ValueError(f"channel {name!r}: unknown kind {spec.type!r} (known: {', '.join(sorted(CHANNEL_KINDS))})")
    return cls(name, spec, rendering)


def build_channels(cfg: SocConfig) -> dict[str, Channel]:
    rendering = Rendering(cfg.tz, cfg.notifications.base_url)
    return {name: build_channel(name, spec, rendering) for name, spec in cfg.notifications.channels.items()}


# --- e-mail ---------------------------------------------------------------------------

@register_kind("email")
class EmailChannel(Channel):
    """SMTP with smtplib in a worker thread (the event loop never waits on a mail relay)."""

    spec: SmtpChannel

    @property
    def target(self) -> str:
        return ", ".join(self.spec.to)

    def describe(self) -> dict[str, Any]:
        s = self.spec
        return {"name": self.name, "kind": self.kind, "target": self.target, "host": s.host, "port": s.port,
                "starttls": s.starttls, "ssl": s.ssl, "login": s.username is not None, "sender": s.sender,
                "to": list(s.to)}

    def message(self, notice: Notice) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = subject(notice)
        msg["From"] = self.spec.sender
        msg["To"] = ", ".join(self.spec.to)
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = make_msgid(domain=self.spec.sender.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-SOC-Alert-Id"] = notice.id
        msg["X-SOC-Level"] = notice.level
        msg.set_content(text_body(notice, self.rendering))
        msg.add_alternative(html_body(notice, self.rendering), subtype="html")
        return msg

    async def send(self, notice: Notice, delivery_id: str | None = None) -> Outcome:
        msg = self.message(notice)
        if delivery_id:
            msg["X-SOC-Delivery"] = delivery_id
        return await asyncio.to_thread(self._send, msg)

    def _send(self, msg: EmailMessage) -> Outcome:
        s = self.spec
        try:
            password = _env_secret(s.password_env) if s.username and s.password_env else None
        except MissingSecret as exc:
            return Outcome.refused(str(exc))
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP = (smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context) if s.ssl
                                  else smtplib.SMTP(s.host, s.port, timeout=s.timeout))
            with smtp:
                if s.starttls:
                    smtp.starttls(context=context)
                if s.username and password is not None:
                    smtp.login(s.username, password)
                refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {addr: code for addr, (code, _text) in exc.recipients.items()}
            detail = {addr: f"{code} {_text(text)}" for addr, (code, text) in exc.recipients.items()}
            error = "every recipient was refused: " + "; ".join(f"{a}: {d}" for a, d in detail.items())
            if all(400 <= code < 500 for code in codes.values()):
                return Outcome.retry(error, refused=detail)
            return Outcome.refused(error, refused=detail)
        except smtplib.SMTPNotSupportedError as exc:
            return Outcome.refused(f"the server does not support it: {exc}")
        except UnicodeEncodeError:
            # smtplib sends AUTH credentials as ASCII only.
            return Outcome.refused("the SMTP user name and password must be ASCII")
        except smtplib.SMTPResponseException as exc:
            error = f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}"
            if 400 <= exc.smtp_code < 500:
                return Outcome.retry(error, smtp_code=exc.smtp_code)
            return Outcome.refused(error, smtp_code=exc.smtp_code)
        except (smtplib.SMTPException, OSError) as exc:
            # Unreachable relay, timeout, dropped connection, TLS handshake: a later try may pass.
            return Outcome.retry(f"{type(exc).__name__}: {exc}")
        partial = {addr: f"{code} {_text(text)}" for addr, (code, text) in refused.items()}
        accepted = [addr for addr in s.to if addr not in refused]
        return Outcome.sent(accepted=accepted, refused=partial) if partial else Outcome.sent(accepted=accepted)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# --- HTTP ----------------------------------------------------------------------------

_BOT_TOKEN = re.compile(r"/bot[^/]+")


def redact_url(url: str) -> str:
    """``url`` without user info, query or a literal bot token in the path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    path = parts.path if "{token}" in parts.path else _BOT_TOKEN.sub("/bot…", parts.path)
    return urlunsplit((parts.scheme, host, path, "", ""))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or utcnow())).total_seconds())


def _clip_body(response: httpx.Response) -> str:
    return response.text[:RESPONSE_CHARS]


class HttpChannel(Channel):
    """A JSON POST; subclasses choose the body and read the answer."""

    spec: WebhookChannel

    @property
    def target(self) -> str:
        return redact_url(self.spec.url)[:500]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "target": self.target, "headers": sorted(self.spec.headers),
                "signed": self.spec.secret_env is not None, "timeout": self.spec.timeout}

    @abstractmethod
    def body(self, notice: Notice, delivery_id: str | None) -> dict[str, Any]: ...

    @abstractmethod
    def judge(self, response: httpx.Response) -> Outcome: ...

    def _url(self) -> str:
        url = self.spec.url
        if self.spec.token_env:
            url = url.replace("{token}", _env_secret(self.spec.token_env))
        return url

    async def send(self, notice: Notice, delivery_id: str | None = None) -> Outcome:
        content = orjson.dumps(self.body(notice, delivery_id))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **self.spec.headers}
        if delivery_id:
            headers[DELIVERY_HEADER] = delivery_id
        try:
            url = self._url()
            if self.spec.secret_env:
                key = _env_secret(self.spec.secret_env).encode("utf-8")
                headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(key, content, hashlib.sha256).hexdigest()
        except MissingSecret as exc:
            return Outcome.refused(str(exc))
        try:
            async with httpx.AsyncClient(timeout=self.spec.timeout, follow_redirects=False) as client:
                response = await client.post(url, content=content, headers=headers)
        except httpx.TransportError as exc:
            # Refused connection, DNS, timeout: the receiver may be back later. The
            # message is the exception's class and text, which never hold the URL's token.
            return Outcome.retry(f"{type(exc).__name__}: {exc}".replace(url, self.target))
        return self.judge(response)


def judge_http(response: httpx.Response) -> Outcome:
    """2xx sent; 408, 425, 429 and 5xx retried (after ``Retry-After`` when given);
    any other answer refused."""
    status = response.status_code
    answer = {"status_code": status, "body": _clip_body(response)}
    if 200 <= status < 300:
        return Outcome.sent(**answer)
    error = f"HTTP {status} {response.reason_phrase}".strip()
    if status >= 500 or status in RETRYABLE_HTTP:
        return Outcome.retry(error, retry_after_seconds(response.headers.get("Retry-After")), **answer)
    if 300 <= status < 400:
        error += " (redirects are not followed: set url to the final address)"
    return Outcome.refused(error, **answer)


@register_kind("webhook")
class WebhookHttpChannel(HttpChannel):
    """The generic JSON body, optionally signed with HMAC-SHA256."""

    def body(self, notice: Notice, delivery_id: str | None) -> dict[str, Any]:
        return webhook_body(notice, self.rendering, delivery_id, utcnow())

    def judge(self, response: httpx.Response) -> Outcome:
        return judge_http(response)


@register_kind("telegram")
class TelegramChannel(HttpChannel):
    """A Bot API ``sendMessage`` call (or a relay that speaks it)."""

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "chat_id": self.spec.chat_id}

    @property
    def target(self) -> str:
        return f"{redact_url(self.spec.url)} chat {self.spec.chat_id}"[:500]

    def body(self, notice: Notice, delivery_id: str | None) -> dict[str, Any]:
        return {"chat_id": self.spec.chat_id, "text": telegram_text(notice, self.rendering), "parse_mode": "HTML",
                "disable_web_page_preview": True}

    def judge(self, response: httpx.Response) -> Outcome:
        """The Bot API says ``{"ok": true, "result": {...}}`` or ``{"ok": false,
        "error_code": …, "description": …, "parameters": {"retry_after": …}}``."""
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "ok" not in answer:
            outcome = judge_http(response)
            if outcome.ok:
                return Outcome.refused(f"HTTP {response.status_code} without a Bot API answer ({{\"ok\": …}})",
                                       status_code=response.status_code, body=_clip_body(response))
            return outcome
        if answer.get("ok") is True:
            result = answer["result"] if isinstance(answer.get("result"), dict) else {}
            return Outcome.sent(status_code=response.status_code, message_id=result.get("message_id"))
        code = answer.get("error_code") or response.status_code
        description = str(answer.get("description") or "no description")
        error = f"Telegram {code}: {description}"
        params = answer["parameters"] if isinstance(answer.get("parameters"), dict) else {}
        retry_after = params.get("retry_after")
        if code in RETRYABLE_HTTP or (isinstance(code, int) and code >= 500):
            wait = float(retry_after) if isinstance(retry_after, int | float) else \
                retry_after_seconds(response.headers.get("Retry-After"))
            return Outcome.retry(error, wait, status_code=response.status_code, description=description)
        return Outcome.refused(error, status_code=response.status_code, description=description)

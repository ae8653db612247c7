"""What a notification says: an alert as a reader needs it, rendered as an e-mail
(subject, plain text, HTML), the generic webhook JSON and a Telegram message.

Text a person reads is Vietnamese first, then English. Times are shown in the SOC's
time zone with their offset; the JSON body carries ISO 8601 UTC.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from soc.alerts.internal import is_internal_rule
from soc.alerts.models import Alert
from soc.db import utcnow

SCHEMA = "soc.notification.v1"
"""``schema`` of the webhook body; a change that breaks receivers gets a new one."""
LEVEL_VI: dict[str, str] = {"informational": "thông tin", "low": "thấp", "medium": "trung bình", "high": "cao",
                            "critical": "nghiêm trọng"}
KEY_FIELDS_SHOWN = 15
"""Key fields in a person's message (the JSON body carries all)."""
VALUE_CHARS = 200
TELEGRAM_MAX_CHARS = 4096
"""Bot API limit of ``sendMessage`` text (after entities are parsed)."""
TEST_RULE_ID = "soc-notification-test"


@dataclass(frozen=True, slots=True)
class Notice:
    """An alert as it is when its notification is sent (status may have moved on
    since it was raised)."""

    id: str
    rule_id: str
    rule_title: str
    level: str
    status: str
    kind: str
    system_id: str
    system_name: str | None
    agency_id: str | None
    agency_name: str | None
    classification: int | None
    count: int
    first_seen: datetime
    last_seen: datetime
    created_at: datetime
    summary: str
    key_fields: dict[str, Any] = field(default_factory=dict)
    tactics: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    retro: bool = False
    test: bool = False

    @property
    def internal(self) -> bool:
        return is_internal_rule(self.rule_id)

    @property
    def link(self) -> str:
        return f"/api/v1/alerts/{self.id}"

    @classmethod
    def of(cls, alert: Alert, system_name: str | None = None, agency_name: str | None = None) -> Notice:
        return cls(id=alert.id, rule_id=alert.rule_id, rule_title=alert.rule_title, level=alert.level,
                   status=alert.status, kind=alert.kind, system_id=alert.system_id, system_name=system_name,
                   agency_id=alert.agency_id, agency_name=agency_name, classification=alert.classification,
                   count=alert.count, first_seen=alert.first_seen, last_seen=alert.last_seen,
                   created_at=alert.created_at, summary=alert.summary, key_fields=dict(alert.key_fields or {}),
                   tactics=tuple(alert.tactics or ()), techniques=tuple(alert.techniques or ()),
                   retro=alert.retro)

    @classmethod
    def sample(cls, now: datetime | None = None) -> Notice:
        """The message ``POST /api/v1/notifications/test`` sends: shaped like an alert,
        marked as a test everywhere a receiver looks."""
        now = now or utcnow()
        return cls(id=str(uuid.uuid4()), rule_id=TEST_RULE_ID,
                   rule_title="Thông báo thử của SOC / SOC test notification", level="informational",
                   status="new", kind="detection", system_id="soc", system_name="SOC", agency_id=None,
                   agency_name=None, classification=None, count=1, first_seen=now, last_seen=now, created_at=now,
                   summary="Kiểm tra kênh thông báo / Checking a notification channel", test=True)


@dataclass(frozen=True, slots=True)
class Rendering:
    """How messages are written for this SOC: its time zone and public address."""

    tz: tzinfo
    base_url: str | None = None

    def url(self, notice: Notice) -> str:
        return f"{self.base_url.rstrip('/')}{notice.link}" if self.base_url else notice.link

    def when(self, value: datetime) -> str:
        return value.astimezone(self.tz).isoformat(sep=" ", timespec="seconds")


def _titles(title: str) -> tuple[str, str]:
    vi, sep, en = title.partition(" / ")
    return (vi.strip(), en.strip()) if sep else (title.strip(), title.strip())


def _clip(value: Any) -> str:
    text = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS - 1] + "…"


def _system(notice: Notice) -> str:
    return f"{notice.system_name} ({notice.system_id})" if notice.system_name else notice.system_id


def _agency(notice: Notice) -> str:
    if notice.agency_id is None:
        return "-"
    return f"{notice.agency_name} ({notice.agency_id})" if notice.agency_name else notice.agency_id


def subject(notice: Notice) -> str:
    """``[SOC][HIGH] Dò mật khẩu SSH / SSH brute force — Máy chủ AD (ad-servers)``."""
    tag = "[SOC][TEST]" if notice.test else "[SOC]"
    title = " ".join(notice.rule_title.split())
    return f"{tag}[{notice.level.upper()}] {title} — {notice.system_name or notice.system_id}"


def _facts(notice: Notice, rendering: Rendering) -> list[tuple[str, str]]:
    """(label, value) lines common to every person's message, Vietnamese / English labels."""
    vi_title, en_title = _titles(notice.rule_title)
    rule = vi_title if vi_title == en_title else f"{vi_title} / {en_title}"
    facts = [
        ("Mức độ / Level", f"{LEVEL_VI.get(notice.level, notice.level)} / {notice.level}"),
        ("Luật / Rule", f"{rule} ({notice.rule_id})"),
        ("Hệ thống / System", _system(notice)),
        ("Đơn vị / Agency", _agency(notice)),
    ]
    if notice.classification is not None:
        facts.append(("Cấp độ HTTT / Security level", str(notice.classification)))
    facts += [
        ("Trạng thái / Status", notice.status),
        ("Số sự kiện / Events", str(notice.count)),
        ("Lần đầu / First seen", rendering.when(notice.first_seen)),
        ("Lần cuối / Last seen", rendering.when(notice.last_seen)),
        ("Tóm tắt / Summary", notice.summary),
    ]
    if notice.internal:
        facts.append(("Nguồn / Origin", "cảnh báo nội bộ của SOC / SOC internal alert"))
    if notice.retro:
        facts.append(("Nguồn / Origin", "truy vết lại dữ liệu cũ / retro-hunt"))
    return facts


def _key_fields(notice: Notice) -> list[tuple[str, str]]:
    items = list(notice.key_fields.items())
    shown = [(name, _clip(value)) for name, value in items[:KEY_FIELDS_SHOWN]]
    if len(items) > KEY_FIELDS_SHOWN:
        shown.append(("…", f"+{len(items) - KEY_FIELDS_SHOWN}"))
    return shown


def _headline(notice: Notice) -> tuple[str, str]:
    if notice.test:
        return "Thông báo thử của SOC", "SOC test notification"
    return (f"Cảnh báo SOC mức {LEVEL_VI.get(notice.level, notice.level).upper()}",
            f"SOC alert, level {notice.level.upper()}")


def text_body(notice: Notice, rendering: Rendering) -> str:
    vi, en = _headline(notice)
    lines = [f"{vi} / {en}", ""]
    lines += [f"{label}: {value}" for label, value in _facts(notice, rendering)]
    fields = _key_fields(notice)
    if fields:
        lines += ["", "Trường chính / Key fields:"]
        lines += [f"  {name}: {value}" for name, value in fields]
    lines += ["", f"Xem cảnh báo / View the alert: {rendering.url(notice)}", f"Mã cảnh báo / Alert id: {notice.id}"]
    return "\n".join(lines) + "\n"


def html_body(notice: Notice, rendering: Rendering) -> str:
    esc = html.escape
    vi, en = _headline(notice)
    rows = "".join(f"<tr><th align=\"left\">{esc(label)}</th><td>{esc(value)}</td></tr>"
                   for label, value in _facts(notice, rendering))
    fields = "".join(f"<tr><td><code>{esc(name)}</code></td><td>{esc(value)}</td></tr>"
                     for name, value in _key_fields(notice))
    url = rendering.url(notice)
    parts = [
        "<!DOCTYPE html><html><body>",
        f"<h2>{esc(vi)}<br><small>{esc(en)}</small></h2>",
        f"<table cellpadding=\"4\">{rows}</table>",
    ]
    if fields:
        parts.append(f"<h3>Trường chính / Key fields</h3><table cellpadding=\"4\">{fields}</table>")
    parts.append(f"<p><a href=\"{esc(url)}\">Xem cảnh báo / View the alert</a> — {esc(notice.id)}</p>")
    parts.append("</body></html>")
    return "".join(parts)


def webhook_body(notice: Notice, rendering: Rendering, delivery_id: str | None, sent_at: datetime) -> dict[str, Any]:
    """The generic JSON body (documented in docs/notifications.md)."""
    vi_title, en_title = _titles(notice.rule_title)
    return {
        "schema": SCHEMA,
        "type": "test" if notice.test else "alert",
        "delivery_id": delivery_id,
        "sent_at": sent_at.isoformat(),
        "alert": {
            "id": notice.id,
            "rule": {"id": notice.rule_id, "title": notice.rule_title, "title_vi": vi_title, "title_en": en_title,
                     "kind": notice.kind, "tactics": list(notice.tactics), "techniques": list(notice.techniques)},
            "level": notice.level,
            "status": notice.status,
            "internal": notice.internal,
            "retro": notice.retro,
            "system": {"id": notice.system_id, "name": notice.system_name, "classification": notice.classification},
            "agency": {"id": notice.agency_id, "name": notice.agency_name},
            "count": notice.count,
            "first_seen": notice.first_seen.isoformat(),
            "last_seen": notice.last_seen.isoformat(),
            "created_at": notice.created_at.isoformat(),
            "summary": notice.summary,
            "key_fields": notice.key_fields,
            "link": notice.link,
            "url": rendering.url(notice) if rendering.base_url else None,
        },
    }


def telegram_text(notice: Notice, rendering: Rendering) -> str:
    """A message for ``parse_mode: HTML``: only ``<b>``, ``<code>`` and ``<a>``, every
    value escaped, cut to the Bot API's length limit at a line boundary."""
    esc = html.escape
    vi, en = _headline(notice)
    lines = [f"<b>{esc(vi)}</b>", f"<i>{esc(en)}</i>", ""]
    lines += [f"<b>{esc(label)}:</b> {esc(value)}" for label, value in _facts(notice, rendering)]
    fields = _key_fields(notice)
    if fields:
        lines += ["", "<b>Trường chính / Key fields:</b>"]
        lines += [f"<code>{esc(name)}</code>: {esc(value)}" for name, value in fields]
    url = rendering.url(notice)
    tail = [""]
    if rendering.base_url:
        tail.append(f"<a href=\"{esc(url)}\">Xem cảnh báo / View the alert</a>")
    else:
        tail.append(f"Xem cảnh báo / View the alert: <code>{esc(url)}</code>")
    text = "\n".join(lines + tail)
    while len(text) > TELEGRAM_MAX_CHARS and len(lines) > 3:
        lines.pop()
        text = "\n".join([*lines, "…", *tail])
    return text

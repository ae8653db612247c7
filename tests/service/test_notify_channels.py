"""Each channel kind delivers an alert to a real receiver on loopback: an SMTP server
(aiosmtpd), a generic webhook and a Telegram-compatible endpoint (stdlib HTTP
server). Alerts come from the real alert store; the dispatcher routes and sends."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from soc.alerts.models import Alert
from soc.config import SocConfig
from soc.db import Database, utcnow
from soc.notify.dispatcher import Dispatcher, SendResult
from soc.notify.message import TELEGRAM_MAX_CHARS, Notice, Rendering, html_body, telegram_text
from soc.notify.models import NotificationDelivery
from tests.service.notify_fixtures import add_systems, http_receiver, notify_config, raise_alert, smtp_receiver

ROUTE_ALL_HIGH = [{"name": "soc-team", "min_level": "high", "channels": ["out"]}]


@pytest.fixture
def systems(db: Database, agencies: list[str]) -> None:
    add_systems(db)


def deliver(db: Database, cfg: SocConfig, level: str = "high", **alert: Any) -> tuple[str, list[SendResult]]:
    """Start the dispatcher, raise one alert, route it and send what is due."""
    dispatcher = Dispatcher(db, cfg)
    dispatcher.route_new(utcnow())
    alert_id = raise_alert(db, level, **alert)
    dispatcher.route_new(utcnow())
    return alert_id, asyncio.run(dispatcher.send_due(utcnow() + timedelta(seconds=1)))


def delivery_of(db: Database, alert_id: str) -> NotificationDelivery:
    with db.read() as session:
        return session.scalars(select(NotificationDelivery).where(NotificationDelivery.alert_id == alert_id)).one()


# --- e-mail ---------------------------------------------------------------------------

def test_a_high_alert_is_mailed_to_the_recipients_with_level_rule_and_system_in_the_subject(
        db: Database, soc_config: SocConfig, systems: None) -> None:
    with smtp_receiver() as smtp:
        cfg = notify_config(soc_config, {"out": {"type": "email", "host": "127.0.0.1", "port": smtp.port,
                                                 "sender": "soc@phutho.gov.vn",
                                                 "to": ["soc@phutho.gov.vn", "cntt@thanhson.phutho.gov.vn"]}},
                            ROUTE_ALL_HIGH)
        alert_id, results = deliver(db, cfg, "high", system="motcua-xa-thanh-son", ip="203.0.113.9")

    assert [r.status for r in results] == ["sent"]
    [mail] = smtp.mails
    assert mail.sender == "soc@phutho.gov.vn"
    assert mail.recipients == ["soc@phutho.gov.vn", "cntt@thanhson.phutho.gov.vn"]
    assert mail.message["Subject"] == ("[SOC][HIGH] Dò mật khẩu SSH (high) / SSH brute force (high) — "
                                       "Một cửa xa-thanh-son")
    assert mail.message["X-SOC-Alert-Id"] == alert_id
    text = mail.message.get_body(("plain",))
    html = mail.message.get_body(("html",))
    assert text is not None and html is not None
    plain = text.get_content()
    assert plain.startswith("Cảnh báo SOC mức CAO / SOC alert, level HIGH")
    assert "203.0.113.9" in plain and f"/api/v1/alerts/{alert_id}" in plain
    assert "Một cửa xa-thanh-son (motcua-xa-thanh-son)" in html.get_content()
    row = delivery_of(db, alert_id)
    assert (row.kind, row.target, row.status, row.attempts) == (
        "email", "soc@phutho.gov.vn, cntt@thanhson.phutho.gov.vn", "sent", 1)
    assert row.sent_at is not None


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_logs_in_with_the_password_from_password_env(
        db: Database, soc_config: SocConfig, systems: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_TEST_SMTP_PASSWORD", "Mat-Khau-Thu-2026")
    with smtp_receiver(credentials=("soc-relay", "Mat-Khau-Thu-2026")) as smtp:
        cfg = notify_config(soc_config, {"out": {"type": "email", "host": "127.0.0.1", "port": smtp.port,
                                                 "username": "soc-relay", "password_env": "SOC_TEST_SMTP_PASSWORD",
                                                 "sender": "soc@phutho.gov.vn", "to": ["soc@phutho.gov.vn"]}},
                            ROUTE_ALL_HIGH)
        _, results = deliver(db, cfg)

    assert [r.status for r in results] == ["sent"]
    assert smtp.logins == ["soc-relay"]
    assert len(smtp.mails) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_refused_login_fails_at_once_without_retrying(
        db: Database, soc_config: SocConfig, systems: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_TEST_SMTP_PASSWORD", "Sai-Mat-Khau")
    with smtp_receiver(credentials=("soc-relay", "Mat-Khau-Thu-2026")) as smtp:
        cfg = notify_config(soc_config, {"out": {"type": "email", "host": "127.0.0.1", "port": smtp.port,
                                                 "username": "soc-relay", "password_env": "SOC_TEST_SMTP_PASSWORD",
                                                 "sender": "soc@phutho.gov.vn", "to": ["soc@phutho.gov.vn"]}},
                            ROUTE_ALL_HIGH)
        alert_id, results = deliver(db, cfg)

    assert [r.status for r in results] == ["failed"]
    row = delivery_of(db, alert_id)
    assert row.attempts == 1 and row.last_error is not None and row.last_error.startswith("SMTP 535")
    assert smtp.mails == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_with_its_password_variable_unset_fails_naming_the_variable(
        db: Database, soc_config: SocConfig, systems: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOC_TEST_SMTP_PASSWORD", raising=False)
    with smtp_receiver(credentials=("soc-relay", "x")) as smtp:
        cfg = notify_config(soc_config, {"out": {"type": "email", "host": "127.0.0.1", "port": smtp.port,
                                                 "username": "soc-relay", "password_env": "SOC_TEST_SMTP_PASSWORD",
                                                 "sender": "soc@phutho.gov.vn", "to": ["soc@phutho.gov.vn"]}},
                            ROUTE_ALL_HIGH)
        alert_id, _ = deliver(db, cfg)

    row = delivery_of(db, alert_id)
    assert (row.status, row.last_error) == ("failed", "environment variable SOC_TEST_SMTP_PASSWORD is not set")


def test_an_unreachable_mail_relay_is_retried_later(db: Database, soc_config: SocConfig, systems: None) -> None:
    with smtp_receiver() as smtp:
        port = smtp.port
    # The receiver is gone: nothing listens on its port any more.
    cfg = notify_config(soc_config, {"out": {"type": "email", "host": "127.0.0.1", "port": port, "timeout": 5,
                                             "sender": "soc@phutho.gov.vn", "to": ["soc@phutho.gov.vn"]}},
                        ROUTE_ALL_HIGH)
    alert_id, results = deliver(db, cfg)

    assert [r.status for r in results] == ["pending"]
    row = delivery_of(db, alert_id)
    assert row.attempts == 1 and "ConnectionRefusedError" in (row.last_error or "")


# --- generic webhook ------------------------------------------------------------------

def test_the_webhook_receives_the_generic_json_signed_with_the_shared_secret(
        db: Database, soc_config: SocConfig, systems: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_TEST_WEBHOOK_SECRET", "khóa-chung-bí-mật")
    with http_receiver() as receiver:
        cfg = notify_config(soc_config, {"out": {"type": "webhook", "url": f"{receiver.url}/hooks/soc",
                                                 "secret_env": "SOC_TEST_WEBHOOK_SECRET",
                                                 "headers": {"X-Tenant": "phu-tho"}}},
                            ROUTE_ALL_HIGH, base_url="https://soc.phutho.gov.vn")
        alert_id, results = deliver(db, cfg, "critical", system="motcua-xa-hy-cuong", ip="198.51.100.4")

    assert [r.status for r in results] == ["sent"]
    [request] = receiver.requests
    assert request.path == "/hooks/soc"
    expected = hmac.new("khóa-chung-bí-mật".encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-SOC-Signature"] == f"sha256={expected}"
    assert request.headers["X-Tenant"] == "phu-tho"
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body["schema"] == "soc.notification.v1" and body["type"] == "alert"
    assert body["delivery_id"] == results[0].delivery_id == request.headers["X-SOC-Delivery"]
    alert = body["alert"]
    assert alert["id"] == alert_id
    assert alert["rule"]["id"] == "7d1c0a3e-0000-4000-8000-000000000004"
    assert alert["rule"]["title_vi"] == "Dò mật khẩu SSH (critical)"
    assert (alert["level"], alert["status"], alert["internal"]) == ("critical", "new", False)
    assert alert["system"] == {"id": "motcua-xa-hy-cuong", "name": "Một cửa xa-hy-cuong", "classification": 2}
    assert alert["agency"] == {"id": "xa-hy-cuong", "name": "UBND xã Hy Cương"}
    assert alert["key_fields"]["source.ip"] == "198.51.100.4"
    assert alert["first_seen"].startswith("2026-11-23T01:") and alert["created_at"]
    assert "198.51.100.4" in alert["summary"]
    assert alert["link"] == f"/api/v1/alerts/{alert_id}"
    assert alert["url"] == f"https://soc.phutho.gov.vn/api/v1/alerts/{alert_id}"
    row = delivery_of(db, alert_id)
    assert row.target == f"{receiver.url}/hooks/soc"
    assert row.response is not None and row.response["status_code"] == 200


def test_an_unsigned_webhook_carries_no_signature_header(
        db: Database, soc_config: SocConfig, systems: None) -> None:
    with http_receiver() as receiver:
        cfg = notify_config(soc_config, {"out": {"type": "webhook", "url": receiver.url}}, ROUTE_ALL_HIGH)
        deliver(db, cfg)

    [request] = receiver.requests
    assert "X-SOC-Signature" not in request.headers
    assert request.json()["alert"]["url"] is None


# --- Telegram -------------------------------------------------------------------------

def test_telegram_gets_a_send_message_body_with_escaped_html(
        db: Database, soc_config: SocConfig, systems: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOC_TEST_BOT_TOKEN", "987654:XYZ-bi-mat")
    with http_receiver() as receiver:
        cfg = notify_config(soc_config, {"out": {"type": "telegram", "url": f"{receiver.url}/bot{{token}}/sendMessage",
                                                 "token_env": "SOC_TEST_BOT_TOKEN", "chat_id": "-1001234567890"}},
                            ROUTE_ALL_HIGH)
        dispatcher = Dispatcher(db, cfg)
        dispatcher.route_new(utcnow())
        alert_id = raise_alert(db, "high", system="motcua-xa-thanh-son", ip="203.0.113.50")
        with db.write() as session:
            alert = session.get(Alert, alert_id)
            assert alert is not None
            alert.key_fields = {**alert.key_fields, "user.name": "<admin> & co"}
        dispatcher.route_new(utcnow())
        results = asyncio.run(dispatcher.send_due(utcnow() + timedelta(seconds=1)))

    assert [r.status for r in results] == ["sent"]
    [request] = receiver.requests
    assert request.path == "/bot987654:XYZ-bi-mat/sendMessage"
    body = request.json()
    assert set(body) == {"chat_id", "text", "parse_mode", "disable_web_page_preview"}
    assert (body["chat_id"], body["parse_mode"], body["disable_web_page_preview"]) == ("-1001234567890", "HTML", True)
    assert body["text"].startswith("<b>Cảnh báo SOC mức CAO</b>\n<i>SOC alert, level HIGH</i>")
    assert "&lt;admin&gt; &amp; co" in body["text"] and "<admin>" not in body["text"]
    row = delivery_of(db, alert_id)
    assert "bi-mat" not in row.target and "987654" not in row.target
    assert row.target.endswith("/bot{token}/sendMessage chat -1001234567890")
    assert row.response == {"status_code": 200, "message_id": 1}


def test_telegram_answering_ok_false_is_a_failure_with_its_description(
        db: Database, soc_config: SocConfig, systems: None) -> None:
    with http_receiver() as receiver:
        receiver.answer(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"})
        cfg = notify_config(soc_config, {"out": {"type": "telegram", "url": f"{receiver.url}/botX/sendMessage",
                                                 "chat_id": "42"}}, ROUTE_ALL_HIGH)
        alert_id, results = deliver(db, cfg)

    assert [r.status for r in results] == ["failed"]
    row = delivery_of(db, alert_id)
    assert row.last_error == "Telegram 400: Bad Request: chat not found"
    assert row.attempts == 1


def test_telegram_flood_control_is_retried_after_the_wait_it_asks(
        db: Database, soc_config: SocConfig, systems: None) -> None:
    with http_receiver() as receiver:
        receiver.answer(429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 900",
                              "parameters": {"retry_after": 900}})
        cfg = notify_config(soc_config, {"out": {"type": "telegram", "url": f"{receiver.url}/botX/sendMessage",
                                                 "chat_id": "42"}}, ROUTE_ALL_HIGH)
        dispatcher = Dispatcher(db, cfg)
        dispatcher.route_new(utcnow())
        alert_id = raise_alert(db)
        dispatcher.route_new(utcnow())
        now = utcnow() + timedelta(seconds=1)
        results = asyncio.run(dispatcher.send_due(now))

    assert [r.status for r in results] == ["pending"]
    assert results[0].next_attempt_at == now + timedelta(seconds=900)
    assert delivery_of(db, alert_id).last_error == "Telegram 429: Too Many Requests: retry after 900"


# --- rendering --------------------------------------------------------------------------

def test_a_telegram_message_stays_within_the_bot_api_limit_and_keeps_its_link() -> None:
    notice = Notice.sample()
    bulky = replace(notice, test=False, summary="<b>" + "x" * 990,
                    key_fields={f"field.{i}": "<v>" * 300 for i in range(40)})
    rendering = Rendering(ZoneInfo("Asia/Ho_Chi_Minh"), "https://soc.phutho.gov.vn")

    text = telegram_text(bulky, rendering)

    assert len(text) <= TELEGRAM_MAX_CHARS
    assert text.endswith(f'<a href="https://soc.phutho.gov.vn/api/v1/alerts/{notice.id}">'
                         "Xem cảnh báo / View the alert</a>")
    assert "<v>" not in text and "<b>xxx" not in text
    assert "<v>" not in html_body(bulky, rendering)

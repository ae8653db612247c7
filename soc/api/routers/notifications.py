"""Routes of /api/v1/notifications: the record of deliveries, the configured channels
and routes (without secrets) and a test message.

Channels and routes come from the configuration file, so nothing here changes them;
the only write is the test send, which is audited (``notification.test``).
Deliveries are visible within the caller's scope through their alert's agency.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, or_, select
from starlette.concurrency import run_in_threadpool

from soc.alerts.models import Alert
from soc.api.deps import ServiceAdmin, ServiceReader, StateDep
from soc.api.errors import ApiError
from soc.audit.trail import Actor, record
from soc.i18n import register
from soc.identity.principal import Principal
from soc.notify.channels import build_channels
from soc.notify.message import Notice
from soc.notify.models import NotificationDelivery
from soc.timeparse import parse_time
from soc.triage.examples import ALERT_ID

router = APIRouter(prefix="/api/v1", tags=["notifications"])

register({
    "notify.bad_cursor": (
        "Con trỏ trang '{cursor}' không hợp lệ: dùng giá trị next_cursor của trang trước",
        "Invalid page cursor '{cursor}': pass the next_cursor of the previous page",
    ),
    "notify.bad_since": (
        "Thời điểm '{value}' không hợp lệ: dùng dạng 24h, 7d, 30m hoặc ISO 8601 (2026-11-23T10:00:00Z)",
        "Invalid time '{value}': use 24h, 7d, 30m or ISO 8601 (2026-11-23T10:00:00Z)",
    ),
})


# Examples: a high alert of the public-services portal routed to a webhook (sent) and to
# e-mail (relay unreachable, retried later), as the service answers.
_DELIVERED = {"rule_title": "Burst Of Failed Citizen Logins From One Address On The Public-Services Portal",
              "level": "high", "agency_id": "ttphvcc", "system_id": "dvc-portal"}
_DELIVERIES_EXAMPLE = {"items": [
    {"id": "a18e6935-0285-45cd-854b-4bf1d378b811", "alert_id": ALERT_ID, "route": "nghiem-trong",
     "channel": "soc-webhook", "kind": "webhook", "target": "https://chatops.phutho.gov.vn/hooks/soc",
     "status": "sent", "attempts": 1, "last_error": None, "next_attempt_at": None,
     "created_at": "2026-11-24T02:14:12.647243+00:00", "sent_at": "2026-11-24T02:14:13.154762+00:00",
     "response": {"status_code": 200, "body": '{"ok": true}'}, "alert": _DELIVERED},
    {"id": "320f180a-40f9-4255-ac12-f21b68f479df", "alert_id": ALERT_ID, "route": "nghiem-trong",
     "channel": "email-soc", "kind": "email", "target": "antt@phutho.gov.vn", "status": "pending", "attempts": 1,
     "last_error": "ConnectionRefusedError: [Errno 111] Connection refused",
     "next_attempt_at": "2026-11-24T02:14:43.154762+00:00", "created_at": "2026-11-24T02:14:12.647243+00:00",
     "sent_at": None, "response": None, "alert": _DELIVERED},
], "next_cursor": None}
_CHANNELS_EXAMPLE = {
    "channels": [
        {"name": "soc-webhook", "kind": "webhook", "target": "https://chatops.phutho.gov.vn/hooks/soc",
         "headers": ["Authorization"], "signed": True, "timeout": 10.0},
        {"name": "truc-ca-telegram", "kind": "telegram",
         "target": "https://api.telegram.org/bot{token}/sendMessage chat -1001234567890", "headers": [],
         "signed": False, "timeout": 10.0, "chat_id": "-1001234567890"},
        {"name": "email-soc", "kind": "email", "target": "antt@phutho.gov.vn", "host": "mail.phutho.gov.vn",
         "port": 587, "starttls": True, "ssl": False, "login": True, "sender": "soc@phutho.gov.vn",
         "to": ["antt@phutho.gov.vn"]},
    ],
    "routes": [
        {"name": "nghiem-trong", "min_level": "high", "agencies": [], "channels": ["soc-webhook", "email-soc"],
         "retro": False},
        {"name": "xa-thanh-son", "min_level": "medium", "agencies": ["ubnd-xa-thanh-son"],
         "channels": ["truc-ca-telegram"], "retro": False},
    ],
    "max_attempts": 6, "retry_backoff_seconds": 30.0, "interval_seconds": 10.0,
    "base_url": "https://soc.phutho.gov.vn",
}
_TEST_SEND_EXAMPLE = {"channel": "soc-webhook", "kind": "webhook", "target": "https://chatops.phutho.gov.vn/hooks/soc",
                      "ok": True, "retryable": False, "error": None,
                      "response": {"status_code": 200, "body": '{"ok": true}'}, "retry_after": None}


def _json_example(example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"example": example}}}}


def _delivery(row: NotificationDelivery, alert: Any) -> dict[str, Any]:
    return {
        "id": row.id, "alert_id": row.alert_id, "route": row.route, "channel": row.channel, "kind": row.kind,
        "target": row.target, "status": row.status, "attempts": row.attempts, "last_error": row.last_error,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.status == "pending" else None,
        "created_at": row.created_at.isoformat(), "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "response": row.response,
        "alert": {"rule_title": alert.rule_title, "level": alert.level, "agency_id": alert.agency_id,
                  "system_id": alert.system_id},
    }


def _encode_cursor(created_at: datetime, delivery_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at.isoformat(), delivery_id])).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, delivery_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(created)
        if when.tzinfo is None or not isinstance(delivery_id, str):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ApiError(400, "notify.bad_cursor", cursor=cursor[:100]) from None
    return when, delivery_id


@router.get("/notifications/deliveries", summary="Lịch sử gửi thông báo / Notification deliveries",
            responses=_json_example(_DELIVERIES_EXAMPLE))
def list_deliveries(
    principal: ServiceReader, state: StateDep,
    status: Literal["pending", "sent", "failed"] | None = None,
    alert_id: Annotated[str | None, Query(max_length=36)] = None,
    channel: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[str | None, Query(description="24h, 7d, 30m or ISO 8601: deliveries created since")] = None,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Deliveries, newest first, of alerts within the caller's scope."""
    query = (select(NotificationDelivery, Alert.rule_title, Alert.level, Alert.agency_id, Alert.system_id)
             .join(Alert, Alert.id == NotificationDelivery.alert_id)
             .where(principal.scope.clause(Alert.agency_id)))
    if status is not None:
        query = query.where(NotificationDelivery.status == status)
    if alert_id is not None:
        query = query.where(NotificationDelivery.alert_id == alert_id)
    if channel is not None:
        query = query.where(NotificationDelivery.channel == channel)
    if since is not None:
        try:
            since_at = parse_time(since, tz=state.cfg.tz)
        except ValueError:
            raise ApiError(400, "notify.bad_since", value=since[:100]) from None
        query = query.where(NotificationDelivery.created_at >= since_at)
    if cursor is not None:
        at, last_id = _decode_cursor(cursor)
        query = query.where(or_(NotificationDelivery.created_at < at,
                                and_(NotificationDelivery.created_at == at, NotificationDelivery.id < last_id)))
    query = query.order_by(NotificationDelivery.created_at.desc(), NotificationDelivery.id.desc()).limit(limit + 1)
    with state.db.read() as session:
        rows = session.execute(query).all()
    page = rows[:limit]
    items = [_delivery(r[0], r) for r in page]
    next_cursor = _encode_cursor(page[-1][0].created_at, page[-1][0].id) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/notifications/channels", summary="Kênh và tuyến thông báo / Notification channels and routes",
            responses=_json_example(_CHANNELS_EXAMPLE))
def list_channels(principal: ServiceReader, state: StateDep) -> dict[str, Any]:
    """Configured channels and routes, as the configuration file says (no secrets)."""
    settings = state.cfg.notifications
    channels = build_channels(state.cfg)
    return {
        "channels": [channel.describe() for channel in channels.values()],
        "routes": [route.model_dump() for route in settings.routes],
        "max_attempts": settings.max_attempts,
        "retry_backoff_seconds": settings.retry_backoff_seconds,
        "interval_seconds": settings.interval_seconds,
        "base_url": settings.base_url,
    }


class TestSendBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"channel": "soc-webhook"}})

    channel: str = Field(min_length=1, max_length=100)


@router.post("/notifications/test", summary="Gửi thông báo thử / Send a test notification",
             responses=_json_example(_TEST_SEND_EXAMPLE))
async def send_test(body: TestSendBody, principal: ServiceAdmin, state: StateDep) -> dict[str, Any]:
    """Send a test message through one channel now and say what the receiver answered."""
    channels = build_channels(state.cfg)
    channel = channels.get(body.channel)
    if channel is None:
        raise ApiError(404, "api.not_found", what="notification channel", id=body.channel)
    outcome = await channel.send(Notice.sample())
    result = {"channel": channel.name, "kind": channel.kind, "target": channel.target, **outcome.as_dict()}
    await run_in_threadpool(_audit_test, state, principal, result)
    return result


def _audit_test(state: Any, principal: Principal, result: dict[str, Any]) -> None:
    with state.db.write() as session:
        record(session, Actor.of(principal), "notification.test", "notification_channel", result["channel"],
               after={k: result[k] for k in ("kind", "target", "ok", "retryable", "error")})

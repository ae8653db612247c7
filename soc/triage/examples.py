"""Examples of the alert and incident API's answers (OpenAPI), trimmed from real
answers of the service: credential stuffing against the province's public-services
portal (``dvc-portal``, run by ``ttphvcc``) from 203.0.113.7, caught by the rules
``rules/apps/dvc_login_bruteforce_source.yml`` and ``dvc_success_after_failures.yml``,
then escalated into an incident. :mod:`tests.service.test_openapi` validates each
against its schema."""

from __future__ import annotations

import copy
from typing import Any

ALERT_ID = "0b6f1f1e-3c55-4d43-9d59-1c0d6c1f9a10"
TAKEOVER_ALERT_ID = "7c2e9a41-5b8d-4f3a-a1c6-3e9d0f7b2a58"
USER_ID = "5d1c9b7e-8a2f-4e3b-9c61-2f7a4d0e8b35"
INCIDENT_ID = "c4a7e2d9-1f3b-4c8e-9a6d-5b2f0e7c1a34"
BRUTEFORCE_RULE_ID = "0b9ff6e8-cae4-4c6d-8a17-fff190a3701d"
_TAKEOVER_RULE_ID = "ab4674a6-a2e8-4e7c-b969-574d3649ac62"
_BRUTEFORCE_TITLE = "Burst Of Failed Citizen Logins From One Address On The Public-Services Portal"
_TAKEOVER_TITLE = "Citizen Account Taken Over After Credential Stuffing On The Public-Services Portal"
_SYSTEM_NAME = "Hệ thống thông tin giải quyết thủ tục hành chính (Một cửa điện tử, Cổng dịch vụ công)"

ANALYST = {"id": USER_ID, "username": "nguyenvana", "display_name": "Nguyễn Văn A"}

EVENT: dict[str, Any] = {
    "@timestamp": "2026-11-24T02:13:41.000Z",
    "event": {"kind": "event", "module": "app", "dataset": "dvc.audit", "outcome": "failure",
              "action": "CITIZEN_LOGIN_FAILED", "provider": "dvc_portal", "category": ["authentication"],
              "type": ["start"], "id": "a1f481d2e74f3a912b6411d238d0bbc9",
              "original": '{"ts":1795486421000,"portal":"dichvucong","event_type":"CITIZEN_LOGIN_FAILED",'
                          '"status":"FAILED","citizen":{"id":"001090012324","username":"congdan24"},'
                          '"client":{"ip":"203.0.113.7","user_agent":"python-requests/2.31"}}',
              "ingested": "2026-11-24T02:13:44.208Z"},
    "user": {"name": "congdan24", "id": "001090012324"},
    "source": {"ip": "203.0.113.7"},
    "user_agent": {"original": "python-requests/2.31"},
    "service": {"name": "dichvucong"},
    "input": {"type": "http"},
    "log": {"source": {"address": "10.10.2.15"}},
    "gov": {"system": {"id": "dvc-portal", "name": _SYSTEM_NAME, "type": "one_stop_portal"},
            "agency": {"id": "ttphvcc", "name": "Trung tâm Phục vụ hành chính công tỉnh"},
            "classification": 3, "level": "province"},
}

ALERT: dict[str, Any] = {
    "id": ALERT_ID, "rule_id": BRUTEFORCE_RULE_ID, "rule_title": _BRUTEFORCE_TITLE, "level": "high",
    "kind": "correlation", "status": "acknowledged", "tactics": ["Credential Access"],
    "techniques": ["T1110.001", "T1110.004"],
    "dedup_key": "d01f40bbff89100cad6056943234ba79247b74b17e2675f8cc88532fd97fae23", "count": 25,
    "first_seen": "2026-11-24T02:10:05+00:00", "last_seen": "2026-11-24T02:13:41+00:00",
    "created_at": "2026-11-24T02:14:02.418305+00:00", "updated_at": "2026-11-24T02:21:37.102944+00:00",
    "version": 2,
    "event_ids": ["90afca8c72aba3be71f761d0498f4691", "0f7d488042a4e906b10880664cf444cf",
                  "a1f481d2e74f3a912b6411d238d0bbc9"],
    "key_fields": {"source.ip": "203.0.113.7", "user.name": "congdan15", "user_agent.original": "python-requests/2.31",
                   "event.action": "CITIZEN_LOGIN_FAILED", "event.outcome": "failure"},
    "system_id": "dvc-portal", "agency_id": "ttphvcc", "level_gov": "province", "classification": 3,
    "retro": False, "hunt_id": None,
    "summary": f"{_BRUTEFORCE_TITLE} từ 203.0.113.7 (25 sự kiện) / {_BRUTEFORCE_TITLE} from 203.0.113.7 (25 events)",
    "assignee_id": USER_ID, "resolution": None, "acknowledged_at": "2026-11-24T02:21:37.102944+00:00",
    "resolved_at": None, "status_changed_at": "2026-11-24T02:21:37.102944+00:00", "incident_id": None,
    "sla": {"acknowledge_due": "2026-11-24T03:14:02.418305+00:00", "acknowledge_breached": False,
            "acknowledged_after_s": 454.685, "resolve_due": "2026-11-25T02:14:02.418305+00:00",
            "resolve_breached": False, "resolved_after_s": None},
    "assignee": ANALYST,
}

TAKEOVER_ALERT: dict[str, Any] = {
    **ALERT, "id": TAKEOVER_ALERT_ID, "rule_id": _TAKEOVER_RULE_ID, "rule_title": _TAKEOVER_TITLE,
    "status": "new", "tactics": ["Credential Access", "Initial Access"], "techniques": ["T1110.004", "T1078"],
    "dedup_key": "4958fe876986fa04b81be0e7a047a3e38a0915872aefb162af0a3d919c6db1b8", "count": 26,
    "first_seen": "2026-11-24T02:10:05+00:00", "last_seen": "2026-11-24T02:14:26+00:00",
    "created_at": "2026-11-24T02:15:03.771402+00:00", "updated_at": "2026-11-24T02:15:03.771402+00:00",
    "version": 1, "event_ids": ["90afca8c72aba3be71f761d0498f4691", "5e2c7d19b3a84f06a9d1c2e3f4b5a697"],
    "key_fields": {"source.ip": "203.0.113.7", "user.name": "congdan17", "event.action": "CITIZEN_LOGIN"},
    "summary": f"{_TAKEOVER_TITLE} từ 203.0.113.7 (26 sự kiện) / {_TAKEOVER_TITLE} from 203.0.113.7 (26 events)",
    "assignee_id": None, "acknowledged_at": None, "status_changed_at": None,
    "sla": {"acknowledge_due": "2026-11-24T03:15:03.771402+00:00", "acknowledge_breached": False,
            "acknowledged_after_s": None, "resolve_due": "2026-11-25T02:15:03.771402+00:00",
            "resolve_breached": False, "resolved_after_s": None},
    "assignee": None,
}

COMMENT: dict[str, Any] = {
    "id": "e8f1b3c5-7a9d-4e2f-b6c0-1d3a5e7f9b24", "alert_id": ALERT_ID, "author_id": USER_ID,
    "author_name": "nguyenvana",
    "body": "Đã chặn IP 203.0.113.7 trên WAF của Cổng dịch vụ công / Blocked 203.0.113.7 at the portal's WAF",
    "created_at": "2026-11-24T02:23:10.554120+00:00",
}

ALERT_DETAIL: dict[str, Any] = {
    **ALERT, "comments": [COMMENT],
    "evidence": {"total": 3, "shown": 1, "events": [EVENT], "error": None},
    "incident": None,
}

ALERT_PAGE: dict[str, Any] = {
    "items": [ALERT],
    "next_cursor": "eyJrIjoiYWxlcnRzOmxhc3Rfc2VlbjpkZXNjIiwidiI6WyIyMDI2LTExLTI0VDAyOjEzOjQxKzAwOjAwIiwiMGI2Zj"
                   "FmMWUtM2M1NS00ZDQzLTlkNTktMWMwZDZjMWY5YTEwIl19",
    "total": 2,
    "facets": {"status": [{"value": "acknowledged", "count": 1}, {"value": "new", "count": 1}],
               "level": [{"value": "high", "count": 2}]},
}

ALERT_GROUPS: dict[str, Any] = {
    "by": "rule",
    "items": [
        {"rule_id": _TAKEOVER_RULE_ID, "rule_title": _TAKEOVER_TITLE, "total": 1, "open": 1, "events": 26,
         "max_level": "high", "first_seen": "2026-11-24T02:10:05+00:00", "last_seen": "2026-11-24T02:14:26+00:00"},
        {"rule_id": BRUTEFORCE_RULE_ID, "rule_title": _BRUTEFORCE_TITLE, "total": 1, "open": 1, "events": 25,
         "max_level": "high", "first_seen": "2026-11-24T02:10:05+00:00", "last_seen": "2026-11-24T02:13:41+00:00"},
    ],
    "truncated": False,
}

_MISSING = "9a1e5c3d-6b7f-4a2e-8c1d-0f3e5a7b9c21"
BULK_OUT: dict[str, Any] = {
    "results": [
        {"id": TAKEOVER_ALERT_ID, "ok": True, "status_code": 200, "reason": None, "reason_vi": None, "version": 2},
        {"id": _MISSING, "ok": False, "status_code": 404, "reason": f"No alert '{_MISSING}'",
         "reason_vi": f"Không tìm thấy alert '{_MISSING}'", "version": None},
    ],
    "succeeded": 1, "failed": 1, "more": False,
}

_INTRUSION = {"vi": "Xâm nhập hệ thống", "en": "System intrusion"}
_ACTION = {"at": "2026-11-24T02:35:40.120934+00:00", "by": "nguyenvana", "by_id": USER_ID,
           "action": "Chặn 203.0.113.7 trên WAF, khóa tài khoản congdan17 / "
                     "Blocked 203.0.113.7 at the WAF, locked account congdan17"}

INCIDENT: dict[str, Any] = {
    "id": INCIDENT_ID, "code": "SC-2026-0001",
    "title": "Dò mật khẩu công dân trên Cổng dịch vụ công / Citizen credential stuffing on the public-services portal",
    "description": "25 lần đăng nhập thất bại từ 203.0.113.7 trong 4 phút, tài khoản congdan17 bị chiếm / "
                   "25 failed logins from 203.0.113.7 within 4 minutes, account congdan17 taken over",
    "severity": "high", "classification": "intrusion", "classification_label": _INTRUSION, "status": "contained",
    "agency_id": "ttphvcc", "affected_systems": ["dvc-portal"], "affected_agencies": ["ttphvcc"],
    "occurred_at": None, "detected_at": "2026-11-24T02:10:05+00:00", "reported_at": None, "reported_to": None,
    "resolved_at": None, "actions_taken": [_ACTION], "impact": "", "assignee_id": USER_ID, "created_by": USER_ID,
    "created_at": "2026-11-24T02:30:12.345678+00:00", "updated_at": "2026-11-24T02:41:09.902117+00:00",
    "version": 4,
    "report": {
        "legal_basis": "Nghị định 331/2026/NĐ-CP Điều 31.2.d; Luật 116/2025/QH15 Điều 40.1.c / "
                       "Decree 331/2026 Art. 31.2.d; Law 116 Art. 40.1.c",
        "report_to": "Đơn vị chuyên trách của Bộ Công an (A05 hoặc Công an tỉnh) / "
                     "Ministry of Public Security specialised body (A05 or provincial police)",
        "detected_at": "2026-11-24T02:10:05+00:00", "classified_at": "2026-11-24T02:30:12.345678+00:00",
        "category": "intrusion", "category_label": _INTRUSION, "severity": "high", "national_severity": "serious",
        "national_severity_label": {"vi": "Sự cố nghiêm trọng", "en": "Serious incident"},
        "immediate_notice_required": False, "initial_notice_due": "2026-11-25T02:10:05+00:00",
        "report_due": "2026-11-27T02:10:05+00:00", "legacy_report_due": "2026-11-29T02:10:05+00:00",
        "deadline_hours": 24, "reported_at": None, "reported_to": None, "hours_to_report": None,
        "within_deadline": None, "overdue": False, "hours_left": 23.48, "occurred_at": None,
        "affected_systems": [{"id": "dvc-portal", "name": _SYSTEM_NAME, "agency_id": "ttphvcc", "classification": 3}],
        "affected_agencies": ["ttphvcc"], "actions_taken": 1, "impact": "", "status": "contained",
        "resolved_at": None,
    },
}


def _in_incident(alert: dict[str, Any], version: int) -> dict[str, Any]:
    """An alert as escalating it leaves it: in progress, pointing at the incident."""
    out = copy.deepcopy(alert)
    out.update(status="in_progress", incident_id=INCIDENT_ID, version=version,
               updated_at="2026-11-24T02:33:51.640233+00:00", status_changed_at="2026-11-24T02:33:51.640233+00:00")
    if out["acknowledged_at"] is None:
        out["acknowledged_at"] = out["status_changed_at"]
        out["sla"]["acknowledged_after_s"] = 1127.869
    return out


INCIDENT_DETAIL: dict[str, Any] = {
    **INCIDENT, "alerts": [_in_incident(ALERT, 3), _in_incident(TAKEOVER_ALERT, 2)],
}

INCIDENT_PAGE: dict[str, Any] = {"items": [INCIDENT], "next_cursor": None}

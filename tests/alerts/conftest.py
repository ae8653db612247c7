"""Realistic detections for the alert tests: ECS events as the pipeline produces them
(parsed, enriched with ``gov.*``) and rules as the loader describes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from collectors.event import Event, stable_id
from soc.db import make_engine, migrate
from soc.detect.model import Detection, RuleInfo

SSH_FAILED = RuleInfo(
    id="3c4f2a51-8c0e-4f8e-9b53-6f2d8a1e7c10",
    title="Đăng nhập SSH thất bại / SSH failed login",
    level="low",
    tags=("attack.credential-access", "attack.t1110.001"),
)
SSH_BRUTE_FORCE = RuleInfo(
    id="b1f0d6a2-5e7c-4d3b-8a9f-2c6e1d4b7a93",
    title="Dò mật khẩu SSH / SSH brute force",
    level="high",
    kind="correlation",
    tags=("attack.credential_access", "attack.t1110", "attack.t1110.001"),
)
SQLI = RuleInfo(
    id="5513deaf-f49a-46c2-a6c8-3f111b5cb453",
    title="SQL Injection Strings In URI",
    level="high",
    tags=("attack.initial-access", "attack.t1190"),
)

GOV: dict[str, dict[str, Any]] = {
    "ad-servers": {"system": {"id": "ad-servers", "name": "Máy chủ và hệ thống thư mục (AD, Linux)", "type": "servers"},
                   "agency": {"id": "so-khcn", "name": "Sở Khoa học và Công nghệ"},
                   "classification": 3, "level": "province"},
    "portal": {"system": {"id": "portal", "name": "Cổng thông tin điện tử tỉnh", "type": "web_portal"},
               "agency": {"id": "vp-ubnd-tinh", "name": "Văn phòng UBND tỉnh"},
               "classification": 2, "level": "province"},
    "motcua-xa-thanh-son": {"system": {"id": "motcua-xa-thanh-son", "name": "Một cửa xã Thanh Sơn",
                                       "type": "one_stop_portal"},
                            "agency": {"id": "ubnd-xa-thanh-son", "name": "UBND xã Thanh Sơn"},
                            "classification": 2, "level": "commune"},
}


def sshd_failed(ip: str = "203.0.113.7", user: str = "root", ts: str = "2026-11-23T01:00:00.000Z",
                system: str = "ad-servers", n: int = 0, host: str = "app-linux01") -> Event:
    """``sshd[4242]: Failed password for root from 203.0.113.7 port 42393 ssh2``, parsed."""
    port = 42393 + n
    return {
        "@timestamp": ts,
        "message": f"Failed password for {user} from {ip} port {port} ssh2",
        "event": {"id": stable_id("auth.log", system, ip, user, ts, n), "kind": "event",
                  "category": ["authentication"], "type": ["start"], "action": "ssh_login",
                  "outcome": "failure", "module": "system", "dataset": "system.auth"},
        "source": {"ip": ip, "port": port},
        "user": {"name": user},
        "host": {"name": host},
        "process": {"name": "sshd", "pid": 4242},
        "related": {"ip": [ip], "user": [user]},
        "system": {"auth": {"ssh": {"event": "Failed", "method": "password"}}},
        "gov": GOV[system],
    }


def web_request(ip: str = "10.10.99.20", url: str = "/tin-tuc?id=1%20UNION%20SELECT%20null,null--",
                ts: str = "2026-11-23T02:00:00.000Z", system: str = "portal", n: int = 0) -> Event:
    """An nginx access line of a SQL injection probe against the provincial portal."""
    return {
        "@timestamp": ts,
        "event": {"id": stable_id("access.log", system, ip, url, ts, n), "kind": "event", "category": ["web"],
                  "type": ["access"], "outcome": "success", "module": "nginx", "dataset": "nginx.access"},
        "source": {"ip": ip},
        "destination": {"ip": "10.10.5.10"},
        "host": {"name": "www.phutho.gov.vn"},
        "url": {"original": url, "domain": "phutho.gov.vn"},
        "http": {"request": {"method": "GET"}, "response": {"status_code": 200}},
        "user_agent": {"original": "Mozilla/5.0 (compatible; OpenVAS-VT 22.4)"},
        "gov": GOV[system],
    }


def single(rule: RuleInfo, event: Event, *, retro: bool = False) -> Detection:
    """A detection of a single-event rule, as the detector emits it."""
    ts = event["@timestamp"]
    return Detection(rule=rule, events=[event], event_ids=[event["event"]["id"]], first_seen=ts, last_seen=ts,
                     retro=retro)


def correlation(rule: RuleInfo, events: list[Event], group: dict[str, Any]) -> Detection:
    return Detection(rule=rule, events=events, event_ids=[e["event"]["id"] for e in events],
                     first_seen=events[0]["@timestamp"], last_seen=events[-1]["@timestamp"],
                     group=group, value=float(len(events)), event_count=len(events))


def ts(minute: int, hour: int = 1, day: int = 23) -> str:
    """An ISO UTC timestamp on 2026-11-``day`` (minutes may exceed 59)."""
    hour, minute = hour + minute // 60, minute % 60
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00.000Z"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'var' / 'soc.db'}"
    migrate(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()

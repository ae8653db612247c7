"""Accounts with passwords for the identity tests (the shared ``make_caller`` gives
token-only users)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from soc.audit.models import AuditEntry
from soc.audit.trail import Actor
from soc.db import Database
from soc.identity.scope import EVERYTHING
from soc.identity.users import create_user

PASSWORD = "mật-khẩu-thử-nghiệm-đủ-dài"


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    password: str


@pytest.fixture
def make_user(db: Database, agencies: list[str]) -> Callable[..., Account]:
    """``make_user(username, role="analyst", bound=["tinh-phu-tho"], password=PASSWORD)``."""

    def make(username: str, role: str = "analyst", bound: list[str] | None = None,
             password: str = PASSWORD) -> Account:
        with db.write() as session:
            user, _ = create_user(session, Actor.system("test"), EVERYTHING, username=username, role=role,
                                  agencies=bound or ["tinh-phu-tho"], password=password)
        return Account(user.id, user.username, password)

    return make


def sign_in(client: TestClient, username: str, password: str, *, keep_cookie: bool = False) -> httpx.Response:
    """POST /auth/login; by default forgets the cookie, so later requests use only what the test passes."""
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    if not keep_cookie:
        client.cookies.clear()
    return response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def audit_entries(db: Database, action: str | None = None) -> list[AuditEntry]:
    with db.read() as session:
        query = select(AuditEntry).order_by(AuditEntry.seq)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        return list(session.scalars(query))


def audit_text(entries: list[AuditEntry]) -> str:
    """Everything the entries' before/after hold, to look for secrets in."""
    parts: list[Any] = [[e.before, e.after] for e in entries]
    return json.dumps(parts, ensure_ascii=False)

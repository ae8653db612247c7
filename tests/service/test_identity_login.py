"""Signing in: sessions, cookies, generic failures, lockout, disabled accounts, expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from soc.api.state import AppState
from soc.audit.trail import Actor
from soc.config import AuthConfig
from soc.db import Database, utcnow
from soc.identity.errors import IdentityError
from soc.identity.login import login
from soc.identity.models import UserRow
from soc.identity.scope import EVERYTHING
from soc.identity.tokens import authenticate
from soc.identity.users import disable_user
from tests.service.conftest import Caller
from tests.service.identity_fixtures import PASSWORD, Account, audit_entries, audit_text, bearer, make_user, sign_in

__all__ = ["make_user"]

WRONG = "không-phải-mật-khẩu-này"
AUTH = AuthConfig(lockout_threshold=3, lockout_minutes=15, session_hours=8)


def _fail(db: Database, username: str, times: int, **kwargs: object) -> list[IdentityError]:
    errors = []
    for _ in range(times):
        with pytest.raises(IdentityError) as refused:
            login(db, AUTH, username, WRONG, **kwargs)  # type: ignore[arg-type]
        errors.append(refused.value)
    return errors


def test_login_answers_a_bearer_token_and_the_user(client: TestClient, make_user: Callable[..., Account]) -> None:
    account = make_user("lan", role="analyst", bound=["xa-hy-cuong"])
    response = sign_in(client, "lan", account.password)
    assert response.status_code == 200
    body = response.json()
    assert body["token"].startswith("soc_sess_") and body["token_type"] == "bearer"
    assert body["user"]["username"] == "lan" and body["user"]["agencies"] == ["xa-hy-cuong"]
    assert "password_hash" not in body["user"]
    assert client.get("/api/v1/auth/me", headers=bearer(body["token"])).status_code == 200


def test_login_sets_an_http_only_strict_session_cookie(client: TestClient, app_state: AppState,
                                                      make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    response = sign_in(client, account.username, account.password)
    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith(f"soc_session={response.json()['token']};")
    assert {"httponly", "max-age", "path"} <= attributes and "secure" not in attributes
    assert "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
    assert f"max-age={round(app_state.cfg.auth.session_hours * 3600)}" in cookie.lower()


def test_the_session_cookie_alone_authenticates(client: TestClient, make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    sign_in(client, account.username, account.password, keep_cookie=True)
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["user"]["username"] == "lan"


def test_cookie_is_marked_secure_when_configured(client: TestClient, app_state: AppState,
                                                make_user: Callable[..., Account]) -> None:
    app_state.cfg.auth.cookie_secure = True
    account = make_user("lan")
    cookie = sign_in(client, account.username, account.password).headers["set-cookie"]
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_usernames_are_case_insensitive(client: TestClient, make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    assert sign_in(client, "  LAN ", account.password).status_code == 200


def test_wrong_password_answers_a_generic_401(client: TestClient, make_user: Callable[..., Account]) -> None:
    make_user("lan")
    response = sign_in(client, "lan", WRONG)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == "Wrong username or password"
    assert response.json()["detail_vi"] == "Sai tên đăng nhập hoặc mật khẩu"


def test_unknown_username_answers_exactly_like_a_wrong_password(client: TestClient,
                                                                make_user: Callable[..., Account]) -> None:
    make_user("lan")
    wrong_password = sign_in(client, "lan", WRONG)
    unknown_user = sign_in(client, "nobody", WRONG)
    assert unknown_user.status_code == wrong_password.status_code == 401
    assert unknown_user.json() == wrong_password.json()


def test_login_is_the_only_route_open_without_credentials(client: TestClient) -> None:
    assert client.get("/api/v1/auth/me").status_code == 401
    assert client.post("/api/v1/auth/logout").status_code == 401
    assert client.get("/api/v1/auth/tokens").status_code == 401


def test_success_records_the_login_and_resets_failures(db: Database, make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    _fail(db, "lan", 2)
    user, token, _ = login(db, AUTH, "lan", account.password, "10.0.0.7")
    assert user.failed_logins == 0 and user.last_login_at is not None
    assert token.kind == "session" and token.source_ip == "10.0.0.7"
    with db.read() as session:
        assert session.get_one(UserRow, account.id).failed_logins == 0
    entry = audit_entries(db, "auth.login")[-1]
    assert entry.actor_name == "lan" and entry.source_ip == "10.0.0.7" and entry.target_id == account.id


def test_each_failure_is_audited_with_its_reason(db: Database, make_user: Callable[..., Account]) -> None:
    make_user("lan")
    _fail(db, "lan", 1)
    _fail(db, "ghost", 1)
    reasons = [(e.after or {})["reason"] for e in audit_entries(db, "auth.login_failed")]
    assert reasons == ["wrong_password", "unknown_user"]
    assert WRONG not in audit_text(audit_entries(db))


def test_a_session_lasts_the_configured_hours(db: Database, make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    _, token, secret = login(db, AUTH, "lan", account.password)
    assert token.expires_at is not None and token.expires_at - token.created_at == timedelta(hours=8)
    assert authenticate(db, secret, now=token.expires_at - timedelta(seconds=1)) is not None
    assert authenticate(db, secret, now=token.expires_at) is None


def test_login_does_not_change_the_users_version(db: Database, make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    with db.read() as session:
        before = session.get_one(UserRow, account.id).version
    _fail(db, "lan", 1)
    login(db, AUTH, "lan", account.password)
    with db.read() as session:
        assert session.get_one(UserRow, account.id).version == before


def test_threshold_failures_lock_the_account(db: Database, make_user: Callable[..., Account]) -> None:
    make_user("lan")
    errors = _fail(db, "lan", AUTH.lockout_threshold)
    assert [e.status for e in errors] == [401] * (AUTH.lockout_threshold - 1) + [423]
    assert audit_entries(db, "auth.lockout")[-1].after["failed_logins"] == AUTH.lockout_threshold  # type: ignore[index]


def test_a_locked_account_refuses_even_the_right_password(client: TestClient, app_state: AppState,
                                                         make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    for _ in range(app_state.cfg.auth.lockout_threshold):
        sign_in(client, "lan", WRONG)
    response = sign_in(client, "lan", account.password)
    assert response.status_code == 423
    assert int(response.headers["retry-after"]) == round(app_state.cfg.auth.lockout_minutes * 60)
    assert "locked" in response.json()["detail"] and "khóa" in response.json()["detail_vi"]


def test_a_lock_expires_after_the_configured_minutes(db: Database, make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    start = utcnow()
    _fail(db, "lan", AUTH.lockout_threshold, now=start)
    with pytest.raises(IdentityError) as still_locked:
        login(db, AUTH, "lan", account.password, now=start + timedelta(minutes=14))
    assert still_locked.value.status == 423 and still_locked.value.headers == {"Retry-After": "60"}
    user, _, _ = login(db, AUTH, "lan", account.password, now=start + timedelta(minutes=15, seconds=1))
    assert user.locked_until is None and user.failed_logins == 0


def test_failures_count_again_from_zero_after_a_lock_expires(db: Database,
                                                            make_user: Callable[..., Account]) -> None:
    make_user("lan")
    start = utcnow()
    _fail(db, "lan", AUTH.lockout_threshold, now=start)
    later = _fail(db, "lan", 1, now=start + timedelta(minutes=16))
    assert later[0].status == 401


def test_an_admin_unlocks_a_locked_account(client: TestClient, app_state: AppState,
                                          make_user: Callable[..., Account],
                                          make_caller: Callable[..., Caller]) -> None:
    account = make_user("lan")
    admin = make_caller("admin")
    for _ in range(app_state.cfg.auth.lockout_threshold):
        sign_in(client, "lan", WRONG)
    unlocked = client.post(f"/api/v1/users/{account.id}/unlock", headers=admin.headers)
    assert unlocked.status_code == 200 and unlocked.json()["locked_until"] is None
    assert sign_in(client, "lan", account.password).status_code == 200
    assert audit_entries(app_state.db, "user.unlock")[-1].actor_name == admin.user.username


def test_a_disabled_user_cannot_log_in(client: TestClient, db: Database, make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    with db.write() as session:
        disable_user(session, Actor.system("test"), EVERYTHING, account.id)
    response = sign_in(client, "lan", account.password)
    assert response.status_code == 401 and response.json()["detail"] == "Wrong username or password"


def test_disabling_a_user_ends_their_sessions_and_api_tokens(client: TestClient, db: Database,
                                                            make_user: Callable[..., Account],
                                                            make_caller: Callable[..., Caller]) -> None:
    account = make_user("lan")
    session_token = sign_in(client, "lan", account.password).json()["token"]
    api_token = client.post("/api/v1/auth/tokens", json={"name": "script"},
                            headers=bearer(session_token)).json()["token"]
    admin = make_caller("admin")
    assert client.delete(f"/api/v1/users/{account.id}", headers=admin.headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(session_token)).status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(api_token)).status_code == 401


def test_logout_revokes_the_token_and_clears_the_cookie(client: TestClient, db: Database,
                                                       make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    token = sign_in(client, "lan", account.password).json()["token"]
    response = client.post("/api/v1/auth/logout", headers=bearer(token))
    assert response.status_code == 204
    assert response.headers["set-cookie"].startswith('soc_session="";') or "max-age=0" in \
        response.headers["set-cookie"].lower()
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert audit_entries(db, "auth.logout")[-1].actor_name == "lan"


def test_a_user_without_a_password_cannot_log_in(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    robot = make_caller("viewer", username="robot")
    assert sign_in(client, "robot", PASSWORD).status_code == 401
    assert client.get("/api/v1/auth/me", headers=robot.headers).status_code == 200

"""Who am I, own password, and API tokens for automation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from soc.api.state import AppState
from soc.db import Database
from tests.service.conftest import Caller
from tests.service.identity_fixtures import PASSWORD, Account, audit_entries, audit_text, bearer, make_user, sign_in

__all__ = ["make_user"]

NEW_PASSWORD = "một-mật-khẩu-mới-còn-dài-hơn"


def _token(client: TestClient, account: Account) -> str:
    token: str = sign_in(client, account.username, account.password).json()["token"]
    return token


def test_me_tells_role_permissions_and_scope(client: TestClient, make_user: Callable[..., Account]) -> None:
    account = make_user("lan", role="analyst", bound=["xa-hy-cuong"])
    me = client.get("/api/v1/auth/me", headers=bearer(_token(client, account))).json()
    assert me["user"]["username"] == "lan" and me["role"] == "analyst"
    assert me["permissions"] == ["read", "triage", "users.read"]
    assert me["scope"] == {"all": False, "agencies": ["xa-chu-hoa", "xa-hy-cuong"]}
    assert me["token"]["kind"] == "session" and me["token"]["current"] is True


def test_me_of_a_province_user_has_all_scope(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    me = client.get("/api/v1/auth/me", headers=make_caller("viewer", ["tinh-phu-tho"]).headers).json()
    assert me["scope"] == {"all": True, "agencies": []} and me["permissions"] == ["read"]


def test_an_api_token_is_shown_once_and_authenticates(client: TestClient, make_user: Callable[..., Account]) -> None:
    session = bearer(_token(client, make_user("lan")))
    created = client.post("/api/v1/auth/tokens", json={"name": "siem-export", "expires_in_days": 30}, headers=session)
    assert created.status_code == 201
    body = created.json()
    assert body["token"].startswith("soc_api_") and body["token"].startswith(body["prefix"])
    assert body["kind"] == "api" and body["name"] == "siem-export"
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["created_at"])
    assert lifetime == timedelta(days=30)
    me = client.get("/api/v1/auth/me", headers=bearer(body["token"])).json()
    assert me["token"]["kind"] == "api"
    listed = client.get("/api/v1/auth/tokens", headers=session).json()["tokens"]
    assert all("token" not in t and "digest" not in t for t in listed)


def test_api_tokens_default_to_the_configured_lifetime(client: TestClient, app_state: AppState,
                                                      make_caller: Callable[..., Caller]) -> None:
    app_state.cfg.auth.api_token_days = 90
    body = client.post("/api/v1/auth/tokens", json={"name": "backup"}, headers=make_caller("viewer").headers).json()
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["created_at"])
    assert lifetime == timedelta(days=90)


def test_api_tokens_without_a_configured_lifetime_do_not_expire(client: TestClient,
                                                                make_caller: Callable[..., Caller]) -> None:
    body = client.post("/api/v1/auth/tokens", json={"name": "backup"}, headers=make_caller("viewer").headers).json()
    assert body["expires_at"] is None


def test_token_list_shows_own_live_tokens_and_marks_the_current(client: TestClient,
                                                               make_caller: Callable[..., Caller]) -> None:
    caller, other = make_caller("viewer"), make_caller("viewer")
    client.post("/api/v1/auth/tokens", json={"name": "second"}, headers=caller.headers)
    client.post("/api/v1/auth/tokens", json={"name": "not-mine"}, headers=other.headers)
    tokens = client.get("/api/v1/auth/tokens", headers=caller.headers).json()["tokens"]
    assert sorted(t["name"] for t in tokens) == ["second", "test"]
    assert [t["name"] for t in tokens if t["current"]] == ["test"]


def test_revoking_an_own_token_stops_it(client: TestClient, db: Database, make_caller: Callable[..., Caller]) -> None:
    caller = make_caller("viewer")
    created = client.post("/api/v1/auth/tokens", json={"name": "temp"}, headers=caller.headers).json()
    assert client.delete(f"/api/v1/auth/tokens/{created['id']}", headers=caller.headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(created["token"])).status_code == 401
    assert [t["name"] for t in client.get("/api/v1/auth/tokens", headers=caller.headers).json()["tokens"]] == ["test"]
    assert [e.target_id for e in audit_entries(db, "token.revoke")] == [created["id"]]


def test_nobody_revokes_anothers_token_through_their_own_list(client: TestClient,
                                                             make_caller: Callable[..., Caller]) -> None:
    owner, other = make_caller("viewer"), make_caller("admin")
    created = client.post("/api/v1/auth/tokens", json={"name": "mine"}, headers=owner.headers).json()
    assert client.delete(f"/api/v1/auth/tokens/{created['id']}", headers=other.headers).status_code == 404
    assert client.get("/api/v1/auth/me", headers=bearer(created["token"])).status_code == 200


def test_token_creation_is_audited_without_the_secret(client: TestClient, db: Database,
                                                     make_caller: Callable[..., Caller]) -> None:
    caller = make_caller("viewer")
    created = client.post("/api/v1/auth/tokens", json={"name": "audited"}, headers=caller.headers).json()
    entry = audit_entries(db, "token.create")[-1]
    assert entry.target_id == created["id"] and entry.actor_name == caller.user.username
    assert created["token"] not in audit_text(audit_entries(db))


def test_an_admin_lists_and_revokes_a_users_tokens(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    user, admin = make_caller("analyst", ["xa-hy-cuong"]), make_caller("admin")
    tokens = client.get(f"/api/v1/users/{user.user.id}/tokens", headers=admin.headers).json()["tokens"]
    assert [t["name"] for t in tokens] == ["test"]
    revoked = client.delete(f"/api/v1/users/{user.user.id}/tokens/{tokens[0]['id']}", headers=admin.headers)
    assert revoked.status_code == 204
    assert client.get("/api/v1/auth/me", headers=user.headers).status_code == 401


def test_an_admin_issues_an_api_token_for_an_automation_account(client: TestClient,
                                                               make_caller: Callable[..., Caller]) -> None:
    robot, admin = make_caller("viewer", ["xa-hy-cuong"]), make_caller("admin")
    created = client.post(f"/api/v1/users/{robot.user.id}/tokens", json={"name": "exporter"}, headers=admin.headers)
    assert created.status_code == 201
    me = client.get("/api/v1/auth/me", headers=bearer(created.json()["token"])).json()
    assert me["user"]["username"] == robot.user.username


def test_changing_the_own_password_ends_the_other_sessions(client: TestClient,
                                                          make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    here, elsewhere = _token(client, account), _token(client, account)
    api = client.post("/api/v1/auth/tokens", json={"name": "script"}, headers=bearer(here)).json()["token"]
    changed = client.post("/api/v1/auth/password", headers=bearer(here),
                          json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(here)).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(elsewhere)).status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(api)).status_code == 200
    assert sign_in(client, "lan", PASSWORD).status_code == 401
    assert sign_in(client, "lan", NEW_PASSWORD).status_code == 200


def test_changing_the_own_password_needs_the_current_one(client: TestClient,
                                                        make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    response = client.post("/api/v1/auth/password", headers=bearer(_token(client, account)),
                           json={"current_password": "sai-mật-khẩu-hiện-tại", "new_password": NEW_PASSWORD})
    assert response.status_code == 400 and response.json()["detail"] == "The current password is wrong"


def test_a_new_password_must_meet_the_policy(client: TestClient, make_user: Callable[..., Account]) -> None:
    account = make_user("lan")
    response = client.post("/api/v1/auth/password", headers=bearer(_token(client, account)),
                           json={"current_password": PASSWORD, "new_password": "ngắn"})
    assert response.status_code == 422 and "at least 12 characters" in response.json()["detail"]

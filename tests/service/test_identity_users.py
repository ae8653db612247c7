"""User accounts through /api/v1/users: scope, optimistic edits, admin protection, audit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from soc.db import Database
from soc.identity.models import UserRow
from tests.service.conftest import Caller
from tests.service.identity_fixtures import PASSWORD, Account, audit_entries, audit_text, make_user, sign_in

__all__ = ["make_user"]


def _create(client: TestClient, caller: Caller, **body: Any) -> Any:
    body.setdefault("role", "analyst")
    return client.post("/api/v1/users", json=body, headers=caller.headers)


def _patch(client: TestClient, caller: Caller, user_id: str, body: dict[str, Any], version: int | str | None = None,
           ) -> Any:
    headers = dict(caller.headers)
    if version is not None:
        headers["If-Match"] = f'"{version}"' if isinstance(version, int) else version
    return client.patch(f"/api/v1/users/{user_id}", json=body, headers=headers)


def test_an_admin_creates_a_user_with_a_generated_password(client: TestClient,
                                                          make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin")
    response = _create(client, admin, username="Nguyen.Van.A", agencies=["xa-hy-cuong"], display_name="Nguyễn Văn A")
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["username"] == "nguyen.van.a" and body["user"]["active"] is True
    assert len(body["password"]) >= 12
    assert response.headers["location"].endswith(f"/api/v1/users/{body['user']['id']}")
    assert sign_in(client, "nguyen.van.a", body["password"]).status_code == 200


def test_a_given_password_is_not_echoed(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    body = _create(client, make_caller("admin"), username="lan", agencies=["xa-hy-cuong"], password=PASSWORD).json()
    assert body["password"] is None
    assert sign_in(client, "lan", PASSWORD).status_code == 200


def test_creating_a_user_is_audited_without_the_hash(client: TestClient, db: Database,
                                                    make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin")
    body = _create(client, admin, username="lan", agencies=["xa-hy-cuong"], password=PASSWORD).json()
    entry = audit_entries(db, "user.create")[-1]
    assert entry.target_id == body["user"]["id"] and entry.actor_name == admin.user.username
    assert entry.agency_id == "xa-hy-cuong" and entry.after is not None and entry.after["role"] == "analyst"
    text = audit_text(audit_entries(db))
    assert "argon2" not in text and "password_hash" not in text and PASSWORD not in text


def test_a_taken_username_answers_409(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin")
    _create(client, admin, username="lan", agencies=["xa-hy-cuong"])
    response = _create(client, admin, username="LAN", agencies=["xa-hy-cuong"])
    assert response.status_code == 409 and "lan" in response.json()["detail"]


def test_a_bad_username_says_what_is_allowed(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    response = _create(client, make_caller("admin"), username="có dấu", agencies=["xa-hy-cuong"])
    assert response.status_code == 422 and "a-z" in response.json()["detail"]


def test_an_unknown_role_lists_the_roles(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    response = _create(client, make_caller("admin"), username="lan", role="root", agencies=["xa-hy-cuong"])
    assert response.status_code == 422
    assert "admin, analyst, auditor, viewer" in response.json()["detail"]


def test_an_unknown_agency_lists_the_agencies_in_scope(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin", ["huyen-thanh-son"])
    response = _create(client, admin, username="lan", agencies=["xa-khong-co"])
    assert response.status_code == 422
    assert response.json()["detail"] == ("Unknown agency: xa-khong-co; agencies you can use: "
                                         "huyen-thanh-son, xa-thanh-son")


def test_a_merged_agency_points_to_its_successor(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    response = _create(client, make_caller("admin"), username="lan", agencies=["xa-chu-hoa"])
    assert response.status_code == 422 and "xa-hy-cuong" in response.json()["detail"]


def test_a_commune_admin_cannot_bind_another_commune_which_looks_unknown(
        client: TestClient, make_caller: Callable[..., Caller]) -> None:
    response = _create(client, make_caller("admin", ["xa-hy-cuong"]), username="lan", agencies=["xa-thanh-son"])
    assert response.status_code == 422
    assert response.json()["detail"] == "Unknown agency: xa-thanh-son; agencies you can use: xa-hy-cuong"


def test_only_an_all_scope_admin_binds_every_agency(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    assert _create(client, make_caller("admin", ["xa-hy-cuong"]), username="lan", agencies=["*"]).status_code == 403
    assert _create(client, make_caller("admin"), username="lan", agencies=["*"]).status_code == 201


def test_a_district_admin_creates_users_of_its_communes(client: TestClient,
                                                       make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin", ["huyen-thanh-son"])
    assert _create(client, admin, username="lan", agencies=["xa-thanh-son"]).status_code == 201


def test_the_list_holds_only_users_in_scope(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    make_caller("viewer", ["xa-thanh-son"], username="thanh-son-user")
    make_caller("viewer", ["xa-hy-cuong"], username="hy-cuong-user")
    make_caller("viewer", ["xa-hy-cuong", "xa-thanh-son"], username="both-communes")
    reader = make_caller("auditor", ["xa-hy-cuong"], username="hy-cuong-auditor")
    body = client.get("/api/v1/users", headers=reader.headers).json()
    assert [u["username"] for u in body["users"]] == ["both-communes", "hy-cuong-auditor", "hy-cuong-user"]
    assert body["total"] == 3


def test_the_list_filters_by_role_agency_and_state(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin", username="boss")
    make_caller("viewer", ["xa-thanh-son"], username="viewer-ts")
    make_caller("analyst", ["xa-hy-cuong"], username="analyst-hc")
    disabled = make_caller("analyst", ["xa-thanh-son"], username="analyst-off")
    client.delete(f"/api/v1/users/{disabled.user.id}", headers=admin.headers)

    def names(**params: Any) -> list[str]:
        users = client.get("/api/v1/users", params=params, headers=admin.headers).json()["users"]
        return [u["username"] for u in users]

    assert names(role="analyst") == ["analyst-hc", "analyst-off"]
    assert names(agency="xa-thanh-son") == ["analyst-off", "viewer-ts"]
    assert names(role="analyst", active="true") == ["analyst-hc"]


def test_a_user_out_of_scope_is_not_found(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    other = make_caller("viewer", ["xa-thanh-son"])
    admin = make_caller("admin", ["xa-hy-cuong"])
    for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/unlock"), ("POST", "/password"),
                         ("GET", "/tokens")):
        response = client.request(method, f"/api/v1/users/{other.user.id}{path}", headers=admin.headers)
        assert response.status_code == 404, (method, path)
    assert _patch(client, admin, other.user.id, {"role": "admin"}, 1).status_code == 404


def test_roles_without_users_read_cannot_list(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    response = client.get("/api/v1/users", headers=make_caller("viewer").headers)
    assert response.status_code == 403 and "users.read" in response.json()["detail"]


def test_roles_without_users_write_cannot_create(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    response = _create(client, make_caller("auditor"), username="lan", agencies=["xa-hy-cuong"])
    assert response.status_code == 403 and "users.write" in response.json()["detail"]


def test_get_gives_the_version_as_etag(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    user, admin = make_caller("viewer", ["xa-hy-cuong"]), make_caller("admin")
    response = client.get(f"/api/v1/users/{user.user.id}", headers=admin.headers)
    assert response.headers["etag"] == f'"{response.json()["version"]}"'


def test_patch_with_the_current_version_changes_the_user(client: TestClient, db: Database,
                                                        make_caller: Callable[..., Caller]) -> None:
    user, admin = make_caller("viewer", ["xa-hy-cuong"]), make_caller("admin")
    etag = client.get(f"/api/v1/users/{user.user.id}", headers=admin.headers).headers["etag"]
    response = _patch(client, admin, user.user.id, {"role": "analyst", "email": "lan@phutho.gov.vn"}, etag)
    assert response.status_code == 200
    assert response.json()["role"] == "analyst" and response.json()["email"] == "lan@phutho.gov.vn"
    assert response.headers["etag"] == f'"{response.json()["version"]}"' != etag
    entry = audit_entries(db, "user.update")[-1]
    assert entry.before == {"role": "viewer", "email": None}
    assert entry.after == {"role": "analyst", "email": "lan@phutho.gov.vn"}


def test_patch_with_a_stale_version_answers_412_with_the_current_user(client: TestClient,
                                                                      make_caller: Callable[..., Caller]) -> None:
    user, admin = make_caller("viewer", ["xa-hy-cuong"]), make_caller("admin")
    first = _patch(client, admin, user.user.id, {"display_name": "Lan"}, 1)
    stale = _patch(client, admin, user.user.id, {"role": "auditor"}, 1)
    assert stale.status_code == 412
    assert stale.json()["current"]["display_name"] == "Lan" and stale.json()["current"]["role"] == "viewer"
    assert stale.json()["current"]["version"] == first.json()["version"]
    assert stale.headers["etag"] == f'"{first.json()["version"]}"'


def test_patch_without_if_match_answers_428(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    user, admin = make_caller("viewer", ["xa-hy-cuong"]), make_caller("admin")
    response = _patch(client, admin, user.user.id, {"role": "analyst"})
    assert response.status_code == 428 and "If-Match" in response.json()["detail"]


def test_patch_refuses_unknown_fields(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    user, admin = make_caller("viewer", ["xa-hy-cuong"]), make_caller("admin")
    assert _patch(client, admin, user.user.id, {"password_hash": "x"}, 1).status_code == 422


def test_a_user_also_bound_outside_the_scope_is_seen_but_not_changed(client: TestClient,
                                                                    make_caller: Callable[..., Caller]) -> None:
    shared = make_caller("viewer", ["xa-hy-cuong", "xa-thanh-son"])
    admin = make_caller("admin", ["xa-hy-cuong"])
    assert client.get(f"/api/v1/users/{shared.user.id}", headers=admin.headers).status_code == 200
    response = _patch(client, admin, shared.user.id, {"role": "admin"}, 1)
    assert response.status_code == 403 and "xa-thanh-son" in response.json()["detail"]


def test_disable_answers_204_and_keeps_the_row(client: TestClient, db: Database,
                                              make_caller: Callable[..., Caller]) -> None:
    user, admin = make_caller("viewer", ["xa-hy-cuong"]), make_caller("admin")
    assert client.delete(f"/api/v1/users/{user.user.id}", headers=admin.headers).status_code == 204
    body = client.get(f"/api/v1/users/{user.user.id}", headers=admin.headers).json()
    assert body["active"] is False
    assert audit_entries(db, "user.disable")[-1].after == {"active": False, "tokens_revoked": 1}


def test_patch_active_true_enables_a_disabled_user(client: TestClient, make_user: Callable[..., Account],
                                                  make_caller: Callable[..., Caller]) -> None:
    account, admin = make_user("lan", bound=["xa-hy-cuong"]), make_caller("admin")
    client.delete(f"/api/v1/users/{account.id}", headers=admin.headers)
    assert _patch(client, admin, account.id, {"active": True}, "*").status_code == 200
    assert sign_in(client, "lan", account.password).status_code == 200


def test_an_admin_cannot_disable_themselves(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    make_caller("admin", username="other-admin")
    admin = make_caller("admin")
    response = client.delete(f"/api/v1/users/{admin.user.id}", headers=admin.headers)
    assert response.status_code == 409 and "your own account" in response.json()["detail"]


def test_an_admin_cannot_demote_themselves(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    make_caller("admin", username="other-admin")
    admin = make_caller("admin")
    response = _patch(client, admin, admin.user.id, {"role": "analyst"}, "*")
    assert response.status_code == 409 and "admin role" in response.json()["detail"]


def test_the_last_all_scope_admin_cannot_narrow_their_scope(client: TestClient,
                                                           make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin")
    make_caller("admin", ["xa-hy-cuong"], username="commune-admin")
    response = _patch(client, admin, admin.user.id, {"agencies": ["so-khcn"]}, "*")
    assert response.status_code == 409 and "last active province-wide administrator" in response.json()["detail"]


def test_an_all_scope_admin_may_narrow_when_another_remains(client: TestClient,
                                                           make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin")
    make_caller("admin", ["*"], username="star-admin")
    assert _patch(client, admin, admin.user.id, {"agencies": ["so-khcn"]}, "*").status_code == 200


def test_an_admin_resets_a_password_and_ends_the_users_sessions(client: TestClient, db: Database,
                                                               make_user: Callable[..., Account],
                                                               make_caller: Callable[..., Caller]) -> None:
    account, admin = make_user("lan", bound=["xa-hy-cuong"]), make_caller("admin")
    old_session = sign_in(client, "lan", account.password).json()["token"]
    response = client.post(f"/api/v1/users/{account.id}/password", headers=admin.headers)
    assert response.status_code == 200
    generated = response.json()["password"]
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {old_session}"}).status_code == 401
    assert sign_in(client, "lan", account.password).status_code == 401
    assert sign_in(client, "lan", generated).status_code == 200
    text = audit_text(audit_entries(db, "user.password.reset"))
    assert generated not in text and "argon2" not in text


def test_a_reset_to_a_given_password_returns_none(client: TestClient, make_user: Callable[..., Account],
                                                 make_caller: Callable[..., Caller]) -> None:
    account, admin = make_user("lan", bound=["xa-hy-cuong"]), make_caller("admin")
    response = client.post(f"/api/v1/users/{account.id}/password", json={"password": "mật-khẩu-do-admin-đặt"},
                           headers=admin.headers)
    assert response.json()["password"] is None
    assert sign_in(client, "lan", "mật-khẩu-do-admin-đặt").status_code == 200


def test_stored_user_rows_match_the_api(client: TestClient, db: Database, make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin")
    created = _create(client, admin, username="lan", agencies=["xa-hy-cuong", "so-khcn"], email="lan@phutho.gov.vn")
    with db.read() as session:
        row = session.get_one(UserRow, created.json()["user"]["id"])
    assert (row.username, row.agencies, row.email) == ("lan", ["xa-hy-cuong", "so-khcn"], "lan@phutho.gov.vn")


def test_openapi_documents_every_identity_route_with_examples(client: TestClient,
                                                             make_caller: Callable[..., Caller]) -> None:
    spec = client.get("/openapi.json", headers=make_caller("admin").headers).json()
    paths = {p for p in spec["paths"] if p.startswith(("/api/v1/auth", "/api/v1/users"))}
    assert paths == {"/api/v1/auth/login", "/api/v1/auth/logout", "/api/v1/auth/me", "/api/v1/auth/password",
                     "/api/v1/auth/tokens", "/api/v1/auth/tokens/{token_id}", "/api/v1/users",
                     "/api/v1/users/{user_id}", "/api/v1/users/{user_id}/password", "/api/v1/users/{user_id}/unlock",
                     "/api/v1/users/{user_id}/tokens", "/api/v1/users/{user_id}/tokens/{token_id}"}
    for path in paths:
        for operation in spec["paths"][path].values():
            assert " / " in operation["summary"], path
    schemas = spec["components"]["schemas"]
    for name in ("LoginRequest", "LoginResponse", "MeResponse", "UserOut", "UserCreate", "UserPatch", "TokenCreate",
                 "TokenCreated", "PasswordChange"):
        assert schemas[name].get("examples"), name

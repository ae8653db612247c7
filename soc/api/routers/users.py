"""Routes of /api/v1/users: accounts of the agencies in the caller's scope.

Reading needs ``users.read``, changing ``users.write``. A user outside the caller's
scope answers 404. Edits are optimistic: GET gives an ``ETag`` (the version) and
PATCH needs it back in ``If-Match``; a stale version answers 412 with the current
state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.openapi.models import Example
from pydantic import BaseModel, ConfigDict, Field

from soc.api.deps import StateDep, UsersAdmin, UsersReader, client_ip
from soc.api.errors import PROBLEM, ApiError
from soc.api.etag import etag, single_version
from soc.audit.trail import Actor
from soc.i18n import register
from soc.identity.errors import IdentityError, StaleUser
from soc.identity.models import TokenRow, UserRow
from soc.identity.tokens import live_tokens, token_dict
from soc.identity.users import (
    create_user,
    disable_user,
    get_user,
    issue_api_token,
    list_users,
    require_manageable,
    revoke_token,
    set_password,
    unlock_user,
    update_user,
)

router = APIRouter(prefix="/api/v1", tags=["users"])

register({
    "users.if_match_required": (
        "Cần tiêu đề If-Match chứa phiên bản (ETag) lấy từ GET /api/v1/users/{{id}}",
        "Send an If-Match header with the version (ETag) from GET /api/v1/users/{{id}}",
    ),
    "users.null_field": ("Trường '{field}' không được là null (chỉ email có thể xóa bằng null)",
                         "'{field}' cannot be null (only email is cleared with null)"),
    "users.bad_if_match": ("If-Match '{value}' không hợp lệ; gửi lại ETag, ví dụ \"3\"",
                           "Invalid If-Match '{value}'; send the ETag back, e.g. \"3\""),
})

USER_EXAMPLE: dict[str, Any] = {
    "id": "6f1c1d8e-2b7a-4c38-9a55-0d1f7c7b9e21", "username": "nguyenvana", "display_name": "Nguyễn Văn A",
    "email": "nguyenvana@phutho.gov.vn", "role": "analyst", "agencies": ["xa-hy-cuong"], "active": True,
    "locked_until": None, "last_login_at": "2025-07-01T01:30:00+00:00", "created_at": "2025-06-30T08:00:00+00:00",
    "updated_at": "2025-06-30T08:00:00+00:00", "version": 1,
}
TOKEN_EXAMPLE: dict[str, Any] = {
    "id": "0b9e3c52-8d0e-4a8b-a2f4-5b8f3e4d7c10", "kind": "api", "name": "siem-export", "prefix": "soc_api_Xb3k9",
    "created_at": "2025-07-01T02:00:00+00:00", "expires_at": "2025-09-29T02:00:00+00:00", "last_used_at": None,
    "revoked_at": None, "source_ip": "10.10.0.5", "current": False,
}
_PROBLEM_EXAMPLE = {"type": "about:blank", "title": "Not found", "status": 404, "detail": "No user 'u-1'",
                    "detail_vi": "Không tìm thấy user 'u-1'"}


def problem_response(description: str, status: int = 404) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry for a problem+json answer."""
    return {"description": description,
            "content": {PROBLEM: {"example": {**_PROBLEM_EXAMPLE, "status": status, "title": description}}}}


class UserOut(BaseModel):
    """A user account as the API shows it (never the password hash)."""

    id: str
    username: str
    display_name: str
    email: str | None
    role: str = Field(description="admin | analyst | auditor | viewer")
    agencies: list[str] = Field(description="Bound agency ids; '*' is every agency")
    active: bool
    locked_until: datetime | None = Field(description="Set while failed logins keep the account locked")
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Send back in If-Match to change the user")

    model_config = ConfigDict(json_schema_extra={"examples": [USER_EXAMPLE]})

    @classmethod
    def of(cls, user: UserRow) -> UserOut:
        return cls.model_validate(user.as_dict())


class UserList(BaseModel):
    users: list[UserOut]
    total: int

    model_config = ConfigDict(json_schema_extra={"examples": [{"users": [USER_EXAMPLE], "total": 1}]})


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, description="3–64 characters a-z 0-9 . _ - (lower-cased)")
    role: str = Field(description="admin | analyst | auditor | viewer")
    agencies: list[str] = Field(min_length=1, description="Agency ids in your scope; '*' needs a province-wide admin")
    display_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=200)
    password: str | None = Field(None, min_length=1, max_length=1024,
                                 description="At least 12 characters; omitted: one is generated and returned once")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"username": "nguyenvana", "role": "analyst", "agencies": ["xa-hy-cuong"], "display_name": "Nguyễn Văn A",
         "email": "nguyenvana@phutho.gov.vn"},
    ]})


class UserCreated(BaseModel):
    user: UserOut
    password: str | None = Field(description="The generated password, shown only in this answer (null if you gave one)")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"user": USER_EXAMPLE, "password": "q8W2-nR5xT0pLm7Zk4Yd"},
    ]})


class UserPatch(BaseModel):
    role: str | None = Field(None, description="admin | analyst | auditor | viewer")
    agencies: list[str] | None = Field(None, min_length=1)
    display_name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=200, description="null removes the address")
    active: bool | None = Field(None, description="false disables the account and revokes its tokens")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"role": "auditor", "agencies": ["huyen-thanh-son"]},
        {"active": True},
    ]})

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (``email: null`` clears; other nulls are refused)."""
        sent = self.model_dump(exclude_unset=True)
        for field in ("role", "agencies", "display_name", "active"):
            if field in sent and sent[field] is None:
                raise ApiError(422, "users.null_field", field=field)
        return sent


class PasswordReset(BaseModel):
    password: str | None = Field(None, min_length=1, max_length=1024,
                                 description="The new password; omitted: one is generated and returned once")

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{}, {"password": "một-mật-khẩu-mới-dài"}]})


_RESET_EXAMPLES: dict[str, Example] = {
    "generated": {"summary": "Sinh mật khẩu mới / Generate a new password", "value": {}},
    "chosen": {"summary": "Đặt mật khẩu đã chọn / Set a chosen password",
               "value": {"password": "một-mật-khẩu-mới-dài"}},
}


class PasswordResetResult(BaseModel):
    user: UserOut
    password: str | None = Field(description="The generated password, shown only in this answer")

    model_config = ConfigDict(json_schema_extra={"examples": [{"user": USER_EXAMPLE,
                                                               "password": "T7m-Qv2pXc9LrB4sNw1e"}]})


class TokenOut(BaseModel):
    """A session or API token (never its secret)."""

    id: str
    kind: str = Field(description="session | api")
    name: str
    prefix: str = Field(description="The first characters of the secret, to recognise it")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    source_ip: str | None
    current: bool = Field(description="The token this request was made with")

    model_config = ConfigDict(json_schema_extra={"examples": [TOKEN_EXAMPLE]})

    @classmethod
    def of(cls, token: TokenRow, current: str | None = None) -> TokenOut:
        return cls.model_validate(token_dict(token, current))


class TokenList(BaseModel):
    tokens: list[TokenOut]

    model_config = ConfigDict(json_schema_extra={"examples": [{"tokens": [TOKEN_EXAMPLE]}]})


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="What the token is for")
    expires_in_days: int | None = Field(None, ge=1, le=3650,
                                        description="Lifetime; omitted: the configured auth.api_token_days")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "siem-export",
                                                                               "expires_in_days": 90}]})


class TokenCreated(TokenOut):
    token: str = Field(description="The secret, shown only in this answer: send it as 'Authorization: Bearer …'")

    model_config = ConfigDict(json_schema_extra={"examples": [
        {**TOKEN_EXAMPLE, "token": "soc_api_Xb3k9Qe0vS1n8Ad2Wm7Lr4Tc6Yp5Hu3Jf0Kz9Ge1Bi"},
    ]})


@contextmanager
def identity_errors() -> Iterator[None]:
    """Turn a refused identity operation into its problem+json answer."""
    try:
        yield
    except IdentityError as exc:
        raise ApiError(exc.status, exc.key, headers=exc.headers, **exc.params) from None


def _etag(user: UserRow | dict[str, Any]) -> str:
    return etag(user["version"] if isinstance(user, dict) else user.version)


def _if_match(value: str | None) -> int | None:
    """The version in If-Match (``*`` matches any version)."""
    if value is None:
        raise ApiError(428, "users.if_match_required")
    try:
        return single_version(value)
    except ValueError:
        raise ApiError(400, "users.bad_if_match", value=value) from None


def _stale(exc: StaleUser) -> ApiError:
    return ApiError(412, exc.key, headers={"ETag": _etag(exc.current)}, body={"current": exc.current}, **exc.params)


@router.get("/users", summary="Danh sách người dùng / List users", response_model=UserList)
def list_users_route(
    principal: UsersReader, state: StateDep,
    role: Annotated[str | None, Query(description="Only this role", examples=["analyst"])] = None,
    agency: Annotated[str | None, Query(description="Only users bound to this agency id",
                                        examples=["xa-hy-cuong"])] = None,
    active: Annotated[bool | None, Query(description="Only active (true) or disabled (false) accounts")] = None,
) -> UserList:
    with state.db.read() as session:
        users = list_users(session, principal.scope, role=role, agency=agency, active=active)
        return UserList(users=[UserOut.of(u) for u in users], total=len(users))


@router.get("/users/{user_id}", summary="Xem người dùng / Get a user", response_model=UserOut,
            responses={404: problem_response("Not found")})
def get_user_route(user_id: str, principal: UsersReader, state: StateDep, response: Response) -> UserOut:
    with identity_errors(), state.db.read() as session:
        user = get_user(session, principal.scope, user_id)
        response.headers["ETag"] = _etag(user)
        return UserOut.of(user)


@router.post("/users", status_code=201, summary="Tạo người dùng / Create a user", response_model=UserCreated,
             responses={403: problem_response("Forbidden", 403), 409: problem_response("Conflict", 409),
                        422: problem_response("Invalid request", 422)})
def create_user_route(body: UserCreate, request: Request, principal: UsersAdmin, state: StateDep,
                      response: Response) -> UserCreated:
    with identity_errors(), state.db.write() as session:
        user, generated = create_user(session, Actor.of(principal), principal.scope, username=body.username,
                                      role=body.role, agencies=body.agencies, display_name=body.display_name,
                                      email=body.email, password=body.password)
    response.headers["Location"] = str(request.url_for("get_user_route", user_id=user.id))
    response.headers["ETag"] = _etag(user)
    response.headers["Cache-Control"] = "no-store"
    return UserCreated(user=UserOut.of(user), password=generated)


@router.patch("/users/{user_id}", summary="Sửa người dùng / Change a user", response_model=UserOut,
              responses={404: problem_response("Not found"), 409: problem_response("Conflict", 409),
                         412: {"description": "Stale If-Match: the body's 'current' is the user now",
                               "content": {PROBLEM: {"example": {**_PROBLEM_EXAMPLE, "status": 412,
                                                                 "title": "Precondition failed",
                                                                 "current": USER_EXAMPLE}}}},
                         428: problem_response("If-Match missing", 428)})
def patch_user_route(user_id: str, body: UserPatch, principal: UsersAdmin, state: StateDep, response: Response,
                     if_match: Annotated[str | None, Header(description='The ETag from GET, e.g. "3"')] = None,
                     ) -> Any:
    expected = _if_match(if_match)
    changes = body.changes()
    with identity_errors():
        try:
            with state.db.write() as session:
                user = update_user(session, Actor.of(principal), principal.scope, user_id, changes,
                                   expected_version=expected)
        except StaleUser as exc:
            raise _stale(exc) from None
    response.headers["ETag"] = _etag(user)
    return UserOut.of(user)


@router.delete("/users/{user_id}", status_code=204, summary="Vô hiệu hóa người dùng / Disable a user",
               responses={404: problem_response("Not found"), 409: problem_response("Conflict", 409)})
def disable_user_route(user_id: str, principal: UsersAdmin, state: StateDep) -> Response:
    with identity_errors(), state.db.write() as session:
        disable_user(session, Actor.of(principal), principal.scope, user_id)
    return Response(status_code=204)


@router.post("/users/{user_id}/password", summary="Đặt lại mật khẩu / Reset a user's password",
             response_model=PasswordResetResult, responses={404: problem_response("Not found"),
                                                            422: problem_response("Invalid request", 422)})
def reset_password_route(user_id: str, principal: UsersAdmin, state: StateDep, response: Response,
                         body: Annotated[PasswordReset | None, Body(openapi_examples=_RESET_EXAMPLES)] = None
                         ) -> PasswordResetResult:
    with identity_errors(), state.db.write() as session:
        user, generated = set_password(session, Actor.of(principal), principal.scope, user_id,
                                       body.password if body else None)
    response.headers["Cache-Control"] = "no-store"
    return PasswordResetResult(user=UserOut.of(user), password=generated)


@router.post("/users/{user_id}/unlock", summary="Mở khóa tài khoản / Unlock an account", response_model=UserOut,
             responses={404: problem_response("Not found")})
def unlock_user_route(user_id: str, principal: UsersAdmin, state: StateDep) -> UserOut:
    with identity_errors(), state.db.write() as session:
        return UserOut.of(unlock_user(session, Actor.of(principal), principal.scope, user_id))


@router.get("/users/{user_id}/tokens", summary="Mã của người dùng / A user's live tokens", response_model=TokenList,
            responses={404: problem_response("Not found")})
def user_tokens_route(user_id: str, principal: UsersReader, state: StateDep) -> TokenList:
    with identity_errors(), state.db.read() as session:
        user = get_user(session, principal.scope, user_id)
        return TokenList(tokens=[TokenOut.of(t, principal.token_id) for t in live_tokens(session, user.id)])


@router.post("/users/{user_id}/tokens", status_code=201, response_model=TokenCreated,
             summary="Cấp mã API cho người dùng / Issue an API token for a user (automation accounts)",
             responses={404: problem_response("Not found")})
def issue_user_token_route(user_id: str, body: TokenCreate, request: Request, principal: UsersAdmin,
                           state: StateDep, response: Response) -> TokenCreated:
    days = body.expires_in_days or state.cfg.auth.api_token_days
    with identity_errors(), state.db.write() as session:
        user = get_user(session, principal.scope, user_id)
        require_manageable(principal.scope, user)
        token, secret = issue_api_token(session, Actor.of(principal), user, name=body.name, days=days,
                                        source_ip=client_ip(request))
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated(**TokenOut.of(token).model_dump(), token=secret)


@router.delete("/users/{user_id}/tokens/{token_id}", status_code=204,
               summary="Thu hồi mã của người dùng / Revoke a user's token",
               responses={404: problem_response("Not found")})
def revoke_user_token_route(user_id: str, token_id: str, principal: UsersAdmin, state: StateDep) -> Response:
    with identity_errors(), state.db.write() as session:
        user = get_user(session, principal.scope, user_id)
        require_manageable(principal.scope, user)
        revoke_token(session, Actor.of(principal), user, token_id)
    return Response(status_code=204)

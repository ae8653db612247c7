"""Routes of /api/v1/auth: sign in and out, who am I, own password and API tokens.

``POST /auth/login`` is the only route of the API open without credentials. It
answers the session token in the body (for scripts: ``Authorization: Bearer``) and
as the console's ``soc_session`` cookie (HttpOnly, SameSite=Strict). Every other
route here serves the signed-in user, whatever their role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from soc.api.deps import SESSION_COOKIE, StateDep, client_ip, current_principal
from soc.api.routers.users import (
    TOKEN_EXAMPLE,
    USER_EXAMPLE,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenOut,
    UserOut,
    identity_errors,
    problem_response,
)
from soc.audit.trail import Actor
from soc.identity.login import login
from soc.identity.models import TokenRow, UserRow
from soc.identity.principal import Principal
from soc.identity.roles import ROLE_PERMISSIONS
from soc.identity.tokens import live_tokens
from soc.identity.users import change_own_password, issue_api_token, revoke_token

router = APIRouter(prefix="/api/v1", tags=["auth"])

SignedIn = Annotated[Principal, Depends(current_principal)]
"""Any signed-in user (no permission needed beyond being someone)."""


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)

    model_config = ConfigDict(json_schema_extra={"examples": [{"username": "nguyenvana",
                                                               "password": "một-câu-mật-khẩu-dài"}]})


class LoginResponse(BaseModel):
    token: str = Field(description="Session token; also set as the HttpOnly 'soc_session' cookie")
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    user: UserOut

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "token": "soc_sess_9Jd2kQm4Vx7Lr0Tb5Wn8Yc3Hp6Zs1Ag4Ef2Gi0Ku", "token_type": "bearer",
        "expires_at": "2025-07-01T13:30:00+00:00", "user": USER_EXAMPLE}]})


class ScopeOut(BaseModel):
    all: bool = Field(description="Sees every agency (bound to the province or '*')")
    agencies: list[str] = Field(description="Agencies in scope when not all: bound ones, their children and "
                                            "agencies merged into them")


class MeResponse(BaseModel):
    user: UserOut
    role: str
    permissions: list[str]
    scope: ScopeOut
    token: TokenOut = Field(description="The token this request was made with")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "user": USER_EXAMPLE, "role": "analyst", "permissions": ["read", "triage", "users.read"],
        "scope": {"all": False, "agencies": ["xa-chu-hoa", "xa-hy-cuong"]},
        "token": {**TOKEN_EXAMPLE, "kind": "session", "name": "login", "current": True}}]})


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024, description="At least 12 characters, not the username")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"current_password": "mật-khẩu-cũ-đủ-dài", "new_password": "mật-khẩu-mới-còn-dài-hơn"}]})


def _cookie_kwargs(state: StateDep) -> dict[str, object]:
    return {"path": "/", "httponly": True, "samesite": "strict", "secure": state.cfg.auth.cookie_secure}


@router.post("/auth/login", summary="Đăng nhập / Sign in", response_model=LoginResponse,
             responses={401: problem_response("Wrong username or password", 401),
                        423: problem_response("Account locked (see Retry-After)", 423)})
def login_route(body: LoginRequest, request: Request, response: Response, state: StateDep) -> LoginResponse:
    with identity_errors():
        user, token, secret = login(state.db, state.cfg.auth, body.username, body.password, client_ip(request))
    assert token.expires_at is not None
    response.set_cookie(SESSION_COOKIE, secret, max_age=round(state.cfg.auth.session_hours * 3600),
                        **_cookie_kwargs(state))  # type: ignore[arg-type]
    response.headers["Cache-Control"] = "no-store"
    return LoginResponse(token=secret, expires_at=token.expires_at, user=UserOut.of(user))


@router.post("/auth/logout", status_code=204, summary="Đăng xuất / Sign out (revokes the presented token)")
def logout_route(principal: SignedIn, state: StateDep) -> Response:
    with identity_errors(), state.db.write() as session:
        user = session.get_one(UserRow, principal.user_id)
        revoke_token(session, Actor.of(principal), user, principal.token_id, action="auth.logout")
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, **_cookie_kwargs(state))  # type: ignore[arg-type]
    return response


@router.get("/auth/me", summary="Tôi là ai / The signed-in user, permissions and scope", response_model=MeResponse)
def me_route(principal: SignedIn, state: StateDep) -> MeResponse:
    with state.db.read() as session:
        user = session.get_one(UserRow, principal.user_id)
        token = session.get_one(TokenRow, principal.token_id)
        return MeResponse(user=UserOut.of(user), role=user.role,
                          permissions=sorted(p.value for p in ROLE_PERMISSIONS.get(user.role, frozenset())),
                          scope=ScopeOut(all=principal.scope.all, agencies=sorted(principal.scope.agencies)),
                          token=TokenOut.of(token, principal.token_id))


@router.post("/auth/password", status_code=204,
             summary="Đổi mật khẩu của mình / Change my password (ends my other sessions)",
             responses={400: problem_response("Current password wrong", 400),
                        422: problem_response("New password refused by the policy", 422)})
def change_password_route(body: PasswordChange, principal: SignedIn, state: StateDep) -> Response:
    with identity_errors(), state.db.write() as session:
        change_own_password(session, Actor.of(principal), principal.user_id, body.current_password,
                            body.new_password, keep_token=principal.token_id)
    return Response(status_code=204)


@router.get("/auth/tokens", summary="Mã của tôi / My live sessions and API tokens", response_model=TokenList)
def my_tokens_route(principal: SignedIn, state: StateDep) -> TokenList:
    with state.db.read() as session:
        return TokenList(tokens=[TokenOut.of(t, principal.token_id) for t in live_tokens(session, principal.user_id)])


@router.post("/auth/tokens", status_code=201, response_model=TokenCreated,
             summary="Tạo mã API / Create an API token for automation (secret shown once)")
def create_token_route(body: TokenCreate, request: Request, principal: SignedIn, state: StateDep,
                       response: Response) -> TokenCreated:
    days = body.expires_in_days or state.cfg.auth.api_token_days
    with identity_errors(), state.db.write() as session:
        user = session.get_one(UserRow, principal.user_id)
        token, secret = issue_api_token(session, Actor.of(principal), user, name=body.name, days=days,
                                        source_ip=client_ip(request))
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated(**TokenOut.of(token).model_dump(), token=secret)


@router.delete("/auth/tokens/{token_id}", status_code=204, summary="Thu hồi mã của tôi / Revoke one of my tokens",
               responses={404: problem_response("Not found")})
def revoke_my_token_route(token_id: str, principal: SignedIn, state: StateDep) -> Response:
    with identity_errors(), state.db.write() as session:
        user = session.get_one(UserRow, principal.user_id)
        revoke_token(session, Actor.of(principal), user, token_id)
    return Response(status_code=204)

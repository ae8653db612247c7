"""The authorization matrix: every route × every role × an object inside and one
outside the caller's agency scope, answered exactly as the role table
(:data:`soc.identity.roles.ROLE_PERMISSIONS`) and the scope rule say:

* a role without the route's permission → 403, whatever the object;
* allowed, object in scope → the route's success status;
* allowed, object outside scope → 404 (it does not exist for the caller); a list
  answers without it; creating something under an agency outside scope is refused as
  the route documents and creates nothing;
* no credentials → 401 (``POST /auth/login`` is the one open route; ``POST /ingest``
  takes a system's ingest key, not a user's token).

A refused request changes nothing: the audit chain, which every change extends in its
own transaction, stays where it was. :data:`ROUTES` holds the rule of every route;
the first test fails when the application serves a route the table lacks.

Every case runs on a fresh copy of the world of :mod:`tests.service.authz_world`
(built once per database backend), callers bound to ``xa-thanh-son``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
import psycopg
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from soc.alerts.models import Alert
from soc.api.app import create_app
from soc.api.errors import PROBLEM
from soc.api.state import AppState
from soc.audit.models import AuditHead
from soc.config import SocConfig
from soc.db import Database, migrate
from soc.identity import passwords
from soc.identity.models import ROLES, UserRow
from soc.identity.roles import Permission, allowed
from soc.identity.users import find_user
from soc.inventory.models import AgencyRow, SystemRow
from soc.triage.models import Incident
from tests.service.authz_world import (
    DISTRICT,
    HOOK,
    INSIDE,
    OUTSIDE,
    PROVINCE,
    SOURCE,
    Account,
    Commune,
    Side,
    World,
    build_world,
    copy_sqlite,
    world_config,
)
from tests.service.inventory_fixtures import SSH_LINE
from tests.service.notify_fixtures import HttpReceiver, http_receiver

Need = Permission | Literal["signed-in", "public", "ingest key"]
Kind = Literal["object", "list", "create", "plain", "self", "bulk", "login", "ingest"]
ANONYMOUS = "anonymous"
INGEST_KEY = "ingest key"
NEW_PASSWORD = "một-mật-khẩu-mới-còn-dài-hơn"


# --- requests ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Req:
    path: str
    json: Any = None
    content: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Ctx:
    """What a request is built from: the world, the case's database, the caller and
    which commune's objects it addresses."""

    world: World
    db: Database
    caller: Account | None
    side: Side

    @property
    def commune(self) -> Commune:
        return self.world.commune(self.side)

    @property
    def me(self) -> Account:
        assert self.caller is not None
        return self.caller

    def if_match(self, model: Any, object_id: str) -> tuple[tuple[str, str], ...]:
        """``If-Match`` with the object's current version, so a permitted change can succeed."""
        with self.db.read() as session:
            row = session.get(model, object_id)
            assert row is not None, (model, object_id)
            return (("If-Match", f'"{row.version}"'),)


Build = Callable[[Ctx], Req]


@dataclass(frozen=True)
class Mode:
    """One way of calling a route: ``side`` picks the commune the request addresses;
    ``status`` is the answer a permitted caller gets (``None``: the route's success)."""

    name: str
    side: Side = "in"
    status: int | None = None
    build: Build | None = None
    binding: str = INSIDE
    """Where the caller is bound."""


IN_OUT = (Mode("in-scope"), Mode("out-of-scope", "out", 404))


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    need: Need
    kind: Kind
    ok: int
    build: Build
    modes: tuple[Mode, ...] = ()
    listed: Callable[[httpx.Response], set[str]] | None = None
    """List routes: the ids of the answer."""
    expect: Callable[[Ctx], tuple[str, str]] | None = None
    """List routes: (id that must be listed, id that must not)."""
    exists: Callable[[Session], bool] | None = None
    """Create routes: whether the object the request creates is there."""
    prepare: Callable[[Ctx, TestClient], None] | None = None

    def __post_init__(self) -> None:
        if not self.modes:
            defaults: dict[str, tuple[Mode, ...]] = {
                "object": IN_OUT, "list": (Mode("list"),), "plain": (Mode("unscoped"),), "self": (Mode("self"),),
                "bulk": (Mode("in-scope"), Mode("out-of-scope", "out")), "login": (Mode("own password"),),
                "ingest": (Mode("user token"),)}
            object.__setattr__(self, "modes", defaults[self.kind])

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def items(key: str | None, field: str = "id") -> Callable[[httpx.Response], set[str]]:
    def listed(response: httpx.Response) -> set[str]:
        body = response.json()
        return {str(item[field]) for item in (body[key] if key else body)}

    return listed


def events_listed(response: httpx.Response) -> set[str]:
    return {event["gov"]["system"]["id"] for event in response.json()["events"]}


def exported_seqs(response: httpx.Response) -> set[str]:
    return {str(orjson.loads(line)["seq"]) for line in response.text.splitlines() if line.strip()}


def both(attribute: str) -> Callable[[Ctx], tuple[str, str]]:
    """The in-scope commune's ``attribute`` is listed, the other commune's is not."""
    return lambda c: (str(getattr(c.world.inside, attribute)), str(getattr(c.world.outside, attribute)))


def with_user(attribute: str) -> Callable[[Ctx], tuple[str, str]]:
    return lambda c: (getattr(c.world.inside.user, attribute), getattr(c.world.outside.user, attribute))


def ingest_both(c: Ctx, client: TestClient) -> None:
    """Events of both communes' systems, sent with their keys."""
    for commune in (c.world.inside, c.world.outside):
        response = client.post("/api/v1/ingest", content=SSH_LINE,
                               headers={"X-Ingest-Key": commune.key, "Content-Type": "text/plain"})
        assert response.status_code == 200, response.text


def has_user(username: str) -> Callable[[Session], bool]:
    return lambda session: find_user(session, username) is not None


def has_row(model: Any, object_id: str) -> Callable[[Session], bool]:
    return lambda session: session.get(model, object_id) is not None


def has_incident(title: str) -> Callable[[Session], bool]:
    return lambda session: bool(session.scalar(select(func.count()).where(Incident.title == title)))


def new_system(agency: str) -> dict[str, Any]:
    return {"id": "web-moi", "name": "Trang thông tin mới", "type": "web_portal", "agency": agency,
            "classification": 2, "log_sources": [{"name": "web-access", "format": "nginx"}]}


NEW_INCIDENT = "Sự cố mới / New incident"
IMPORTED = ("agencies:\n"
            "  - {id: xa-moi-nhap, name: UBND xã Mới Nhập, level: commune, parent: tinh-phu-tho}\n")


def system_path(c: Ctx, rest: str = "") -> str:
    return f"/api/v1/systems/{c.commune.system}{rest}"


# --- the rule of every route ---------------------------------------------------------------

ROUTES: tuple[Route, ...] = (
    # service
    Route("GET", "/healthz", Permission.READ, "plain", 200, lambda c: Req("/healthz")),
    Route("GET", "/metrics", Permission.SERVICE_READ, "plain", 200, lambda c: Req("/metrics")),
    Route("GET", "/openapi.json", Permission.SERVICE_READ, "plain", 200, lambda c: Req("/openapi.json")),
    # auth: the signed-in user's own account
    Route("POST", "/api/v1/auth/login", "public", "login", 200,
          lambda c: Req("/api/v1/auth/login", json={"username": c.me.username, "password": c.me.password})),
    Route("POST", "/api/v1/auth/logout", "signed-in", "self", 204, lambda c: Req("/api/v1/auth/logout")),
    Route("GET", "/api/v1/auth/me", "signed-in", "self", 200, lambda c: Req("/api/v1/auth/me")),
    Route("POST", "/api/v1/auth/password", "signed-in", "self", 204,
          lambda c: Req("/api/v1/auth/password",
                        json={"current_password": c.me.password, "new_password": NEW_PASSWORD})),
    Route("GET", "/api/v1/auth/tokens", "signed-in", "list", 200, lambda c: Req("/api/v1/auth/tokens"),
          modes=(Mode("own tokens"),), listed=items("tokens"),
          expect=lambda c: (c.me.token_id, c.world.inside.user.token_id)),
    Route("POST", "/api/v1/auth/tokens", "signed-in", "self", 201,
          lambda c: Req("/api/v1/auth/tokens", json={"name": "tu-dong-hoa"})),
    Route("DELETE", "/api/v1/auth/tokens/{token_id}", "signed-in", "object", 204,
          lambda c: Req(f"/api/v1/auth/tokens/{c.me.spare_token_id if c.side == 'in' else c.commune.user.token_id}"),
          modes=(Mode("own token"), Mode("someone else's token", "out", 404))),
    # users
    Route("GET", "/api/v1/users", Permission.USERS_READ, "list", 200, lambda c: Req("/api/v1/users"),
          listed=items("users"), expect=with_user("id")),
    Route("GET", "/api/v1/users/{user_id}", Permission.USERS_READ, "object", 200,
          lambda c: Req(f"/api/v1/users/{c.commune.user.id}")),
    Route("POST", "/api/v1/users", Permission.USERS_WRITE, "create", 201,
          lambda c: Req("/api/v1/users", json={"username": "nguoi-dung-moi", "role": "viewer",
                                               "agencies": [c.commune.agency]}),
          # an agency outside scope is answered as an unknown one (422), as a nonexistent id is
          modes=(Mode("in-scope"), Mode("out-of-scope agency", "out", 422)), exists=has_user("nguoi-dung-moi")),
    Route("PATCH", "/api/v1/users/{user_id}", Permission.USERS_WRITE, "object", 200,
          lambda c: Req(f"/api/v1/users/{c.commune.user.id}", json={"display_name": "Tên mới"},
                        headers=c.if_match(UserRow, c.commune.user.id)),
          modes=(*IN_OUT, Mode("into out-of-scope agency", "in", 422, lambda c: Req(
              f"/api/v1/users/{c.commune.user.id}", json={"agencies": [OUTSIDE]},
              headers=c.if_match(UserRow, c.commune.user.id))))),
    Route("DELETE", "/api/v1/users/{user_id}", Permission.USERS_WRITE, "object", 204,
          lambda c: Req(f"/api/v1/users/{c.commune.user.id}")),
    Route("POST", "/api/v1/users/{user_id}/password", Permission.USERS_WRITE, "object", 200,
          lambda c: Req(f"/api/v1/users/{c.commune.user.id}/password", json={})),
    Route("POST", "/api/v1/users/{user_id}/unlock", Permission.USERS_WRITE, "object", 200,
          lambda c: Req(f"/api/v1/users/{c.commune.user.id}/unlock")),
    Route("GET", "/api/v1/users/{user_id}/tokens", Permission.USERS_READ, "object", 200,
          lambda c: Req(f"/api/v1/users/{c.commune.user.id}/tokens")),
    Route("POST", "/api/v1/users/{user_id}/tokens", Permission.USERS_WRITE, "object", 201,
          lambda c: Req(f"/api/v1/users/{c.commune.user.id}/tokens", json={"name": "tu-dong-hoa"})),
    Route("DELETE", "/api/v1/users/{user_id}/tokens/{token_id}", Permission.USERS_WRITE, "object", 204,
          lambda c: Req(f"/api/v1/users/{c.commune.user.id}/tokens/{c.commune.user.token_id}")),
    # agencies
    Route("GET", "/api/v1/agencies", Permission.READ, "list", 200, lambda c: Req("/api/v1/agencies"),
          listed=items(None), expect=both("agency")),
    Route("GET", "/api/v1/agencies/{agency_id}", Permission.READ, "object", 200,
          lambda c: Req(f"/api/v1/agencies/{c.commune.agency}")),
    # A commune has no child agencies, so the caller creating one is bound to the district;
    # outside its scope is the province, under which a commune may sit: only scope refuses.
    Route("POST", "/api/v1/agencies", Permission.INVENTORY, "create", 201,
          lambda c: Req("/api/v1/agencies", json={"id": "xa-moi", "name": "UBND xã Mới", "level": "commune",
                                                  "parent": DISTRICT if c.side == "in" else PROVINCE}),
          modes=(Mode("in-scope parent", binding=DISTRICT),
                 Mode("out-of-scope parent", "out", 404, binding=DISTRICT)),
          exists=has_row(AgencyRow, "xa-moi")),
    Route("PATCH", "/api/v1/agencies/{agency_id}", Permission.INVENTORY, "object", 200,
          lambda c: Req(f"/api/v1/agencies/{c.commune.agency}", json={"name": "UBND xã (tên mới)"},
                        headers=c.if_match(AgencyRow, c.commune.agency)),
          modes=(*IN_OUT, Mode("into out-of-scope agency", "in", 404, lambda c: Req(
              f"/api/v1/agencies/{c.commune.agency}", json={"merged_into": OUTSIDE},
              headers=c.if_match(AgencyRow, c.commune.agency))))),
    # Importing replaces the tree: only a user bound to the province may (documented 403).
    Route("POST", "/api/v1/agencies/import", Permission.INVENTORY, "create", 200,
          lambda c: Req("/api/v1/agencies/import", content=IMPORTED,
                        headers=(("Content-Type", "application/yaml"),)),
          modes=(Mode("province-wide", binding=PROVINCE), Mode("commune-bound", "out", 403)),
          exists=has_row(AgencyRow, "xa-moi-nhap")),
    # systems, log sources, ingest keys
    Route("GET", "/api/v1/systems", Permission.READ, "list", 200, lambda c: Req("/api/v1/systems"),
          listed=items(None), expect=both("system")),
    Route("GET", "/api/v1/systems/{system_id}", Permission.READ, "object", 200, lambda c: Req(system_path(c))),
    Route("POST", "/api/v1/systems", Permission.INVENTORY, "create", 201,
          lambda c: Req("/api/v1/systems", json=new_system(c.commune.agency)),
          modes=(Mode("in-scope"), Mode("out-of-scope agency", "out", 404)), exists=has_row(SystemRow, "web-moi")),
    Route("PATCH", "/api/v1/systems/{system_id}", Permission.INVENTORY, "object", 200,
          lambda c: Req(system_path(c), json={"name": "Một cửa (tên mới)"},
                        headers=c.if_match(SystemRow, c.commune.system)),
          modes=(*IN_OUT, Mode("into out-of-scope agency", "in", 404, lambda c: Req(
              system_path(c), json={"agency": OUTSIDE}, headers=c.if_match(SystemRow, c.commune.system))))),
    Route("DELETE", "/api/v1/systems/{system_id}", Permission.INVENTORY, "object", 200,
          lambda c: Req(system_path(c))),
    Route("GET", "/api/v1/systems/{system_id}/sources", Permission.READ, "object", 200,
          lambda c: Req(system_path(c, "/sources"))),
    Route("POST", "/api/v1/systems/{system_id}/sources", Permission.INVENTORY, "object", 201,
          lambda c: Req(system_path(c, "/sources"), json={"name": "app-audit"})),
    Route("PATCH", "/api/v1/systems/{system_id}/sources/{name}", Permission.INVENTORY, "object", 200,
          lambda c: Req(system_path(c, f"/sources/{SOURCE}"), json={"expected_interval": "15m"})),
    Route("DELETE", "/api/v1/systems/{system_id}/sources/{name}", Permission.INVENTORY, "object", 204,
          lambda c: Req(system_path(c, f"/sources/{SOURCE}"))),
    Route("GET", "/api/v1/systems/{system_id}/keys", Permission.READ, "object", 200,
          lambda c: Req(system_path(c, "/keys"))),
    Route("POST", "/api/v1/systems/{system_id}/keys", Permission.INVENTORY, "object", 201,
          lambda c: Req(system_path(c, "/keys"), json={"name": "nxlog"})),
    Route("POST", "/api/v1/systems/{system_id}/keys/{key_id}/rotate", Permission.INVENTORY, "object", 201,
          lambda c: Req(system_path(c, f"/keys/{c.commune.key_id}/rotate"), json={"grace_hours": 1})),
    Route("DELETE", "/api/v1/systems/{system_id}/keys/{key_id}", Permission.INVENTORY, "object", 200,
          lambda c: Req(system_path(c, f"/keys/{c.commune.key_id}"))),
    # source health
    Route("GET", "/api/v1/systems/{system_id}/health", Permission.READ, "object", 200,
          lambda c: Req(system_path(c, "/health"))),
    Route("GET", "/api/v1/health/sources", Permission.READ, "list", 200, lambda c: Req("/api/v1/health/sources"),
          listed=items("items", "system_id"), expect=both("system")),
    Route("POST", "/api/v1/systems/{system_id}/sources/{name}/learn", Permission.SERVICE_WRITE, "object", 200,
          lambda c: Req(system_path(c, f"/sources/{SOURCE}/learn"), params=(("reset", "true"),))),
    # alerts
    Route("GET", "/api/v1/alerts", Permission.READ, "list", 200, lambda c: Req("/api/v1/alerts"),
          listed=items("items"), expect=both("alert")),
    Route("GET", "/api/v1/alerts/groups", Permission.READ, "list", 200,
          lambda c: Req("/api/v1/alerts/groups", params=(("by", "system"),)),
          listed=items("items", "system_id"), expect=both("system")),
    Route("POST", "/api/v1/alerts/bulk", Permission.TRIAGE, "bulk", 200,
          lambda c: Req("/api/v1/alerts/bulk", json={"ids": [c.commune.alert], "action": "acknowledge"})),
    Route("GET", "/api/v1/alerts/{alert_id}", Permission.READ, "object", 200,
          lambda c: Req(f"/api/v1/alerts/{c.commune.alert}")),
    Route("PATCH", "/api/v1/alerts/{alert_id}", Permission.TRIAGE, "object", 200,
          lambda c: Req(f"/api/v1/alerts/{c.commune.alert}", json={"status": "acknowledged"},
                        headers=c.if_match(Alert, c.commune.alert))),
    Route("GET", "/api/v1/alerts/{alert_id}/comments", Permission.READ, "object", 200,
          lambda c: Req(f"/api/v1/alerts/{c.commune.alert}/comments")),
    Route("POST", "/api/v1/alerts/{alert_id}/comments", Permission.TRIAGE, "object", 201,
          lambda c: Req(f"/api/v1/alerts/{c.commune.alert}/comments", json={"body": "Đã chặn IP / Blocked"})),
    # incidents
    Route("POST", "/api/v1/incidents", Permission.TRIAGE, "create", 201,
          lambda c: Req("/api/v1/incidents", json={"title": NEW_INCIDENT, "alert_ids": [c.commune.alert]}),
          modes=(Mode("in-scope alert"), Mode("out-of-scope alert", "out", 404),
                 # documented: "an agency outside scope" is a 422
                 Mode("out-of-scope agency", "out", 422, lambda c: Req(
                     "/api/v1/incidents", json={"title": NEW_INCIDENT, "alert_ids": [], "agency_id": OUTSIDE})),
                 ),
          exists=has_incident(NEW_INCIDENT)),
    Route("GET", "/api/v1/incidents", Permission.READ, "list", 200, lambda c: Req("/api/v1/incidents"),
          listed=items("items"), expect=both("incident")),
    Route("GET", "/api/v1/incidents/{incident_id}", Permission.READ, "object", 200,
          lambda c: Req(f"/api/v1/incidents/{c.commune.incident}")),
    Route("PATCH", "/api/v1/incidents/{incident_id}", Permission.TRIAGE, "object", 200,
          lambda c: Req(f"/api/v1/incidents/{c.commune.incident}", json={"status": "investigating"},
                        headers=c.if_match(Incident, c.commune.incident))),
    Route("POST", "/api/v1/incidents/{incident_id}/actions", Permission.TRIAGE, "object", 201,
          lambda c: Req(f"/api/v1/incidents/{c.commune.incident}/actions", json={"action": "Cô lập máy chủ"})),
    # The alert linked is always the caller's own commune's: only the incident's scope differs.
    Route("POST", "/api/v1/incidents/{incident_id}/alerts", Permission.TRIAGE, "object", 200,
          lambda c: Req(f"/api/v1/incidents/{c.commune.incident}/alerts",
                        json={"alert_ids": [c.world.inside.alert]})),
    # audit
    Route("GET", "/api/v1/audit", Permission.AUDIT_READ, "list", 200,
          lambda c: Req("/api/v1/audit", params=(("limit", "500"),)), listed=items("items", "seq"),
          expect=both("audit_seq")),
    Route("GET", "/api/v1/audit/export", Permission.AUDIT_READ, "list", 200, lambda c: Req("/api/v1/audit/export"),
          listed=exported_seqs, expect=both("audit_seq")),
    Route("GET", "/api/v1/audit/verify", Permission.AUDIT_READ, "plain", 200, lambda c: Req("/api/v1/audit/verify")),
    # notifications
    Route("GET", "/api/v1/notifications/deliveries", Permission.SERVICE_READ, "list", 200,
          lambda c: Req("/api/v1/notifications/deliveries"), listed=items("items"), expect=both("delivery")),
    Route("GET", "/api/v1/notifications/channels", Permission.SERVICE_READ, "plain", 200,
          lambda c: Req("/api/v1/notifications/channels")),
    Route("POST", "/api/v1/notifications/test", Permission.SERVICE_WRITE, "plain", 200,
          lambda c: Req("/api/v1/notifications/test", json={"channel": HOOK})),
    # ingest and events
    Route("POST", "/api/v1/ingest", "ingest key", "ingest", 200,
          lambda c: Req("/api/v1/ingest", content=SSH_LINE, headers=(("Content-Type", "text/plain"),))),
    Route("GET", "/api/v1/events", Permission.READ, "list", 200,
          lambda c: Req("/api/v1/events", params=(("limit", "1000"),)), listed=events_listed, expect=both("system"),
          prepare=ingest_both),
)


# --- cases -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    route: Route
    who: str
    """A role, ``anonymous`` or ``ingest key``."""
    mode: Mode
    expected: int

    def __str__(self) -> str:
        return f"{self.route} | {self.who} | {self.mode.name}"

    def caller(self, world: World) -> Account | None:
        return world.caller(self.who, self.mode.binding) if self.who in ROLES else None

    def builder(self, world: World) -> Account:
        """Whose details the request carries (a request without credentials is otherwise
        a valid viewer's, so only the missing credentials can refuse it)."""
        return self.caller(world) or world.caller("viewer", self.mode.binding)


def expected(route: Route, who: str, mode: Mode) -> int:
    """The answer the role table gives."""
    if who == ANONYMOUS or (route.need == "ingest key" and who != INGEST_KEY):
        return 401
    if isinstance(route.need, Permission) and not allowed(who, route.need):
        return 403
    return mode.status if mode.status is not None else route.ok


def cases() -> list[Case]:
    out: list[Case] = []
    for route in ROUTES:
        if route.need != "public":  # login is the one route everyone, signed in or not, may call
            out.append(Case(route, ANONYMOUS, Mode("no credentials"), 401))
        for role in ROLES:
            out += [Case(route, role, mode, expected(route, role, mode)) for mode in route.modes]
        if route.need == "ingest key":
            mode = Mode("key of a system")
            out.append(Case(route, INGEST_KEY, mode, expected(route, INGEST_KEY, mode)))
    return out


CASES = cases()


# --- the world, copied for every case ------------------------------------------------------

@dataclass(frozen=True)
class Template:
    """The world's database of one backend: a SQLite file or a PostgreSQL database."""

    world: World
    path: Path | None = None
    server: Any = None
    name: str = ""


@pytest.fixture(scope="module")
def hook() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             hook: HttpReceiver) -> Iterator[Template]:
    base = tmp_path_factory.mktemp("authz-world")
    cfg = world_config(base / "var", hook.url)
    server: Any = None
    if request.param == "sqlite":
        path = base / "world.db"
        url = f"sqlite:///{path}"
        migrate(url)
    else:
        server = request.getfixturevalue("postgres")
        name = server.create_database(template=request.getfixturevalue("postgres_template"))
        url = server.url(name)
    db = Database(url)
    try:
        with pytest.MonkeyPatch.context() as patch:
            # the cheap hasher of the conftest (that fixture is per test, this one per module)
            patch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
            world = build_world(db, cfg)
        if server is not None:
            with db.write() as session:
                # fresh statistics: autovacuum then has no reason to visit the template
                session.execute(text("ANALYZE"))
    finally:
        db.dispose()  # PostgreSQL copies a template only while nobody is connected to it
    if server is None:
        yield Template(world, path=path)
        return
    yield Template(world, server=server, name=name)
    server.drop_database(name)


@pytest.fixture
def service_db_url(template: Template, tmp_path: Path) -> Iterator[str]:
    """A copy of the world for this case (replaces the shared fixture's empty database)."""
    if template.path is not None:
        target = tmp_path / "soc.db"
        copy_sqlite(template.path, target)
        yield f"sqlite:///{target}"
        return
    name = copy_postgres(template.server, template.name)
    yield template.server.url(name)
    template.server.drop_database(name)


def copy_postgres(server: Any, template: str) -> str:
    """A new database copied from ``template``. PostgreSQL refuses the copy while anyone
    is connected to the template, and its autovacuum worker may visit it at any time
    (the world's inserts make it due), so a refused copy is tried again shortly after."""
    for _ in range(50):
        try:
            name: str = server.create_database(template=template)
            return name
        except psycopg.errors.ObjectInUse:
            time.sleep(0.1)
    raise AssertionError(f"the template database {template} stayed in use")


@pytest.fixture
def soc_config(tmp_path: Path, hook: HttpReceiver) -> SocConfig:
    return world_config(tmp_path / "var", hook.url)


@pytest.fixture(scope="module")
def apps() -> list[FastAPI]:
    """The module's one application. FastAPI prepares an application's routes on its
    first request (about 0.1 s), which a new application per case would pay a
    thousand times over; every case points this one at its own state instead."""
    return []


@pytest.fixture
def client(apps: list[FastAPI], app_state: AppState) -> Iterator[TestClient]:
    if not apps:
        apps.append(create_app(app_state))
    app = apps[0]
    app.state.soc = app_state
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture
def world(template: Template) -> World:
    return template.world


def audit_head(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(AuditHead.seq).where(AuditHead.id == 1)) or 0


def send(client: TestClient, route: Route, req: Req, caller: Account | None) -> httpx.Response:
    headers = dict(caller.headers) if caller is not None and route.kind != "login" else {}
    headers.update(req.headers)
    return client.request(route.method, req.path, params=dict(req.params), json=req.json, content=req.content,
                          headers=headers)


# --- tests -------------------------------------------------------------------------------

def test_the_matrix_has_a_rule_for_every_route_the_app_serves(app_state: AppState) -> None:
    app = create_app(app_state)
    served = {(method, str(context.path)) for context in iter_route_contexts(app.routes)
              if isinstance(context.original_route, APIRoute) for method in context.methods or ()}
    ruled = [(route.method, route.path) for route in ROUTES]
    assert len(ruled) == len(set(ruled)), "a route has two rules"
    assert sorted(served - set(ruled)) == [], "routes the matrix has no rule for (add them to ROUTES)"
    assert sorted(set(ruled) - served) == [], "rules for routes the app no longer serves"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_route_answers_as_the_role_table_says(case: Case, client: TestClient, db: Database,
                                                   world: World) -> None:
    route = case.route
    caller = case.caller(world)
    ctx = Ctx(world, db, case.builder(world), case.mode.side)
    if route.prepare is not None:
        route.prepare(ctx, client)
    req = (case.mode.build or route.build)(ctx)
    if case.who == INGEST_KEY:
        req = Req(req.path, req.json, req.content, (*req.headers, ("X-Ingest-Key", ctx.commune.key)), req.params)
    head = audit_head(db)

    response = send(client, route, req, caller)

    assert response.status_code == case.expected, \
        f"{case}: expected {case.expected}, got {response.status_code}: {response.text[:400]}"
    if response.status_code >= 400:
        assert audit_head(db) == head, f"{case}: refused, yet something changed (the audit trail grew)"
        problem = response.json()
        assert response.headers["content-type"].startswith(PROBLEM) and problem["detail"] and problem["detail_vi"], \
            f"{case}: a refusal says why, in English and Vietnamese: {response.text[:400]}"
    if route.exists is not None:
        with db.read() as session:
            assert route.exists(session) is (response.status_code < 300), f"{case}: created = refused?"
    if route.kind == "list" and response.status_code < 300:
        assert route.listed is not None and route.expect is not None
        present, absent = route.expect(ctx)
        listed = route.listed(response)
        assert present in listed, f"{case}: {present} (in scope) is missing"
        assert absent not in listed, f"{case}: {absent} (out of scope) is listed"
    if route.kind == "bulk" and response.status_code < 300:
        [item] = response.json()["results"]
        if case.mode.side == "in":
            assert (item["ok"], item["status_code"]) == (True, 200), f"{case}: {item}"
        else:
            assert (item["ok"], item["status_code"]) == (False, 404), f"{case}: {item}"
            assert audit_head(db) == head, f"{case}: an out-of-scope alert was changed"


PROVINCE_LISTS = [route for route in ROUTES if route.kind == "list" and route.path != "/api/v1/auth/tokens"]


@pytest.mark.parametrize("route", PROVINCE_LISTS, ids=str)
def test_a_user_bound_to_the_province_sees_both_communes_in_the_list(route: Route, client: TestClient, db: Database,
                                                                     world: World) -> None:
    admin = world.caller("admin", PROVINCE)
    ctx = Ctx(world, db, admin, "in")
    if route.prepare is not None:
        route.prepare(ctx, client)
    response = send(client, route, route.build(ctx), admin)
    assert response.status_code == route.ok, response.text
    assert route.listed is not None and route.expect is not None
    assert set(route.expect(ctx)) <= route.listed(response)

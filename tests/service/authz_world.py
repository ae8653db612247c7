"""The world the authorization matrix runs in (``test_authz_matrix.py``).

Two communes of the conftest province tree, one inside every caller's scope
(``xa-thanh-son``) and one outside it (``xa-hy-cuong``), each with what the API can
address: a system with a log source and an ingest key, an alert with a comment and
a notification delivery, an incident, a user with an API token, and the audit
entries their creation left. Callers: a user of every role bound to the commune (and,
for the routes that need a wider binding, to its district and to the province).

Everything is made with the service's own functions, once per database backend; each
test case then gets a copy of that database (:func:`copy_sqlite`, or PostgreSQL's
``CREATE DATABASE … TEMPLATE``), so a case's changes never reach another case.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from soc.audit.models import AuditEntry
from soc.audit.trail import Actor
from soc.config import SocConfig
from soc.db import Database
from soc.identity.models import ROLES
from soc.identity.scope import EVERYTHING
from soc.identity.tokens import authenticate
from soc.identity.users import create_user, issue_api_token
from soc.inventory import keys as key_ops
from soc.inventory import systems as system_ops
from soc.inventory.models import AgencyRow
from soc.inventory.systems import SourceSpec, SystemSpec
from soc.notify.dispatcher import Dispatcher
from soc.notify.models import NotificationDelivery
from soc.triage.changes import add_comment
from soc.triage.incidents import NewIncident, create_incident
from tests.service.conftest import AGENCIES
from tests.service.identity_fixtures import PASSWORD
from tests.service.notify_fixtures import notify_config, raise_alert

INSIDE = "xa-thanh-son"
"""The commune every matrix caller is bound to."""
OUTSIDE = "xa-hy-cuong"
"""A commune outside their scope."""
DISTRICT = "huyen-thanh-son"
"""The district above ``INSIDE`` (creating an agency needs a parent a commune is allowed under)."""
PROVINCE = "tinh-phu-tho"
"""The root province: a user bound to it sees every agency."""
BINDINGS = (INSIDE, DISTRICT, PROVINCE)
SOURCE = "auth"
"""The log source of every world system."""
HOOK = "hook"
"""The notification channel (a webhook to the tests' receiver)."""

Side = Literal["in", "out"]


@dataclass(frozen=True)
class Account:
    """A user of the world and how to act as them."""

    id: str
    username: str
    role: str
    agencies: tuple[str, ...]
    password: str
    token: str
    """An API token's secret (``Authorization: Bearer``)."""
    token_id: str
    spare_token_id: str
    """A second API token of the user, for the routes that revoke one."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Commune:
    """What the API can address in one commune."""

    agency: str
    system: str
    key_id: str
    key: str
    alert: str
    comment: str
    incident: str
    user: Account
    audit_seq: int
    """The ``system.create`` entry of the commune's system."""
    delivery: str


@dataclass(frozen=True)
class World:
    inside: Commune
    outside: Commune
    callers: dict[tuple[str, str], Account]
    """(role, bound agency) → caller."""

    def commune(self, side: Side) -> Commune:
        return self.inside if side == "in" else self.outside

    def caller(self, role: str, binding: str = INSIDE) -> Account:
        return self.callers[(role, binding)]


def world_config(data_dir: Path, hook_url: str) -> SocConfig:
    """The service configuration of the matrix: one webhook channel routed every alert."""
    base = SocConfig(data_dir=data_dir, systems_dir=data_dir.parent / "no-systems", json_mappings_dir=None)
    return notify_config(base, {HOOK: {"type": "webhook", "url": f"{hook_url}/soc"}},
                         [{"name": "all", "min_level": "low", "channels": [HOOK]}])


def _account(db: Database, username: str, role: str, agencies: list[str]) -> Account:
    actor = Actor.system("authz-world")
    with db.write() as session:
        user, _ = create_user(session, actor, EVERYTHING, username=username, role=role, agencies=agencies,
                              password=PASSWORD)
        token, secret = issue_api_token(session, actor, user, name="matrix", days=None)
        spare, _ = issue_api_token(session, actor, user, name="spare", days=None)
        return Account(user.id, user.username, role, tuple(agencies), PASSWORD, secret, token.id, spare.id)


def _commune(db: Database, cfg: SocConfig, builder: Account, agency: str) -> Commune:
    principal = authenticate(db, builder.token)
    assert principal is not None
    actor = Actor.of(principal)
    system_id = f"motcua-{agency}"
    spec = SystemSpec(id=system_id, name=f"Một cửa {agency}", type="one_stop_portal", agency=agency,
                      classification=2, log_sources=[SourceSpec(name=SOURCE, expected_interval="1h")])
    with db.write() as session:
        row = system_ops.create_system(session, actor, principal.scope, spec, system_ops.profile_names(cfg))
        key, secret = key_ops.create_key(session, actor, row, "default")
        key_id = key.id
    alert_id = raise_alert(db, "high", system=system_id)
    comment = add_comment(db, principal, alert_id, "Đã xem / Seen")
    incident = create_incident(db, principal, NewIncident(title=f"Sự cố {agency} / Incident", alert_ids=[],
                                                          agency_id=agency), cfg)
    user = _account(db, f"nguoi-dung-{agency}", "viewer", [agency])
    with db.read() as session:
        seq = session.scalars(select(AuditEntry.seq).where(AuditEntry.action == "system.create",
                                                           AuditEntry.target_id == system_id)).one()
    return Commune(agency=agency, system=system_id, key_id=key_id, key=secret, alert=alert_id,
                   comment=str(comment["id"]), incident=str(incident["id"]), user=user, audit_seq=seq, delivery="")


def build_world(db: Database, cfg: SocConfig) -> World:
    """The world in ``db`` (migrated, empty)."""
    with db.write() as session:
        for agency_id, name, level, parent, merged in AGENCIES:
            session.add(AgencyRow(id=agency_id, name=name, level=level, parent_id=parent, merged_into=merged,
                                  active=merged is None))
    callers = {(role, binding): _account(db, f"{role}-{binding}", role, [binding])
               for binding in BINDINGS for role in ROLES}
    dispatcher = Dispatcher(db, cfg)
    dispatcher.route_new()  # starts routing here: the alerts below are new to it
    builder = callers[("admin", PROVINCE)]
    inside, outside = (_commune(db, cfg, builder, agency) for agency in (INSIDE, OUTSIDE))
    dispatcher.route_new()
    with db.read() as session:
        deliveries = {alert: delivery for alert, delivery in session.execute(
            select(NotificationDelivery.alert_id, NotificationDelivery.id))}
    return World(inside=_with_delivery(inside, deliveries), outside=_with_delivery(outside, deliveries),
                 callers=callers)


def _with_delivery(commune: Commune, deliveries: dict[str, str]) -> Commune:
    return replace(commune, delivery=deliveries[commune.alert])


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (the backup API, so no journal is missed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()

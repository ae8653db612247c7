"""The service under test: a real SOC database (SQLite and PostgreSQL, see
``service_db_url``), a real event store and pipeline, the FastAPI app, and users of
every role bound to agencies of a small province tree.

Agency tree (ids as events carry them)::

    tinh-phu-tho (province)
    ├── so-khcn (province department)
    ├── huyen-thanh-son (district, an inventory that still has districts)
    │   └── xa-thanh-son (commune)
    └── xa-hy-cuong (commune)
        └── xa-chu-hoa (commune merged into xa-hy-cuong, kept for history)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collectors.batch import Batch
from soc.api.app import create_app
from soc.api.state import AppState
from soc.config import SocConfig
from soc.db import Database
from soc.identity.models import UserRow
from soc.identity.tokens import issue_token
from soc.inventory.models import AgencyRow
from soc.pipeline.build import Topology, build_topology
from soc.pipeline.core import BatchResult

AGENCIES: list[tuple[str, str, str, str | None, str | None]] = [
    # id, name, level, parent, merged_into
    ("tinh-phu-tho", "UBND tỉnh Phú Thọ", "province", None, None),
    ("so-khcn", "Sở Khoa học và Công nghệ", "province", "tinh-phu-tho", None),
    ("huyen-thanh-son", "UBND huyện Thanh Sơn", "district", "tinh-phu-tho", None),
    ("xa-thanh-son", "UBND xã Thanh Sơn", "commune", "huyen-thanh-son", None),
    ("xa-hy-cuong", "UBND xã Hy Cương", "commune", "tinh-phu-tho", None),
    ("xa-chu-hoa", "UBND xã Chu Hóa", "commune", "tinh-phu-tho", "xa-hy-cuong"),
]


@dataclass
class Caller:
    """A signed-in user of the test service."""

    user: UserRow
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(autouse=True)
def fast_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """argon2id with the smallest cost in service tests: the production cost (tens of
    milliseconds per hash, by design) would make the suite take minutes. Tests about
    the hashing itself are marked ``real_argon2`` and keep the production hasher."""
    from argon2 import PasswordHasher

    from soc.identity import passwords

    if request.node.get_closest_marker("real_argon2"):
        yield
        return
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    passwords._dummy_hash.cache_clear()
    yield
    passwords._dummy_hash.cache_clear()


@pytest.fixture
def db(service_db_url: str) -> Iterator[Database]:
    database = Database(service_db_url)
    yield database
    database.dispose()


@pytest.fixture
def agencies(db: Database) -> list[str]:
    """The province tree above, in the database."""
    with db.write() as session:
        for agency_id, name, level, parent, merged in AGENCIES:
            session.add(AgencyRow(id=agency_id, name=name, level=level, parent_id=parent, merged_into=merged,
                                  active=merged is None))
    return [a[0] for a in AGENCIES]


@pytest.fixture
def make_caller(db: Database, agencies: list[str]) -> Callable[..., Caller]:
    """``make_caller(role, agencies=[...], username=None)``: a user with an API token."""
    counter = iter(range(1, 1_000_000))

    def make(role: str, bound: list[str] | None = None, username: str | None = None) -> Caller:
        name = username or f"{role}{next(counter)}"
        with db.write() as session:
            user = UserRow(username=name, display_name=name.title(), role=role,
                           agencies=list(bound if bound is not None else ["tinh-phu-tho"]))
            session.add(user)
            session.flush()
            _, secret = issue_token(session, user, kind="api", name="test")
        return Caller(user, secret)

    return make


@pytest.fixture
def soc_config(tmp_path: Path) -> SocConfig:
    return SocConfig(data_dir=tmp_path / "var", systems_dir=tmp_path / "no-systems", json_mappings_dir=None)


@pytest.fixture
def topology(soc_config: SocConfig, db: Database) -> Iterator[Topology]:
    topo = build_topology(soc_config, db=db)
    yield topo
    topo.pipeline.close()
    topo.store.close()


@pytest.fixture
def app_state(soc_config: SocConfig, topology: Topology, db: Database) -> AppState:
    async def submit(batch: Batch) -> BatchResult:
        return topology.pipeline.process(batch)

    return AppState(cfg=soc_config, store=topology.store, registry=topology.registry, metrics=topology.metrics,
                    submit=submit, db=db)


@pytest.fixture
def client(app_state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(app_state), base_url="http://127.0.0.1") as test_client:
        yield test_client

"""Triage API latency with a million alerts, on SQLite and on PostgreSQL.

For each backend: a fresh SOC database migrated to head, 1,000,000 alerts with a
realistic spread (our rule pack's rules and levels, the shipped inventory's systems
and agencies, 90 days of history, most alerts resolved), the real FastAPI app served
by uvicorn on 127.0.0.1, and an HTTP client measuring one request at a time:

- first page of the queue under filters an analyst uses (open high/critical alerts,
  one agency's open alerts, one rule over 7 days, assigned to me, a commune analyst's
  scoped queue, a free-text search), p50/p99 each;
- a status change (``PATCH /api/v1/alerts/{id}`` with ``If-Match``), p50/p99.

PostgreSQL is Debian's server started durable (fsync on) on loopback, as the tests
start it. Aim from the issue: p99 under 100 ms for a filtered first page.

    .venv/bin/python bench/api.py [--alerts 1000000] [--requests 200] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from soc.api.app import create_app  # noqa: E402
from soc.api.state import AppState  # noqa: E402
from soc.config import SocConfig  # noqa: E402
from soc.db import Database, migrate  # noqa: E402
from soc.detect.model import RuleInfo  # noqa: E402
from soc.identity.models import UserRow  # noqa: E402
from soc.identity.tokens import issue_token  # noqa: E402
from soc.inventory.models import AgencyRow  # noqa: E402
from soc.pipeline.build import build_topology  # noqa: E402
from soc.systems import SystemRegistry  # noqa: E402

LEVELS = [("informational", 0.10), ("low", 0.40), ("medium", 0.30), ("high", 0.15), ("critical", 0.05)]
STATUSES = [("new", 0.25), ("acknowledged", 0.08), ("in_progress", 0.07), ("resolved", 0.60)]
RESOLUTIONS = ["true_positive", "false_positive", "benign"]
CHUNK = 20_000


def _rules() -> list[dict[str, Any]]:
    rules = []
    for path in sorted((REPO / "rules").rglob("*.yml")):
        if "pipelines" in path.parts or "tests" in path.parts:
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("id") and doc.get("title"):
                info = RuleInfo(id=str(doc["id"]), title=str(doc["title"]),
                                tags=tuple(str(t) for t in doc.get("tags") or []))
                rules.append({"id": info.id, "title": info.title, "level": str(doc.get("level") or "medium"),
                              "tactics": info.tactics, "techniques": info.techniques})
    return rules


def _inventory() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    raw = yaml.safe_load((REPO / "config" / "systems" / "province.yaml").read_text(encoding="utf-8"))
    return raw.get("agencies") or [], raw.get("systems") or []


def _weighted(rng: random.Random, options: list[tuple[str, float]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def generate(n: int, users: list[str], seed: int = 7) -> Iterator[list[dict[str, Any]]]:
    """``n`` alert rows in chunks, newest last_seen in the last hour, oldest 90 days back."""
    rng = random.Random(seed)
    rules = _rules()
    agencies, systems = _inventory()
    level_of = {a["id"]: a["level"] for a in agencies}
    now = datetime.now(UTC)
    chunk: list[dict[str, Any]] = []
    for i in range(n):
        rule = rng.choice(rules)
        system = rng.choice(systems)
        level = _weighted(rng, LEVELS) if rng.random() < 0.5 else rule["level"]
        status = _weighted(rng, STATUSES)
        first = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
        last = min(now, first + timedelta(seconds=rng.expovariate(1 / 600)))
        ip = f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        user = rng.choice(["root", "admin", "nguyenvana", "tranthib", "vanthu01", "ketoan"])
        acknowledged = first + timedelta(minutes=rng.uniform(1, 300)) if status != "new" else None
        resolved = (acknowledged or first) + timedelta(minutes=rng.uniform(5, 3000)) if status == "resolved" else None
        chunk.append({
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "rule_id": rule["id"], "rule_title": rule["title"], "level": level,
            "kind": "correlation" if rng.random() < 0.1 else "detection", "status": status,
            "tactics": rule["tactics"], "techniques": rule["techniques"],
            "dedup_key": f"{i:064x}", "count": 1 + int(rng.expovariate(0.2)),
            "first_seen": first, "last_seen": last, "created_at": first, "updated_at": resolved or first,
            "version": 1, "event_ids": [f"{i:032x}"],
            "key_fields": {"source.ip": ip, "user.name": user, "host.name": f"srv{rng.randrange(40):02d}"},
            "system_id": system["id"], "agency_id": system["agency"],
            "level_gov": system.get("level") or level_of.get(system["agency"]),
            "classification": system.get("classification"), "retro": False, "hunt_id": None,
            "summary": f"{rule['title']} từ/from {ip}, tài khoản/user {user}",
            "assignee_id": rng.choice(users) if status in ("acknowledged", "in_progress") or
            (status == "resolved" and rng.random() < 0.8) else None,
            "resolution": rng.choice(RESOLUTIONS) if status == "resolved" else None,
            "acknowledged_at": acknowledged, "resolved_at": resolved,
            "status_changed_at": resolved or acknowledged, "incident_id": None,
        })
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _alert_columns(db: Database) -> list[str]:
    from sqlalchemy import inspect

    return [c["name"] for c in inspect(db.engine).get_columns("alerts")]


def _alert_indexes(db: Database) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the alerts table's secondary indexes."""
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            rows = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'alerts' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)").all()
        else:
            rows = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alerts' "
                "AND sql IS NOT NULL").all()
    return [(str(name), str(sql)) for name, sql in rows]


def load_alerts(db: Database, n: int, users: list[str]) -> float:
    """Insert ``n`` alerts through the alerts table (so column types and the derived
    search columns are exactly the application's); returns seconds. The secondary
    indexes are dropped for the load and rebuilt after it, as a bulk import would do:
    maintaining fifteen B-trees row by row would make the load, not the API, the
    benchmark."""
    from soc.alerts.models import Alert
    from soc.triage.derived import derived_values

    columns = set(_alert_columns(db))
    table = Alert.__table__
    indexes = _alert_indexes(db)
    started = time.perf_counter()
    with db.engine.begin() as conn:
        for name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    done = 0
    for chunk in generate(n, users):
        rows = []
        for row in chunk:
            values = {k: v for k, v in row.items() if k in columns}
            values.update({k: v for k, v in derived_values(values).items() if k in columns})
            rows.append(values)
        with db.engine.begin() as conn:
            conn.execute(table.insert(), rows)
        done += len(rows)
        print(f"\r  {done:,}/{n:,} alerts", end="", flush=True)
    print(f"\r  {done:,} alerts inserted, rebuilding {len(indexes)} indexes", flush=True)
    with db.engine.begin() as conn:
        for _, ddl in indexes:
            conn.exec_driver_sql(ddl)
        conn.exec_driver_sql("ANALYZE alerts" if db.dialect == "postgresql" else "ANALYZE")
    return time.perf_counter() - started


def seed_people(db: Database) -> dict[str, Any]:
    """The shipped inventory's agencies, a province analyst and a commune analyst."""
    agencies, _ = _inventory()
    with db.write() as session:
        for agency in agencies:
            session.add(AgencyRow(id=agency["id"], name=agency["name"], level=agency["level"],
                                  parent_id=agency.get("parent")))
        province = UserRow(username="analyst", display_name="Analyst", role="analyst", agencies=["*"])
        commune_agency = next((a["id"] for a in agencies if a["level"] == "commune"), agencies[-1]["id"])
        commune = UserRow(username="commune-analyst", display_name="Commune analyst", role="analyst",
                          agencies=[commune_agency])
        others = [UserRow(username=f"analyst{i:02d}", role="analyst", agencies=["*"]) for i in range(20)]
        session.add_all([province, commune, *others])
        session.flush()
        _, province_token = issue_token(session, province, kind="api", name="bench")
        _, commune_token = issue_token(session, commune, kind="api", name="bench")
        user_ids = [u.id for u in [province, *others]]
        province_id = province.id
    return {"province_token": province_token, "commune_token": commune_token, "users": user_ids,
            "province_id": province_id}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The real app under uvicorn in a thread, on 127.0.0.1."""

    def __init__(self, db: Database, data_dir: Path) -> None:
        cfg = SocConfig(data_dir=data_dir, systems_dir=data_dir / "none", json_mappings_dir=None)
        topo = build_topology(cfg, registry=SystemRegistry())
        self.topo = topo

        async def submit(batch: Any) -> Any:
            return topo.pipeline.process(batch)

        state = AppState(cfg=cfg, store=topo.store, registry=topo.registry, metrics=topo.metrics,
                         submit=submit, db=db)
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.topo.pipeline.close()
        self.topo.store.close()


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(client: httpx.Client, method: str, path: str, requests: int, **kwargs: Any) -> dict[str, float]:
    times: list[float] = []
    for _ in range(3):  # warm-up: first-touch pages, statement caches
        client.request(method, path, **kwargs).raise_for_status()
    for _ in range(requests):
        started = time.perf_counter()
        response = client.request(method, path, **kwargs)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return {"p50_ms": statistics.median(times), "p99_ms": _pct(times, 0.99)}


def queue_queries() -> list[tuple[str, str, dict[str, Any]]]:
    _, systems = _inventory()
    rules = _rules()
    busy_agency = systems[0]["agency"]
    since = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    return [
        ("open_high_critical", "province", {"status": ["new", "acknowledged", "in_progress"],
                                            "level": ["high", "critical"], "limit": 50}),
        ("agency_open", "province", {"agency_id": busy_agency, "status": ["new"], "limit": 50}),
        ("rule_7d", "province", {"rule_id": rules[0]["id"], "since": since, "limit": 50}),
        ("assigned_to_me", "province", {"assignee": "me", "status": ["acknowledged", "in_progress"], "limit": 50}),
        ("tactic_credential_access", "province", {"tactic": "credential-access", "status": ["new"], "limit": 50}),
        ("commune_scope", "commune", {"limit": 50}),
        ("sla_breached_open", "province", {"sla_breached": "true", "status": ["new"], "limit": 50}),
        ("free_text", "province", {"q": "203.0.113", "limit": 50}),
    ]


def status_changes(client: httpx.Client, base: str, requests: int) -> dict[str, float]:
    listing = client.get(f"{base}/api/v1/alerts", params={"status": ["new"], "limit": requests + 10})
    listing.raise_for_status()
    items = listing.json()["items"]
    times: list[float] = []
    for alert in items[:requests]:
        started = time.perf_counter()
        response = client.patch(f"{base}/api/v1/alerts/{alert['id']}", json={"status": "acknowledged"},
                                headers={"If-Match": f'"{alert["version"]}"'})
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return {"p50_ms": statistics.median(times), "p99_ms": _pct(times, 0.99), "changes": len(times)}


def run_backend(backend: str, n: int, requests: int, workdir: Path) -> dict[str, Any]:
    print(f"== {backend}: {n:,} alerts")
    server_pg = None
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'soc.db'}"
    else:
        from tests.pg import PostgresServer

        server_pg = PostgresServer(durable=True)
        server_pg.start()
        url = server_pg.url(server_pg.create_database())
    try:
        migrate(url)
        db = Database(url)
        people = seed_people(db)
        load_s = load_alerts(db, n, people["users"])
        print(f"  loaded in {load_s:.0f} s ({n / load_s:,.0f} alerts/s)")
        out: dict[str, Any] = {"load_s": round(load_s, 1)}
        with Server(db, workdir / backend) as base:
            tokens = {"province": people["province_token"], "commune": people["commune_token"]}
            clients = {who: httpx.Client(headers={"Authorization": f"Bearer {tok}"}, timeout=60)
                       for who, tok in tokens.items()}
            try:
                for name, who, params in queue_queries():
                    figures = measure(clients[who], "GET", f"{base}/api/v1/alerts", requests, params=params)
                    out[name] = figures
                    print(f"  list {name:26s} p50 {figures['p50_ms']:7.1f} ms   p99 {figures['p99_ms']:7.1f} ms")
                change = status_changes(clients["province"], base, requests)
                out["status_change"] = change
                print(f"  status change (PATCH)      p50 {change['p50_ms']:7.1f} ms   p99 {change['p99_ms']:7.1f} ms")
            finally:
                for client in clients.values():
                    client.close()
        db.dispose()
        return out
    finally:
        if server_pg is not None:
            server_pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    os.environ.pop("SOC_DATABASE_URL", None)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="soc-bench-api-") as tmp:
        for backend in backends:
            results[backend] = run_backend(backend, args.alerts, args.requests, Path(tmp))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the benchmark process (client + server): {rss_mb:,.0f} MB")
    flat: dict[str, Any] = {"alerts": args.alerts, "requests": args.requests, "peak_rss_mb": round(rss_mb)}
    for backend, figures in results.items():
        flat[f"{backend}_load_s"] = figures["load_s"]
        worst = 0.0
        for name, value in figures.items():
            if isinstance(value, dict):
                flat[f"{backend}_{name}_p50_ms"] = round(value["p50_ms"], 2)
                flat[f"{backend}_{name}_p99_ms"] = round(value["p99_ms"], 2)
                if name not in ("status_change", "free_text"):
                    worst = max(worst, value["p99_ms"])
        flat[f"{backend}_filtered_first_page_worst_p99_ms"] = round(worst, 2)
    print(json.dumps(flat))


if __name__ == "__main__":
    main()

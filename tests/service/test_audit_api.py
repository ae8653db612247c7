"""``/api/v1/audit``: listing with filters, cursor and agency scope; NDJSON and CSV
exports that re-verify offline; chain verification; only admins and auditors."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soc.audit.trail import GENESIS, HASHED_FIELDS, Actor
from soc.db import Database
from tests.service.audit_fixtures import append, tamper
from tests.service.conftest import Caller

ADMIN_JOB = Actor.system("silent-check")


@pytest.fixture
def trail(db: Database, agencies: list[str]) -> None:
    """Entries of several agencies, actions and actors (seq 1–9)."""
    append(db, 3, agency_id="xa-hy-cuong")                                                  # 1-3 alert.update
    append(db, 1, action="alert.comment", agency_id="xa-chu-hoa")                          # 4
    append(db, 2, action="alert.update", agency_id="xa-thanh-son")                         # 5-6
    append(db, 1, actor=ADMIN_JOB, action="alerts.purge", target_type="alerts", agency_id=None)  # 7
    append(db, 1, action="system.key.rotate", target_type="system", agency_id="huyen-thanh-son")  # 8
    append(db, 1, actor=ADMIN_JOB, action="user.create", target_type="user", agency_id=None)   # 9


def _seqs(client: TestClient, caller: Caller, **params: Any) -> list[int]:
    response = client.get("/api/v1/audit", params=params, headers=caller.headers)
    assert response.status_code == 200, response.text
    return [item["seq"] for item in response.json()["items"]]


def test_entries_are_listed_newest_first(trail: None, client: TestClient, make_caller: Callable[..., Caller]) -> None:
    assert _seqs(client, make_caller("admin")) == [9, 8, 7, 6, 5, 4, 3, 2, 1]


def test_a_listed_entry_carries_its_chain_fields(trail: None, client: TestClient,
                                                 make_caller: Callable[..., Caller]) -> None:
    item = client.get("/api/v1/audit", params={"limit": 1}, headers=make_caller("auditor").headers).json()["items"][0]
    assert set(item) == {*HASHED_FIELDS, "hash"}
    assert item["hash"] == _hash(item)


@pytest.mark.parametrize(("params", "expected"), [
    ({"action": "alert."}, [6, 5, 4, 3, 2, 1]),
    ({"action": "alert"}, [6, 5, 4, 3, 2, 1]),
    ({"action": "alert.comment"}, [4]),
    ({"action": "system.key"}, [8]),
    ({"action": "alert%"}, []),
    ({"actor": "system:silent-check"}, [9, 7]),
    ({"target_type": "alert", "target_id": "alert-0"}, [5, 4, 1]),
    ({"agency_id": "xa-thanh-son"}, [6, 5]),
])
def test_filters_select_entries(trail: None, client: TestClient, make_caller: Callable[..., Caller],
                                params: dict[str, str], expected: list[int]) -> None:
    assert _seqs(client, make_caller("admin"), **params) == expected


def test_since_and_until_bound_the_time(db: Database, agencies: list[str], client: TestClient,
                                        make_caller: Callable[..., Caller]) -> None:
    append(db, 2)
    admin = make_caller("admin")
    items = client.get("/api/v1/audit", headers=admin.headers).json()["items"]
    second = items[0]["at"]
    assert _seqs(client, admin, since=second) == [2]
    assert _seqs(client, admin, until=second) == [1]
    assert _seqs(client, admin, since="1h") == [2, 1]


def test_an_invalid_time_is_a_400_saying_what_to_send(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    response = client.get("/api/v1/audit", params={"since": "yesterday"}, headers=make_caller("admin").headers)
    assert response.status_code == 400
    assert "24h" in response.json()["detail"] and response.json()["detail_vi"]


def test_the_cursor_pages_through_every_entry_once(trail: None, client: TestClient,
                                                   make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin")
    seen: list[int] = []
    cursor: int | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/audit", params=params, headers=admin.headers).json()
        seen += [item["seq"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [9, 8, 7, 6, 5, 4, 3, 2, 1] and pages == 3


def test_the_last_full_page_has_no_cursor(trail: None, client: TestClient,
                                          make_caller: Callable[..., Caller]) -> None:
    body = client.get("/api/v1/audit", params={"limit": 9}, headers=make_caller("admin").headers).json()
    assert len(body["items"]) == 9 and body["next_cursor"] is None


def test_a_page_is_at_most_500_entries(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    response = client.get("/api/v1/audit", params={"limit": 501}, headers=make_caller("admin").headers)
    assert response.status_code == 422


def test_a_commune_auditor_sees_only_their_agency(trail: None, client: TestClient,
                                                  make_caller: Callable[..., Caller]) -> None:
    auditor = make_caller("auditor", ["xa-hy-cuong"])
    # xa-chu-hoa was merged into xa-hy-cuong: its history is theirs too.
    assert _seqs(client, auditor) == [4, 3, 2, 1]
    assert _seqs(client, auditor, agency_id="xa-thanh-son") == []


def test_a_district_auditor_sees_the_district_and_its_communes(trail: None, client: TestClient,
                                                               make_caller: Callable[..., Caller]) -> None:
    assert _seqs(client, make_caller("auditor", ["huyen-thanh-son"])) == [8, 6, 5]


def test_only_an_all_agency_reader_sees_entries_without_agency(trail: None, client: TestClient,
                                                               make_caller: Callable[..., Caller]) -> None:
    assert 7 in _seqs(client, make_caller("auditor", ["tinh-phu-tho"]))
    assert 7 in _seqs(client, make_caller("admin", ["*"]))
    assert 7 not in _seqs(client, make_caller("auditor", ["so-khcn", "huyen-thanh-son", "xa-hy-cuong"]))


@pytest.mark.parametrize("role", ["analyst", "viewer"])
@pytest.mark.parametrize("path", ["/api/v1/audit", "/api/v1/audit/export", "/api/v1/audit/verify"])
def test_roles_without_audit_read_are_refused(client: TestClient, make_caller: Callable[..., Caller], role: str,
                                              path: str) -> None:
    response = client.get(path, headers=make_caller(role).headers)
    assert response.status_code == 403
    assert "audit.read" in response.json()["detail"]


def test_the_trail_needs_credentials(client: TestClient) -> None:
    assert client.get("/api/v1/audit").status_code == 401


def test_the_ndjson_export_reverifies_offline(trail: None, client: TestClient,
                                              make_caller: Callable[..., Caller]) -> None:
    response = client.get("/api/v1/audit/export", params={"format": "ndjson"},
                          headers=make_caller("auditor").headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert response.headers["content-disposition"].startswith('attachment; filename="audit-')
    assert response.headers["content-disposition"].endswith('.ndjson"')
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, 10))
    _assert_chain(lines)


def test_the_csv_export_reverifies_offline(trail: None, client: TestClient,
                                           make_caller: Callable[..., Caller]) -> None:
    response = client.get("/api/v1/audit/export", params={"format": "csv"}, headers=make_caller("admin").headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == [*HASHED_FIELDS, "hash"]
    assert json.loads(rows[0]["after"])["tags"] == ["ssh", "brute-force"]
    _assert_chain([_from_csv(row) for row in rows])


def test_an_export_keeps_to_the_filters_and_the_scope(trail: None, client: TestClient,
                                                      make_caller: Callable[..., Caller]) -> None:
    auditor = make_caller("auditor", ["xa-hy-cuong"])
    response = client.get("/api/v1/audit/export", params={"action": "alert.update"}, headers=auditor.headers)
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3]
    assert all(e["hash"] == _hash(e) for e in lines)


def test_an_unknown_export_format_is_refused(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    response = client.get("/api/v1/audit/export", params={"format": "xlsx"}, headers=make_caller("admin").headers)
    assert response.status_code == 422


def test_verify_reports_an_intact_chain(trail: None, client: TestClient,
                                        make_caller: Callable[..., Caller]) -> None:
    body = client.get("/api/v1/audit/verify", headers=make_caller("auditor").headers).json()
    assert (body["ok"], body["checked"], body["last_seq"], body["reason"]) == (True, 9, 9, None)
    assert body["message"] and body["message_vi"]


def test_verify_reports_the_first_edited_entry(trail: None, db: Database, client: TestClient,
                                               make_caller: Callable[..., Caller]) -> None:
    tamper(db, "UPDATE audit_log SET agency_id = 'so-khcn' WHERE seq = 6")
    body = client.get("/api/v1/audit/verify", headers=make_caller("admin").headers).json()
    assert (body["ok"], body["first_broken_seq"], body["reason"], body["checked"]) == (False, 6, "hash_mismatch", 5)


def _hash(entry: dict[str, Any]) -> str:
    """The offline check an auditor runs, with the standard library only (as the
    export module documents)."""
    fields = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _assert_chain(entries: list[dict[str, Any]]) -> None:
    previous = GENESIS
    for entry in entries:
        assert entry["hash"] == _hash(entry), entry["seq"]
        assert entry["prev_hash"] == previous, entry["seq"]
        previous = entry["hash"]


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items()}
    entry["seq"] = int(row["seq"])
    for name in ("before", "after"):
        entry[name] = json.loads(row[name]) if row[name] else None
    return entry

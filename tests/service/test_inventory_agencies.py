"""The agency tree: imports from YAML and CSV (renames, mergers, re-parenting),
their validation, and the agency routes with scope and optimistic concurrency.

The tree of the ``agencies`` fixture::

    tinh-phu-tho ─┬─ so-khcn
                  ├─ huyen-thanh-son ── xa-thanh-son
                  ├─ xa-hy-cuong
                  └─ xa-chu-hoa (merged into xa-hy-cuong)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from soc.api.state import AppState
from soc.audit.models import AuditEntry
from soc.audit.trail import Actor
from soc.config import SocConfig
from soc.db import Database
from soc.inventory.agencies import AgencyImportError, ImportReport, import_agencies, parse_csv, parse_yaml
from soc.inventory.models import AgencyRow
from tests.service.conftest import Caller
from tests.service.inventory_fixtures import inventory_config, onboard

HEADER = "id,name,level,parent,former_names,merged_into\n"
ACTOR = Actor.system("test")


@pytest.fixture
def soc_config(tmp_path: Path) -> SocConfig:
    return inventory_config(tmp_path)


@pytest.fixture
def admin(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller("admin", ["tinh-phu-tho"])


def import_csv(db: Database, rows: str, *, dry_run: bool = False) -> ImportReport:
    return import_agencies(db, parse_csv((HEADER + rows).encode(), "agencies.csv"), ACTOR, file="agencies.csv",
                           dry_run=dry_run)


def agency(db: Database, agency_id: str) -> AgencyRow:
    with db.read() as session:
        row = session.get(AgencyRow, agency_id)
        assert row is not None
        session.expunge(row)
        return row


# --- imports -----------------------------------------------------------------------

def test_a_yaml_import_adds_agencies_under_existing_ones(db: Database, agencies: list[str]) -> None:
    text = ("agencies:\n"
            "  - {id: xa-van-phu, name: UBND xã Văn Phú, level: commune, parent: huyen-thanh-son}\n"
            "  - id: so-yte\n    name: Sở Y tế\n    level: province\n    parent: tinh-phu-tho\n")
    report = import_agencies(db, parse_yaml(text, "tree.yaml"), ACTOR, file="tree.yaml")
    assert [c.id for c in report.created] == ["xa-van-phu", "so-yte"]
    assert agency(db, "xa-van-phu").parent_id == "huyen-thanh-son"


def test_the_config_systems_seed_file_can_be_imported_as_a_tree(db: Database) -> None:
    from tests.conftest import REPO

    text = (REPO / "config" / "systems" / "province.yaml").read_text(encoding="utf-8")
    report = import_agencies(db, parse_yaml(text, "province.yaml"), ACTOR, file="province.yaml")
    assert len(report.created) == 9
    assert agency(db, "so-khcn").former_names == ["Sở Thông tin và Truyền thông"]


def test_a_dry_run_shows_the_diff_and_changes_nothing(db: Database, agencies: list[str]) -> None:
    report = import_csv(db, "xa-hy-cuong,UBND phường Hy Cương,commune,tinh-phu-tho,,\n"
                            "xa-moi,UBND xã Mới,commune,tinh-phu-tho,,\n", dry_run=True)
    assert report.dry_run
    assert [c.id for c in report.created] == ["xa-moi"]
    assert report.updated[0].changes["name"] == ("UBND xã Hy Cương", "UBND phường Hy Cương")
    assert agency(db, "xa-hy-cuong").name == "UBND xã Hy Cương"
    with db.read() as session:
        assert session.get(AgencyRow, "xa-moi") is None


def test_a_csv_saved_with_a_byte_order_mark_is_read(db: Database, agencies: list[str]) -> None:
    data = ("\ufeff" + HEADER + "xa-moi,UBND xã Mới,commune,tinh-phu-tho,,\n").encode("utf-8")
    report = import_agencies(db, parse_csv(data, "excel.csv"), ACTOR, file="excel.csv")
    assert [c.id for c in report.created] == ["xa-moi"]


def test_a_rename_keeps_every_old_name_in_former_names(db: Database, agencies: list[str]) -> None:
    import_csv(db, "xa-hy-cuong,UBND phường Hy Cương,commune,tinh-phu-tho,,\n")
    import_csv(db, "xa-hy-cuong,UBND phường Nông Trang,commune,tinh-phu-tho,,\n")
    row = agency(db, "xa-hy-cuong")
    assert row.name == "UBND phường Nông Trang"
    assert row.former_names == ["UBND xã Hy Cương", "UBND phường Hy Cương"]


def test_former_names_of_the_file_are_added_to_those_kept(db: Database, agencies: list[str]) -> None:
    import_csv(db, "so-khcn,Sở Khoa học và Công nghệ,province,tinh-phu-tho,Sở TT&TT;Sở Thông tin,\n")
    assert agency(db, "so-khcn").former_names == ["Sở TT&TT", "Sở Thông tin"]


def test_a_merged_agency_systems_are_seen_by_users_of_the_absorbing_agency(
        client: TestClient, admin: Caller, make_caller: Callable[..., Caller], db: Database) -> None:
    onboard(client, admin, "web-thanh-son", "xa-thanh-son")
    hy_cuong_viewer = make_caller("viewer", ["xa-hy-cuong"])
    assert client.get("/api/v1/systems", headers=hy_cuong_viewer.headers).json() == []
    report = import_csv(db, "xa-thanh-son,UBND xã Thanh Sơn,commune,huyen-thanh-son,,xa-hy-cuong\n")
    assert report.merged == ["xa-thanh-son"]
    listed = client.get("/api/v1/systems", headers=hy_cuong_viewer.headers).json()
    assert [s["id"] for s in listed] == ["web-thanh-son"]
    merged = agency(db, "xa-thanh-son")
    assert (merged.merged_into, merged.active) == ("xa-hy-cuong", False)


def test_a_merger_is_audited_as_a_merge(db: Database, agencies: list[str]) -> None:
    import_csv(db, "xa-thanh-son,UBND xã Thanh Sơn,commune,huyen-thanh-son,,xa-hy-cuong\n")
    with db.read() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "agency.merge")).one()
    assert entry.target_id == "xa-thanh-son" and entry.actor_name == "system:test"
    assert entry.after == {"merged_into": "xa-hy-cuong", "active": False}


def test_an_import_never_undoes_a_merger(db: Database, agencies: list[str]) -> None:
    report = import_csv(db, "xa-chu-hoa,UBND xã Chu Hóa,commune,tinh-phu-tho,,\n")
    assert report.unchanged == ["xa-chu-hoa"]
    assert agency(db, "xa-chu-hoa").merged_into == "xa-hy-cuong"


def test_a_reparented_commune_leaves_the_district_scope(
        client: TestClient, admin: Caller, make_caller: Callable[..., Caller], db: Database) -> None:
    onboard(client, admin, "web-thanh-son", "xa-thanh-son")
    district_viewer = make_caller("viewer", ["huyen-thanh-son"])
    assert len(client.get("/api/v1/systems", headers=district_viewer.headers).json()) == 1
    report = import_csv(db, "xa-thanh-son,UBND xã Thanh Sơn,commune,tinh-phu-tho,,\n")
    assert report.updated[0].changes == {"parent_id": ("huyen-thanh-son", "tinh-phu-tho")}
    assert client.get("/api/v1/systems", headers=district_viewer.headers).json() == []


def test_agencies_missing_from_the_file_are_reported_and_kept(db: Database, agencies: list[str]) -> None:
    report = import_csv(db, "tinh-phu-tho,UBND tỉnh Phú Thọ,province,,,\n")
    assert report.missing == ["huyen-thanh-son", "so-khcn", "xa-chu-hoa", "xa-hy-cuong", "xa-thanh-son"]
    with db.read() as session:
        assert len(list(session.scalars(select(AgencyRow)))) == len(agencies)


@pytest.mark.parametrize(("rows", "line", "column", "words"), [
    ("xa-moi,UBND xã Mới,commune,nowhere,,\n", 2, "parent", "nowhere"),
    ("xa-ok,UBND xã Ổn,commune,tinh-phu-tho,,\nxa-moi,UBND xã Mới,village,tinh-phu-tho,,\n", 3, "level",
     "village"),
    ("Xa Moi,UBND xã Mới,commune,tinh-phu-tho,,\n", 2, "id", "Xa Moi"),
    ("huyen-moi,UBND huyện Mới,district,xa-thanh-son,,\n", 2, "parent", "district"),
    ("xa-moi,UBND xã Mới,commune,tinh-phu-tho,,nowhere\n", 2, "merged_into", "nowhere"),
    ("xa-moi,UBND xã Mới,commune,tinh-phu-tho,,\nxa-moi,UBND xã Mới 2,commune,tinh-phu-tho,,\n", 3, "id",
     "line 2"),
    ("xa-moi,,commune,tinh-phu-tho,,\n", 2, "name", "missing"),
    ("huyen-thanh-son,UBND huyện Thanh Sơn,commune,tinh-phu-tho,,\n", 2, "level", "xa-thanh-son"),
    ("xa-moi,UBND xã Mới,commune,tinh-phu-tho\n", 2, "-", "columns"),
])
def test_an_invalid_row_is_named_by_file_line_and_column(db: Database, agencies: list[str], rows: str, line: int,
                                                         column: str, words: str) -> None:
    with pytest.raises(AgencyImportError) as err:
        import_csv(db, rows)
    issue = err.value.issues[0]
    assert (issue.file, issue.line, issue.column) == ("agencies.csv", line, column)
    assert words in issue.text("en")
    assert f"dòng {line}" in issue.text("vi") and f"line {line}" in issue.text("en")


def test_a_cycle_in_the_tree_is_refused(db: Database, agencies: list[str]) -> None:
    with pytest.raises(AgencyImportError) as err:
        import_csv(db, "so-a,Sở A,province,so-b,,\nso-b,Sở B,province,so-a,,\n")
    issue = err.value.issues[0]
    assert (issue.line, issue.column) == (2, "parent")
    assert "so-a → so-b → so-a" in issue.text("en")


def test_an_unknown_csv_column_is_named(db: Database, agencies: list[str]) -> None:
    data = "id,name,level,province_code\nxa-moi,UBND xã Mới,commune,25\n".encode()
    with pytest.raises(AgencyImportError) as err:
        parse_csv(data, "agencies.csv")
    assert (err.value.issues[0].line, err.value.issues[0].column) == (1, "province_code")


def test_a_yaml_error_names_the_line_of_the_bad_value(db: Database, agencies: list[str]) -> None:
    text = ("agencies:\n"
            "  - id: xa-moi\n"
            "    name: UBND xã Mới\n"
            "    level: hamlet\n"
            "    parent: tinh-phu-tho\n")
    with pytest.raises(AgencyImportError) as err:
        import_agencies(db, parse_yaml(text, "tree.yaml"), ACTOR, file="tree.yaml")
    issue = err.value.issues[0]
    assert (issue.file, issue.line, issue.column) == ("tree.yaml", 4, "level")


def test_an_invalid_file_changes_nothing(db: Database, agencies: list[str]) -> None:
    with pytest.raises(AgencyImportError):
        import_csv(db, "xa-hy-cuong,UBND phường Hy Cương,commune,tinh-phu-tho,,\nxa-moi,X,commune,nowhere,,\n")
    assert agency(db, "xa-hy-cuong").name == "UBND xã Hy Cương"


# --- routes ------------------------------------------------------------------------

def test_agencies_are_listed_within_scope(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    viewer = make_caller("viewer", ["xa-hy-cuong"])
    listed = client.get("/api/v1/agencies", headers=viewer.headers).json()
    assert [a["id"] for a in listed] == ["xa-chu-hoa", "xa-hy-cuong"]
    assert client.get("/api/v1/agencies/so-khcn", headers=viewer.headers).status_code == 404


def test_the_tree_nests_children_under_their_parent(client: TestClient, admin: Caller) -> None:
    tree = client.get("/api/v1/agencies", params={"tree": True}, headers=admin.headers).json()
    assert [root["id"] for root in tree] == ["tinh-phu-tho"]
    district = next(c for c in tree[0]["children"] if c["id"] == "huyen-thanh-son")
    assert [c["id"] for c in district["children"]] == ["xa-thanh-son"]


def test_agencies_are_filtered_by_level_parent_and_activity(client: TestClient, admin: Caller) -> None:
    def ids(**params: object) -> list[str]:
        return [a["id"] for a in client.get("/api/v1/agencies", params=params, headers=admin.headers).json()]

    assert ids(level="district") == ["huyen-thanh-son"]
    assert ids(parent="huyen-thanh-son") == ["xa-thanh-son"]
    assert ids(active=False) == ["xa-chu-hoa"]


def test_an_agency_is_created_and_renamed_with_its_etag(client: TestClient, admin: Caller) -> None:
    created = client.post("/api/v1/agencies", json={"id": "xa-moi", "name": "UBND xã Mới", "level": "commune",
                                                    "parent": "huyen-thanh-son"}, headers=admin.headers)
    assert created.status_code == 201, created.text
    renamed = client.patch("/api/v1/agencies/xa-moi", json={"name": "UBND phường Mới"},
                           headers={**admin.headers, "If-Match": created.headers["ETag"]})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["former_names"] == ["UBND xã Mới"]
    stale = client.patch("/api/v1/agencies/xa-moi", json={"name": "UBND phường Mới 2"},
                         headers={**admin.headers, "If-Match": created.headers["ETag"]})
    assert stale.status_code == 412


def test_a_created_agency_is_checked_like_an_imported_one(client: TestClient, admin: Caller) -> None:
    response = client.post("/api/v1/agencies", json={"id": "huyen-moi", "name": "UBND huyện Mới",
                                                     "level": "district", "parent": "xa-thanh-son"},
                           headers=admin.headers)
    assert response.status_code == 422
    assert "parent" in response.json()["detail"] and response.json()["detail_vi"]


def test_a_commune_admin_cannot_attach_an_agency_outside_its_scope(
        client: TestClient, make_caller: Callable[..., Caller]) -> None:
    commune_admin = make_caller("admin", ["xa-thanh-son"])
    response = client.post("/api/v1/agencies", json={"id": "xa-moi", "name": "UBND xã Mới", "level": "commune",
                                                     "parent": "xa-hy-cuong"}, headers=commune_admin.headers)
    assert response.status_code == 404
    assert client.patch("/api/v1/agencies/xa-hy-cuong", json={"name": "X"},
                        headers=commune_admin.headers).status_code == 404


def test_a_renamed_agency_is_what_new_events_carry(client: TestClient, admin: Caller, app_state: AppState) -> None:
    onboard(client, admin, "web-thanh-son", "xa-thanh-son")
    client.patch("/api/v1/agencies/xa-thanh-son", json={"name": "UBND phường Thanh Sơn"}, headers=admin.headers)
    assert app_state.registry.attribution("web-thanh-son").fields["agency"] == {
        "id": "xa-thanh-son", "name": "UBND phường Thanh Sơn"}


def test_a_patch_can_undo_a_merger(client: TestClient, admin: Caller) -> None:
    response = client.patch("/api/v1/agencies/xa-chu-hoa", json={"merged_into": None}, headers=admin.headers)
    assert response.status_code == 200
    assert (response.json()["merged_into"], response.json()["active"]) == (None, True)


def test_an_import_through_the_api_previews_then_applies(client: TestClient, admin: Caller) -> None:
    body = HEADER + "xa-moi,UBND xã Mới,commune,tinh-phu-tho,,\n"
    headers = {**admin.headers, "Content-Type": "text/csv"}
    preview = client.post("/api/v1/agencies/import", params={"dry_run": True}, content=body.encode(),
                          headers=headers)
    assert preview.status_code == 200, preview.text
    assert preview.json()["dry_run"] and preview.json()["created"][0]["id"] == "xa-moi"
    assert client.get("/api/v1/agencies/xa-moi", headers=admin.headers).status_code == 404
    applied = client.post("/api/v1/agencies/import", content=body.encode(), headers=headers)
    assert applied.status_code == 200
    assert "xa-moi" not in applied.json()["missing"] and "so-khcn" in applied.json()["missing"]
    assert client.get("/api/v1/agencies/xa-moi", headers=admin.headers).status_code == 200


def test_an_import_through_the_api_accepts_yaml(client: TestClient, admin: Caller) -> None:
    body = "agencies:\n  - {id: xa-moi, name: UBND xã Mới, level: commune, parent: tinh-phu-tho}\n"
    response = client.post("/api/v1/agencies/import", content=body.encode(),
                           headers={**admin.headers, "Content-Type": "application/yaml"})
    assert response.status_code == 200, response.text
    assert response.json()["created"][0]["after"]["parent"] == "tinh-phu-tho"


def test_import_errors_through_the_api_name_line_and_column(client: TestClient, admin: Caller) -> None:
    body = HEADER + "xa-moi,UBND xã Mới,commune,nowhere,,\n"
    response = client.post("/api/v1/agencies/import", content=body.encode(),
                           headers={**admin.headers, "Content-Type": "text/csv"})
    assert response.status_code == 422
    assert "line 2, column 'parent'" in response.json()["detail"]
    assert "dòng 2, cột 'parent'" in response.json()["detail_vi"]


def test_an_import_needs_a_user_bound_to_the_province(client: TestClient,
                                                      make_caller: Callable[..., Caller]) -> None:
    commune_admin = make_caller("admin", ["xa-thanh-son"])
    response = client.post("/api/v1/agencies/import", content=HEADER.encode(),
                           headers={**commune_admin.headers, "Content-Type": "text/csv"})
    assert response.status_code == 403


def test_an_import_of_another_content_type_is_415(client: TestClient, admin: Caller) -> None:
    response = client.post("/api/v1/agencies/import", json=[{"id": "x"}], headers=admin.headers)
    assert response.status_code == 415
    assert "text/csv" in response.json()["detail"]

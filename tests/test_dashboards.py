"""Kibana saved objects (``dashboards/kibana``) and ``soc dashboards export``.

There is no Kibana here: these tests hold the objects to the structure Kibana 8.9+
itself exports and validates on import (see soc/dashboards.py and build.py), and to
the fields our events and alerts really have.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from collectors.ecs_fields import FIELD_TYPES, FieldType
from soc.alerts.models import DERIVED_COLUMNS, Alert
from soc.cli.dashboards import dashboards_app
from soc.dashboards import (
    ALERT_FIELD_TYPES,
    ALERTS_VIEW,
    DEADLETTER_VIEW,
    DEFAULT_NAMES,
    EVENTS_VIEW,
    KIBANA_DIR,
    DashboardError,
    IndexNames,
    export,
    index_names,
    load_objects,
    parse_ndjson,
    rewrite,
)
from tests.conftest import REPO

FILES = sorted(KIBANA_DIR.glob("*.ndjson"))
AGGREGATABLE: frozenset[FieldType] = frozenset({"keyword", "ip", "long", "double", "date", "boolean"})
NUMERIC: frozenset[FieldType] = frozenset({"long", "double"})
LENS_DATA_TYPE = {"keyword": "string", "ip": "ip", "long": "number", "double": "number", "date": "date",
                  "boolean": "boolean"}
DASHBOARD_ATTRIBUTES = {"title", "description", "kibanaSavedObjectMeta", "timeRestore", "timeFrom", "timeTo",
                        "refreshInterval", "controlGroupInput", "panelsJSON", "optionsJSON", "hits", "version"}
"""Kibana's dashboard attribute schema forbids any other key on import."""
MIGRATION = {"index-pattern": "8.0.0", "lens": "8.9.0", "dashboard": "8.7.0"}
KQL_FIELD = re.compile(r"(?<![\w.@\"])([A-Za-z_@][\w.@]*)\s*(?::|>=|<=|>|<)")
VIETNAMESE = re.compile(r"[^\x00-\x7f]")

runner = CliRunner()


def objects_of(path: Path) -> list[dict[str, Any]]:
    return parse_ndjson(path.read_bytes(), path.name)


ALL = load_objects()
BY_KEY = {(o["type"], o["id"]): o for o in ALL}
LENSES = [o for o in ALL if o["type"] == "lens"]
DASHBOARDS = [o for o in ALL if o["type"] == "dashboard"]
VIEWS = [o for o in ALL if o["type"] == "index-pattern"]


def field_types(view_id: str) -> dict[str, FieldType]:
    return ALERT_FIELD_TYPES if view_id == ALERTS_VIEW else FIELD_TYPES


def layers(lens: dict[str, Any]) -> dict[str, dict[str, Any]]:
    layer_map: dict[str, dict[str, Any]] = lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
    return layer_map


def layer_view(lens: dict[str, Any], layer_id: str) -> str:
    refs = [r for r in lens["references"] if r["name"] == f"indexpattern-datasource-layer-{layer_id}"]
    assert len(refs) == 1, f"{lens['id']}: layer {layer_id} has {len(refs)} data view references"
    view: str = refs[0]["id"]
    return view


def kql_of(lens: dict[str, Any]) -> list[str]:
    """Every KQL string of a Lens object: its query, column filters, filters buckets."""
    out = [lens["attributes"]["state"]["query"]["query"]]
    for layer in layers(lens).values():
        for col in layer["columns"].values():
            if "filter" in col:
                out.append(col["filter"]["query"])
            for bucket in col.get("params", {}).get("filters", []):
                out.append(bucket["input"]["query"])
    return [q for q in out if q]


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    decoded: list[dict[str, Any]] = orjson.loads(dashboard["attributes"]["panelsJSON"])
    return decoded


def load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_build", KIBANA_DIR / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the module's annotations through sys.modules while the class is made
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


# --- the files -----------------------------------------------------------------------

def test_there_is_one_file_per_dashboard_and_five_dashboards() -> None:
    assert sorted(p.stem for p in FILES) == sorted(d["id"] for d in DASHBOARDS)
    assert {d["id"] for d in DASHBOARDS} == {"soc-overview", "soc-ingestion", "soc-authentication", "soc-web",
                                             "soc-network"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_line_is_a_saved_object_with_8x_migration_versions(path: Path) -> None:
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    assert lines
    for line in lines:
        obj = orjson.loads(line)
        assert set(obj) == {"attributes", "coreMigrationVersion", "id", "references", "type",
                            "typeMigrationVersion"}
        assert obj["coreMigrationVersion"] == "8.8.0"
        assert obj["typeMigrationVersion"] == MIGRATION[obj["type"]]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_ids_are_unique_within_a_file(path: Path) -> None:
    keys = [(o["type"], o["id"]) for o in objects_of(path)]
    assert len(keys) == len(set(keys))


def test_ids_are_unique_across_the_whole_set() -> None:
    ids = [o["id"] for o in ALL]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_imports_alone_every_reference_is_in_the_same_file(path: Path) -> None:
    objects = objects_of(path)
    present = {(o["type"], o["id"]) for o in objects}
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in present, f"{obj['id']} → {ref}"


def test_files_are_what_build_py_writes() -> None:
    rendered = load_build().render()
    assert sorted(rendered) == [p.name for p in FILES]
    for path in FILES:
        assert path.read_bytes() == rendered[path.name], f"{path.name} is stale: run dashboards/kibana/build.py"


# --- data views ----------------------------------------------------------------------

def test_data_views_carry_the_default_index_names() -> None:
    titles = {v["id"]: v["attributes"]["title"] for v in VIEWS}
    assert titles == {EVENTS_VIEW: "logs-*-soc.*", ALERTS_VIEW: "soc-alerts*",
                      DEADLETTER_VIEW: "logs-soc.deadletter-soc"}
    assert index_names("soc", "soc-alerts") == DEFAULT_NAMES


def test_events_pattern_matches_every_level_stream_but_not_the_dead_letters() -> None:
    from fnmatch import fnmatchcase

    from soc.store.elastic.names import dead_letter_name, stream_name

    pattern = DEFAULT_NAMES.events
    assert all(fnmatchcase(stream_name("linux.auth", level, "soc"), pattern) for level in (1, 3, 5, None))
    assert not fnmatchcase(dead_letter_name("soc"), pattern)
    assert not fnmatchcase(stream_name("linux.auth", 3, "other"), pattern)


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v["id"])
def test_data_view_time_field_is_a_date_field(view: dict[str, Any]) -> None:
    time_field = view["attributes"]["timeFieldName"]
    assert field_types(view["id"]).get(time_field) == "date"


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v["id"])
def test_data_view_name_is_bilingual_and_shows_its_pattern(view: dict[str, Any]) -> None:
    attrs = view["attributes"]
    assert attrs["title"] in attrs["name"]
    vi, _, en = attrs["name"].partition(" / ")
    assert VIETNAMESE.search(vi) and en


def test_alert_field_types_cover_exactly_the_alert_columns() -> None:
    assert set(ALERT_FIELD_TYPES) == {c.key for c in Alert.__table__.columns} - DERIVED_COLUMNS


# --- Lens ----------------------------------------------------------------------------

@pytest.mark.parametrize("lens", LENSES, ids=lambda o: o["id"])
def test_lens_layer_lists_its_columns_and_references_a_data_view(lens: dict[str, Any]) -> None:
    state = lens["attributes"]["state"]
    assert list(state["datasourceStates"]) == ["formBased", "textBased"]
    assert state["query"]["language"] == "kuery"
    assert lens["attributes"]["visualizationType"] in {"lnsXY", "lnsPie", "lnsDatatable", "lnsMetric"}
    assert layers(lens)
    for layer_id, layer in layers(lens).items():
        assert sorted(layer["columnOrder"]) == sorted(layer["columns"])
        assert layer_view(lens, layer_id) in {EVENTS_VIEW, ALERTS_VIEW, DEADLETTER_VIEW}


@pytest.mark.parametrize("lens", LENSES, ids=lambda o: o["id"])
def test_lens_visualization_only_points_at_existing_columns(lens: dict[str, Any]) -> None:
    vis = lens["attributes"]["state"]["visualization"]
    kind = lens["attributes"]["visualizationType"]
    [(layer_id, layer)] = layers(lens).items()
    columns = set(layer["columns"])
    if kind == "lnsXY":
        [vlayer] = vis["layers"]
        used = [*vlayer["accessors"], vlayer["xAccessor"], *([vlayer["splitAccessor"]] if "splitAccessor" in vlayer
                                                             else [])]
    elif kind == "lnsPie":
        [vlayer] = vis["layers"]
        used = [*vlayer["primaryGroups"], *vlayer["metrics"]]
    elif kind == "lnsDatatable":
        vlayer = vis
        used = [c["columnId"] for c in vis["columns"]]
    else:
        vlayer = vis
        used = [vis["metricAccessor"]]
    assert vlayer["layerId"] == layer_id
    assert used and set(used) <= columns
    for col in layer["columns"].values():
        if col["operationType"] == "terms":
            assert col["params"]["orderBy"]["columnId"] in columns


@pytest.mark.parametrize("lens", LENSES, ids=lambda o: o["id"])
def test_every_field_a_chart_aggregates_exists_and_is_aggregatable(lens: dict[str, Any]) -> None:
    for layer_id, layer in layers(lens).items():
        types = field_types(layer_view(lens, layer_id))
        for col in layer["columns"].values():
            op, fld = col["operationType"], col.get("sourceField")
            if op in ("count", "filters"):
                continue
            assert fld in types, f"{lens['id']}: {fld} is not a known field of its data view"
            ftype = types[fld]
            if op == "date_histogram":
                assert ftype == "date", f"{lens['id']}: date_histogram on {fld} ({ftype})"
            elif op in ("sum", "average", "median", "max", "min"):
                assert ftype in NUMERIC, f"{lens['id']}: {op} on {fld} ({ftype})"
            else:
                assert op in ("terms", "unique_count"), op
                assert ftype in AGGREGATABLE, f"{lens['id']}: {op} on {fld} ({ftype})"
            if op == "terms":
                assert col["dataType"] == LENS_DATA_TYPE[ftype], f"{lens['id']}: {fld}"


@pytest.mark.parametrize("lens", LENSES, ids=lambda o: o["id"])
def test_every_field_a_chart_filters_on_exists(lens: dict[str, Any]) -> None:
    [layer_id] = layers(lens)
    types = field_types(layer_view(lens, layer_id))
    for query in kql_of(lens):
        fields = KQL_FIELD.findall(query)
        assert fields, query
        assert set(fields) <= set(types), f"{lens['id']}: {set(fields) - set(types)}"


def test_parse_failure_panels_filter_on_the_tag_the_parsers_set() -> None:
    from collectors.event import PARSE_FAILURE_TAG

    failures = [lens for lens in LENSES if "parse-failure" in lens["id"] or "failures-over-time" in lens["id"]]
    assert failures
    for lens in failures:
        assert f'tags:"{PARSE_FAILURE_TAG}"' in kql_of(lens)


def test_web_alert_panels_select_every_rule_under_rules_web() -> None:
    ids = {str(doc["id"]) for path in (REPO / "rules" / "web").glob("*.yml")
           for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(doc, dict) and "id" in doc}
    web_alerts = [lens for lens in LENSES if lens["id"].startswith("soc-web-alerts")]
    assert len(web_alerts) == 2
    for lens in web_alerts:
        query = lens["attributes"]["state"]["query"]["query"]
        assert set(re.findall(r'"([0-9a-f-]{36})"', query)) == ids


# --- dashboards ----------------------------------------------------------------------

@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda o: o["id"])
def test_dashboard_has_only_attributes_kibana_accepts(dashboard: dict[str, Any]) -> None:
    attrs = dashboard["attributes"]
    assert set(attrs) <= DASHBOARD_ATTRIBUTES
    for key in ("panelsJSON", "optionsJSON"):
        assert isinstance(attrs[key], str)
    assert isinstance(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"], str)
    orjson.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
    orjson.loads(attrs["optionsJSON"])


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda o: o["id"])
def test_every_panel_is_a_lens_reference_kibana_can_resolve(dashboard: dict[str, Any]) -> None:
    refs = {r["name"]: r for r in dashboard["references"]}
    for panel in panels(dashboard):
        pid = panel["panelIndex"]
        assert panel["gridData"]["i"] == pid
        assert panel["panelRefName"] == f"panel_{pid}"
        ref = refs[f"{pid}:panel_{pid}"]
        assert ref["type"] == panel["type"] == "lens"
        assert ("lens", ref["id"]) in BY_KEY
    assert len(panels(dashboard)) == len(dashboard["references"])


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda o: o["id"])
def test_panels_fit_the_48_column_grid_without_overlapping(dashboard: dict[str, Any]) -> None:
    cells: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        g = panel["gridData"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 48 and g["h"] > 0
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, panel["panelIndex"]
        cells |= mine


@pytest.mark.parametrize("obj", [*LENSES, *DASHBOARDS], ids=lambda o: o["id"])
def test_titles_are_vietnamese_then_english(obj: dict[str, Any]) -> None:
    vi, sep, en = obj["attributes"]["title"].partition(" / ")
    assert sep and VIETNAMESE.search(vi) and en.strip()


def test_overview_title_is_the_one_operators_know() -> None:
    assert BY_KEY[("dashboard", "soc-overview")]["attributes"]["title"] == "Tổng quan SOC / SOC overview"


# --- export --------------------------------------------------------------------------

def test_export_with_the_defaults_is_the_files_unchanged() -> None:
    assert parse_ndjson(export()) == ALL


def test_export_rewrites_every_index_pattern_and_nothing_else() -> None:
    names = IndexNames(events="logs-*-hn.*", alerts="hn-alerts*", deadletter="logs-soc.deadletter-hn")
    exported = {(o["type"], o["id"]): o for o in parse_ndjson(export(names))}
    assert set(exported) == set(BY_KEY)
    for key, original in BY_KEY.items():
        new = exported[key]
        if key[0] == "index-pattern":
            target = names.for_view(key[1])
            assert new["attributes"]["title"] == target
            assert target in new["attributes"]["name"]
            assert original["attributes"]["title"] not in new["attributes"]["name"]
            new = {**new, "attributes": {**new["attributes"], "title": original["attributes"]["title"],
                                         "name": original["attributes"]["name"]}}
        assert new == original, key


def test_id_prefix_renames_every_object_and_keeps_references_whole() -> None:
    exported = parse_ndjson(export(DEFAULT_NAMES, id_prefix="hn-"))
    ids = {(o["type"], o["id"]) for o in exported}
    assert all(o["id"].startswith("hn-") for o in exported)
    for obj in exported:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in ids


def test_names_follow_the_configured_namespace_and_alerts_index() -> None:
    assert index_names("hn", "hn-alerts") == IndexNames("logs-*-hn.*", "hn-alerts*", "logs-soc.deadletter-hn")


@pytest.mark.parametrize("bad", ["", "logs *", 'logs-"x"'])
def test_an_unusable_index_pattern_is_refused(bad: str) -> None:
    with pytest.raises(DashboardError):
        rewrite(ALL, IndexNames(events=bad, alerts="a*", deadletter="d"))


def test_an_id_prefix_with_spaces_is_refused() -> None:
    with pytest.raises(DashboardError):
        rewrite(ALL, DEFAULT_NAMES, id_prefix="my soc ")


def test_two_different_objects_with_one_id_are_refused(tmp_path: Path) -> None:
    view = next(o for o in ALL if o["id"] == EVENTS_VIEW)
    changed = {**view, "attributes": {**view["attributes"], "timeFieldName": "event.created"}}
    (tmp_path / "a.ndjson").write_bytes(orjson.dumps(view) + b"\n")
    (tmp_path / "b.ndjson").write_bytes(orjson.dumps(changed) + b"\n")
    with pytest.raises(DashboardError, match="differs"):
        load_objects(tmp_path)


def test_a_broken_line_is_reported_with_its_file_and_line() -> None:
    with pytest.raises(DashboardError, match=r"x\.ndjson:2"):
        parse_ndjson(b'{"type":"lens","id":"a"}\n{not json\n', "x.ndjson")


# --- the command ---------------------------------------------------------------------

def test_cli_export_writes_a_file_that_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "kibana.ndjson"
    result = runner.invoke(dashboards_app, ["export", "--out", str(out), "--events-index", "logs-*",
                                            "--alerts-index", "alerts-x", "--deadletter-index", "dl-x"])
    assert result.exit_code == 0, result.output
    objects = parse_ndjson(out.read_bytes())
    assert out.read_bytes() == export(IndexNames("logs-*", "alerts-x", "dl-x"))
    assert {o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"} == {"logs-*", "alerts-x",
                                                                                           "dl-x"}


def test_cli_export_takes_the_names_from_the_configuration(tmp_path: Path) -> None:
    config = tmp_path / "soc.yaml"
    config.write_text("data_dir: var\nelasticsearch:\n  namespace: hn\n  alerts_index: hn-alerts\n", encoding="utf-8")
    result = runner.invoke(dashboards_app, ["export", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == export(index_names("hn", "hn-alerts"))


def test_cli_list_shows_every_dashboard() -> None:
    result = runner.invoke(dashboards_app, ["list"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    for dashboard in DASHBOARDS:
        assert dashboard["id"] in result.stdout

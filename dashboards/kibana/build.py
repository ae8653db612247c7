"""Writes the Kibana saved objects of this folder: ``python dashboards/kibana/build.py``.

One NDJSON per dashboard, each importable on its own (it carries the data views its
charts use). The objects follow what Kibana 8.9+ itself exports (index-pattern
``8.0.0``, Lens ``8.9.0`` with the ``formBased`` datasource, dashboards ``8.7.0`` with
by-reference panels, ``coreMigrationVersion`` ``8.8.0``); Kibana migrates them forward
on import. Ids are stable so that re-importing with ``overwrite=true`` replaces the
previous version instead of adding a copy.

Edit the definitions here, not the NDJSON: ``tests/test_dashboards.py`` fails when the
files and this script disagree, and when a web rule is added without re-running it.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from soc.dashboards import (  # noqa: E402
    ALERTS_TIME_FIELD,
    ALERTS_VIEW,
    DEADLETTER_VIEW,
    DEFAULT_NAMES,
    EVENTS_VIEW,
    to_ndjson,
)

OUT_DIR = Path(__file__).resolve().parent
WEB_RULES_DIR = ROOT / "rules" / "web"

CORE_MIGRATION = "8.8.0"
TYPE_MIGRATION = {"index-pattern": "8.0.0", "lens": "8.9.0", "dashboard": "8.7.0"}
PANEL_VERSION = "8.9.0"
GRID_COLUMNS = 48
_NS = uuid.UUID("6f1c2a54-8d0e-4c3b-9a57-2f5e0d4b7c11")


def _uid(*parts: str) -> str:
    """Deterministic UUID for layers, columns and panels (Kibana uses UUIDs there)."""
    return str(uuid.uuid5(_NS, "/".join(parts)))


def _json(value: Any) -> str:
    """A JSON string attribute (panelsJSON, optionsJSON …), compact as Kibana writes it."""
    return orjson.dumps(value).decode()


# --- data views -------------------------------------------------------------------

@dataclass(frozen=True)
class View:
    id: str
    pattern: str
    time_field: str
    label: str


VIEWS = {
    EVENTS_VIEW: View(EVENTS_VIEW, DEFAULT_NAMES.events, "@timestamp", "Sự kiện SOC / SOC events"),
    ALERTS_VIEW: View(ALERTS_VIEW, DEFAULT_NAMES.alerts, ALERTS_TIME_FIELD, "Cảnh báo SOC / SOC alerts"),
    DEADLETTER_VIEW: View(DEADLETTER_VIEW, DEFAULT_NAMES.deadletter, "@timestamp",
                          "Sự kiện bị Elasticsearch từ chối / Events refused by Elasticsearch"),
}


def data_view(view: View) -> dict[str, Any]:
    return {
        "attributes": {
            "fieldAttrs": "{}",
            "fieldFormatMap": "{}",
            "fields": "[]",
            "name": f"{view.label} ({view.pattern})",
            "runtimeFieldMap": "{}",
            "sourceFilters": "[]",
            "timeFieldName": view.time_field,
            "title": view.pattern,
            "typeMeta": "{}",
        },
        "coreMigrationVersion": CORE_MIGRATION,
        "id": view.id,
        "references": [],
        "type": "index-pattern",
        "typeMigrationVersion": TYPE_MIGRATION["index-pattern"],
    }


# --- Lens columns -----------------------------------------------------------------

DataType = str  # Lens column dataType: string | number | ip | date


@dataclass
class Col:
    key: str
    spec: dict[str, Any]
    bucketed: bool


def date(key: str = "time", fld: str = "@timestamp") -> Col:
    return Col(key, {"dataType": "date", "isBucketed": True, "label": fld, "operationType": "date_histogram",
                     "params": {"dropPartials": False, "includeEmptyRows": True, "interval": "auto"},
                     "scale": "interval", "sourceField": fld}, True)


def count(label: str, key: str = "count", kql: str | None = None) -> Col:
    spec: dict[str, Any] = {"customLabel": True, "dataType": "number", "isBucketed": False, "label": label,
                            "operationType": "count", "params": {"emptyAsNull": True}, "scale": "ratio",
                            "sourceField": "___records___"}
    if kql is not None:
        spec["filter"] = {"language": "kuery", "query": kql}
    return Col(key, spec, False)


def metric(op: str, fld: str, label: str, key: str) -> Col:
    """sum / unique_count / max … of one field."""
    return Col(key, {"customLabel": True, "dataType": "number", "isBucketed": False, "label": label,
                     "operationType": op, "params": {"emptyAsNull": True}, "scale": "ratio", "sourceField": fld},
               False)


def terms(fld: str, label: str, *, size: int = 10, dtype: DataType = "string", key: str | None = None,
          order_by: str = "count", other: bool = True) -> Col:
    return Col(key or f"terms:{fld}", {
        "customLabel": True, "dataType": dtype, "isBucketed": True, "label": label, "operationType": "terms",
        "params": {"exclude": [], "excludeIsRegex": False, "include": [], "includeIsRegex": False,
                   "missingBucket": False, "orderBy": {"columnId": order_by, "type": "column"},
                   "orderDirection": "desc", "otherBucket": other, "parentFormat": {"id": "terms"}, "size": size},
        "scale": "ordinal", "sourceField": fld}, True)


def filters(label: str, buckets: list[tuple[str, str]], key: str = "filters") -> Col:
    return Col(key, {"customLabel": True, "dataType": "string", "isBucketed": True, "label": label,
                     "operationType": "filters",
                     "params": {"filters": [{"input": {"language": "kuery", "query": q}, "label": name}
                                            for name, q in buckets]},
                     "scale": "ordinal"}, True)


# --- Lens visualisations ----------------------------------------------------------

_XY_COMMON: dict[str, Any] = {
    "axisTitlesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
    "fittingFunction": "None",
    "gridlinesVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
    "labelsOrientation": {"x": 0, "yLeft": 0, "yRight": 0},
    "legend": {"isVisible": True, "position": "right"},
    "tickLabelsVisibilitySettings": {"x": True, "yLeft": True, "yRight": True},
    "valueLabels": "hide",
}


@dataclass
class Lens:
    id: str
    title: str
    view: str
    vis: str
    """xy | bar_h | pie | table | metric"""
    columns: list[Col]
    query: str = ""
    series: str = "bar_stacked"
    description: str = ""
    size: tuple[int, int] = (24, 12)
    """Panel width (of 48) and height on the dashboard."""

    @property
    def layer(self) -> str:
        return _uid(self.id, "layer")

    def cid(self, key: str) -> str:
        return _uid(self.id, "column", key)

    def _spec(self, col: Col) -> dict[str, Any]:
        spec = dict(col.spec)
        if spec["operationType"] == "terms":
            params = dict(spec["params"])
            if not any(c.key == params["orderBy"]["columnId"] and not c.bucketed for c in self.columns):
                raise ValueError(f"{self.id}: {col.key} is ordered by a column the layer does not have")
            params["orderBy"] = {"columnId": self.cid(params["orderBy"]["columnId"]), "type": "column"}
            spec["params"] = params
        return spec

    def _visualization(self) -> dict[str, Any]:
        buckets = [self.cid(c.key) for c in self.columns if c.bucketed]
        metrics = [self.cid(c.key) for c in self.columns if not c.bucketed]
        base = {"layerId": self.layer, "layerType": "data"}
        if self.vis == "metric":
            return {**base, "metricAccessor": metrics[0]}
        if self.vis == "table":
            return {**base, "columns": [{"columnId": self.cid(c.key), "isTransposed": False} for c in self.columns]}
        if self.vis == "pie":
            return {"layers": [{**base, "categoryDisplay": "default", "legendDisplay": "default",
                                "metrics": metrics, "nestedLegend": False, "numberDisplay": "percent",
                                "primaryGroups": buckets}],
                    "shape": "donut"}
        dates = [self.cid(c.key) for c in self.columns if c.spec["operationType"] == "date_histogram"]
        x = dates[0] if dates else buckets[0]
        split = [b for b in buckets if b != x]
        series = self.series
        if self.vis == "bar_h":
            series = "bar_horizontal_stacked" if split else "bar_horizontal"
        layer: dict[str, Any] = {**base, "accessors": metrics, "position": "top", "seriesType": series,
                                 "showGridlines": False, "xAccessor": x}
        if split:
            layer["splitAccessor"] = split[0]
        return {**_XY_COMMON, "layers": [layer], "preferredSeriesType": series}

    def saved_object(self) -> dict[str, Any]:
        # Lens nests aggregations in columnOrder: a breakdown goes outside the date histogram.
        order = ([c for c in self.columns if c.bucketed and c.spec["operationType"] != "date_histogram"]
                 + [c for c in self.columns if c.spec["operationType"] == "date_histogram"]
                 + [c for c in self.columns if not c.bucketed])
        layer = {"columnOrder": [self.cid(c.key) for c in order],
                 "columns": {self.cid(c.key): self._spec(c) for c in self.columns},
                 "incompleteColumns": {}, "sampling": 1}
        vis_type = {"xy": "lnsXY", "bar_h": "lnsXY", "pie": "lnsPie", "table": "lnsDatatable",
                    "metric": "lnsMetric"}[self.vis]
        return {
            "attributes": {
                "description": self.description,
                "state": {
                    "adHocDataViews": {},
                    # Lens takes the first datasource key as the active one: formBased first.
                    "datasourceStates": {"formBased": {"layers": {self.layer: layer}}, "textBased": {"layers": {}}},
                    "filters": [],
                    "internalReferences": [],
                    "query": {"language": "kuery", "query": self.query},
                    "visualization": self._visualization(),
                },
                "title": self.title,
                "visualizationType": vis_type,
            },
            "coreMigrationVersion": CORE_MIGRATION,
            "id": self.id,
            "references": [
                {"id": self.view, "name": "indexpattern-datasource-current-indexpattern", "type": "index-pattern"},
                {"id": self.view, "name": f"indexpattern-datasource-layer-{self.layer}", "type": "index-pattern"},
            ],
            "type": "lens",
            "typeMigrationVersion": TYPE_MIGRATION["lens"],
        }


# --- dashboards -------------------------------------------------------------------

@dataclass
class Dashboard:
    id: str
    title: str
    description: str
    panels: list[Lens]
    time_from: str = "now-24h"

    def _layout(self) -> list[dict[str, int]]:
        """Left to right, wrapping at the grid width; a row is as tall as its tallest panel."""
        out: list[dict[str, int]] = []
        x = y = row_h = 0
        for lens in self.panels:
            w, h = lens.size
            if x + w > GRID_COLUMNS:
                x, y, row_h = 0, y + row_h, 0
            out.append({"h": h, "w": w, "x": x, "y": y})
            x += w
            row_h = max(row_h, h)
        return out

    def saved_object(self) -> dict[str, Any]:
        panels: list[dict[str, Any]] = []
        references: list[dict[str, str]] = []
        for lens, grid in zip(self.panels, self._layout(), strict=True):
            pid = _uid(self.id, "panel", lens.id)
            panels.append({"embeddableConfig": {"enhancements": {}}, "gridData": {**grid, "i": pid},
                           "panelIndex": pid, "panelRefName": f"panel_{pid}", "type": "lens",
                           "version": PANEL_VERSION})
            references.append({"id": lens.id, "name": f"{pid}:panel_{pid}", "type": "lens"})
        return {
            "attributes": {
                "description": self.description,
                "kibanaSavedObjectMeta": {"searchSourceJSON": _json({"filter": [],
                                                                      "query": {"language": "kuery", "query": ""}})},
                "optionsJSON": _json({"hidePanelTitles": False, "syncColors": False, "syncCursor": True,
                                      "syncTooltips": False, "useMargins": True}),
                "panelsJSON": _json(panels),
                "refreshInterval": {"pause": False, "value": 60000},
                "timeFrom": self.time_from,
                "timeRestore": True,
                "timeTo": "now",
                "title": self.title,
                "version": 1,
            },
            "coreMigrationVersion": CORE_MIGRATION,
            "id": self.id,
            "references": references,
            "type": "dashboard",
            "typeMigrationVersion": TYPE_MIGRATION["dashboard"],
        }

    def objects(self) -> list[dict[str, Any]]:
        views = sorted({lens.view for lens in self.panels})
        return [*(data_view(VIEWS[v]) for v in views), *(lens.saved_object() for lens in self.panels),
                self.saved_object()]


# --- the SOC's dashboards ---------------------------------------------------------

EV, AL, DL = EVENTS_VIEW, ALERTS_VIEW, DEADLETTER_VIEW
EVENTS = "Sự kiện / Events"
ALERTS = "Cảnh báo / Alerts"
OPEN = "not status:(closed or false_positive)"
PARSE_FAILURE = 'tags:"_parse_failure"'
AUTH = "event.category:authentication"
AUTH_FAIL = "event.category:authentication and event.outcome:failure"
SSHD = 'process.name:("sshd" or "sshd-session" or "sshd-auth")'
WEB = "event.category:web and event.type:access"
FIREWALL = "event.dataset:(fortinet.firewall or cisco.asa)"
SURICATA_ALERTS = "event.dataset:suricata.eve and event.kind:alert"


def web_rule_ids(rules_dir: Path = WEB_RULES_DIR) -> list[str]:
    """Ids of every rule and correlation under ``rules/web`` (what the web dashboard's
    alert panels select on: alerts carry the rule id, not its log source)."""
    ids: set[str] = set()
    for path in sorted(rules_dir.glob("*.yml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("id"):
                ids.add(str(doc["id"]))
    return sorted(ids)


def web_alerts_query(rule_ids: list[str]) -> str:
    return "rule_id:(" + " or ".join(f'"{i}"' for i in rule_ids) + ")"


def overview() -> Dashboard:
    return Dashboard("soc-overview", "Tổng quan SOC / SOC overview",
                     "Cảnh báo theo mức độ, luật, chiến thuật ATT&CK; hệ thống và cơ quan nhiều cảnh báo nhất; "
                     "tốc độ sự kiện / Alerts by severity, rule and ATT&CK tactic; the systems and agencies with "
                     "most alerts; event rate.", [
        Lens("soc-overview-alerts", "Số cảnh báo / Alerts", AL, "metric", [count(ALERTS)], size=(12, 6)),
        Lens("soc-overview-open-alerts", "Cảnh báo chưa đóng / Open alerts", AL, "metric",
             [count("Chưa đóng / Open")], query=OPEN, size=(12, 6)),
        Lens("soc-overview-high-alerts", "Cảnh báo mức cao và nghiêm trọng / High and critical alerts", AL,
             "metric", [count("Cao, nghiêm trọng / High, critical")], query="level:(high or critical)",
             size=(12, 6)),
        Lens("soc-overview-events", "Số sự kiện / Events", EV, "metric", [count(EVENTS)], size=(12, 6)),
        Lens("soc-overview-alerts-by-severity", "Cảnh báo theo mức độ / Alerts by severity", AL, "xy",
             [date(fld=ALERTS_TIME_FIELD), terms("level", "Mức độ / Severity", size=5), count(ALERTS)]),
        Lens("soc-overview-alerts-by-tactic", "Cảnh báo theo chiến thuật ATT&CK / Alerts by ATT&CK tactic", AL,
             "xy", [date(fld=ALERTS_TIME_FIELD), terms("tactics", "Chiến thuật / Tactic"), count(ALERTS)]),
        Lens("soc-overview-top-rules", "Luật sinh nhiều cảnh báo nhất / Top rules", AL, "bar_h",
             [terms("rule_title", "Luật / Rule", size=15, other=False), count(ALERTS)]),
        Lens("soc-overview-alerts-by-rule", "Cảnh báo theo luật / Alerts by rule", AL, "xy",
             [date(fld=ALERTS_TIME_FIELD), terms("rule_title", "Luật / Rule", size=8), count(ALERTS)]),
        Lens("soc-overview-alerts-by-system", "Hệ thống nhiều cảnh báo nhất / Top systems by alerts", AL, "table",
             [terms("system_id", "Hệ thống / System", size=15, other=False),
              terms("level", "Mức độ / Severity", size=5, other=False), count(ALERTS)]),
        Lens("soc-overview-alerts-by-agency", "Cơ quan nhiều cảnh báo nhất / Top agencies by alerts", AL, "bar_h",
             [terms("agency_id", "Cơ quan / Agency", size=15, other=False), count(ALERTS)]),
        Lens("soc-overview-event-rate", "Tốc độ sự kiện / Event rate", EV, "xy",
             [date(), terms("event.dataset", "Nguồn dữ liệu / Dataset", size=8), count(EVENTS)],
             series="area_stacked", size=(48, 12)),
        Lens("soc-overview-events-by-system", "Hệ thống gửi nhiều sự kiện nhất / Top systems by events", EV, "bar_h",
             [terms("gov.system.name", "Hệ thống / System", size=15, other=False), count(EVENTS)]),
        Lens("soc-overview-events-by-agency", "Cơ quan gửi nhiều sự kiện nhất / Top agencies by events", EV, "bar_h",
             [terms("gov.agency.name", "Cơ quan / Agency", size=15, other=False), count(EVENTS)]),
    ])


def ingestion() -> Dashboard:
    return Dashboard("soc-ingestion", "Thu thập theo hệ thống và cơ quan / Ingestion per system and agency",
                     "Sự kiện theo hệ thống, cơ quan, nguồn dữ liệu; dòng không phân tích được (tag _parse_failure); "
                     "sự kiện bị Elasticsearch từ chối / Events per system, agency and dataset; lines no parser "
                     "could read (tag _parse_failure); events Elasticsearch refused (dead letters).", [
        Lens("soc-ingestion-events", "Số sự kiện / Events", EV, "metric", [count(EVENTS)], size=(12, 6)),
        Lens("soc-ingestion-parse-failures", "Dòng lỗi phân tích / Parse failures", EV, "metric",
             [count("Lỗi phân tích / Parse failures")], query=PARSE_FAILURE, size=(12, 6)),
        Lens("soc-ingestion-systems", "Số hệ thống gửi log / Systems sending logs", EV, "metric",
             [metric("unique_count", "gov.system.id", "Hệ thống / Systems", "systems")], size=(12, 6)),
        Lens("soc-ingestion-dead-letters", "Sự kiện bị từ chối / Dead letters", DL, "metric",
             [count("Bị từ chối / Refused")], size=(12, 6)),
        Lens("soc-ingestion-by-system", "Sự kiện theo hệ thống / Events by system", EV, "xy",
             [date(), terms("gov.system.name", "Hệ thống / System"), count(EVENTS)], series="area_stacked"),
        Lens("soc-ingestion-by-agency", "Sự kiện theo cơ quan / Events by agency", EV, "xy",
             [date(), terms("gov.agency.name", "Cơ quan / Agency"), count(EVENTS)], series="area_stacked"),
        Lens("soc-ingestion-by-dataset", "Sự kiện theo nguồn dữ liệu / Events by dataset", EV, "xy",
             [date(), terms("event.dataset", "Nguồn dữ liệu / Dataset"), count(EVENTS)]),
        Lens("soc-ingestion-dataset-share", "Tỷ lệ theo nguồn dữ liệu / Share by dataset", EV, "pie",
             [terms("event.dataset", "Nguồn dữ liệu / Dataset"), count(EVENTS)]),
        Lens("soc-ingestion-failures-over-time", "Lỗi phân tích theo hệ thống / Parse failures by system", EV, "xy",
             [date(), terms("gov.system.name", "Hệ thống / System"), count("Lỗi phân tích / Parse failures")],
             query=PARSE_FAILURE),
        Lens("soc-ingestion-per-system-table", "Thu thập theo hệ thống / Ingestion per system", EV, "table",
             [terms("gov.agency.name", "Cơ quan / Agency", size=20, other=False),
              terms("gov.system.name", "Hệ thống / System", size=50, other=False), count(EVENTS),
              count("Lỗi phân tích / Parse failures", key="failures", kql=PARSE_FAILURE)]),
        Lens("soc-ingestion-by-level", "Sự kiện theo cấp độ an toàn / Events by security level", EV, "pie",
             [terms("gov.classification", "Cấp độ / Level", size=6, dtype="number"), count(EVENTS)],
             size=(12, 12)),
        Lens("soc-ingestion-by-gov-level", "Sự kiện theo cấp hành chính / Events by administrative level", EV,
             "pie", [terms("gov.level", "Cấp / Level", size=4), count(EVENTS)], size=(12, 12)),
        Lens("soc-ingestion-dead-letters-over-time", "Sự kiện bị từ chối theo lý do / Dead letters by reason", DL,
             "xy", [date(), terms("error.type", "Lý do / Reason"), count("Bị từ chối / Refused")]),
    ])


def authentication() -> Dashboard:
    return Dashboard("soc-authentication", "Xác thực / Authentication",
                     "Đăng nhập thành công và thất bại; tài khoản và địa chỉ IP thất bại nhiều nhất; đăng nhập "
                     "Windows (4624/4625) và SSH / Successful and failed logins; the accounts and source addresses "
                     "failing most; Windows logons (4624/4625) and SSH.", [
        Lens("soc-auth-outcomes", "Kết quả đăng nhập / Login outcomes", EV, "xy",
             [date(), terms("event.outcome", "Kết quả / Outcome", size=3), count(EVENTS)], query=AUTH,
             size=(48, 12)),
        Lens("soc-auth-failed-users", "Tài khoản đăng nhập thất bại nhiều nhất / Top failing accounts", EV, "bar_h",
             [terms("user.name", "Tài khoản / Account", size=15, other=False), count("Thất bại / Failures")],
             query=AUTH_FAIL),
        Lens("soc-auth-failed-sources", "IP đăng nhập thất bại nhiều nhất / Top failing source addresses", EV,
             "bar_h", [terms("source.ip", "IP nguồn / Source IP", size=15, dtype="ip", other=False),
                       count("Thất bại / Failures")], query=AUTH_FAIL),
        Lens("soc-auth-failures-table", "Đăng nhập thất bại theo tài khoản và IP / Failures by account and address",
             EV, "table",
             [terms("user.name", "Tài khoản / Account", size=20, other=False),
              terms("source.ip", "IP nguồn / Source IP", size=5, dtype="ip", other=False),
              terms("gov.system.name", "Hệ thống / System", size=3, other=False), count("Thất bại / Failures")],
             query=AUTH_FAIL),
        Lens("soc-auth-failures-by-system", "Đăng nhập thất bại theo hệ thống / Failures by system", EV, "bar_h",
             [terms("gov.system.name", "Hệ thống / System", size=15, other=False), count("Thất bại / Failures")],
             query=AUTH_FAIL),
        Lens("soc-auth-windows-logons", "Đăng nhập Windows 4624/4625 / Windows logons 4624/4625", EV, "xy",
             [date(), filters("Sự kiện / Event", [("4624 thành công / success", "event.code:4624"),
                                                  ("4625 thất bại / failure", "event.code:4625")]),
              count(EVENTS)], query="event.code:(4624 or 4625)"),
        Lens("soc-auth-windows-failed", "Windows 4625: tài khoản và nguồn / Windows 4625: accounts and sources", EV,
             "table", [terms("user.name", "Tài khoản / Account", size=20, other=False),
                       terms("source.ip", "IP nguồn / Source IP", size=5, dtype="ip", other=False),
                       terms("host.name", "Máy / Host", size=3, other=False), count("Thất bại / Failures")],
             query="event.code:4625"),
        Lens("soc-auth-windows-logon-types", "Kiểu đăng nhập Windows / Windows logon types", EV, "pie",
             [terms("winlog.logon.type", "Kiểu / Type", size=8), count(EVENTS)], query="event.code:(4624 or 4625)"),
        Lens("soc-auth-sshd-actions", "SSH theo hành động / SSH by action", EV, "xy",
             [date(), terms("event.action", "Hành động / Action", size=8), count(EVENTS)], query=SSHD),
        Lens("soc-auth-sshd-failed", "SSH thất bại: IP và tài khoản / SSH failures: addresses and accounts", EV,
             "table", [terms("source.ip", "IP nguồn / Source IP", size=20, dtype="ip", other=False),
                       terms("user.name", "Tài khoản / Account", size=5, other=False),
                       count("Thất bại / Failures")], query=f"{SSHD} and event.outcome:failure"),
    ])


def web(rule_ids: list[str]) -> Dashboard:
    web_alerts = web_alerts_query(rule_ids)
    return Dashboard("soc-web", "Tấn công web / Web attacks",
                     "Truy cập web theo mã trạng thái, IP, đường dẫn, user agent; cảnh báo của các luật web "
                     "(rules/web) / Web access by status code, source address, path and user agent; alerts of the "
                     "web rules (rules/web).", [
        Lens("soc-web-status", "Phản hồi theo nhóm mã trạng thái / Responses by status class", EV, "xy",
             [date(), filters("Mã trạng thái / Status", [
                 ("2xx", "http.response.status_code >= 200 and http.response.status_code < 300"),
                 ("3xx", "http.response.status_code >= 300 and http.response.status_code < 400"),
                 ("4xx", "http.response.status_code >= 400 and http.response.status_code < 500"),
                 ("5xx", "http.response.status_code >= 500")]), count(EVENTS)], query=WEB, size=(48, 12)),
        Lens("soc-web-status-codes", "Mã trạng thái HTTP / HTTP status codes", EV, "pie",
             [terms("http.response.status_code", "Mã / Code", size=10, dtype="number"), count(EVENTS)], query=WEB,
             size=(16, 12)),
        Lens("soc-web-methods", "Phương thức HTTP / HTTP methods", EV, "pie",
             [terms("http.request.method", "Phương thức / Method", size=8), count(EVENTS)], query=WEB, size=(16, 12)),
        Lens("soc-web-by-system", "Truy cập theo cổng thông tin / Requests by portal", EV, "bar_h",
             [terms("gov.system.name", "Hệ thống / System", size=10, other=False), count(EVENTS)], query=WEB,
             size=(16, 12)),
        Lens("soc-web-error-sources", "IP nhận nhiều lỗi 4xx nhất / Top sources of 4xx responses", EV, "bar_h",
             [terms("source.ip", "IP nguồn / Source IP", size=15, dtype="ip", other=False),
              count("Phản hồi 4xx / 4xx responses")],
             query=f"{WEB} and http.response.status_code >= 400 and http.response.status_code < 500"),
        Lens("soc-web-error-paths", "Đường dẫn trả 4xx/5xx nhiều nhất / Top paths answered 4xx/5xx", EV, "bar_h",
             [terms("url.path", "Đường dẫn / Path", size=15, other=False), count("Lỗi / Errors")],
             query=f"{WEB} and http.response.status_code >= 400"),
        Lens("soc-web-user-agents", "User agent nhiều nhất / Top user agents", EV, "table",
             [terms("user_agent.original", "User agent", size=20, other=False),
              metric("unique_count", "source.ip", "Số IP / Addresses", "sources"), count(EVENTS)], query=WEB),
        Lens("soc-web-suspicious-urls", "URL lỗi theo IP / Failing URLs by source", EV, "table",
             [terms("url.original", "URL", size=20, other=False),
              terms("source.ip", "IP nguồn / Source IP", size=3, dtype="ip", other=False),
              terms("http.response.status_code", "Mã / Code", size=3, dtype="number", other=False),
              count(EVENTS)], query=f"{WEB} and http.response.status_code >= 400"),
        Lens("soc-web-alerts", "Cảnh báo của luật web / Web rule alerts", AL, "xy",
             [date(fld=ALERTS_TIME_FIELD), terms("rule_title", "Luật / Rule", size=8), count(ALERTS)],
             query=web_alerts),
        Lens("soc-web-alerts-table", "Cảnh báo web theo luật và hệ thống / Web alerts by rule and system", AL,
             "table", [terms("rule_title", "Luật / Rule", size=20, other=False),
                       terms("system_id", "Hệ thống / System", size=5, other=False),
                       terms("level", "Mức độ / Severity", size=1, other=False), count(ALERTS)],
             query=web_alerts),
    ])


def network() -> Dashboard:
    denied = f"{FIREWALL} and event.type:denied"
    return Dashboard("soc-network", "Mạng và tường lửa / Network and firewalls",
                     "Tường lửa FortiGate và Cisco ASA: cho phép/chặn, nguồn, đích, cổng, giao thức, máy trao đổi "
                     "nhiều dữ liệu nhất; cảnh báo Suricata / FortiGate and Cisco ASA firewalls: allowed and "
                     "denied, sources, destinations, ports, protocols, top talkers; Suricata alerts.", [
        Lens("soc-net-allow-deny", "Kết nối cho phép và bị chặn / Allowed and denied connections", EV, "xy",
             [date(), count("Cho phép / Allowed", key="allowed", kql="event.type:allowed"),
              count("Bị chặn / Denied", key="denied", kql="event.type:denied")],
             query=FIREWALL, series="line", size=(48, 12)),
        Lens("soc-net-actions", "Hành động của tường lửa / Firewall actions", EV, "bar_h",
             [terms("event.action", "Hành động / Action", size=10),
              terms("event.dataset", "Thiết bị / Device", size=3, key="device"), count(EVENTS)], query=FIREWALL,
             size=(16, 12)),
        Lens("soc-net-transport", "Giao thức / Transport", EV, "pie",
             [terms("network.transport", "Giao thức / Transport", size=6), count(EVENTS)], query=FIREWALL,
             size=(16, 12)),
        Lens("soc-net-denied-ports", "Cổng đích bị chặn nhiều nhất / Top denied destination ports", EV, "bar_h",
             [terms("destination.port", "Cổng / Port", size=15, dtype="number", other=False),
              count("Bị chặn / Denied")], query=denied, size=(16, 12)),
        Lens("soc-net-denied-sources", "Nguồn bị chặn nhiều nhất / Top denied sources", EV, "table",
             [terms("source.ip", "IP nguồn / Source IP", size=20, dtype="ip", other=False),
              metric("unique_count", "destination.ip", "Số đích / Destinations", "destinations"),
              metric("unique_count", "destination.port", "Số cổng / Ports", "ports"),
              count("Bị chặn / Denied")], query=denied),
        Lens("soc-net-top-destinations", "Đích nhiều kết nối nhất / Top destinations", EV, "table",
             [terms("destination.ip", "IP đích / Destination IP", size=20, dtype="ip", other=False),
              terms("destination.port", "Cổng / Port", size=3, dtype="number", other=False),
              terms("network.transport", "Giao thức / Transport", size=2, other=False), count(EVENTS)],
             query=FIREWALL),
        Lens("soc-net-top-talkers", "Máy trao đổi nhiều dữ liệu nhất / Top talkers", EV, "table",
             [terms("source.ip", "IP nguồn / Source IP", size=20, dtype="ip", other=False, order_by="bytes"),
              terms("destination.ip", "IP đích / Destination IP", size=3, dtype="ip", other=False,
                    order_by="bytes"),
              metric("sum", "network.bytes", "Byte / Bytes", "bytes"), count(EVENTS)], query=FIREWALL),
        Lens("soc-net-by-observer", "Sự kiện theo thiết bị / Events by device", EV, "xy",
             [date(), terms("observer.name", "Thiết bị / Device", size=8), count(EVENTS)],
             query=f"({FIREWALL}) or ({SURICATA_ALERTS})"),
        Lens("soc-net-suricata-alerts", "Cảnh báo Suricata / Suricata alerts", EV, "xy",
             [date(), terms("rule.name", "Chữ ký / Signature", size=8), count(ALERTS)], query=SURICATA_ALERTS),
        Lens("soc-net-suricata-table", "Cảnh báo Suricata theo chữ ký / Suricata alerts by signature", EV, "table",
             [terms("rule.name", "Chữ ký / Signature", size=20, other=False),
              terms("event.severity", "Mức / Severity", size=3, dtype="number", other=False),
              metric("unique_count", "source.ip", "Số IP nguồn / Sources", "sources"),
              metric("unique_count", "destination.ip", "Số IP đích / Destinations", "destinations"),
              count(ALERTS)], query=SURICATA_ALERTS),
    ])


def dashboards() -> list[Dashboard]:
    return [overview(), ingestion(), authentication(), web(web_rule_ids()), network()]


def render() -> dict[str, bytes]:
    """File name → NDJSON content, for every dashboard."""
    return {f"{board.id}.ndjson": to_ndjson(board.objects()) for board in dashboards()}


def main() -> None:
    for name, content in render().items():
        (OUT_DIR / name).write_bytes(content)
        print(f"{name}: {len(content.splitlines())} objects")


if __name__ == "__main__":
    main()

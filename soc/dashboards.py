"""Kibana dashboards: the saved objects in ``dashboards/kibana/`` and their export.

The NDJSON files there hold Kibana 8.9+ saved objects for the default names
(namespace ``soc``, alerts index ``soc-alerts``): three data views, Lens
visualisations and the dashboards that place them. :func:`export` reads them all,
points the data views at the index names a deployment really uses and returns one
NDJSON that Kibana's saved-objects import accepts (Stack Management → Saved objects
→ Import, or ``POST /api/saved_objects/_import``).

Only the data views name indices: Lens objects and dashboards reach them through
references to the data view ids, so rewriting a data view's ``title`` (the pattern)
and ``name`` re-targets every chart, and nothing else has to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from collectors.ecs_fields import FieldType
from soc.config import ElasticsearchConfig
from soc.store.elastic import names

KIBANA_DIR = Path(__file__).resolve().parents[1] / "dashboards" / "kibana"
"""Where the saved objects live (one NDJSON per dashboard)."""

EVENTS_VIEW = "soc-events"
ALERTS_VIEW = "soc-alerts"
DEADLETTER_VIEW = "soc-deadletters"
"""Ids of the three data views; every Lens layer references one of them."""

ALERTS_TIME_FIELD = "last_seen"
"""Time field of the alerts data view: an alert is in a time window when it was last
active, so an alert that keeps growing stays on screen (``first_seen`` would drop it
once its first event leaves the window)."""

ALERT_FIELD_TYPES: dict[str, FieldType] = {
    "id": "keyword",
    "rule_id": "keyword",
    "rule_title": "keyword",
    "level": "keyword",
    "kind": "keyword",
    "status": "keyword",
    "tactics": "keyword",
    "techniques": "keyword",
    "dedup_key": "keyword",
    "count": "long",
    "first_seen": "date",
    "last_seen": "date",
    "created_at": "date",
    "updated_at": "date",
    "version": "long",
    "event_ids": "keyword",
    "key_fields": "flattened",
    "system_id": "keyword",
    "agency_id": "keyword",
    "level_gov": "keyword",
    "classification": "long",
    "retro": "boolean",
    "hunt_id": "keyword",
    "summary": "text",
    "assignee_id": "keyword",
    "resolution": "keyword",
    "acknowledged_at": "date",
    "resolved_at": "date",
    "status_changed_at": "date",
    "incident_id": "keyword",
}
"""The mapping the dashboards expect of the alerts mirror (one document per
:meth:`soc.alerts.models.Alert.as_dict`, which leaves out the derived search
columns): what they aggregate on must be keyword, long or date."""

_PATTERN = re.compile(r"^[^\s\"'\\]+$")
_ID_PREFIX = re.compile(r"^[A-Za-z0-9_.-]*$")
_TYPE_ORDER = {"index-pattern": 0, "lens": 1, "visualization": 1, "search": 1, "dashboard": 2}


class DashboardError(ValueError):
    """The saved objects or the requested names are unusable (message: vi / en)."""


@dataclass(frozen=True, slots=True)
class IndexNames:
    """The index patterns the three data views point at."""

    events: str
    alerts: str
    deadletter: str

    def for_view(self, view_id: str) -> str | None:
        return {EVENTS_VIEW: self.events, ALERTS_VIEW: self.alerts, DEADLETTER_VIEW: self.deadletter}.get(view_id)


def events_pattern(namespace: str) -> str:
    """Every event stream of one namespace, all levels (``logs-*-soc.*``), and not the
    dead letters (``logs-soc.deadletter-soc`` has no ``.`` after the namespace) nor
    other products' ``logs-*`` data streams."""
    return f"logs-*-{namespace}.*"


def index_names(namespace: str = "soc", alerts_index: str = "soc-alerts") -> IndexNames:
    """The names the SOC writes to with this namespace and alerts index."""
    return IndexNames(events=events_pattern(namespace), alerts=f"{alerts_index}*",
                      deadletter=names.dead_letter_name(namespace))


DEFAULT_NAMES = index_names()
"""What the NDJSON files in :data:`KIBANA_DIR` carry."""


def names_from_config(cfg: ElasticsearchConfig, *, events: str | None = None, alerts: str | None = None,
                      deadletter: str | None = None) -> IndexNames:
    """The configuration's names, each overridable (``--events-index`` …)."""
    base = index_names(cfg.namespace, cfg.alerts_index)
    return IndexNames(events=events or base.events, alerts=alerts or base.alerts,
                      deadletter=deadletter or base.deadletter)


def parse_ndjson(data: bytes, source: str = "<ndjson>") -> list[dict[str, Any]]:
    """Saved objects, one JSON object per non-empty line."""
    out: list[dict[str, Any]] = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DashboardError(f"{source}:{number}: JSON không hợp lệ / invalid JSON: {exc}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str) or not isinstance(obj.get("id"), str):
            raise DashboardError(f"{source}:{number}: không phải saved object (thiếu type/id) / "
                                 "not a saved object (no type/id)")
        out.append(obj)
    return out


def load_objects(directory: Path = KIBANA_DIR) -> list[dict[str, Any]]:
    """Every saved object of every ``*.ndjson`` in ``directory``, once each.

    Each file is importable on its own, so the data views appear in several files;
    copies must be identical (two different objects with one id would make the
    import order decide which wins)."""
    files = sorted(directory.glob("*.ndjson"))
    if not files:
        raise DashboardError(f"không có tệp .ndjson trong {directory} / no .ndjson file in {directory}")
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for path in files:
        for obj in parse_ndjson(path.read_bytes(), path.name):
            key = (obj["type"], obj["id"])
            if key in seen:
                if seen[key] != obj:
                    raise DashboardError(f"{path.name}: {key[0]} '{key[1]}' khác với bản ở tệp khác / "
                                         "differs from its copy in another file")
                continue
            seen[key] = obj
    return sorted(seen.values(), key=lambda o: (_TYPE_ORDER.get(o["type"], 1), o["type"], o["id"]))


def rewrite(objects: Iterable[dict[str, Any]], index: IndexNames, *, id_prefix: str = "") -> list[dict[str, Any]]:
    """Copies of ``objects`` with the data views on ``index`` and, with ``id_prefix``,
    every id (and every reference to an object of the set) prefixed, so a second SOC
    can share one Kibana space without overwriting the first one's objects."""
    for pattern in (index.events, index.alerts, index.deadletter):
        if not _PATTERN.match(pattern):
            raise DashboardError(f"mẫu chỉ mục không hợp lệ / invalid index pattern: {pattern!r}")
    if not _ID_PREFIX.match(id_prefix):
        raise DashboardError(f"tiền tố id chỉ gồm chữ, số, '_', '.', '-' / id prefix may only hold letters, "
                             f"digits, '_', '.', '-': {id_prefix!r}")
    out = [deepcopy(obj) for obj in objects]
    ours = {(obj["type"], obj["id"]) for obj in out}
    for obj in out:
        if obj["type"] == "index-pattern":
            target = index.for_view(obj["id"])
            if target is not None:
                attrs = obj["attributes"]
                old = attrs["title"]
                attrs["title"] = target
                if isinstance(attrs.get("name"), str):
                    attrs["name"] = attrs["name"].replace(old, target)
        if id_prefix:
            for ref in obj.get("references", []):
                if (ref["type"], ref["id"]) in ours:
                    ref["id"] = id_prefix + ref["id"]
            obj["id"] = id_prefix + obj["id"]
    return out


def to_ndjson(objects: Sequence[dict[str, Any]]) -> bytes:
    """One object per line, keys sorted (as Kibana exports them), final newline."""
    return b"".join(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) + b"\n" for obj in objects)


def export(index: IndexNames = DEFAULT_NAMES, *, id_prefix: str = "", directory: Path = KIBANA_DIR) -> bytes:
    """The whole set as one importable NDJSON, re-targeted at ``index``."""
    return to_ndjson(rewrite(load_objects(directory), index, id_prefix=id_prefix))


def title_of(obj: dict[str, Any]) -> str:
    """What Kibana lists the object as (a data view by its name, else its title)."""
    attrs = obj.get("attributes") or {}
    if obj.get("type") == "index-pattern":
        return str(attrs.get("name") or attrs.get("title") or "")
    return str(attrs.get("title") or "")

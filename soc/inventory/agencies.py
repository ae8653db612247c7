"""The agency tree: province → (district) → commune, imported and edited.

An import (YAML shaped like ``config/systems``' ``agencies:``, or CSV with the header
``id,name,level,parent,former_names,merged_into``) is an upsert by id:

* a changed name keeps the old one in ``former_names`` (events and alerts keep the id);
* ``parent`` may change (re-parenting); a file without the ``parent`` key/column keeps it;
* ``merged_into`` marks a merged agency: inactive, kept, and seen through the scope of
  users of the absorbing agency. An import never undoes a merger (``PATCH`` does);
* agencies missing from the file are reported, never deleted.

Everything is checked before anything is written: unknown ``parent``/``merged_into``,
cycles, level order (a commune under a district or province, a district under a
province) and ids; every problem names the file, the line and the column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from soc.audit.trail import Actor, record
from soc.db import Database
from soc.i18n import both, language, register
from soc.identity.scope import Scope
from soc.inventory.errors import InventoryError, check_version, not_found
from soc.inventory.models import AgencyRow
from soc.systems import ID_MAX, ID_PATTERN, LEVELS

register({
    "agency.where": ("{file}, dòng {line}, cột '{column}'", "{file}, line {line}, column '{column}'"),
    "agency.where_field": ("trường '{column}'", "field '{column}'"),
    "agency.invalid_field": ("{detail_vi}", "{detail_en}"),
    "agency.unknown_parent": (
        "cơ quan cấp trên '{value}' không có trong tệp lẫn trong danh mục",
        "parent agency '{value}' is neither in the file nor in the inventory",
    ),
    "agency.unknown_merged": (
        "cơ quan tiếp nhận '{value}' không có trong tệp lẫn trong danh mục",
        "absorbing agency '{value}' is neither in the file nor in the inventory",
    ),
    "agency.self_reference": (
        "cơ quan '{id}' không thể tham chiếu chính nó", "agency '{id}' cannot refer to itself",
    ),
    "agency.cycle": ("vòng lặp trong cây cơ quan: {path}", "cycle in the agency tree: {path}"),
    "agency.level_order": (
        "cơ quan cấp {level} không thể trực thuộc '{parent}' (cấp {parent_level}); xã trực thuộc huyện hoặc tỉnh, "
        "huyện trực thuộc tỉnh",
        "a {level} agency cannot be under '{parent}' (a {parent_level} agency); a commune belongs under a "
        "district or the province, a district under the province",
    ),
    "agency.child_level": (
        "'{child}' (cấp {child_level}) đang trực thuộc cơ quan này nên nó không thể là cấp {level}",
        "'{child}' (a {child_level} agency) is under this agency, so it cannot be a {level} agency",
    ),
    "agency.duplicate": (
        "mã '{id}' đã xuất hiện ở dòng {first}", "id '{id}' already appears on line {first}",
    ),
    "agency.bad_id": (
        "mã '{value}' không hợp lệ: chữ thường, số, '.', '_' và '-', bắt đầu bằng chữ hoặc số",
        "invalid id '{value}': use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit",
    ),
    "agency.bad_level": (
        "cấp '{value}' không hợp lệ; dùng province, district hoặc commune",
        "invalid level '{value}'; use province, district or commune",
    ),
    "agency.missing": ("thiếu giá trị bắt buộc", "a required value is missing"),
    "agency.unknown_column": (
        "cột không được hỗ trợ; dùng id, name, level, parent, former_names, merged_into",
        "unsupported column; use id, name, level, parent, former_names, merged_into",
    ),
    "agency.missing_column": (
        "thiếu cột bắt buộc '{value}' ở dòng tiêu đề", "the header lacks the required column '{value}'",
    ),
    "agency.row_width": (
        "dòng có {got} cột, tiêu đề có {want}", "the row has {got} columns, the header {want}",
    ),
    "agency.bad_yaml": ("YAML không hợp lệ: {detail}", "invalid YAML: {detail}"),
    "agency.bad_encoding": (
        "tệp không phải UTF-8; lưu lại dưới dạng UTF-8", "the file is not UTF-8; save it as UTF-8",
    ),
    "agency.bad_shape": (
        "tệp YAML phải là danh sách cơ quan hoặc có khóa agencies:",
        "the YAML file must be a list of agencies or hold an agencies: key",
    ),
    "agency.bad_value": ("giá trị phải là {want}", "the value must be {want}"),
    "agency.empty_file": ("tệp không có cơ quan nào", "the file holds no agency"),
    "agency.import_invalid": (
        "Tệp nhập có {count} lỗi, chưa thay đổi gì: {issues_vi}",
        "The import has {count} errors and changed nothing: {issues_en}",
    ),
    "agency.root_scope": (
        "Chỉ người dùng thuộc cấp tỉnh mới tạo được cơ quan gốc hoặc nhập cả cây cơ quan",
        "Only a user bound to the province may create a top-level agency or import the agency tree",
    ),
})

_ID = re.compile(ID_PATTERN)
COLUMNS = ("id", "name", "level", "parent", "former_names", "merged_into")
_RANK = {"province": 0, "district": 1, "commune": 2}


# --- input -------------------------------------------------------------------------

@dataclass
class AgencyInput:
    """One agency as a file or a request gives it. ``has_*`` says whether the field was
    given at all (absent keeps the stored value)."""

    id: str
    name: str | None = None
    level: str | None = None
    parent: str | None = None
    has_parent: bool = False
    former_names: list[str] = field(default_factory=list)
    replace_former_names: bool = False
    merged_into: str | None = None
    has_merged_into: bool = False
    active: bool | None = None
    line: int | None = None
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, column: str) -> int | None:
        return self.lines.get(column, self.line)


@dataclass(frozen=True)
class Issue:
    """One problem of an import, located in the file."""

    file: str
    line: int | None
    column: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str) -> str:
        if self.line is None:
            where = both("agency.where_field", column=self.column)[lang]
        else:
            where = both("agency.where", file=self.file, line=self.line, column=self.column)[lang]
        return f"{where}: {both(self.key, **self.params)[lang]}"

    def __str__(self) -> str:
        lang = language()
        return self.text(lang) if lang in ("vi", "en") else f"{self.text('vi')} / {self.text('en')}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column, "detail": self.text("en"),
                "detail_vi": self.text("vi")}


class AgencyImportError(ValueError):
    """The file has problems; nothing was written."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise TypeError
    text = str(value).strip()
    return text or None


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [n.strip() for n in value.split(";") if n.strip()]
    if isinstance(value, list):
        return [str(n).strip() for n in value if str(n).strip()]
    raise TypeError


def parse_yaml(text: str, file: str) -> list[AgencyInput]:
    """Agencies of a YAML file: a list, or a mapping with ``agencies:`` (a
    ``config/systems`` file; its ``systems:`` are not agencies and are ignored)."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise AgencyImportError([Issue(file, line, "-", "agency.bad_yaml", {"detail": str(exc).splitlines()[0]})]
                                ) from None
    items_node: Any = root
    if isinstance(data, dict):
        items = data.get("agencies")
        items_node = next((v for k, v in root.value if k.value == "agencies"), None) if root is not None else None
    else:
        items = data
    if not isinstance(items, list):
        raise AgencyImportError([Issue(file, 1, "-", "agency.bad_shape")])
    out: list[AgencyInput] = []
    issues: list[Issue] = []
    for index, item in enumerate(items):
        node = items_node.value[index] if items_node is not None else None
        line = node.start_mark.line + 1 if node is not None else None
        lines = {}
        if node is not None and isinstance(node, yaml.MappingNode):
            lines = {k.value: v.start_mark.line + 1 for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        if not isinstance(item, dict):
            issues.append(Issue(file, line, "-", "agency.bad_value", {"want": "a mapping (id, name, level…)"}))
            continue
        for key in item:
            if key not in COLUMNS:
                issues.append(Issue(file, lines.get(str(key), line), str(key), "agency.unknown_column"))
        entry = AgencyInput(id="", line=line, lines=lines)
        try:
            entry.id = _text(item.get("id")) or ""
            entry.name = _text(item.get("name"))
            entry.level = _text(item.get("level"))
        except TypeError:
            issues.append(Issue(file, line, "-", "agency.bad_value", {"want": "text"}))
            continue
        for column in ("parent", "merged_into"):
            try:
                value = _text(item.get(column))
            except TypeError:
                issues.append(Issue(file, lines.get(column, line), column, "agency.bad_value", {"want": "an id"}))
                continue
            setattr(entry, column, value)
        entry.has_parent = "parent" in item
        entry.has_merged_into = entry.merged_into is not None
        try:
            entry.former_names = _names(item.get("former_names"))
        except TypeError:
            issues.append(Issue(file, lines.get("former_names", line), "former_names", "agency.bad_value",
                                {"want": "a list of names"}))
        out.append(entry)
    if issues:
        raise AgencyImportError(issues)
    return out


def parse_csv(data: bytes | str, file: str) -> list[AgencyInput]:
    """Agencies of a CSV file (UTF-8, with or without BOM); ``former_names`` are
    separated by ``;``."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            raise AgencyImportError([Issue(file, line, "-", "agency.bad_encoding")]) from None
    else:
        text = data.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise AgencyImportError([Issue(file, 1, "-", "agency.empty_file")])
    columns = [h.strip().lower() for h in header]
    issues = [Issue(file, 1, name, "agency.unknown_column") for name in columns if name not in COLUMNS]
    issues += [Issue(file, 1, name, "agency.missing_column", {"value": name})
               for name in ("id", "name", "level") if name not in columns]
    if issues:
        raise AgencyImportError(issues)
    out: list[AgencyInput] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            issues.append(Issue(file, line, "-", "agency.row_width", {"got": len(row), "want": len(columns)}))
            continue
        cells = dict(zip(columns, (cell.strip() for cell in row), strict=True))
        out.append(AgencyInput(
            id=cells["id"], name=cells["name"] or None, level=cells["level"] or None,
            parent=cells.get("parent") or None, has_parent="parent" in cells,
            former_names=_names(cells.get("former_names", "")), merged_into=cells.get("merged_into") or None,
            has_merged_into=bool(cells.get("merged_into")), line=line))
    if issues:
        raise AgencyImportError(issues)
    return out


def parse_file(data: bytes, file: str, kind: str | None = None) -> list[AgencyInput]:
    """``kind``: ``csv`` or ``yaml``; by default from the file name."""
    kind = kind or ("csv" if file.lower().endswith(".csv") else "yaml")
    if kind == "csv":
        return parse_csv(data, file)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AgencyImportError([Issue(file, data[:exc.start].count(b"\n") + 1, "-", "agency.bad_encoding")]
                                ) from None
    return parse_yaml(text, file)


# --- planning ----------------------------------------------------------------------

@dataclass
class AgencyChange:
    id: str
    action: str
    """create | update | merge"""
    values: dict[str, Any]
    """The agency's fields after the change (column names of :class:`AgencyRow`)."""
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """field → (before, after) for an update."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "action": self.action}
        if self.action == "create":
            out["after"] = _public(self.values)
        else:
            out["changes"] = {_PUBLIC.get(k, k): {"before": b, "after": a} for k, (b, a) in self.changes.items()}
        return out


_PUBLIC = {"parent_id": "parent"}


def _public(values: dict[str, Any]) -> dict[str, Any]:
    return {_PUBLIC.get(k, k): v for k, v in values.items()}


@dataclass
class ImportReport:
    created: list[AgencyChange] = field(default_factory=list)
    updated: list[AgencyChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Agencies of the inventory the file does not mention (kept)."""
    dry_run: bool = False

    @property
    def merged(self) -> list[str]:
        return [c.id for c in self.updated if c.action == "merge"] + \
               [c.id for c in self.created if c.values.get("merged_into")]

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "created": [c.as_dict() for c in self.created],
                "updated": [c.as_dict() for c in self.updated], "merged": self.merged,
                "unchanged": self.unchanged, "missing": self.missing}


def _allowed_under(level: str, parent_level: str) -> bool:
    return parent_level == "province" or (level == "commune" and parent_level == "district")


def plan(session: Session, inputs: Sequence[AgencyInput], file: str) -> ImportReport:
    """What importing ``inputs`` would change; raises :class:`AgencyImportError`."""
    issues: list[Issue] = []
    first_line: dict[str, int | None] = {}
    for entry in inputs:
        if not entry.id:
            issues.append(Issue(file, entry.line_of("id"), "id", "agency.missing"))
            continue
        if len(entry.id) > ID_MAX or not _ID.match(entry.id):
            issues.append(Issue(file, entry.line_of("id"), "id", "agency.bad_id", {"value": entry.id}))
        if entry.id in first_line:
            issues.append(Issue(file, entry.line_of("id"), "id", "agency.duplicate",
                                {"id": entry.id, "first": first_line[entry.id] or "-"}))
        first_line.setdefault(entry.id, entry.line)
    existing = {row.id: row for row in session.scalars(select(AgencyRow))}
    final: dict[str, dict[str, Any]] = {
        row.id: {"level": row.level, "parent_id": row.parent_id, "merged_into": row.merged_into}
        for row in existing.values()}
    for entry in inputs:
        current = existing.get(entry.id)
        if not entry.name and current is None:
            issues.append(Issue(file, entry.line_of("name"), "name", "agency.missing"))
        if entry.name and len(entry.name) > 300:
            issues.append(Issue(file, entry.line_of("name"), "name", "inventory.too_long",
                                {"field": "name", "limit": 300}))
        if entry.level is None and current is None:
            issues.append(Issue(file, entry.line_of("level"), "level", "agency.missing"))
        elif entry.level is not None and entry.level not in LEVELS:
            issues.append(Issue(file, entry.line_of("level"), "level", "agency.bad_level", {"value": entry.level}))
        state = dict(final.get(entry.id, {"level": None, "parent_id": None, "merged_into": None}))
        if entry.level in LEVELS:
            state["level"] = entry.level
        if entry.has_parent:
            state["parent_id"] = entry.parent
        if entry.has_merged_into:
            state["merged_into"] = entry.merged_into
        final[entry.id] = state
    if issues:
        raise AgencyImportError(issues)
    by_id = {entry.id: entry for entry in inputs}
    issues += _reference_issues(file, inputs, final)
    if not issues:
        issues += _cycle_issues(file, inputs, final)
    if not issues:
        issues += _level_issues(file, by_id, final)
    if issues:
        raise AgencyImportError(issues)
    report = ImportReport()
    for entry in inputs:
        change = _change(entry, existing.get(entry.id), final[entry.id])
        if change is None:
            report.unchanged.append(entry.id)
        elif change.action == "create":
            report.created.append(change)
        else:
            report.updated.append(change)
    report.missing = sorted(set(existing) - set(by_id))
    return report


def _reference_issues(file: str, inputs: Sequence[AgencyInput], final: dict[str, dict[str, Any]]) -> list[Issue]:
    issues: list[Issue] = []
    for entry in inputs:
        state = final[entry.id]
        for column, target, key in (("parent", state["parent_id"], "agency.unknown_parent"),
                                    ("merged_into", state["merged_into"], "agency.unknown_merged")):
            if target is None:
                continue
            if target == entry.id:
                issues.append(Issue(file, entry.line_of(column), column, "agency.self_reference", {"id": entry.id}))
            elif target not in final:
                issues.append(Issue(file, entry.line_of(column), column, key, {"value": target}))
    return issues


def _cycle_issues(file: str, inputs: Sequence[AgencyInput], final: dict[str, dict[str, Any]]) -> list[Issue]:
    issues: list[Issue] = []
    reported: set[frozenset[str]] = set()
    for column, link in (("parent", "parent_id"), ("merged_into", "merged_into")):
        for entry in inputs:
            path = [entry.id]
            current = final[entry.id][link]
            while current is not None and current not in path:
                path.append(current)
                current = final.get(current, {}).get(link)
            if current is None:
                continue
            cycle = frozenset(path[path.index(current):])
            if entry.id in cycle and cycle not in reported:
                reported.add(cycle)
                issues.append(Issue(file, entry.line_of(column), column, "agency.cycle",
                                    {"path": " → ".join([*path[path.index(current):], current])}))
    return issues


def _level_issues(file: str, by_id: dict[str, AgencyInput], final: dict[str, dict[str, Any]]) -> list[Issue]:
    issues: list[Issue] = []
    for agency_id, state in final.items():
        parent_id = state["parent_id"]
        if parent_id is None or (agency_id not in by_id and parent_id not in by_id):
            continue
        level, parent_level = state["level"], final[parent_id]["level"]
        if _allowed_under(level, parent_level):
            continue
        if agency_id in by_id:
            issues.append(Issue(file, by_id[agency_id].line_of("parent"), "parent", "agency.level_order",
                                {"level": level, "parent": parent_id, "parent_level": parent_level}))
        else:
            issues.append(Issue(file, by_id[parent_id].line_of("level"), "level", "agency.child_level",
                                {"child": agency_id, "child_level": level, "level": parent_level}))
    return issues


def _change(entry: AgencyInput, row: AgencyRow | None, state: dict[str, Any]) -> AgencyChange | None:
    if row is None:
        merged = state["merged_into"]
        values = {"name": entry.name, "level": state["level"], "parent_id": state["parent_id"],
                  "former_names": _unique(entry.former_names), "merged_into": merged,
                  "active": entry.active if entry.active is not None else merged is None}
        return AgencyChange(entry.id, "create", values)
    name = entry.name or row.name
    if entry.replace_former_names:
        former = _unique(entry.former_names)
    else:
        former = _unique([*row.former_names, *entry.former_names])
    if name != row.name and row.name not in former:
        former.append(row.name)
    former = [n for n in former if n != name]
    active = row.active
    if state["merged_into"] != row.merged_into:
        active = state["merged_into"] is None
    if entry.active is not None:
        active = entry.active
    values = {"name": name, "level": state["level"], "parent_id": state["parent_id"], "former_names": former,
              "merged_into": state["merged_into"], "active": active}
    changes = {k: (getattr(row, k), v) for k, v in values.items() if getattr(row, k) != v}
    if not changes:
        return None
    action = "merge" if "merged_into" in changes and state["merged_into"] is not None else "update"
    return AgencyChange(entry.id, action, values, changes)


def _unique(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        if name and name not in out:
            out.append(name)
    return out


def apply(session: Session, actor: Actor, report: ImportReport) -> None:
    """Write a planned import, one audit entry per agency."""
    for change in report.created:
        session.add(AgencyRow(id=change.id, **change.values))
    session.flush()
    for change in report.created:
        record(session, actor, "agency.create", "agency", change.id, agency_id=change.id,
               after=_public(change.values))
    for change in report.updated:
        row = session.get(AgencyRow, change.id)
        assert row is not None  # planned in this transaction
        for key, (_, after) in change.changes.items():
            setattr(row, key, list(after) if isinstance(after, list) else after)
        session.flush()
        record(session, actor, f"agency.{change.action}", "agency", change.id, agency_id=change.id,
               before={_PUBLIC.get(k, k): b for k, (b, _) in change.changes.items()},
               after={_PUBLIC.get(k, k): a for k, (_, a) in change.changes.items()})


def import_agencies(db: Database, inputs: Sequence[AgencyInput], actor: Actor, *, file: str,
                    dry_run: bool = False) -> ImportReport:
    """Check and (unless ``dry_run``) apply an import in one transaction."""
    if not inputs:
        raise AgencyImportError([Issue(file, None, "-", "agency.empty_file")])
    if dry_run:
        with db.read() as session:
            report = plan(session, inputs, file)
        report.dry_run = True
        return report
    with db.write() as session:
        report = plan(session, inputs, file)
        apply(session, actor, report)
    return report


# --- single agencies (the API) ---------------------------------------------------------

class AgencySpec(BaseModel):
    """A new agency."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "id": "ubnd-xa-thanh-son", "name": "UBND xã Thanh Sơn", "level": "commune", "parent": "ubnd-tinh",
        "former_names": ["UBND thị trấn Thanh Sơn"]}})

    id: str
    name: str
    level: str
    parent: str | None = None
    former_names: list[str] = []
    merged_into: str | None = None


class AgencyChanges(BaseModel):
    """Fields to change (absent fields stay; a new name keeps the old one in
    ``former_names``; ``merged_into: null`` undoes a merger)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "name": "UBND phường Thanh Sơn", "parent": "ubnd-tinh"}})

    name: str | None = None
    level: str | None = None
    parent: str | None = None
    former_names: list[str] | None = None
    merged_into: str | None = None
    active: bool | None = None


def get_agency(session: Session, scope: Scope, agency_id: str) -> AgencyRow:
    row = session.get(AgencyRow, agency_id)
    if row is None or not scope.allows(agency_id):
        raise not_found("agency", agency_id)
    return row


def list_agencies(session: Session, scope: Scope, *, level: str | None = None, parent: str | None = None,
                  active: bool | None = None) -> list[AgencyRow]:
    query = select(AgencyRow).where(scope.clause(AgencyRow.id)).order_by(AgencyRow.id)
    if level is not None:
        query = query.where(AgencyRow.level == level)
    if parent is not None:
        query = query.where(AgencyRow.parent_id == parent)
    if active is not None:
        query = query.where(AgencyRow.active == active)
    return list(session.scalars(query))


def agency_tree(rows: Sequence[AgencyRow]) -> list[dict[str, Any]]:
    """Nested ``children``; an agency whose parent is not among ``rows`` is a root."""
    nodes = {row.id: {**row.as_dict(), "children": []} for row in rows}
    roots: list[dict[str, Any]] = []
    for row in rows:
        parent = nodes.get(row.parent_id) if row.parent_id else None
        (parent["children"] if parent is not None else roots).append(nodes[row.id])
    return roots


def _request_error(issue: Issue) -> InventoryError:
    """A problem of one agency sent to the API, located by field."""
    located = Issue(issue.file, None, issue.column, issue.key, issue.params)
    return InventoryError("agency.invalid_field", 422, field=issue.column, detail_vi=located.text("vi"),
                          detail_en=located.text("en"))


def _in_scope(session: Session, scope: Scope, agency_id: str | None) -> None:
    if agency_id is not None and (not scope.allows(agency_id) or session.get(AgencyRow, agency_id) is None):
        raise not_found("agency", agency_id)


def create_agency(session: Session, actor: Actor, scope: Scope, spec: AgencySpec) -> AgencyRow:
    if spec.parent is None and not scope.all:
        raise InventoryError("agency.root_scope", 403)
    _in_scope(session, scope, spec.parent)
    _in_scope(session, scope, spec.merged_into)
    if session.get(AgencyRow, spec.id) is not None:
        raise InventoryError("inventory.agency_exists", 409, id=spec.id)
    entry = AgencyInput(id=spec.id, name=spec.name.strip(), level=spec.level, parent=spec.parent, has_parent=True,
                        former_names=spec.former_names, merged_into=spec.merged_into,
                        has_merged_into=spec.merged_into is not None)
    return _apply_one(session, actor, entry)


def update_agency(session: Session, actor: Actor, scope: Scope, agency_id: str, changes: AgencyChanges,
                  expected_version: int | None = None) -> AgencyRow:
    row = get_agency(session, scope, agency_id)
    check_version(row.version, expected_version)
    given = changes.model_fields_set
    if "parent" in given:
        if changes.parent is None and not scope.all:
            raise InventoryError("agency.root_scope", 403)
        _in_scope(session, scope, changes.parent)
    if "merged_into" in given:
        _in_scope(session, scope, changes.merged_into)
    entry = AgencyInput(
        id=agency_id, name=changes.name.strip() if changes.name else None, level=changes.level,
        parent=changes.parent, has_parent="parent" in given, former_names=list(changes.former_names or []),
        replace_former_names=changes.former_names is not None, merged_into=changes.merged_into,
        has_merged_into="merged_into" in given, active=changes.active)
    if "name" in given and not entry.name:
        raise InventoryError("inventory.empty", field="name")
    if "level" in given and changes.level is None:
        raise _request_error(Issue("request", None, "level", "agency.bad_level", {"value": "null"}))
    return _apply_one(session, actor, entry)


def _apply_one(session: Session, actor: Actor, entry: AgencyInput) -> AgencyRow:
    try:
        report = plan(session, [entry], "request")
    except AgencyImportError as exc:
        raise _request_error(exc.issues[0]) from None
    apply(session, actor, report)
    row = session.get(AgencyRow, entry.id)
    assert row is not None
    return row

"""``soc systems …`` and ``soc agencies …``: the inventory database from the shell.

Each command first imports what the YAML seed (``config/systems``) adds, so a fresh
installation works before ``soc run`` has ever started. Changes are audited as the
operating-system user running the command (``cli:<user>``); a running service picks
them up within seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from soc.cli.common import ConfigOpt, console, fail, load
from soc.config import ConfigError
from soc.i18n import register, t

if TYPE_CHECKING:
    from soc.audit.trail import Actor
    from soc.db import Database
    from soc.inventory.models import IngestKeyRow, SystemRow

register({
    "systems.key_rotated": (
        "Khóa mới cho hệ thống {system} (chỉ hiện MỘT lần): {key}\nKhóa cũ {old} còn dùng được đến {until}",
        "New key for system {system} (shown ONCE): {key}\nThe old key {old} keeps working until {until}",
    ),
    "systems.key_revoked": ("Đã thu hồi khóa {key} của hệ thống {system}", "Revoked key {key} of system {system}"),
    "systems.no_key": (
        "Hệ thống {system} không có khóa '{key}' còn hiệu lực; các khóa: {known}",
        "System {system} has no live key '{key}'; its keys: {known}",
    ),
    "systems.pick_key": (
        "Hệ thống {system} có {count} khóa còn hiệu lực; chỉ rõ khóa nào: {known}",
        "System {system} has {count} live keys; say which one: {known}",
    ),
    "systems.no_keys": ("Hệ thống {system} chưa có khóa nào", "System {system} has no keys"),
    "agencies.none": ("Chưa có cơ quan nào trong danh mục", "The inventory has no agencies"),
    "agencies.import_title": ("Thay đổi khi nhập {file}", "Changes importing {file}"),
    "agencies.import_dry_run": (
        "Chạy thử: chưa thay đổi gì (bỏ --dry-run để áp dụng)",
        "Dry run: nothing was changed (drop --dry-run to apply)",
    ),
    "agencies.import_done": (
        "Đã nhập: {created} thêm mới, {updated} cập nhật, {unchanged} không đổi",
        "Imported: {created} created, {updated} updated, {unchanged} unchanged",
    ),
    "agencies.import_missing": (
        "Có trong danh mục nhưng không có trong tệp (giữ nguyên): {ids}",
        "In the inventory but not in the file (kept): {ids}",
    ),
})

systems_app = typer.Typer(help="Hệ thống được giám sát / Monitored systems", no_args_is_help=True)
agencies_app = typer.Typer(help="Cơ quan / Agencies", no_args_is_help=True)

SystemArg = Annotated[str, typer.Argument(help="Mã hệ thống / system id")]


def _cli_actor() -> Actor:
    from soc.cli.users import cli_actor

    return cli_actor()


def _open(config: Path | None) -> Database:
    """The inventory database, seeded."""
    from soc.db import open_database
    from soc.inventory.seed import seed_inventory

    cfg = load(config)
    try:
        db = open_database(cfg)
        seed_inventory(db, cfg)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    return db


def _system(session: Any, system_id: str) -> SystemRow:
    from sqlalchemy import select

    from soc.inventory.models import SystemRow

    row = session.get(SystemRow, system_id)
    if row is None:
        known = ", ".join(session.scalars(select(SystemRow.id).order_by(SystemRow.id)))
        raise fail(t("ingest.unknown_system", system=system_id, known=known or "-"))
    return row


def _pick_key(session: Any, system: SystemRow, ref: str | None) -> IngestKeyRow:
    """A live key of ``system`` by id, id prefix or key prefix; the only one if ``ref`` is None."""
    from soc.inventory.keys import key_state, list_keys

    live = [k for k in list_keys(session, system.id) if key_state(k) in ("active", "expiring")]
    known = ", ".join(f"{k.id[:8]} ({k.prefix}…)" for k in live) or "-"
    if ref is None:
        if len(live) == 1:
            return live[0]
        raise fail(t("systems.pick_key", system=system.id, count=len(live), known=known))
    found = [k for k in live if k.id == ref or k.id.startswith(ref) or k.prefix.startswith(ref)]
    if len(found) != 1:
        raise fail(t("systems.no_key", system=system.id, key=ref, known=known))
    return found[0]


# --- systems -----------------------------------------------------------------------

@systems_app.command("list")
def systems_list(config: ConfigOpt = None) -> None:
    """Liệt kê hệ thống / List the monitored systems."""
    from sqlalchemy import select

    from soc.db import utcnow
    from soc.inventory.keys import key_state
    from soc.inventory.models import AgencyRow, IngestKeyRow, SystemRow
    from soc.inventory.systems import sources_of, system_view

    db = _open(config)
    now = utcnow()
    with db.read() as session:
        systems = list(session.scalars(select(SystemRow).order_by(SystemRow.id)))
        agencies = {a.id: a for a in session.scalars(select(AgencyRow))}
        sources = sources_of(session, [s.id for s in systems])
        live: dict[str, int] = {}
        for key in session.scalars(select(IngestKeyRow)):
            if key_state(key, now) in ("active", "expiring"):
                live[key.system_id] = live.get(key.system_id, 0) + 1
    db.dispose()
    if not systems:
        console.print(t("systems.none"))
        return
    table = Table()
    for col in ("id", "name / tên", "type", "agency / cơ quan", "level / cấp", "class / cấp độ", "hosts / CIDR",
                "onboarding", "keys / khóa"):
        table.add_column(col, overflow="fold")
    for system in systems:
        agency = agencies.get(system.agency_id)
        level = system.level or (agency.level if agency else "")
        view = system_view(system, sources.get(system.id, []), now)
        table.add_row(system.id, system.name, system.type, agency.name if agency else system.agency_id, level,
                      str(system.classification), ", ".join([*system.hosts, *system.cidrs]), view["onboarding"],
                      str(live.get(system.id, 0)))
    console.print(table)


@systems_app.command("key")
def systems_key(system: SystemArg,
                name: Annotated[str, typer.Option(help="Tên khóa / key name (e.g. the sending host)")] = "cli",
                config: ConfigOpt = None) -> None:
    """Tạo khóa nạp dữ liệu (in một lần) / Issue an ingest key for a system (printed once)."""
    from soc.inventory.errors import InventoryError
    from soc.inventory.keys import create_key

    db = _open(config)
    try:
        with db.write() as session:
            _, secret = create_key(session, _cli_actor(), _system(session, system), name)
    except InventoryError as exc:
        raise fail(str(exc)) from None
    finally:
        db.dispose()
    console.print(t("systems.key_issued", system=system, key=secret), highlight=False, soft_wrap=True)


@systems_app.command("keys")
def systems_keys(system: SystemArg, config: ConfigOpt = None) -> None:
    """Liệt kê khóa (không hiện khóa) / List a system's ingest keys (never the secret)."""
    from soc.inventory.keys import key_view, list_keys

    db = _open(config)
    with db.read() as session:
        rows = [key_view(k) for k in list_keys(session, _system(session, system).id)]
    db.dispose()
    if not rows:
        console.print(t("systems.no_keys", system=system))
        return
    table = Table()
    for col in ("id", "prefix", "name / tên", "state / trạng thái", "created / tạo", "expires / hết hạn",
                "last used / dùng lần cuối"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row["id"], row["prefix"] + "…", row["name"], row["state"], row["created_at"],
                      row["expires_at"] or "", row["last_used_at"] or "")
    console.print(table)


@systems_app.command("rotate-key")
def systems_rotate_key(
    system: SystemArg,
    key: Annotated[str | None, typer.Argument(help="Khóa cần đổi: mã hoặc tiền tố / key id or prefix")] = None,
    grace_hours: Annotated[float, typer.Option(min=0, help="Khóa cũ còn dùng được / old key keeps working (h)")
                           ] = 24,
    config: ConfigOpt = None,
) -> None:
    """Đổi khóa nạp dữ liệu / Rotate an ingest key (the new one is printed once)."""
    from soc.inventory.errors import InventoryError
    from soc.inventory.keys import rotate_key

    db = _open(config)
    try:
        with db.write() as session:
            row = _system(session, system)
            old = _pick_key(session, row, key)
            _, secret, old = rotate_key(session, _cli_actor(), row, old.id, grace_hours)
            until = old.expires_at.isoformat() if old.expires_at else "-"
            old_prefix = old.prefix
    except InventoryError as exc:
        raise fail(str(exc)) from None
    finally:
        db.dispose()
    console.print(t("systems.key_rotated", system=system, key=secret, old=old_prefix + "…", until=until),
                  highlight=False, soft_wrap=True)


@systems_app.command("revoke-key")
def systems_revoke_key(
    system: SystemArg,
    key: Annotated[str, typer.Argument(help="Khóa cần thu hồi: mã hoặc tiền tố / key id or prefix")],
    config: ConfigOpt = None,
) -> None:
    """Thu hồi khóa ngay / Revoke an ingest key at once."""
    from soc.inventory.keys import revoke_key

    db = _open(config)
    try:
        with db.write() as session:
            row = _system(session, system)
            revoked = revoke_key(session, _cli_actor(), row, _pick_key(session, row, key).id)
            prefix = revoked.prefix
    finally:
        db.dispose()
    console.print(t("systems.key_revoked", system=system, key=prefix + "…"), highlight=False)


# --- agencies ----------------------------------------------------------------------

@agencies_app.command("list")
def agencies_list(
    tree: Annotated[bool, typer.Option("--tree", help="Hiện dạng cây / show as a tree")] = False,
    config: ConfigOpt = None,
) -> None:
    """Liệt kê cơ quan / List the agencies."""
    from soc.identity.scope import EVERYTHING
    from soc.inventory.agencies import agency_tree, list_agencies

    db = _open(config)
    with db.read() as session:
        rows = list_agencies(session, EVERYTHING)
        nodes = agency_tree(rows)
    db.dispose()
    if not rows:
        console.print(t("agencies.none"))
        return
    if tree:
        root = Tree("🏛")
        _add_nodes(root, nodes)
        console.print(root)
        return
    table = Table()
    for col in ("id", "name / tên", "level / cấp", "parent / cấp trên", "former names / tên cũ",
                "merged into / sáp nhập vào", "active"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(row.id, row.name, row.level, row.parent_id or "", "; ".join(row.former_names),
                      row.merged_into or "", "✓" if row.active else "✗")
    console.print(table)


def _add_nodes(parent: Tree, nodes: list[dict[str, Any]]) -> None:
    for node in nodes:
        label = f"{node['name']} [dim]({node['id']}, {node['level']})[/dim]"
        if node["merged_into"]:
            label += f" [yellow]→ {node['merged_into']}[/yellow]"
        _add_nodes(parent.add(label), node["children"])


@agencies_app.command("import")
def agencies_import(
    file: Annotated[Path, typer.Argument(help="Tệp YAML hoặc CSV / a YAML or CSV file", exists=True,
                                         dir_okay=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Chỉ xem thay đổi / only show the changes")] = False,
    config: ConfigOpt = None,
) -> None:
    """Nhập cây cơ quan / Import the agency tree (upsert by id; renames and mergers kept)."""
    from soc.inventory.agencies import AgencyImportError, import_agencies, parse_file

    db = _open(config)
    try:
        report = import_agencies(db, parse_file(file.read_bytes(), str(file)), _cli_actor(), file=str(file),
                                 dry_run=dry_run)
    except AgencyImportError as exc:
        raise fail(str(exc)) from None
    finally:
        db.dispose()
    table = Table(title=t("agencies.import_title", file=file.name))
    for col in ("id", "action", "field / trường", "before / trước", "after / sau"):
        table.add_column(col, overflow="fold")
    for change in report.created:
        table.add_row(change.id, "[green]create[/green]", "name", "", str(change.values["name"]))
    for change in report.updated:
        for name, (before, after) in change.changes.items():
            style = "yellow" if change.action == "merge" else "cyan"
            table.add_row(change.id, f"[{style}]{change.action}[/{style}]", name.removesuffix("_id"),
                          _show(before), _show(after))
    if report.created or report.updated:
        console.print(table)
    if report.missing:
        console.print(t("agencies.import_missing", ids=", ".join(report.missing)), highlight=False)
    console.print(t("agencies.import_done", created=len(report.created), updated=len(report.updated),
                    unchanged=len(report.unchanged)))
    if dry_run:
        console.print(f"[yellow]{t('agencies.import_dry_run')}[/yellow]")


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)

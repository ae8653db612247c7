"""``soc audit …``: verify, export and read the audit trail on the server itself.

These commands open the SOC database directly (``SOC_DATABASE_URL`` or the data
directory's ``soc.db``), so they see every agency: whoever runs them already holds
the database.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from soc.audit.export import count, entry_dict, export_lines
from soc.audit.filters import AuditFilter
from soc.audit.models import AuditEntry
from soc.audit.verify import verify_chain
from soc.cli.common import ConfigOpt, console, err_console, fail, load
from soc.config import SocConfig
from soc.db import Database, open_database
from soc.i18n import register, t
from soc.timeparse import parse_time

register({
    "audit.cli.exported": ("Đã xuất {count} bản ghi vào {path}", "Exported {count} entries to {path}"),
    "audit.cli.exporting": ("Đang xuất", "Exporting"),
    "audit.cli.none": ("Không có bản ghi kiểm toán phù hợp", "No matching audit entries"),
    "audit.cli.shown": ("{count} bản ghi mới nhất", "{count} newest entries"),
    "audit.cli.cannot_write": ("Không ghi được {path}: {error}", "Cannot write {path}: {error}"),
    "audit.cli.head": ("Đầu chuỗi #{seq} {hash} (lưu ở nơi khác để đối chiếu lần sau)",
                       "Chain head #{seq} {hash} (keep it elsewhere to compare next time)"),
    "audit.cli.expected": ("Giá trị mong đợi", "Expected"),
    "audit.cli.found": ("Giá trị tìm thấy", "Found"),
})

audit_app = typer.Typer(help="Nhật ký kiểm toán / Audit trail", no_args_is_help=True)

SinceOpt = Annotated[str | None, typer.Option(help="Từ / from (inclusive): 24h, 7d or ISO 8601")]
UntilOpt = Annotated[str | None, typer.Option(help="Đến / until (exclusive): ISO 8601 or relative")]
ActionOpt = Annotated[str | None, typer.Option(help="Hành động hoặc tiền tố / action or dotted prefix, e.g. alert.")]
ActorOpt = Annotated[str | None, typer.Option(help="Người thực hiện / username, or system:<job>")]


def _open(config: Path | None) -> tuple[SocConfig, Database]:
    cfg = load(config)
    return cfg, open_database(cfg)


def _when(value: str | None, cfg: SocConfig) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, tz=cfg.tz)
    except ValueError:
        raise fail(t("search.bad_time", value=value)) from None


@audit_app.command("verify")
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Kết quả dạng JSON / the result as JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Kiểm tra chuỗi băm / Verify the hash chain (exit 1 at the first broken entry)."""
    _, db = _open(config)
    try:
        result = verify_chain(db)
    finally:
        db.dispose()
    if as_json:
        typer.echo(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())
    elif result.ok:
        console.print(f"[green]✓[/green] {result.message()}", highlight=False)
        console.print(t("audit.cli.head", seq=result.last_seq, hash=result.last_hash), highlight=False)
    else:
        err_console.print(f"[red]✗ {result.message()}[/red]", highlight=False)
        err_console.print(f"{t('audit.cli.expected')}: {result.expected}", highlight=False)
        err_console.print(f"{t('audit.cli.found')}: {result.found}", highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def export(
    fmt: Annotated[Literal["ndjson", "csv"], typer.Option("--format", help="ndjson | csv")] = "ndjson",
    since: SinceOpt = None,
    until: UntilOpt = None,
    actor: ActorOpt = None,
    action: ActionOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Tệp đích / output file (default: stdout)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Xuất nhật ký (cũ trước) / Export the trail, oldest first, with seq, hash and prev_hash."""
    cfg, db = _open(config)
    try:
        where = AuditFilter(since=_when(since, cfg), until=_when(until, cfg), actor=actor, action=action)
        if out is None:
            stream = sys.stdout.buffer
            for line in export_lines(db, fmt, where):
                stream.write(line)
            stream.flush()
            return
        total = count(db, where)
        header = 1 if fmt == "csv" else 0  # the CSV header line is not an entry
        written = 0
        try:
            with out.open("wb") as file, Progress(TextColumn("{task.description}"), BarColumn(),
                                                  MofNCompleteColumn(), TimeElapsedColumn(),
                                                  console=err_console) as progress:
                task = progress.add_task(t("audit.cli.exporting"), total=total)
                for number, line in enumerate(export_lines(db, fmt, where), start=1 - header):
                    file.write(line)
                    written = max(0, number)
                    progress.update(task, completed=written)
        except OSError as exc:
            raise fail(t("audit.cli.cannot_write", path=out, error=exc)) from None
        console.print(t("audit.cli.exported", count=written, path=out), highlight=False)
    finally:
        db.dispose()


@audit_app.command("list")
def list_entries(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Số bản ghi / entries to show")] = 50,
    action: ActionOpt = None,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Các bản ghi mới nhất / The newest entries."""
    _, db = _open(config)
    try:
        where = AuditFilter(actor=actor, action=action)
        rows = _newest(db, where, limit)
    finally:
        db.dispose()
    if not rows:
        console.print(t("audit.cli.none"))
        return
    table = Table(show_lines=False)
    for column in ("seq", "Thời điểm / at (UTC)", "Người / actor", "Hành động / action", "Đối tượng / target",
                   "Cơ quan / agency"):
        table.add_column(column, overflow="fold")
    for entry in rows:
        target = f"{entry['target_type']}:{entry['target_id']}" if entry["target_id"] else entry["target_type"]
        table.add_row(str(entry["seq"]), entry["at"][:19].replace("T", " "), entry["actor_name"], entry["action"],
                      target, entry["agency_id"] or "")
    console.print(table)
    console.print(t("audit.cli.shown", count=len(rows)))


def _newest(db: Database, where: AuditFilter, limit: int) -> list[dict[str, Any]]:
    query = select(AuditEntry.__table__).where(*where.conditions()).order_by(AuditEntry.seq.desc()).limit(limit)
    with db.read() as session:
        return [entry_dict(row) for row in session.execute(query)]

"""The ``soc`` command (Typer + Rich)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from soc.cli.audit import audit_app
from soc.cli.common import ConfigOpt, console, err_console, fail, load
from soc.cli.dashboards import dashboards_app
from soc.cli.inventory import agencies_app, systems_app
from soc.cli.rules import alerts_app, rules_app
from soc.cli.users import users_app
from soc.config import ConfigError
from soc.i18n import t

app = typer.Typer(help="SOC tỉnh / Provincial SOC toolkit", no_args_is_help=True, add_completion=False)
events_app = typer.Typer(help="Sự kiện / Events", no_args_is_help=True)
config_app = typer.Typer(help="Cấu hình / Configuration", no_args_is_help=True)
admin_app = typer.Typer(help="Quản trị / Administration", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(config_app, name="config")
app.add_typer(systems_app, name="systems")
app.add_typer(admin_app, name="admin")
app.add_typer(rules_app, name="rules")
app.add_typer(alerts_app, name="alerts")
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(users_app, name="users")
app.add_typer(agencies_app, name="agencies")
app.add_typer(audit_app, name="audit")


@app.callback()
def _main() -> None:
    from soc.runtime import tune_gc

    tune_gc()


# --- run ---------------------------------------------------------------------------

@app.command()
def run(config: ConfigOpt = None) -> None:
    """Chạy dịch vụ SOC / Run the SOC service (pipeline + API + scheduler)."""
    from soc.service import serve

    cfg = load(config)
    try:
        serve(cfg, console)
    except ConfigError as exc:
        raise fail(str(exc)) from None


# --- ingest ------------------------------------------------------------------------

@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Tệp log / log files (.log, .gz, .evtx, NDJSON)")],
    system: Annotated[str | None, typer.Option(help="Gán cho hệ thống / attribute to this system id")] = None,
    format: Annotated[str | None, typer.Option("--format", "-f", help="Định dạng / format (default: auto)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Nạp tệp một lần qua toàn bộ pipeline / Push files once through the whole pipeline."""
    from collectors.parsers import known_formats, resolve_format
    from collectors.sources.evtx import is_evtx_file, iter_evtx_batches
    from collectors.sources.file_tail import iter_file_batches
    from soc.pipeline.build import build_topology
    from soc.pipeline.core import BatchResult

    cfg = load(config)
    if format is not None:
        try:
            resolve_format(format)
        except KeyError:
            raise fail(t("ingest.unknown_format", format=format, known=", ".join(known_formats()))) from None
    for path in paths:
        if not path.is_file():
            raise fail(t("ingest.missing", path=path))
    try:
        topo = build_topology(cfg)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if system is not None and system not in topo.registry.systems:
        raise fail(t("ingest.unknown_system", system=system, known=", ".join(sorted(topo.registry.systems))))
    total = BatchResult()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[events]:>10,} ev"),
               TransferSpeedColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=err_console, transient=False) as progress:
            for path in paths:
                task = progress.add_task(path.name, total=path.stat().st_size, events=0)
                if is_evtx_file(path):
                    batches = iter_evtx_batches(path, batch_size=cfg.pipeline.batch_size, source="cli",
                                                system_id=system)
                else:
                    batches = iter_file_batches(path, batch_size=cfg.pipeline.batch_size, source="cli",
                                                format=format, system_id=system)
                done = 0
                for batch in batches:
                    total.add(topo.pipeline.process(batch))
                    done += len(batch)
                    position = batch.offsets[-1] if batch.offsets else None
                    progress.update(task, completed=position, events=done)
                progress.update(task, completed=path.stat().st_size)
    finally:
        topo.pipeline.close()
        topo.store.close()
    table = Table(title=t("ingest.summary"))
    for key in ("read", "parsed", "failed", "stored"):
        table.add_column(t(f"ingest.{key}"), justify="right")
    table.add_row(f"{total.received:,}", f"{total.parsed:,}", f"{total.failed:,}", f"{total.stored:,}")
    console.print(table)
    if total.spooled:
        console.print(f"{t('ingest.spooled')}: {total.spooled:,}")


# --- events ------------------------------------------------------------------------

@events_app.command("search")
def events_search(
    query: Annotated[str, typer.Argument(help="Truy vấn / query, e.g. 'user.name:root AND event.outcome:failure'")
                     ] = "*",
    since: Annotated[str | None, typer.Option(help="24h, 7d, 30m or ISO 8601")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 or relative")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Số sự kiện tối đa / max events")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Mỗi dòng một tài liệu ECS / one ECS document per line")
                       ] = False,
    count: Annotated[bool, typer.Option("--count", help="Chỉ in số lượng / print only the number")] = False,
    config: ConfigOpt = None,
) -> None:
    """Tìm sự kiện đã lưu / Search stored events."""
    from soc.store.base import QueryError, TimeRange
    from soc.store.factory import open_store
    from soc.timeparse import parse_time

    cfg = load(config)

    def when(value: str | None) -> datetime | None:
        if value is None:
            return None
        try:
            return parse_time(value, tz=cfg.tz)
        except ValueError:
            raise fail(t("search.bad_time", value=value)) from None

    rng = TimeRange(when(since), when(until))
    store = open_store(cfg)
    try:
        if count:
            console.print(store.count(query, rng), highlight=False)
            return
        events = store.search(query, rng, limit=limit)
    except QueryError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    if as_json:
        out = sys.stdout.buffer
        for event in events:
            out.write(orjson.dumps(event) + b"\n")
        out.flush()
        return
    if not events:
        console.print(t("search.none"))
        return
    table = Table(show_lines=False)
    for col in ("@timestamp", "gov.system.id", "event.dataset", "message"):
        table.add_column(col, overflow="fold")
    for event in events:
        gov = event.get("gov") or {}
        message = event.get("message") or (event.get("event") or {}).get("original", "")
        table.add_row(event.get("@timestamp", ""), (gov.get("system") or {}).get("id", ""),
                      (event.get("event") or {}).get("dataset", ""), str(message)[:200])
    console.print(table)
    console.print(t("search.count", count=len(events)))


# --- config / systems / admin -----------------------------------------------------

@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Kiểm tra cấu hình / Validate the configuration, the inventory seed and mappings."""
    from soc.inventory.seed import validate_seed
    from soc.pipeline.build import load_mappings
    from soc.systems import check_seed_references

    cfg = load(config)
    try:
        seed = validate_seed(cfg)
        check_seed_references(seed)
        mappings = load_mappings(cfg)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    console.print(f"[green]{t('config.ok', path=cfg.config_path)}[/green]")
    console.print(f"sources: {', '.join(cfg.sources) or '-'}; transforms: "
                  f"{', '.join(tr.type for tr in cfg.transforms)}; sinks: {', '.join(cfg.sinks)}")
    console.print(f"seed agencies: {sum(len(f.agencies) for f in seed)}; "
                  f"seed systems: {sum(len(f.systems) for f in seed)}; json mappings: {', '.join(mappings) or '-'}")


@admin_app.command("token")
def admin_token(
    reset: Annotated[bool, typer.Option("--reset",
                                        help="Cấp mã API quản trị mới / issue a new admin API token")] = False,
    config: ConfigOpt = None,
) -> None:
    """Tài khoản quản trị đầu tiên và mã API của nó / The first administrator and its API token."""
    from soc.auth import ensure_first_admin, reset_admin_token
    from soc.cli.users import cli_actor
    from soc.db import open_database

    db = open_database(load(config))
    try:
        first = ensure_first_admin(db)
        if first is not None:
            console.print(f"[bold yellow]{t('run.first_admin')}[/bold yellow]", highlight=False)
            for label, value in first.lines():
                console.print(f"  [bold]{label}[/bold]: {value}", highlight=False, soft_wrap=True)
        elif not reset:
            console.print(t("run.admin_exists"))
        else:
            issued = reset_admin_token(db, cli_actor())
            if issued is None:
                raise fail(t("run.no_admin"))
            console.print(f"{t('run.admin_token')} ({issued[0]}): {issued[1]}", highlight=False, soft_wrap=True)
    finally:
        db.dispose()


if __name__ == "__main__":  # pragma: no cover
    app()

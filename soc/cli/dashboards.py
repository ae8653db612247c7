"""``soc dashboards …``: the Kibana saved objects, re-targeted at this SOC's indices."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from soc.cli.common import ConfigOpt, console, err_console, fail, load

dashboards_app = typer.Typer(help="Bảng điều khiển Kibana / Kibana dashboards", no_args_is_help=True)

DirOpt = Annotated[
    Path | None,
    typer.Option("--from", help="Thư mục saved objects / saved-objects folder (default: dashboards/kibana)"),
]


@dashboards_app.command("export")
def dashboards_export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Tệp NDJSON / NDJSON file (default: stdout)")] = None,
    events_index: Annotated[str | None, typer.Option(
        "--events-index", help="Mẫu chỉ mục sự kiện / events index pattern (default: logs-*-<namespace>.*)")] = None,
    alerts_index: Annotated[str | None, typer.Option(
        "--alerts-index", help="Mẫu chỉ mục cảnh báo / alerts index pattern (default: <alerts_index>*)")] = None,
    deadletter_index: Annotated[str | None, typer.Option(
        "--deadletter-index", help="Chỉ mục sự kiện bị từ chối / dead-letter index (default: "
                                   "logs-soc.deadletter-<namespace>)")] = None,
    id_prefix: Annotated[str, typer.Option(
        "--id-prefix", help="Tiền tố cho mọi id / prefix for every object id (two SOCs in one Kibana space)")] = "",
    source: DirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Xuất saved objects cho Kibana / Write the saved objects as one importable NDJSON."""
    from soc.dashboards import KIBANA_DIR, DashboardError, export, names_from_config

    cfg = load(config)
    index = names_from_config(cfg.elasticsearch, events=events_index, alerts=alerts_index,
                              deadletter=deadletter_index)
    try:
        data = export(index, id_prefix=id_prefix, directory=source or KIBANA_DIR)
    except DashboardError as exc:
        raise fail(str(exc)) from None
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        try:
            out.write_bytes(data)
        except OSError as exc:
            raise fail(f"không ghi được / cannot write {out}: {exc}") from None
    where = str(out) if out is not None else "stdout"
    objects = len(data.splitlines())
    err_console.print(f"Đã xuất {objects} saved objects / exported {objects} saved objects → {where}\n"
                      f"sự kiện / events: {index.events}; cảnh báo / alerts: {index.alerts}; "
                      f"bị từ chối / dead letters: {index.deadletter}", highlight=False)


@dashboards_app.command("list")
def dashboards_list(source: DirOpt = None) -> None:
    """Liệt kê saved objects / List the saved objects (data views, Lens charts, dashboards)."""
    from soc.dashboards import KIBANA_DIR, DashboardError, load_objects, title_of

    try:
        objects = load_objects(source or KIBANA_DIR)
    except DashboardError as exc:
        raise fail(str(exc)) from None
    table = Table()
    for col in ("type / loại", "id", "title / tiêu đề", "index / chỉ mục"):
        table.add_column(col, overflow="fold")
    for obj in objects:
        pattern = obj["attributes"].get("title", "") if obj["type"] == "index-pattern" else ""
        table.add_row(obj["type"], obj["id"], title_of(obj), pattern)
    console.print(table)

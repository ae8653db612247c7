"""What every ``soc`` command shares: consoles, the ``--config`` option, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from soc.config import ConfigError, SocConfig, load_config

console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Tệp cấu hình / configuration file (default: $SOC_CONFIG or config/soc.yaml)"),
]


def load(config: Path | None) -> SocConfig:
    try:
        return load_config(config)
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error a person can act on; raise the returned Exit."""
    err_console.print(f"[red]{message}[/red]", highlight=False)
    return typer.Exit(code)

"""``soc agencies …`` (being built)."""

from __future__ import annotations

import typer

agencies_app = typer.Typer(help="Cơ quan / Agencies", no_args_is_help=True)

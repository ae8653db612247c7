"""``soc users …`` (being built)."""

from __future__ import annotations

import typer

users_app = typer.Typer(help="Người dùng / Users", no_args_is_help=True)

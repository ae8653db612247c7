"""``soc audit …`` (being built)."""

from __future__ import annotations

import typer

audit_app = typer.Typer(help="Nhật ký kiểm toán / Audit trail", no_args_is_help=True)

"""The admin token that guards the read routes until users and roles exist.

The first run generates it, prints it once and keeps only its digest in the data
directory (``secrets/admin_token.json``, mode 0600).
"""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

from soc.systems import hash_secret, new_secret, write_private_json


def _path(data_dir: Path) -> Path:
    return data_dir / "secrets" / "admin_token.json"


def ensure_admin_token(data_dir: Path, *, reset: bool = False) -> str | None:
    """Create the admin token if there is none (or ``reset``); return it when created."""
    path = _path(data_dir)
    if path.exists() and not reset:
        return None
    token = new_secret("soc_admin")
    write_private_json(path, {"digest": hash_secret(token), "created": datetime.now(UTC).isoformat()})
    return token


class AdminTokenVerifier:
    """Checks bearer tokens against the stored digest (re-read when the file changes,
    so ``soc admin token --reset`` takes effect without a restart)."""

    def __init__(self, data_dir: Path) -> None:
        self._path = _path(data_dir)
        self._mtime = -1.0
        self._digest = ""

    def _current(self) -> str:
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            return ""
        if mtime != self._mtime:
            self._digest = json.loads(self._path.read_text(encoding="utf-8"))["digest"]
            self._mtime = mtime
        return self._digest

    def verify(self, token: str) -> bool:
        digest = self._current()
        return bool(digest) and hmac.compare_digest(digest, hash_secret(token))

"""Tables of identity: ``users`` and ``auth_tokens`` (sessions and API tokens).

Passwords are argon2 hashes; tokens are random 256-bit secrets stored as SHA-256
digests (see :func:`soc.systems.hash_secret`).

The schema is created by ``soc/migrations`` — a change here needs a new migration.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from soc.db import Base, utcnow

ROLES: tuple[str, ...] = ("admin", "analyst", "auditor", "viewer")


def new_id() -> str:
    return str(uuid.uuid4())


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    """Stored lower-case: logins are case-insensitive."""
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(200), default=None)
    role: Mapped[str] = mapped_column(String(16))
    agencies: Mapped[list[str]] = mapped_column(default=list)
    """Agencies the user is bound to; the scope adds their children."""
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    """argon2id; ``None`` for automation users that only use API tokens."""
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    def as_dict(self) -> dict[str, Any]:
        """Public view: never the password hash."""
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"id": self.id, "username": self.username, "display_name": self.display_name,
                "email": self.email, "role": self.role, "agencies": list(self.agencies),
                "active": self.active, "locked_until": iso(self.locked_until),
                "last_login_at": iso(self.last_login_at), "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at), "version": self.version}


class TokenRow(Base):
    __tablename__ = "auth_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    """session (from a login, expires) | api (for automation, until revoked or expiry)."""
    name: Mapped[str] = mapped_column(String(100), default="")
    digest: Mapped[str] = mapped_column(String(80), unique=True)
    prefix: Mapped[str] = mapped_column(String(24), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    source_ip: Mapped[str | None] = mapped_column(String(64), default=None)

    __table_args__ = (Index("ix_auth_tokens_user_id", "user_id"),)

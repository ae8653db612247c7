"""Why an identity operation was refused, as a status and a bilingual message key.

The service functions raise :class:`IdentityError`; the API turns it into an
``application/problem+json`` answer and the CLI prints the same message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soc.identity.models import UserRow


class IdentityError(Exception):
    def __init__(self, status: int, key: str, headers: dict[str, str] | None = None, **params: Any) -> None:
        super().__init__(key)
        self.status, self.key, self.headers, self.params = status, key, headers, params


class StaleUser(IdentityError):
    """The caller edited an older version of the user; carries the current state
    (taken before the transaction rolls back and expires the row)."""

    def __init__(self, user: UserRow, expected: int) -> None:
        super().__init__(412, "users.stale", expected=expected, current=user.version)
        self.current: dict[str, Any] = user.as_dict()

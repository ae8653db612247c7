"""Errors of the triage layer, answered as ``application/problem+json`` (see
:mod:`soc.api.errors`).

A :class:`TriageError` carries an HTTP status, a bilingual message key and, for a
stale write (412), the current state of the object (``state``, answered as
``current``), so the client can show the analyst what changed instead of
overwriting it.
"""

from __future__ import annotations

from typing import Any

from soc.api.errors import ApiError
from soc.i18n import both, register

register({
    "triage.if_match_required": (
        "Thiếu tiêu đề If-Match: gửi phiên bản đã đọc (ETag của lần GET, ví dụ If-Match: \"3\") để không ghi đè "
        "thay đổi của người khác",
        "If-Match header missing: send the version you read (the ETag of your GET, e.g. If-Match: \"3\") so no one "
        "else's change is overwritten unseen",
    ),
    "triage.if_match_invalid": (
        "Tiêu đề If-Match '{value}' không hợp lệ: dùng ETag của lần GET, ví dụ \"3\"",
        "Invalid If-Match header '{value}': use the ETag of your GET, e.g. \"3\"",
    ),
    "triage.stale": (
        "{what} '{id}' đã bị thay đổi (phiên bản hiện tại {current}, bạn gửi {sent}); xem trạng thái hiện tại "
        "trong 'current' rồi thử lại",
        "{what} '{id}' was changed meanwhile (current version {current}, you sent {sent}); see the current state "
        "in 'current' and try again",
    ),
})

class TriageError(ApiError):
    """A request the triage layer refuses, answered as a problem document by the
    application's error handler; ``state`` is the object as it is now (412, answered
    as ``current``), ``headers`` go into the answer (its ETag)."""

    def __init__(self, status: int, key: str, *, state: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None, **params: Any) -> None:
        super().__init__(status, key, headers=headers, body={"current": state} if state is not None else None,
                         **params)
        self.state = state

    @property
    def status(self) -> int:
        return self.status_code

    def message(self) -> dict[str, str]:
        return both(self.key, **self.params)


def not_found(what: str, object_id: str) -> TriageError:
    return TriageError(404, "api.not_found", what=what, id=object_id)

"""Checking the audit chain: ``soc audit verify`` and ``GET /api/v1/audit/verify``.

Rows are read in ``seq`` order, a page at a time by keyset (``seq > last``), each
page in its own short read, so memory stays constant and no long snapshot holds up
writers. For every row the hash is recomputed from the row's own columns, the link
to the previous row's hash and the continuity of ``seq`` are checked, and at the end
the one-row ``audit_head`` must name the last row. What each failure means:

* ``hash_mismatch``: the row's content no longer gives its hash — it was edited.
* ``broken_link``: the row does not point at the previous row's hash — a row before
  it was replaced (content and hash rewritten).
* ``missing_rows``: a gap in ``seq`` — rows were deleted.
* ``head_mismatch``: the head names another last row — the newest rows were deleted,
  the table emptied, or rows were added without going through the chain.

An attacker who rewrites every row after the one they change, and the head, leaves
a consistent chain: keep the head hash that ``verify`` reports somewhere else (a
signed report, a ticket) to anchor it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, select

from soc.audit.models import AuditEntry, AuditHead
from soc.audit.trail import GENESIS, entry_hash
from soc.db import Database
from soc.i18n import both, register, t

register({
    "audit.verify.ok": (
        "Chuỗi nhật ký kiểm toán toàn vẹn: {checked} bản ghi, bản ghi cuối #{seq}",
        "The audit chain is intact: {checked} entries, last entry #{seq}",
    ),
    "audit.verify.hash_mismatch": (
        "Bản ghi #{seq} đã bị sửa: nội dung không còn khớp với mã băm của nó",
        "Entry #{seq} was edited: its content no longer gives its hash",
    ),
    "audit.verify.broken_link": (
        "Liên kết hỏng tại bản ghi #{seq}: nó không trỏ tới mã băm của bản ghi trước (bản ghi trước đã bị thay)",
        "Broken link at entry #{seq}: it does not point at the previous entry's hash (that entry was replaced)",
    ),
    "audit.verify.missing_rows": (
        "Thiếu bản ghi từ #{seq}: sau bản ghi #{previous} là #{found} (bản ghi đã bị xóa)",
        "Entries missing from #{seq}: entry #{previous} is followed by #{found} (entries were deleted)",
    ),
    "audit.verify.head_mismatch": (
        "Đầu chuỗi không khớp tại #{seq}: đầu chuỗi ghi {expected}, bản ghi cuối là {found} "
        "(bản ghi mới nhất đã bị xóa hoặc được thêm ngoài chuỗi)",
        "Chain head mismatch at #{seq}: the head names {expected}, the last entry is {found} "
        "(the newest entries were deleted, or entries were added outside the chain)",
    ),
})

REASONS = ("hash_mismatch", "broken_link", "missing_rows", "head_mismatch")


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    """Entries whose hash and link were checked."""
    first_broken_seq: int | None = None
    reason: str | None = None
    """One of :data:`REASONS` when not ok."""
    expected: str | None = None
    found: str | None = None
    last_seq: int = 0
    """The last intact entry (the anchor to keep elsewhere when ok)."""
    last_hash: str = GENESIS

    def _params(self) -> dict[str, Any]:
        if self.ok:
            return {"checked": self.checked, "seq": self.last_seq}
        return {"seq": self.first_broken_seq, "previous": self.last_seq, "found": self.found,
                "expected": self.expected}

    @property
    def key(self) -> str:
        return "audit.verify.ok" if self.ok else f"audit.verify.{self.reason}"

    def message(self) -> str:
        """The outcome for a person, in the configured language(s)."""
        return t(self.key, **self._params())

    def as_dict(self) -> dict[str, Any]:
        texts = both(self.key, **self._params())
        return {"ok": self.ok, "checked": self.checked, "first_broken_seq": self.first_broken_seq,
                "reason": self.reason, "expected": self.expected, "found": self.found,
                "last_seq": self.last_seq, "last_hash": self.last_hash,
                "message": texts["en"], "message_vi": texts["vi"]}


class _Chain:
    """The running check: where the chain stands after the rows seen so far."""

    def __init__(self) -> None:
        self.checked = 0
        self.seq = 0
        self.hash = GENESIS

    def broken(self, seq: int, reason: str, expected: str, found: str) -> VerifyResult:
        return VerifyResult(False, self.checked, seq, reason, expected, found, self.seq, self.hash)

    def feed(self, row: Row[Any]) -> VerifyResult | None:
        if row.seq != self.seq + 1:
            return self.broken(self.seq + 1, "missing_rows", str(self.seq + 1), str(row.seq))
        computed = entry_hash(row)
        if computed != row.hash:
            return self.broken(row.seq, "hash_mismatch", computed, row.hash)
        if row.prev_hash != self.hash:
            return self.broken(row.seq, "broken_link", self.hash, row.prev_hash)
        self.checked += 1
        self.seq, self.hash = row.seq, row.hash
        return None


def verify_chain(db: Database, batch: int = 1000) -> VerifyResult:
    """Check the whole chain; the result names the first break, if any."""
    chain = _Chain()
    size = max(1, batch)
    broken = _feed(chain, _pages(db, chain, size, None))
    if broken is not None:
        return broken
    with db.read() as session:
        head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one_or_none()
    if head is None:
        return chain.broken(chain.seq + 1, "head_mismatch", "audit_head #1", f"#{chain.seq} {chain.hash}")
    if head.seq > chain.seq:
        # Entries committed while the last page was read (or a deleted tail): every
        # entry up to this head committed with it, so one more bounded pass settles it.
        broken = _feed(chain, _pages(db, chain, size, head.seq))
        if broken is not None:
            return broken
    if head.seq == chain.seq and head.hash == chain.hash:
        return VerifyResult(True, chain.checked, last_seq=chain.seq, last_hash=chain.hash)
    first = chain.seq if head.seq == chain.seq else min(head.seq, chain.seq) + 1
    return chain.broken(first, "head_mismatch", f"#{head.seq} {head.hash}", f"#{chain.seq} {chain.hash}")


def _feed(chain: _Chain, pages: Iterator[list[Row[Any]]]) -> VerifyResult | None:
    for page in pages:
        for row in page:
            broken = chain.feed(row)
            if broken is not None:
                return broken
    return None


def _pages(db: Database, chain: _Chain, size: int, upto: int | None) -> Iterator[list[Row[Any]]]:
    table = AuditEntry.__table__
    while True:
        query = select(table).where(AuditEntry.seq > chain.seq)
        if upto is not None:
            query = query.where(AuditEntry.seq <= upto)
        with db.read() as session:
            rows = list(session.execute(query.order_by(AuditEntry.seq).limit(size)).all())
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return

"""``POST /api/v1/ingest``: a system sends NDJSON or a JSON array with its ingest key.

Each element is a structured event (JSON object) or a raw log line (JSON string);
in NDJSON a line that is not JSON is taken as a raw log line. The response comes
after the events are stored (or spooled), so a 200 is an acknowledgement; ids are
derived from the request body, so a retried request creates no duplicates.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from collectors.batch import Batch, Origin, RawRecord
from collectors.event import stable_id
from collectors.parsers import known_formats, resolve_format
from soc.api.deps import StateDep, ingest_system
from soc.api.errors import ApiError
from soc.api.state import AppState
from soc.i18n import register
from soc.inventory.models import LogSourceRow
from soc.pipeline.core import BatchResult
from soc.pipeline.spool import SpoolFull

router = APIRouter(prefix="/api/v1", tags=["ingest"])

register({
    "ingest.unknown_source": (
        "Hệ thống '{system}' không có nguồn log '{source}'; các nguồn đã khai báo: {known}",
        "System '{system}' has no log source '{source}'; its declared sources: {known}",
    ),
})

_NDJSON_EXAMPLE = (
    '{"message": "login failed", "user": "a"}\n'
    '"Dec 10 06:55:46 web01 sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2"\n'
)


@router.post(
    "/ingest",
    summary="Ingest events / Nạp sự kiện",
    responses={
        # The answer to the NDJSON example below.
        200: {"content": {"application/json": {"example": {"received": 2, "parsed": 2, "failed": 0, "stored": 2,
                                                             "spooled": 0}}}},
        401: {"description": "Invalid ingest key"}, 413: {"description": "Body too large"}},
    openapi_extra={"requestBody": {"content": {
        "application/x-ndjson": {"example": _NDJSON_EXAMPLE},
        "application/json": {"example": [{"message": "login failed"}]},
    }}},
)
async def ingest(
    request: Request,
    state: StateDep,
    system_id: Annotated[str, Depends(ingest_system)],
    format: Annotated[str | None, Query(description="Declared format (default: auto-detect)")] = None,
    source: Annotated[str | None, Query(description="The system's log source these events belong to "
                                                    "(default: inferred from the format)",
                                        examples=["app-audit"])] = None,
) -> dict[str, int]:
    if format is not None:
        try:
            resolve_format(format)
        except KeyError:
            raise ApiError(400, "ingest.unknown_format", format=format, known=", ".join(known_formats())) from None
    if source is not None:
        known = await run_in_threadpool(_source_names, state, system_id)
        if source not in known:
            raise ApiError(400, "ingest.unknown_source", system=system_id, source=source,
                           known=", ".join(known) or "-")
    body = await _read_body(request, state.cfg.api.max_body_bytes)
    if not body.strip():
        raise ApiError(400, "api.empty")
    records = _decode(body, request.headers.get("content-type", "application/x-ndjson"))
    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    peer = request.client.host if request.client else None
    origin = Origin(source=state.ingest_source, kind="http", peer=peer,
                    format=format or state.ingest_format, system_id=system_id, log_source=source)
    total = BatchResult()
    size = state.cfg.pipeline.batch_size
    for start in range(0, len(records), size):
        chunk = records[start:start + size]
        ids = [stable_id("http", system_id, digest, start + i) for i in range(len(chunk))]
        try:
            total.add(await state.submit(Batch(origin, chunk, ids)))
        except SpoolFull:
            # Chunks already submitted are stored; ids make the client's retry harmless.
            raise ApiError(503, "api.spool_full", headers={"Retry-After": "30"}) from None
    return total.as_dict()


def _source_names(state: AppState, system_id: str) -> list[str]:
    with state.db.read() as session:
        return list(session.scalars(select(LogSourceRow.name).where(LogSourceRow.system_id == system_id)
                                    .order_by(LogSourceRow.name)))


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "api.too_large", limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "api.too_large", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(body: bytes, content_type: str) -> list[RawRecord]:
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "api.bad_json", detail=str(exc)) from None
        items = data if isinstance(data, list) else [data]
        return [_record(item) for item in items]
    if ctype in ("application/x-ndjson", "application/ndjson", "application/jsonl", "text/plain", ""):
        text = body.decode("utf-8", errors="replace")
        return [_line(line) for line in text.splitlines() if line.strip()]
    raise ApiError(415, "api.bad_content_type", ctype=ctype)


def _record(item: Any) -> RawRecord:
    if isinstance(item, dict):
        return item
    if isinstance(item, str):
        return item
    return orjson.dumps(item).decode()


def _line(line: str) -> RawRecord:
    stripped = line.strip()
    if stripped[:1] in ('{', '"'):
        try:
            return _record(orjson.loads(stripped))
        except orjson.JSONDecodeError:
            pass  # not JSON after all: a raw log line that happens to start with a brace
    return line.rstrip("\r")

"""Errors as ``application/problem+json`` (RFC 9457) with a reason in both languages."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from soc.i18n import both

PROBLEM = "application/problem+json"


class ApiError(HTTPException):
    """An error with a message key from :mod:`soc.i18n`."""

    def __init__(self, status: int, key: str, headers: dict[str, str] | None = None, **params: Any) -> None:
        self.key, self.params = key, params
        super().__init__(status_code=status, detail=both(key, **params), headers=headers)


def problem(status: int, title: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if isinstance(detail, dict) and {"vi", "en"} <= set(detail):
        body["detail"] = detail["en"]
        body["detail_vi"] = detail["vi"]
    else:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, _title(exc.status_code), exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]
        body = {"type": "about:blank", "title": "Invalid request", "status": 422,
                "detail": "; ".join(f"{i['field']}: {i['problem']}" for i in issues),
                "detail_vi": "Yêu cầu không hợp lệ: " + "; ".join(i["field"] for i in issues),
                "errors": issues}
        return JSONResponse(body, status_code=422, media_type=PROBLEM)


def _title(status: int) -> str:
    return {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
            413: "Payload too large", 415: "Unsupported media type", 422: "Invalid request",
            503: "Service unavailable"}.get(status, "Error")

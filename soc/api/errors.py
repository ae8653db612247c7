"""Errors as ``application/problem+json`` (RFC 9457) with a reason in both languages.

``detail`` is in the language the client asked for with ``Accept-Language`` (``vi``
or ``en``; English when it names neither), and ``detail_vi`` / ``detail_en`` always
carry both, so a console can show either without asking again. Request-validation
errors list each field with its problem in both languages (``errors``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from soc.i18n import both

PROBLEM = "application/problem+json"

TITLES: dict[int, tuple[str, str]] = {
    400: ("Yêu cầu sai", "Bad request"),
    401: ("Chưa xác thực", "Unauthorized"),
    403: ("Không có quyền", "Forbidden"),
    404: ("Không tìm thấy", "Not found"),
    405: ("Phương thức không được phép", "Method not allowed"),
    409: ("Xung đột", "Conflict"),
    412: ("Điều kiện tiên quyết không thỏa", "Precondition failed"),
    413: ("Yêu cầu quá lớn", "Payload too large"),
    415: ("Kiểu nội dung không hỗ trợ", "Unsupported media type"),
    422: ("Yêu cầu không hợp lệ", "Invalid request"),
    423: ("Tài khoản bị khóa", "Locked"),
    428: ("Thiếu điều kiện tiên quyết", "Precondition required"),
    429: ("Quá nhiều yêu cầu", "Too many requests"),
    503: ("Dịch vụ không sẵn sàng", "Service unavailable"),
}

# Pydantic error type → (Vietnamese, English) wording; ``{…}`` are the error's ctx.
VALIDATION_MESSAGES: dict[str, tuple[str, str]] = {
    "missing": ("bắt buộc phải có", "is required"),
    "extra_forbidden": ("không được phép (kiểm tra chính tả)", "is not allowed (check the spelling)"),
    "string_type": ("phải là chuỗi ký tự", "must be a string"),
    "string_too_short": ("phải có ít nhất {min_length} ký tự", "must have at least {min_length} characters"),
    "string_too_long": ("chỉ được tối đa {max_length} ký tự", "must have at most {max_length} characters"),
    "string_pattern_mismatch": ("không đúng mẫu {pattern}", "does not match the pattern {pattern}"),
    "int_type": ("phải là số nguyên", "must be a whole number"),
    "int_parsing": ("phải là số nguyên", "must be a whole number"),
    "int_from_float": ("phải là số nguyên", "must be a whole number"),
    "float_type": ("phải là số", "must be a number"),
    "float_parsing": ("phải là số", "must be a number"),
    "bool_type": ("phải là true hoặc false", "must be true or false"),
    "bool_parsing": ("phải là true hoặc false", "must be true or false"),
    "greater_than": ("phải lớn hơn {gt}", "must be greater than {gt}"),
    "greater_than_equal": ("phải lớn hơn hoặc bằng {ge}", "must be greater than or equal to {ge}"),
    "less_than": ("phải nhỏ hơn {lt}", "must be less than {lt}"),
    "less_than_equal": ("phải nhỏ hơn hoặc bằng {le}", "must be less than or equal to {le}"),
    "literal_error": ("phải là một trong: {expected}", "must be one of: {expected}"),
    "enum": ("phải là một trong: {expected}", "must be one of: {expected}"),
    "list_type": ("phải là một danh sách", "must be a list"),
    "dict_type": ("phải là một đối tượng JSON", "must be a JSON object"),
    "model_type": ("phải là một đối tượng JSON", "must be a JSON object"),
    "model_attributes_type": ("phải là một đối tượng JSON", "must be a JSON object"),
    "too_short": ("phải có ít nhất {min_length} phần tử", "must have at least {min_length} items"),
    "too_long": ("chỉ được tối đa {max_length} phần tử", "must have at most {max_length} items"),
    "datetime_type": ("phải là thời điểm ISO 8601", "must be an ISO 8601 date-time"),
    "datetime_parsing": ("phải là thời điểm ISO 8601, ví dụ 2026-11-24T08:00:00+07:00",
                         "must be an ISO 8601 date-time, e.g. 2026-11-24T08:00:00+07:00"),
    "datetime_from_date_parsing": ("phải là thời điểm ISO 8601", "must be an ISO 8601 date-time"),
    "date_parsing": ("phải là ngày dạng YYYY-MM-DD", "must be a date as YYYY-MM-DD"),
    "uuid_parsing": ("phải là UUID", "must be a UUID"),
    "uuid_type": ("phải là UUID", "must be a UUID"),
    "json_invalid": ("JSON không hợp lệ: {error}", "invalid JSON: {error}"),
    "json_type": ("phải là JSON", "must be JSON"),
    "url_parsing": ("phải là URL", "must be a URL"),
    "value_error": ("giá trị không hợp lệ: {error}", "invalid value: {error}"),
    "assertion_error": ("giá trị không hợp lệ: {error}", "invalid value: {error}"),
}


class ApiError(HTTPException):
    """An error with a message key from :mod:`soc.i18n`; ``body`` adds fields to the
    problem document (the current state of a resource a stale write lost to, say)."""

    def __init__(self, status: int, key: str, headers: dict[str, str] | None = None,
                 body: dict[str, Any] | None = None, **params: Any) -> None:
        self.key, self.params, self.body = key, params, body
        super().__init__(status_code=status, detail=both(key, **params), headers=headers)


def prefers_vietnamese(request: Request) -> bool:
    """Whether ``Accept-Language`` ranks Vietnamese above English (q-values honoured;
    on equal quality the earlier entry wins)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, *params = (piece.strip() for piece in part.split(";"))
        lang = tag.lower().split("-", 1)[0]
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if lang in ("vi", "en") and quality > 0:
            ranked.append((quality, -position, lang))
    return bool(ranked) and max(ranked)[2] == "vi"


def problem(request: Request | None, status: int, detail: Any, headers: dict[str, str] | None = None,
            extra: dict[str, Any] | None = None) -> JSONResponse:
    vietnamese = request is not None and prefers_vietnamese(request)
    vi_title, en_title = TITLES.get(status, ("Lỗi", "Error"))
    body: dict[str, Any] = {"type": "about:blank", "title": vi_title if vietnamese else en_title, "status": status}
    if isinstance(detail, dict) and {"vi", "en"} <= set(detail):
        body["detail"] = detail["vi"] if vietnamese else detail["en"]
        body["detail_vi"], body["detail_en"] = detail["vi"], detail["en"]
    else:
        body["detail"] = detail
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # FastAPI prefixes the location with where the value came from (body, query, path, header).
    parts = [str(p) for p in loc]
    return ".".join(parts[1:] if len(parts) > 1 and parts[0] in ("body", "query", "path", "header", "cookie")
                    else parts)


def _wording(error: dict[str, Any]) -> tuple[str, str]:
    template = VALIDATION_MESSAGES.get(error.get("type", ""))
    if template is None:
        message = str(error.get("msg", "invalid value"))
        return f"giá trị không hợp lệ ({message})", message
    ctx = {k: v for k, v in (error.get("ctx") or {}).items()}
    ctx.setdefault("error", error.get("msg", ""))
    try:
        return template[0].format(**ctx), template[1].format(**ctx)
    except (KeyError, IndexError):
        return template[0], template[1]


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(request, exc.status_code, exc.detail, getattr(exc, "headers", None),
                       getattr(exc, "body", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = []
        for error in exc.errors():
            vi, en = _wording(error)
            issues.append({"field": _field(error["loc"]), "problem": en, "problem_vi": vi, "type": error["type"]})
        detail = {
            "vi": "Yêu cầu không hợp lệ: " + "; ".join(f"{i['field']}: {i['problem_vi']}" for i in issues),
            "en": "Invalid request: " + "; ".join(f"{i['field']}: {i['problem']}" for i in issues),
        }
        return problem(request, 422, detail, extra={"errors": issues})

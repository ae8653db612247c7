"""Messages a person reads, in Vietnamese and English.

Every console line, error and report string goes through :func:`t`, which gives
both languages (Vietnamese first) unless ``SOC_LANG`` picks one (``vi`` or ``en``).
"""

from __future__ import annotations

import os

MESSAGES: dict[str, tuple[str, str]] = {
    # config
    "config.error": ("Lỗi cấu hình", "Configuration error"),
    "config.not_found": (
        "Không tìm thấy tệp cấu hình {path}. Đặt SOC_CONFIG hoặc dùng --config.",
        "Configuration file {path} not found. Set SOC_CONFIG or pass --config.",
    ),
    "config.yaml": ("YAML không hợp lệ: {detail}", "invalid YAML: {detail}"),
    "config.ok": ("Cấu hình hợp lệ: {path}", "Configuration is valid: {path}"),
    "config.key": ("tệp {file}, khóa '{key}': {problem}", "file {file}, key '{key}': {problem}"),
    "config.fix": ("Cách sửa: {fix}", "How to fix: {fix}"),
    # startup
    "run.started": ("SOC đã khởi động", "SOC started"),
    "run.api": ("API", "API"),
    "run.syslog": ("Syslog {proto}", "Syslog {proto}"),
    "run.files": ("Theo dõi tệp", "Tailing files"),
    "run.evtx": ("Đọc tệp EVTX", "Reading EVTX files"),
    "run.store": ("Kho sự kiện", "Event store"),
    "run.data_dir": ("Thư mục dữ liệu", "Data directory"),
    "run.first_log": ("Gửi log đầu tiên", "Send a first log"),
    "run.then_search": ("Rồi tìm nó", "Then find it"),
    "run.admin_token": (
        "Mã quản trị API (chỉ hiện MỘT lần, hãy lưu lại)",
        "API admin token (shown ONCE, keep it safe)",
    ),
    "run.stopping": ("Đang dừng…", "Stopping…"),
    "run.status": (
        "trạng thái: nhận {received}, phân tích {parsed}, lỗi {failed}, lưu {stored}, "
        "spool {spooled}, bỏ {dropped}, {rate:.0f} sự kiện/giây, hàng đợi {queue}",
        "status: received {received}, parsed {parsed}, failed {failed}, stored {stored}, "
        "spooled {spooled}, dropped {dropped}, {rate:.0f} events/s, queue {queue}",
    ),
    # ingest
    "ingest.summary": ("Tổng kết nạp dữ liệu", "Ingest summary"),
    "ingest.read": ("đã đọc", "read"),
    "ingest.parsed": ("phân tích được", "parsed"),
    "ingest.failed": ("lỗi phân tích", "failed"),
    "ingest.stored": ("đã lưu", "stored"),
    "ingest.spooled": ("đưa vào spool", "spooled"),
    "ingest.missing": ("Không tìm thấy tệp: {path}", "File not found: {path}"),
    "ingest.unknown_system": (
        "Hệ thống '{system}' không có trong danh mục ({known})",
        "System '{system}' is not in the inventory ({known})",
    ),
    "ingest.unknown_format": (
        "Định dạng '{format}' không được hỗ trợ; dùng một trong: {known}",
        "Format '{format}' is not supported; use one of: {known}",
    ),
    # search
    "search.bad_time": (
        "Thời gian không hợp lệ '{value}': dùng dạng 24h, 7d, 30m hoặc ISO 8601 (2024-05-01T10:00:00)",
        "Invalid time '{value}': use 24h, 7d, 30m or ISO 8601 (2024-05-01T10:00:00)",
    ),
    "search.none": ("Không có sự kiện phù hợp", "No matching events"),
    "search.count": ("{count} sự kiện", "{count} events"),
    # systems
    "systems.none": ("Chưa có hệ thống nào trong danh mục", "The inventory has no systems"),
    "systems.key_issued": (
        "Khóa nạp dữ liệu cho hệ thống {system} (chỉ hiện MỘT lần): {key}",
        "Ingest key for system {system} (shown ONCE): {key}",
    ),
    # rules and alerts
    "rules.missing": ("Không tìm thấy luật: {path}", "Rules not found: {path}"),
    "rules.loaded": (
        "Đã nạp {rules} luật, {correlations} luật tương quan; bỏ qua {skipped}",
        "Loaded {rules} rules and {correlations} correlation rules; skipped {skipped}",
    ),
    "rules.skipped": ("bỏ qua", "skipped"),
    "rules.warning": ("cảnh báo", "warning"),
    "rules.test_summary": ("{passed} đạt, {failed} không đạt", "{passed} passed, {failed} failed"),
    "rules.scan_summary": (
        "{events} sự kiện, {matches} kết quả từ {rules} luật trong {seconds:.1f} giây",
        "{events} events, {matches} matches from {rules} rules in {seconds:.1f} s",
    ),
    "rules.profile": ("Luật tốn thời gian nhất", "Rules that cost the most time"),
    "rules.convert_target": (
        "Đích chuyển đổi '{target}' không hỗ trợ; dùng lucene, esql hoặc eql",
        "Conversion target '{target}' is not supported; use lucene, esql or eql",
    ),
    "alerts.count": ("{count} cảnh báo", "{count} alerts"),
    # API
    "api.unauthorized": ("Thiếu hoặc sai mã xác thực", "Missing or invalid credentials"),
    "api.bad_ingest_key": ("Khóa nạp dữ liệu không hợp lệ", "Invalid ingest key"),
    "api.too_large": ("Yêu cầu quá lớn (tối đa {limit} byte)", "Request too large (at most {limit} bytes)"),
    "api.bad_json": ("JSON không hợp lệ: {detail}", "Invalid JSON: {detail}"),
    "api.bad_content_type": (
        "Kiểu nội dung '{ctype}' không được hỗ trợ; dùng application/x-ndjson, application/json "
        "hoặc text/plain",
        "Content type '{ctype}' is not supported; use application/x-ndjson, application/json or text/plain",
    ),
    "api.empty": ("Nội dung rỗng", "Empty body"),
    "api.spool_full": (
        "Kho sự kiện không sẵn sàng và hàng đợi đĩa đã đầy; gửi lại sau",
        "The event store is unavailable and the disk spool is full; retry later",
    ),
    "api.bad_query": ("Truy vấn không hợp lệ: {detail}", "Invalid query: {detail}"),
    "api.forbidden": (
        "Vai trò '{role}' không có quyền '{permission}'",
        "The role '{role}' lacks the permission '{permission}'",
    ),
    "api.not_found": ("Không tìm thấy {what} '{id}'", "No {what} '{id}'"),
}


def register(messages: dict[str, tuple[str, str]]) -> None:
    """Add a module's messages (each feature keeps its wording beside its code)."""
    for key in messages:
        if key in MESSAGES and MESSAGES[key] != messages[key]:
            raise ValueError(f"message key {key!r} registered twice with different text")
    MESSAGES.update(messages)


def language() -> str:
    lang = os.environ.get("SOC_LANG", "").lower()
    return lang if lang in ("vi", "en") else "both"


def t(message_key: str, /, **params: object) -> str:
    """The message in the configured language(s); both are joined by `` / ``."""
    vi, en = MESSAGES[message_key]
    vi, en = vi.format(**params), en.format(**params)
    lang = language()
    if lang == "vi":
        return vi
    if lang == "en" or vi == en:
        return en
    return f"{vi} / {en}"


def both(message_key: str, /, **params: object) -> dict[str, str]:
    """Both languages separately, for API error bodies."""
    vi, en = MESSAGES[message_key]
    return {"vi": vi.format(**params), "en": en.format(**params)}

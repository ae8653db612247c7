"""Why an inventory change was refused, in both languages.

The inventory functions raise :class:`InventoryError` with a message key; the API
answers it as a problem with the matching status, the CLI prints it."""

from __future__ import annotations

from typing import Any

from soc.i18n import register, t

register({
    "inventory.bad_id": (
        "Mã '{value}' của trường '{field}' không hợp lệ: chỉ dùng chữ thường, số, '.', '_' và '-' "
        "(tối đa 100 ký tự), bắt đầu bằng chữ hoặc số",
        "Invalid id '{value}' in '{field}': use lower-case letters, digits, '.', '_' and '-' "
        "(at most 100 characters), starting with a letter or digit",
    ),
    "inventory.reserved_id": (
        "Mã '{value}' được dành cho sự kiện không thuộc hệ thống nào; chọn mã khác",
        "The id '{value}' is reserved for events no system claims; pick another id",
    ),
    "inventory.empty": ("Trường '{field}' không được để trống", "The field '{field}' must not be empty"),
    "inventory.too_long": (
        "Trường '{field}' dài quá {limit} ký tự", "The field '{field}' is longer than {limit} characters",
    ),
    "inventory.bad_choice": (
        "Giá trị '{value}' của trường '{field}' không hợp lệ; dùng một trong: {known}",
        "Invalid value '{value}' for '{field}'; use one of: {known}",
    ),
    "inventory.bad_classification": (
        "Cấp độ an toàn '{value}' không hợp lệ: dùng số từ 1 đến 5",
        "Invalid classification '{value}': use a number from 1 to 5",
    ),
    "inventory.bad_host": (
        "'{value}' trong '{field}' không phải tên máy hay địa chỉ IP",
        "'{value}' in '{field}' is neither a host name nor an IP address",
    ),
    "inventory.bad_cidr": (
        "'{value}' trong '{field}' không phải dải mạng (ví dụ 10.10.1.0/24)",
        "'{value}' in '{field}' is not a network (e.g. 10.10.1.0/24)",
    ),
    "inventory.bad_interval": (
        "Chu kỳ '{value}' của trường '{field}' không hợp lệ: viết 30s, 5m, 2h, 1d hoặc số giây",
        "Invalid interval '{value}' in '{field}': write 30s, 5m, 2h, 1d or a number of seconds",
    ),
    "inventory.bad_email": (
        "Địa chỉ thư '{value}' không hợp lệ", "Invalid e-mail address '{value}'",
    ),
    "inventory.duplicate_source": (
        "Hệ thống đã có nguồn log tên '{name}'; đặt tên khác",
        "The system already has a log source named '{name}'; pick another name",
    ),
    "inventory.unknown_profile": (
        "Không có hồ sơ tiếp nhận '{value}' (config/profiles); dùng một trong: {known}",
        "No onboarding profile '{value}' (config/profiles); use one of: {known}",
    ),
    "inventory.system_exists": (
        "Đã có hệ thống mã '{id}'; chọn mã khác hoặc sửa hệ thống đó",
        "A system with id '{id}' already exists; pick another id or edit that system",
    ),
    "inventory.agency_exists": (
        "Đã có cơ quan mã '{id}'; chọn mã khác hoặc sửa cơ quan đó",
        "An agency with id '{id}' already exists; pick another id or edit that agency",
    ),
    "inventory.decommissioned": (
        "Hệ thống '{id}' đã ngừng sử dụng; không thể thay đổi",
        "System '{id}' is decommissioned and cannot be changed",
    ),
    "inventory.key_inactive": (
        "Khóa '{id}' đã bị thu hồi hoặc hết hạn", "Key '{id}' is already revoked or expired",
    ),
    "inventory.stale": (
        "Đối tượng đã được người khác sửa (phiên bản hiện tại {current}, bạn gửi {given}); tải lại rồi sửa lại",
        "Someone else changed it first (current version {current}, you sent {given}); reload and retry",
    ),
    "inventory.conflict": (
        "Đối tượng vừa được người khác sửa cùng lúc; tải lại rồi sửa lại",
        "Someone else changed it at the same moment; reload and retry",
    ),
    "inventory.bad_if_match": (
        "Tiêu đề If-Match '{value}' không hợp lệ; gửi ETag nhận được từ GET",
        "Invalid If-Match header '{value}'; send the ETag you received from GET",
    ),
})


class InventoryError(ValueError):
    """A refused change: ``key`` is a message key of :mod:`soc.i18n`, ``status`` the
    HTTP status the API answers with."""

    def __init__(self, key: str, status: int = 422, **params: Any) -> None:
        self.key, self.status, self.params = key, status, params
        super().__init__(t(key, **params))


def not_found(what: str, ident: str) -> InventoryError:
    """Missing, or outside the caller's agency scope: both look the same."""
    return InventoryError("api.not_found", 404, what=what, id=ident)


def check_version(current: int, expected: int | None) -> None:
    """Optimistic concurrency: refuse a change made from an outdated copy."""
    if expected is not None and expected != current:
        raise InventoryError("inventory.stale", 412, current=current, given=expected)

"""Generic JSON application audit logs (document management, public-services portal …).

Applications log JSON in their own layouts, so the mapping to ECS is declared in
configuration (:class:`~collectors.parsers.base.JsonMapping`, one YAML file each
under ``config/json_mappings/``, loaded by :func:`load_json_mappings`). Without a
mapping the object is still read: common key names give ``@timestamp``,
``message``, ``user.name``, ``source.ip``, ``event.action`` and ``event.outcome``.
Either way the whole source object is kept under ``json`` so nothing is lost.

Which mapping applies: during auto-detection, the first mapping (in load order)
whose ``match`` keys are all present; with the format declared as
``json:<mapping>``, that mapping; declared as plain ``json``, the only mapping when
exactly one is configured, else the same ``match`` rule. A mapping with an empty
``match`` list is therefore used only by declaration.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from collectors.ecs_fields import field_type
from collectors.event import Event, get_field, iso_from_epoch, iso_utc, parse_iso, set_field
from collectors.parsers.base import JsonMapping, ObjectParser, ParseContext, ParseError, register_object

_TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "date", "datetime", "created_at", "eventTime")
_MESSAGE_KEYS = ("message", "msg", "event", "action")
_USER_KEYS = ("user", "username", "user_name", "userId", "account")
_IP_KEYS = ("ip", "client_ip", "clientIp", "remote_addr", "src_ip", "source_ip")
_ACTION_KEYS = ("action", "event", "activity", "operation")
_OUTCOME_KEYS = ("status", "result", "outcome", "success")
# Local wall-clock layouts common in Vietnamese applications' logs.
_TIME_PATTERNS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%Y/%m/%d %H:%M:%S", "%d-%m-%Y %H:%M:%S",
                  "%d/%b/%Y:%H:%M:%S %z")

_SUCCESS = frozenset({"success", "succeeded", "successful", "ok", "pass", "passed", "allow", "allowed",
                      "accept", "accepted", "true", "yes", "granted", "approved", "completed", "done",
                      "thành công", "thanh cong", "thanh_cong"})
_FAILURE = frozenset({"fail", "failed", "failure", "error", "denied", "deny", "rejected", "reject",
                      "blocked", "block", "false", "no", "invalid", "unauthorized", "forbidden",
                      "refused", "timeout", "thất bại", "that bai", "that_bai", "lỗi", "loi"})
_OUTCOMES = frozenset({"success", "failure", "unknown"})
_USER_NAME_KEYS = ("name", "username", "user_name", "login", "id")



# --- value helpers -------------------------------------------------------------------

def _text_key(value: Any) -> str:
    """How a scalar is compared with mapping keys: ``True`` and ``true`` agree."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _epoch(seconds: float) -> str | None:
    # Magnitude tells the unit: ms and µs timestamps are 10³ / 10⁶ times larger.
    while abs(seconds) > 1e11:
        seconds /= 1000.0
    try:
        return iso_from_epoch(seconds)
    except (OverflowError, OSError, ValueError):
        return None


def _aware_iso(dt: datetime, ctx: ParseContext) -> str:
    return ctx.local_iso(dt) if dt.tzinfo is None else iso_utc(dt)


def _generic_time(value: Any, ctx: ParseContext) -> str | None:
    """Best-effort timestamp: epoch numbers, ISO 8601 (no offset = local time),
    then the usual day-first layouts."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _epoch(float(value))
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return _epoch(float(text))
    try:
        return _aware_iso(datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text), ctx)
    except ValueError:
        pass
    try:
        # parse_iso also copes with nanoseconds and "+0700" offsets.
        if "T" in text:
            return iso_utc(parse_iso(text))
    except ValueError:
        pass
    for pattern in _TIME_PATTERNS:
        try:
            return _aware_iso(datetime.strptime(text, pattern), ctx)
        except ValueError:
            continue
    return None


def _mapped_time(value: Any, fmt: str, ctx: ParseContext) -> str | None:
    try:
        if fmt == "epoch":
            return iso_from_epoch(float(value))
        if fmt == "epoch_ms":
            return iso_from_epoch(float(value) / 1000.0)
        if fmt == "iso8601":
            return _generic_time(value, ctx) if isinstance(value, str) else None
        return _aware_iso(datetime.strptime(str(value), fmt), ctx)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _generic_outcome(value: Any) -> str | None:
    if isinstance(value, bool):
        return "success" if value else "failure"
    if isinstance(value, int | float):
        code = int(value)
        if 100 <= code < 400:
            return "success"
        if 400 <= code < 600:
            return "failure"
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _SUCCESS:
            return "success"
        if text in _FAILURE:
            return "failure"
        if text.isdigit():
            return _generic_outcome(int(text))
    return None


@lru_cache(maxsize=8192)
def _ip_text(value: str) -> str | None:
    v = value.strip()
    if v.startswith("::ffff:") and "." in v:
        v = v[7:]
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        return None


def _coerce(field: str, value: Any) -> Any:
    """A source value in the type the store expects for ``field``; None when it
    cannot be (the raw value stays under ``json``)."""
    kind = field_type(field)
    if kind == "ip":
        return _ip_text(value) if isinstance(value, str) else None
    if kind == "long":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None
    if kind == "double":
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    if kind == "boolean":
        return value if isinstance(value, bool) else _generic_outcome(value) == "success"
    return value


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = obj.get(key)
        if value is not None and value != "":
            return value
    return None


def _user_name(value: Any) -> Any:
    if isinstance(value, dict):
        return _first(value, _USER_NAME_KEYS)
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


# --- parsing -------------------------------------------------------------------------

def _generic(obj: dict[str, Any], out: Event, ctx: ParseContext) -> None:
    timestamp = _generic_time(_first(obj, _TIME_KEYS), ctx)
    if timestamp:
        out["@timestamp"] = timestamp
    message = _first(obj, _MESSAGE_KEYS)
    if isinstance(message, str):
        out["message"] = message
    user = _user_name(_first(obj, _USER_KEYS))
    if user is not None:
        out["user"] = {"name": str(user)}
    ip = _first(obj, _IP_KEYS)
    ip = _ip_text(ip) if isinstance(ip, str) else None
    if ip:
        out["source"] = {"ip": ip}
    action = _first(obj, _ACTION_KEYS)
    if isinstance(action, str):
        out["event"]["action"] = action
    for key in _OUTCOME_KEYS:
        if key in obj:
            outcome = _generic_outcome(obj[key])
            if outcome:
                out["event"]["outcome"] = outcome
                break


def _apply_mapping(obj: dict[str, Any], mapping: JsonMapping, out: Event, ctx: ParseContext) -> None:
    for field, path in mapping.fields.items():
        if field == "@timestamp":
            continue
        value = get_field(obj, path)
        if value is None or value == "":
            continue
        value = _coerce(field, value)
        if value is not None:
            set_field(out, field, value)
    for field, value in mapping.static.items():
        set_field(out, field, value)

    time_path = mapping.timestamp_field or mapping.fields.get("@timestamp")
    if time_path:
        raw = get_field(obj, time_path)
        timestamp = _mapped_time(raw, mapping.timestamp_format, ctx) if raw is not None else None
        if timestamp:
            out["@timestamp"] = timestamp
        elif raw is not None:
            out.setdefault("tags", []).append("_timestamp_unparsed")

    event = out["event"]
    if mapping.outcome_field:
        raw = get_field(obj, mapping.outcome_field)
        if raw is not None:
            outcome = _lookup(mapping.outcome_values, raw) or _generic_outcome(raw)
            if outcome:
                event["outcome"] = outcome
            else:
                event.pop("outcome", None)
    action = event.get("action")
    if action is not None and mapping.category_by_action:
        spec = _lookup(mapping.category_by_action, action)
        if spec:
            for key in ("category", "type"):
                if key in spec:
                    event[key] = list(spec[key])
    if mapping.dataset:
        event["dataset"] = mapping.dataset


def _lookup(table: dict[str, Any], raw: Any) -> Any:
    """Exact key first, then case-insensitive (``SUCCESS`` finds ``success``)."""
    key = _text_key(raw)
    found = table.get(key)
    if found is None:
        folded = key.casefold()
        for name, value in table.items():
            if name.casefold() == folded:
                return value
    return found


def _matches(obj: dict[str, Any], mapping: JsonMapping) -> bool:
    return bool(mapping.match) and all(
        key in obj or get_field(obj, key, _ABSENT) is not _ABSENT for key in mapping.match
    )


_ABSENT = object()


def _choose(obj: dict[str, Any], mappings: dict[str, JsonMapping], declared: str | None) -> JsonMapping | None:
    if declared and ":" in declared:
        name = declared.split(":", 1)[1]
        if name not in mappings:
            raise ParseError(f"no JSON mapping named {name!r} (known: {', '.join(sorted(mappings)) or 'none'})")
        return mappings[name]
    if declared and len(mappings) == 1:
        return next(iter(mappings.values()))
    for mapping in mappings.values():
        if _matches(obj, mapping):
            return mapping
    return None


@register_object
class JsonAuditParser(ObjectParser):
    """Any JSON object, through a configured mapping or the generic key heuristics."""

    name = "json"
    aliases = ("json_audit", "app_audit")
    description = "Generic JSON application audit log (mapped by config/json_mappings/*.yaml)"
    priority = 95

    def parse(self, obj: dict[str, Any], ctx: ParseContext) -> Event | None:
        out: Event = {"event": {"kind": "event", "module": "app", "dataset": "app.audit"}}
        _generic(obj, out, ctx)
        mapping = _choose(obj, ctx.json_mappings, ctx.declared)
        if mapping is not None:
            _apply_mapping(obj, mapping, out, ctx)
        out["json"] = dict(obj)
        return out


# --- configuration -------------------------------------------------------------------

_FIELDS = {f.name for f in dataclasses.fields(JsonMapping)}


def _fail(path: Path, key: str, problem: str) -> ValueError:
    return ValueError(f"{path}: key {key!r}: {problem}")


def _str_or_none(path: Path, key: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _fail(path, key, f"expected a string, got {type(value).__name__}")


def _str_list(path: Path, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, key, "expected a list of strings")
    return list(value)


def _str_dict(path: Path, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _fail(path, key, "expected a mapping of names to strings")
    return {_text_key(k): v for k, v in value.items()}


def _mapping_from(path: Path, data: Any) -> JsonMapping:
    if not isinstance(data, dict):
        raise _fail(path, "-", "the file must hold a mapping of JsonMapping keys")
    for key in data:
        if key not in _FIELDS:
            raise _fail(path, str(key), f"unknown key; known keys: {', '.join(sorted(_FIELDS))}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise _fail(path, "name", "expected a non-empty string")
    fields = _str_dict(path, "fields", data.get("fields") or {})
    static = data.get("static") or {}
    if not isinstance(static, dict):
        raise _fail(path, "static", "expected a mapping of ECS fields to values")
    outcome_values = _str_dict(path, "outcome_values", data.get("outcome_values") or {})
    for raw, outcome in outcome_values.items():
        if outcome not in _OUTCOMES:
            raise _fail(path, f"outcome_values.{raw}", f"expected one of {sorted(_OUTCOMES)}, got {outcome!r}")
    timestamp_format = data.get("timestamp_format", "iso8601")
    if not isinstance(timestamp_format, str) or not timestamp_format:
        raise _fail(path, "timestamp_format", "expected iso8601, epoch, epoch_ms or a strptime pattern")
    return JsonMapping(
        name=name,
        fields=fields,
        static={str(k): v for k, v in static.items()},
        timestamp_field=_str_or_none(path, "timestamp_field", data.get("timestamp_field")),
        timestamp_format=timestamp_format,
        outcome_field=_str_or_none(path, "outcome_field", data.get("outcome_field")),
        outcome_values=outcome_values,
        category_by_action=_categories(path, data.get("category_by_action") or {}),
        match=_str_list(path, "match", data.get("match") or []),
        dataset=_str_or_none(path, "dataset", data.get("dataset")),
    )


def _categories(path: Path, value: Any) -> dict[str, dict[str, list[str]]]:
    if not isinstance(value, dict):
        raise _fail(path, "category_by_action", "expected a mapping of actions to {category, type}")
    out: dict[str, dict[str, list[str]]] = {}
    for action, spec in value.items():
        where = f"category_by_action.{action}"
        if not isinstance(spec, dict) or not spec or set(spec) - {"category", "type"}:
            raise _fail(path, where, "expected a mapping with 'category' and/or 'type'")
        out[_text_key(action)] = {k: _str_list(path, f"{where}.{k}", v) for k, v in spec.items()}
    return out


def load_json_mappings(directory: Path) -> dict[str, JsonMapping]:
    """Every ``*.yaml`` / ``*.yml`` mapping in ``directory``, by name, in file-name
    order (the order auto-detection tries them). Raises ValueError naming the file
    and key of the first problem."""
    mappings: dict[str, JsonMapping] = {}
    sources: dict[str, Path] = {}
    files = sorted(p for p in Path(directory).iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise _fail(path, "-", f"not valid YAML: {exc}") from exc
        mapping = _mapping_from(path, data)
        if mapping.name in mappings:
            raise _fail(path, "name", f"{mapping.name!r} is already defined in {sources[mapping.name]}")
        mappings[mapping.name] = mapping
        sources[mapping.name] = path
    return mappings


__all__ = ["JsonAuditParser", "load_json_mappings"]

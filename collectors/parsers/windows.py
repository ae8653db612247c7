"""Windows event log records (Security, System, Sysmon, any channel) → ECS.

Four JSON shapes are read:

* the ``evtx`` package's rendering of the event XML (``{"Event": {"System": …,
  "EventData": …}}``), which is also what :mod:`collectors.sources.evtx` yields;
* Winlogbeat documents (ECS already: what is there is kept, what is missing is
  filled in);
* NXLog ``im_msvistalog`` JSON (flat: system fields and EventData side by side);
* Wazuh eventchannel JSON (``{"win": {"system": …, "eventdata": …}}``, with
  lowerCamelCase field names).

Each shape is first reduced to one ``winlog`` object laid out as Winlogbeat does,
then a single enrichment step derives the ECS fields, so the same Windows event
gives the same document whichever agent shipped it. ``winlog.event_data`` keeps the
original Windows field names and value types: the Sigma engine matches rule fields
(``Image``, ``CommandLine``, ``TargetUserName`` …) against it.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from collectors.event import Event, iso_from_epoch, normalize_timestamp
from collectors.parsers.base import ObjectParser, ParseContext, ParseError, register_object

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"

_LEVELS = {0: "information", 1: "critical", 2: "error", 3: "warning", 4: "information", 5: "verbose"}
_OPCODES = {0: "Info", 1: "Start", 2: "Stop", 3: "DCStart", 4: "DCStop", 7: "Extension", 8: "Reply",
            9: "Resume", 10: "Suspend", 11: "Send", 240: "Receive"}
# Standard keyword bits (winmeta.h); the top byte is provider-specific, so events
# carrying only those bits keep their raw hex value.
_KEYWORD_BITS = (
    (0x10000000000000, "Audit Failure"),
    (0x20000000000000, "Audit Success"),
    (0x80000000000000, "Classic"),
    (0x40000000000000, "Correlation Hint"),
    (0x01000000000000, "Response Time"),
    (0x02000000000000, "WDI Context"),
    (0x04000000000000, "WDI Diag"),
    (0x08000000000000, "SQM"),
)
_DATASETS = {
    "Security": "windows.security",
    SYSMON_CHANNEL: "windows.sysmon_operational",
    "System": "windows.system",
    "Windows PowerShell": "windows.powershell",
    "Microsoft-Windows-PowerShell/Operational": "windows.powershell_operational",
}
_UTC_Z = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

# --- ECS classification of well-known events ----------------------------------------
# (event.category, event.type, event.action, fixed event.outcome or None). Keyed by
# (channel, event id) and, for events whose id is only unique per provider, by
# (provider, event id).
_Spec = tuple[tuple[str, ...], tuple[str, ...], str, str | None]
_AUTH_START = ("authentication",), ("start",)
_USER_CHANGE = ("iam",), ("user", "change")
_GROUP_CHANGE = ("iam",), ("group", "change")
_ADMIN_CHANGE = ("iam", "configuration"), ("admin", "change")
_REGISTRY = ("configuration", "registry"), ("change",)

_SECURITY: dict[str, _Spec] = {
    "4624": (*_AUTH_START, "logged-in", None),
    "4625": (*_AUTH_START, "logon-failed", "failure"),
    "4634": (("authentication",), ("end",), "logged-out", None),
    "4647": (("authentication",), ("end",), "logged-out", None),
    "4648": (*_AUTH_START, "logged-in-explicit", None),
    "4672": (("iam",), ("admin",), "logged-in-special", None),
    "4688": (("process",), ("start",), "created-process", None),
    "4689": (("process",), ("end",), "exited-process", None),
    "4697": (*_ADMIN_CHANGE, "service-installed", None),
    "4698": (("iam", "configuration"), ("creation", "admin"), "scheduled-task-created", None),
    "4719": (*_ADMIN_CHANGE, "changed-audit-config", None),
    "4720": (("iam",), ("user", "creation"), "added-user-account", None),
    "4722": (*_USER_CHANGE, "enabled-user-account", None),
    "4723": (*_USER_CHANGE, "changed-password", None),
    "4724": (*_USER_CHANGE, "reset-password", None),
    "4725": (*_USER_CHANGE, "disabled-user-account", None),
    "4726": (("iam",), ("user", "deletion"), "deleted-user-account", None),
    "4727": (("iam",), ("group", "creation"), "added-group-account", None),
    "4728": (*_GROUP_CHANGE, "added-member-to-group", None),
    "4729": (*_GROUP_CHANGE, "removed-member-from-group", None),
    "4731": (("iam",), ("group", "creation"), "added-group-account", None),
    "4732": (*_GROUP_CHANGE, "added-member-to-group", None),
    "4733": (*_GROUP_CHANGE, "removed-member-from-group", None),
    "4738": (*_USER_CHANGE, "modified-user-account", None),
    "4740": (*_USER_CHANGE, "locked-out-user-account", None),
    "4754": (("iam",), ("group", "creation"), "added-group-account", None),
    "4756": (*_GROUP_CHANGE, "added-member-to-group", None),
    "4757": (*_GROUP_CHANGE, "removed-member-from-group", None),
    "4767": (*_USER_CHANGE, "unlocked-user-account", None),
    "4768": (*_AUTH_START, "kerberos-authentication-ticket-requested", None),
    "4769": (*_AUTH_START, "kerberos-service-ticket-requested", None),
    "4771": (*_AUTH_START, "kerberos-preauth-failed", "failure"),
    "4776": (*_AUTH_START, "credential-validated", None),
    "4798": (("iam",), ("user", "info"), "group-membership-enumerated", None),
    "4799": (("iam",), ("group", "info"), "user-member-enumerated", None),
    "1102": (*_ADMIN_CHANGE, "audit-log-cleared", None),
    "5140": (("network", "file"), ("access", "info"), "network-share-object-accessed", None),
    "5145": (("network", "file"), ("access", "info"), "network-share-object-access-checked", None),
}
_SYSMON: dict[str, _Spec] = {
    "1": (("process",), ("start",), "process-created", None),
    "2": (("file",), ("change",), "file-creation-time-changed", None),
    "3": (("network",), ("connection", "start", "protocol"), "network-connection-detected", None),
    "5": (("process",), ("end",), "process-terminated", None),
    "6": (("driver",), ("info",), "driver-loaded", None),
    "7": (("process",), ("change",), "image-loaded", None),
    "8": (("process",), ("change",), "create-remote-thread", None),
    "9": (("process",), ("access",), "raw-access-read", None),
    "10": (("process",), ("access",), "process-accessed", None),
    "11": (("file",), ("creation",), "file-created", None),
    "12": (*_REGISTRY, "registry-object-added-or-deleted", None),
    "13": (*_REGISTRY, "registry-value-set", None),
    "14": (*_REGISTRY, "registry-object-renamed", None),
    "15": (("file",), ("creation",), "file-stream-created", None),
    "17": (("file",), ("creation",), "pipe-created", None),
    "18": (("file",), ("access",), "pipe-connected", None),
    "22": (("network",), ("connection", "protocol", "info"), "dns-query", None),
    "23": (("file",), ("deletion",), "file-deleted", None),
    "25": (("process",), ("change",), "process-tampering", None),
    "26": (("file",), ("deletion",), "file-delete-detected", None),
}
_SPECS: dict[tuple[str, str], _Spec] = {
    **{("Security", eid): spec for eid, spec in _SECURITY.items()},
    **{(SYSMON_CHANNEL, eid): spec for eid, spec in _SYSMON.items()},
    ("Service Control Manager", "7045"): (("configuration",), ("creation",), "service-installed", None),
    ("Service Control Manager", "7036"): (("configuration",), ("change",), "service-state-changed", None),
    ("Service Control Manager", "7040"): (("configuration",), ("change",), "service-start-type-changed", None),
    ("Microsoft-Windows-Eventlog", "104"): (*_ADMIN_CHANGE, "audit-log-cleared", None),
    ("Microsoft-Windows-Eventlog", "1102"): (*_ADMIN_CHANGE, "audit-log-cleared", None),
}

# Logon-type events: the account that authenticates is Target*, Subject* is the
# service that reported it (often "-" or the machine account), so Target* is
# user.* there, as in Elastic's Security pipeline.
_TARGET_IS_USER = frozenset({"4624", "4625", "4634", "4647", "4768", "4769", "4771", "4776"})
# Group management events: Target* names the group, Member* the account.
_TARGET_IS_GROUP = frozenset({"4727", "4728", "4729", "4730", "4731", "4732", "4733", "4734", "4735",
                              "4737", "4754", "4755", "4756", "4757", "4758", "4764", "4799"})
# Kerberos / NTLM results are in Status: 0x0 is success.
_STATUS_OUTCOME = frozenset({"4768", "4769", "4776"})
_SERVICE_EVENTS = frozenset({"7045", "4697", "4769"})

# NXLog im_msvistalog system fields; every other top-level key is EventData.
_NXLOG_SYSTEM = frozenset({
    "EventTime", "EventReceivedTime", "Hostname", "Keywords", "EventType", "SeverityValue", "Severity",
    "EventID", "SourceName", "ProviderGuid", "Version", "Task", "OpcodeValue", "Opcode", "RecordNumber",
    "ActivityID", "RelatedActivityID", "ProcessID", "ThreadID", "ExecutionProcessID", "ExecutionThreadID",
    "Channel", "Domain", "AccountName", "UserID", "AccountType", "Message", "Category", "Level",
    "LevelValue", "SourceModuleName", "SourceModuleType", "ERROR_EVT_UNRESOLVED", "MessageSourceAddress",
    "ProviderName",
})
_NXLOG_TYPES = {"AUDIT_SUCCESS": "information", "AUDIT_FAILURE": "information", "INFO": "information",
                "INFORMATION": "information", "WARNING": "warning", "ERROR": "error",
                "CRITICAL": "critical", "VERBOSE": "verbose", "DEBUG": "verbose"}


# --- small value helpers -----------------------------------------------------------

def _utc(value: Any) -> str | None:
    """Canonical ``@timestamp`` of a Windows SystemTime (fast path for the usual
    ``…Z`` form: the event log writes up to 7 fractional digits, always UTC)."""
    if not isinstance(value, str) or not value:
        return None
    m = _UTC_Z.fullmatch(value)
    if m is not None:
        return f"{m.group(1)}.{((m.group(2) or '') + '000')[:3]}Z"
    try:
        return normalize_timestamp(value)
    except ValueError:
        return None


def _local_time(value: Any, ctx: ParseContext) -> str | None:
    """NXLog times: ``2024-01-02 03:04:05`` is the agent's wall clock; ISO with an
    offset or ``Z`` is absolute; numbers are epoch seconds (or ms / µs)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        while seconds > 1e11:
            seconds /= 1000.0
        return iso_from_epoch(seconds)
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        try:
            return normalize_timestamp(value)
        except ValueError:
            return None
    return ctx.local_iso(dt)


def _clean(value: Any) -> Any:
    """The value, or None for Windows' placeholders for "nothing" (``-``, empty)."""
    if value is None or value == "" or value == "-":
        return None
    return value


def _int(value: Any) -> int | None:
    """Integers as Windows writes them: int, decimal text or ``0x…`` hex text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value:
        try:
            return int(value, 16) if value[:2] in ("0x", "0X") else int(value)
        except ValueError:
            return None
    return None


def _port(value: Any) -> int | None:
    port = _int(value)
    return port if port is not None and 0 < port < 65536 else None


@lru_cache(maxsize=16384)
def _ip_text(value: str) -> str | None:
    v = value.strip()
    if v.startswith("::ffff:") and "." in v:
        v = v[7:]
    v = v.split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        return None


def _ip(value: Any) -> str | None:
    value = _clean(value)
    return _ip_text(value) if isinstance(value, str) else None


@lru_cache(maxsize=1024)
def _keywords(raw: str | int) -> tuple[str, ...]:
    """Names of the standard keyword bits, as Winlogbeat renders them."""
    if isinstance(raw, str):
        try:
            bits = int(raw, 16) if raw[:2] in ("0x", "0X") else int(raw)
        except ValueError:
            return (raw,)
        text = raw
    else:
        bits = raw & 0xFFFFFFFFFFFFFFFF  # NXLog writes the mask as a signed int64
        text = f"0x{bits:x}"
    names = tuple(name for bit, name in _KEYWORD_BITS if bits & bit)
    return names or (text,)


@lru_cache(maxsize=512)
def _dataset(channel: str) -> str:
    known = _DATASETS.get(channel)
    if known is not None:
        return known
    slug = _NON_ALNUM.sub("_", channel.lower()).strip("_")
    return f"windows.{slug or 'unknown'}"


def _basename(path: str) -> str:
    return path.rsplit("\\", 1)[-1].rsplit("/", 1)[-1]


def _hashes(value: Any) -> dict[str, str]:
    """Sysmon ``SHA1=…,MD5=…,SHA256=…,IMPHASH=…`` → ``{"sha1": …}`` (lower case)."""
    out: dict[str, str] = {}
    if isinstance(value, str):
        for part in value.split(","):
            algo, sep, digest = part.partition("=")
            if sep and digest:
                out[algo.strip().lower()] = digest.strip().lower()
    return out


def _guid(value: Any) -> Any:
    if isinstance(value, str) and value and not value.startswith("{"):
        return "{" + value + "}"
    return value


def _with_aliases(data: dict[str, Any]) -> dict[str, Any]:
    """Defender names fields with spaces (``Source Name``) while Sigma rules use
    ``SourceName``: keep the original and add the space-less alias."""
    if not any(" " in key for key in data):
        return data
    out = dict(data)
    for key, value in data.items():
        if " " in key:
            out.setdefault(key.replace(" ", ""), value)
    return out


# --- shape 1: the evtx package's JSON -----------------------------------------------

def _attrs(node: Any) -> dict[str, Any] | None:
    return node.get("#attributes") if type(node) is dict else None


def _text(value: Any) -> Any:
    if type(value) is dict and "#text" in value:
        return value["#text"]
    return value


def _evtx_event_data(data: Any) -> dict[str, Any] | None:
    if not data:
        return None
    if type(data) is not dict:
        return {"Param1": data}
    # C-level scans: this runs for every event and most need no rebuilding.
    keys = "\x00".join(data)
    if " " in keys or "#" in keys or dict in set(map(type, data.values())) or type(data.get("Data")) is list:
        return _rebuild_event_data(data)
    return data  # the common case: named fields only, reused without a copy


def _rebuild_event_data(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key[:1] == "#":
            continue
        if key == "Data" and type(value) in (dict, list):
            _unnamed_data(value, out)
            continue
        value = _text(value)
        out[key] = value
        if " " in key:
            out.setdefault(key.replace(" ", ""), value)
    return out


def _unnamed_data(data: dict[str, Any] | list[Any], out: dict[str, Any]) -> None:
    """Classic providers (MSSQL, NETLOGON …) write unnamed ``<Data>`` elements:
    they become ``Param1``, ``Param2`` … in order."""
    items: Any = data
    if type(data) is dict:
        name = (_attrs(data) or {}).get("Name")
        if name:
            out[name] = data.get("#text")
            return
        items = data.get("#text")
    if type(items) is not list:
        items = [items]
    n = 0
    for item in items:
        if type(item) is dict:
            name = (_attrs(item) or {}).get("Name")
            if name:
                out[name] = item.get("#text")
                continue
            item = item.get("#text")
        n += 1
        out[f"Param{n}"] = item


def _user_data(node: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """UserData nests its fields one level under an element name (1102 →
    ``LogFileCleared``). Returns (user_data with ``xml_name``, flat fields)."""
    if type(node) is not dict:
        return None
    for name, inner in node.items():
        if name[:1] == "#":
            continue
        fields: dict[str, Any] = {}
        if type(inner) is dict:
            for key, value in inner.items():
                if key[:1] != "#":
                    fields[key] = _text(value)
        elif inner is not None:
            fields["Param1"] = inner
        fields = _with_aliases(fields)
        return {"xml_name": name, **fields}, fields
    return None


def _from_evtx(event: dict[str, Any]) -> Event | None:
    system = event.get("System")
    if type(system) is not dict:
        return None
    eid = _text(system.get("EventID"))
    if eid is None:
        raise ParseError("Windows event without System.EventID")
    winlog: dict[str, Any] = {"event_id": str(eid)}
    attrs = _attrs(system.get("Provider"))
    if attrs:
        name = attrs.get("Name") or attrs.get("EventSourceName")
        if name:
            winlog["provider_name"] = name
        if attrs.get("Guid"):
            winlog["provider_guid"] = _guid(attrs["Guid"])
    channel = system.get("Channel")
    if channel:
        winlog["channel"] = channel
    if system.get("Computer"):
        winlog["computer_name"] = system["Computer"]
    record_id = system.get("EventRecordID")
    if record_id is not None:
        winlog["record_id"] = str(record_id)
    _set_header(winlog, system.get("Task"), system.get("Opcode"), system.get("Keywords"), system.get("Version"))
    attrs = _attrs(system.get("Execution"))
    if attrs:
        _set_process(winlog, attrs.get("ProcessID"), attrs.get("ThreadID"))
    attrs = _attrs(system.get("Security"))
    if attrs and attrs.get("UserID"):
        winlog["user"] = {"identifier": attrs["UserID"]}
    attrs = _attrs(system.get("Correlation"))
    if attrs:
        if attrs.get("ActivityID"):
            winlog["activity_id"] = _guid(attrs["ActivityID"])
        if attrs.get("RelatedActivityID"):
            winlog["related_activity_id"] = _guid(attrs["RelatedActivityID"])

    event_data = _evtx_event_data(event.get("EventData"))
    user = _user_data(event.get("UserData"))
    if user is not None:
        winlog["user_data"] = user[0]
        event_data = {**user[1], **event_data} if event_data else user[1]
    errors = event.get("ProcessingErrorData")
    if type(errors) is dict:
        fields = {k: _text(v) for k, v in errors.items() if k[:1] != "#"}
        event_data = {**event_data, **fields} if event_data else fields
    if event_data:
        winlog["event_data"] = event_data

    attrs = _attrs(system.get("TimeCreated"))
    timestamp = _utc(attrs.get("SystemTime")) if attrs else None
    level = _LEVELS.get(system["Level"]) if type(system.get("Level")) is int else None
    rendering = event.get("RenderingInfo")
    message = rendering.get("Message") if type(rendering) is dict else None
    return _build(winlog, timestamp, level, message if isinstance(message, str) else None)


def _set_header(winlog: dict[str, Any], task: Any, opcode: Any, keywords: Any, version: Any) -> None:
    if task is not None and task != "":
        winlog["task"] = str(task)
    if opcode is not None and opcode != "":
        code = _int(opcode)
        winlog["opcode"] = _OPCODES.get(code, str(code)) if code is not None else str(opcode)
    if isinstance(keywords, str | int) and not isinstance(keywords, bool) and keywords != "":
        winlog["keywords"] = list(_keywords(keywords))
    version = _int(version)
    if version is not None:
        winlog["version"] = version


def _set_process(winlog: dict[str, Any], pid: Any, tid: Any) -> None:
    pid, tid = _int(pid), _int(tid)
    if pid is None and tid is None:
        return
    process: dict[str, Any] = {}
    if pid is not None:
        process["pid"] = pid
    if tid is not None:
        process["thread"] = {"id": tid}
    winlog["process"] = process


# --- shape 2: Winlogbeat -------------------------------------------------------------

def _from_winlogbeat(obj: dict[str, Any]) -> Event | None:
    source = obj["winlog"]
    if type(source) is not dict:
        return None
    meta: dict[str, Any] = obj["event"] if type(obj.get("event")) is dict else {}
    eid = source.get("event_id", meta.get("code"))
    if eid is None:
        return None
    winlog = dict(source)
    winlog["event_id"] = str(eid)
    if winlog.get("record_id") is not None:
        winlog["record_id"] = str(winlog["record_id"])
    event_data = winlog.get("event_data")
    if type(event_data) is dict:
        event_data = winlog["event_data"] = _with_aliases(event_data)
    user_data = winlog.get("user_data")
    if type(user_data) is dict:
        fields = {k: v for k, v in _with_aliases(user_data).items() if k != "xml_name"}
        winlog["event_data"] = {**fields, **event_data} if type(event_data) is dict else fields
    if not winlog.get("computer_name") and type(obj.get("host")) is dict and obj["host"].get("name"):
        winlog["computer_name"] = obj["host"]["name"]
    timestamp = _utc(obj.get("@timestamp"))
    message = obj.get("message") if isinstance(obj.get("message"), str) else None
    level = winlog.get("level") if isinstance(winlog.get("level"), str) else None
    built = _build(winlog, timestamp, level.lower() if level else None, message)

    primary = dict(obj)
    primary["winlog"] = winlog
    if timestamp:
        primary["@timestamp"] = timestamp
    if meta:
        meta = dict(meta)
        if meta.get("code") is not None:
            meta["code"] = str(meta["code"])
        primary["event"] = meta
    return _keep_existing(primary, built)


def _keep_existing(primary: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``primary`` plus whatever ``extra`` has that ``primary`` lacks (recursively
    for objects; copies only the objects both have)."""
    out = dict(primary)
    for key, value in extra.items():
        mine = out.get(key)
        if mine is None or mine == "" or mine == []:
            out[key] = value
        elif type(mine) is dict and type(value) is dict and mine is not value:
            out[key] = _keep_existing(mine, value)
    return out


# --- shape 3: NXLog im_msvistalog -------------------------------------------------

def _from_nxlog(obj: dict[str, Any], ctx: ParseContext) -> Event | None:
    eid = obj.get("EventID")
    if eid is None or isinstance(eid, dict | list):
        return None
    winlog: dict[str, Any] = {"event_id": str(eid)}
    provider = obj.get("SourceName") or obj.get("ProviderName")
    if provider:
        winlog["provider_name"] = provider
    if obj.get("ProviderGuid"):
        winlog["provider_guid"] = _guid(obj["ProviderGuid"])
    if obj.get("Channel"):
        winlog["channel"] = obj["Channel"]
    if obj.get("Hostname"):
        winlog["computer_name"] = obj["Hostname"]
    if obj.get("RecordNumber") is not None:
        winlog["record_id"] = str(obj["RecordNumber"])
    opcode = obj.get("OpcodeValue", obj.get("Opcode"))
    _set_header(winlog, obj.get("Task"), opcode, obj.get("Keywords"), obj.get("Version"))
    _set_process(winlog, obj.get("ExecutionProcessID", obj.get("ProcessID")),
                 obj.get("ExecutionThreadID", obj.get("ThreadID")))
    if obj.get("UserID"):
        user: dict[str, Any] = {"identifier": obj["UserID"]}
        for key, name in (("AccountName", "name"), ("Domain", "domain"), ("AccountType", "type")):
            if obj.get(key):
                user[name] = obj[key]
        winlog["user"] = user
    if obj.get("ActivityID"):
        winlog["activity_id"] = obj["ActivityID"]
    event_data = {k: v for k, v in obj.items() if k not in _NXLOG_SYSTEM}
    if event_data:
        winlog["event_data"] = _with_aliases(event_data)

    level = None
    level_value = _int(obj.get("Level"))
    if level_value is not None:
        level = _LEVELS.get(level_value)
    if level is None:
        kind = obj.get("EventType") or obj.get("Severity")
        level = _NXLOG_TYPES.get(kind.upper()) if isinstance(kind, str) else None
    message = obj.get("Message") if isinstance(obj.get("Message"), str) else None
    out = _build(winlog, _local_time(obj.get("EventTime"), ctx), level, message)
    received = _local_time(obj.get("EventReceivedTime"), ctx)
    if received:
        out["event"]["created"] = received
    return out


# --- shape 4: Wazuh eventchannel -----------------------------------------------------

def _from_wazuh(win: dict[str, Any]) -> Event | None:
    system = win["system"]
    if type(system) is not dict or system.get("eventID") is None:
        return None
    winlog: dict[str, Any] = {"event_id": str(system["eventID"])}
    for src, dst in (("providerName", "provider_name"), ("channel", "channel"), ("computer", "computer_name")):
        if system.get(src):
            winlog[dst] = system[src]
    if system.get("providerGuid"):
        winlog["provider_guid"] = _guid(system["providerGuid"])
    if system.get("eventRecordID") is not None:
        winlog["record_id"] = str(system["eventRecordID"])
    _set_header(winlog, system.get("task"), system.get("opcode"), system.get("keywords"), system.get("version"))
    _set_process(winlog, system.get("processID"), system.get("threadID"))
    if system.get("securityUserID"):
        winlog["user"] = {"identifier": system["securityUserID"]}
    data = win.get("eventdata")
    if type(data) is dict and data:
        # Wazuh lower-cases the first letter of every EventData name; the rest of
        # the name is untouched, so upper-casing it restores the Windows name.
        winlog["event_data"] = _with_aliases({k[:1].upper() + k[1:]: v for k, v in data.items()})
    level_value = _int(system.get("level"))
    level = _LEVELS.get(level_value) if level_value is not None else None
    message = system.get("message")
    if isinstance(message, str):
        message = message.strip()
        if len(message) >= 2 and message[0] == message[-1] == '"':
            message = message[1:-1]
    else:
        message = None
    return _build(winlog, _utc(system.get("systemTime")), level, message or None)


# --- the common ECS document ------------------------------------------------------

def _build(winlog: dict[str, Any], timestamp: str | None, level: str | None, message: str | None) -> Event:
    eid = winlog["event_id"]
    channel = winlog.get("channel") or ""
    provider = winlog.get("provider_name")
    event: dict[str, Any] = {
        "kind": "event",
        "code": eid,
        "module": "sysmon" if channel == SYSMON_CHANNEL else "windows",
        "dataset": _dataset(channel),
    }
    if provider:
        event["provider"] = provider
    out: Event = {"event": event, "winlog": winlog}
    if timestamp:
        out["@timestamp"] = timestamp
    if winlog.get("computer_name"):
        out["host"] = {"name": winlog["computer_name"]}
    if level:
        out["log"] = {"level": level}
    if message:
        out["message"] = message
    _enrich(out, event, winlog, eid, channel, provider)
    return out


def _enrich(out: Event, event: dict[str, Any], winlog: dict[str, Any], eid: str, channel: str,
            provider: Any) -> None:
    spec = _SPECS.get((channel, eid))
    if spec is None and provider:
        spec = _SPECS.get((provider, eid))
    outcome = None
    if spec is not None:
        event["category"] = list(spec[0])
        event["type"] = list(spec[1])
        event["action"] = spec[2]
        outcome = spec[3]
    data = winlog.get("event_data")
    related = _Related()
    if type(data) is dict and data:
        _accounts(out, winlog, data, eid, related)
        _network(out, data, eid)
        if channel == SYSMON_CHANNEL:
            _sysmon(out, data, eid, related)
        else:
            _process(out, data, eid)
        if eid in _SERVICE_EVENTS and _clean(data.get("ServiceName")):
            out["service"] = {"name": data["ServiceName"]}
        if outcome is None and eid in _STATUS_OUTCOME and data.get("Status") is not None:
            outcome = "success" if _int(data["Status"]) == 0 else "failure"
    if outcome is None:
        keywords = winlog.get("keywords")
        if keywords:
            if "Audit Failure" in keywords:
                outcome = "failure"
            elif "Audit Success" in keywords:
                outcome = "success"
    if outcome is not None:
        event["outcome"] = outcome
    related.store(out)


class _Related:
    """Collects related.user / ip / hash values, each once, in first-seen order."""

    __slots__ = ("hashes", "ips", "users")

    def __init__(self) -> None:
        self.users: list[str] = []
        self.ips: list[str] = []
        self.hashes: list[str] = []

    def user(self, value: Any) -> None:
        value = _clean(value)
        if isinstance(value, str) and value not in self.users:
            self.users.append(value)

    def store(self, out: Event) -> None:
        for section in ("source", "destination"):
            node = out.get(section)
            if node is not None and node.get("ip") and node["ip"] not in self.ips:
                self.ips.append(node["ip"])
        related: dict[str, Any] = {}
        if self.users:
            related["user"] = self.users
        if self.ips:
            related["ip"] = self.ips
        if self.hashes:
            related["hash"] = self.hashes
        if related:
            out["related"] = related


def _set_account(node: dict[str, Any], name: Any, domain: Any, sid: Any) -> None:
    name, domain, sid = _clean(name), _clean(domain), _clean(sid)
    if name is not None:
        node["name"] = name
    if domain is not None:
        node["domain"] = domain
    if sid is not None and sid != "S-1-0-0":  # the NULL SID: "no account"
        node["id"] = sid


def _subject_and_target(out: Event, user: dict[str, Any], data: dict[str, Any], eid: str, subject: Any,
                        target: Any, related: _Related) -> Any:
    """Security-style Subject*/Target* accounts into user.*, user.target.* or
    group.*; returns the logon id that belongs to user.*."""
    get = data.get
    related.user(subject)
    related.user(target)
    logon_id = None
    if eid in _TARGET_IS_USER:
        _set_account(user, target, get("TargetDomainName"), get("TargetUserSid") or get("TargetSid"))
        logon_id = _clean(get("TargetLogonId"))
    else:
        _set_account(user, subject, get("SubjectDomainName"), get("SubjectUserSid"))
        if eid in _TARGET_IS_GROUP:
            group: dict[str, Any] = {}
            _set_account(group, target, get("TargetDomainName"), get("TargetSid") or get("TargetUserSid"))
            if group:
                out["group"] = group
            member = _clean(get("MemberName"))
            account: dict[str, Any] = {}
            if isinstance(member, str):
                # MemberName is a DN ("CN=jdoe,CN=Users,DC=…"): the CN is the name.
                account["name"] = member[3:].split(",", 1)[0] if member[:3].upper() == "CN=" else member
                related.user(account["name"])
            if _clean(get("MemberSid")):
                account["id"] = get("MemberSid")
            if account:
                user["target"] = account
        else:
            account = {}
            _set_account(account, target, get("TargetDomainName"), get("TargetUserSid") or get("TargetSid"))
            if account:
                user["target"] = account
    return logon_id


def _accounts(out: Event, winlog: dict[str, Any], data: dict[str, Any], eid: str, related: _Related) -> None:
    get = data.get
    subject = get("SubjectUserName")
    target = get("TargetUserName")
    user: dict[str, Any] = {}
    logon_id = None
    if subject is not None or target is not None:
        logon_id = _subject_and_target(out, user, data, eid, subject, target, related)
    sysmon_user = get("User")
    if "name" not in user and isinstance(sysmon_user, str) and sysmon_user:
        # Sysmon: "DOMAIN\\name"
        domain, _, name = sysmon_user.rpartition("\\")
        user["name"] = name
        if domain:
            user["domain"] = domain
        related.user(name)
    if user:
        out["user"] = user
    logon_id = logon_id or _clean(get("SubjectLogonId")) or _clean(get("LogonId"))
    logon_type = get("LogonType")
    if logon_id is not None or logon_type is not None:
        logon = dict(winlog.get("logon") or {})
        if logon_type is not None and logon_type != "":
            logon.setdefault("type", str(logon_type))
        if logon_id is not None:
            logon.setdefault("id", logon_id)
        winlog["logon"] = logon


def _network(out: Event, data: dict[str, Any], eid: str) -> None:
    if "IpAddress" not in data and "WorkstationName" not in data and "Workstation" not in data:
        return
    get = data.get
    source: dict[str, Any] = {}
    ip = _ip(get("IpAddress"))
    if ip is not None:
        source["ip"] = ip
        port = _port(get("IpPort"))
        if port is not None:
            source["port"] = port
    workstation = _clean(get("WorkstationName")) or (_clean(get("Workstation")) if eid == "4776" else None)
    if isinstance(workstation, str):
        source["domain"] = workstation
    if source:
        out["source"] = source


def _process(out: Event, data: dict[str, Any], eid: str) -> None:
    """Security (and other non-Sysmon) process fields."""
    get = data.get
    process: dict[str, Any] = {}
    if eid == "4688":
        _set_executable(process, get("NewProcessName"))
        pid = _int(get("NewProcessId"))
        if pid is not None:
            process["pid"] = pid
        if _clean(get("CommandLine")):
            process["command_line"] = get("CommandLine")
        parent: dict[str, Any] = {}
        _set_executable(parent, get("ParentProcessName"))
        ppid = _int(get("ProcessId"))
        if ppid is not None:
            parent["pid"] = ppid
        if parent:
            process["parent"] = parent
    else:
        _set_executable(process, get("ProcessName"))
        if process:
            pid = _int(get("ProcessId", get("ProcessID")))
            if pid:
                process["pid"] = pid
    if process:
        out["process"] = process


def _set_executable(node: dict[str, Any], path: Any) -> None:
    path = _clean(path)
    if isinstance(path, str):
        node["executable"] = path
        node["name"] = _basename(path)


def _set_hashes(node: dict[str, Any], value: Any, related: _Related) -> None:
    hashes = _hashes(value)
    if not hashes:
        return
    digest = {k: v for k, v in hashes.items() if k in ("md5", "sha1", "sha256", "sha512")}
    if digest:
        node["hash"] = digest
    if "imphash" in hashes:
        node["pe"] = {"imphash": hashes["imphash"]}
    related.hashes.extend(v for v in hashes.values() if v not in related.hashes)


def _sysmon(out: Event, data: dict[str, Any], eid: str, related: _Related) -> None:
    get = data.get
    process: dict[str, Any] = {}
    if eid in ("8", "10"):
        _set_executable(process, get("SourceImage"))
        pid = _int(get("SourceProcessId"))
        guid = get("SourceProcessGUID") or get("SourceProcessGuid")
    else:
        _set_executable(process, get("Image"))
        pid = _int(get("ProcessId"))
        guid = get("ProcessGuid")
    if pid is not None:
        process["pid"] = pid
    if _clean(guid):
        process["entity_id"] = guid
    if eid == "1":
        _sysmon_process_create(process, data, related)
    if process:
        out["process"] = process
    if eid == "3":
        _sysmon_network(out, data)
    elif eid in ("6", "7"):
        file: dict[str, Any] = {}
        _set_file(file, get("ImageLoaded"))
        _set_hashes(file, get("Hashes"), related)
        if file:
            out["file"] = file
    elif eid in ("2", "11", "15", "23", "26"):
        file = {}
        _set_file(file, get("TargetFilename"))
        _set_hashes(file, get("Hashes") or get("Hash"), related)
        if file:
            out["file"] = file
    elif eid in ("17", "18"):
        if _clean(get("PipeName")):
            out["file"] = {"name": get("PipeName")}
    elif eid in ("12", "13", "14"):
        _sysmon_registry(out, data, eid)
    elif eid == "22":
        _sysmon_dns(out, data)


def _set_file(node: dict[str, Any], path: Any) -> None:
    path = _clean(path)
    if isinstance(path, str):
        node["path"] = path
        node["name"] = _basename(path)


def _sysmon_process_create(process: dict[str, Any], data: dict[str, Any], related: _Related) -> None:
    get = data.get
    if _clean(get("CommandLine")):
        process["command_line"] = get("CommandLine")
    if _clean(get("CurrentDirectory")):
        process["working_directory"] = get("CurrentDirectory")
    _set_hashes(process, get("Hashes"), related)
    parent: dict[str, Any] = {}
    _set_executable(parent, get("ParentImage"))
    ppid = _int(get("ParentProcessId"))
    if ppid is not None:
        parent["pid"] = ppid
    if _clean(get("ParentCommandLine")):
        parent["command_line"] = get("ParentCommandLine")
    if _clean(get("ParentProcessGuid")):
        parent["entity_id"] = get("ParentProcessGuid")
    if parent:
        process["parent"] = parent


def _sysmon_network(out: Event, data: dict[str, Any]) -> None:
    get = data.get
    for prefix, section in (("Source", "source"), ("Destination", "destination")):
        node: dict[str, Any] = {}
        ip = _ip(get(prefix + "Ip"))
        if ip is not None:
            node["ip"] = ip
        port = _port(get(prefix + "Port"))
        if port is not None:
            node["port"] = port
        if _clean(get(prefix + "Hostname")):
            node["domain"] = get(prefix + "Hostname")
        if node:
            out[section] = node
    network: dict[str, Any] = {}
    protocol = get("Protocol")
    if isinstance(protocol, str) and protocol:
        network["transport"] = protocol.lower()
    initiated = get("Initiated")
    if initiated is not None:
        network["direction"] = "egress" if str(initiated).lower() == "true" else "ingress"
    if network:
        out["network"] = network


def _sysmon_registry(out: Event, data: dict[str, Any], eid: str) -> None:
    path = _clean(data.get("TargetObject"))
    if not isinstance(path, str):
        return
    registry: dict[str, Any] = {"path": path}
    hive, _, rest = path.partition("\\")
    registry["hive"] = hive
    kind = data.get("EventType")
    # A value event's path ends with the value name; a key event's path is the key.
    if eid == "13" or (isinstance(kind, str) and "Value" in kind):
        key, _, value = rest.rpartition("\\")
        registry["key"] = key
        registry["value"] = value
    elif rest:
        registry["key"] = rest
    details = _clean(data.get("Details"))
    if details is not None:
        registry["data"] = {"strings": [str(details)]}
    out["registry"] = registry


def _sysmon_dns(out: Event, data: dict[str, Any]) -> None:
    name = _clean(data.get("QueryName"))
    if name is None:
        return
    dns: dict[str, Any] = {"question": {"name": name}}
    results = data.get("QueryResults")
    if isinstance(results, str):
        ips = [ip for ip in (_ip(part) for part in results.split(";") if part and "type:" not in part) if ip]
        if ips:
            dns["resolved_ip"] = ips
    out["dns"] = dns


# --- the plugin ------------------------------------------------------------------

@register_object
class WindowsEventParser(ObjectParser):
    """Windows event log records from the evtx package, Winlogbeat, NXLog or Wazuh."""

    name = "windows"
    aliases = ("winlogbeat", "nxlog", "evtx_json", "windows_json", "eventlog")
    description = "Windows event log (evtx JSON, Winlogbeat, NXLog im_msvistalog, Wazuh eventchannel)"
    priority = 20

    def sniff(self, obj: dict[str, Any]) -> bool:
        event = obj.get("Event")
        if event is not None:
            return type(event) is dict and "System" in event
        if "winlog" in obj:
            return True
        if "EventID" in obj:
            return "Channel" in obj or "SourceName" in obj
        win = obj.get("win")
        return type(win) is dict and "system" in win

    def parse(self, obj: dict[str, Any], ctx: ParseContext) -> Event | None:
        event = obj.get("Event")
        if type(event) is dict:
            return _from_evtx(event)
        if "winlog" in obj:
            return _from_winlogbeat(obj)
        win = obj.get("win")
        if type(win) is dict and "system" in win:
            return _from_wazuh(win)
        if "EventID" in obj:
            return _from_nxlog(obj, ctx)
        return None

"""The SOC configuration: one YAML file validated by pydantic, overridden by ``SOC_…``.

Relative paths inside a configuration file are resolved against the directory of
that file, so a configuration works wherever the command is started from. An error
names the file, the key, what was wrong and how to fix it, in Vietnamese and English.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from soc.i18n import t
from soc.timeparse import parse_interval

DEFAULT_CONFIG_NAME = Path("config") / "soc.yaml"


class ConfigError(ValueError):
    """A configuration problem a person can fix; ``str()`` says where and how."""

    def __init__(self, file: Path | str, key: str, problem: str, fix: str) -> None:
        self.file, self.key, self.problem, self.fix = str(file), key, problem, fix
        super().__init__(
            f"{t('config.error')}: {t('config.key', file=file, key=key, problem=problem)}\n"
            f"  {t('config.fix', fix=fix)}"
        )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0)


class StoreConfig(_Model):
    type: Literal["sqlite", "elasticsearch"] = "sqlite"
    """``elasticsearch`` stores events in the cluster the ``elasticsearch`` section names."""
    path: Path = Path("events.db")
    """Relative to ``data_dir``."""
    synchronous: Literal["full", "normal"] = "full"
    retention_days: int = Field(365, gt=0)


class BulkConfig(_Model):
    max_docs: int = Field(2000, gt=0, le=100_000)
    """Documents per bulk request (a pipeline batch is split into requests this size)."""
    max_bytes: int = Field(10 * 1024 * 1024, gt=0)
    concurrency: int = Field(2, gt=0, le=32)
    """Bulk requests in flight at once."""
    max_retries: int = Field(6, ge=0, le=100)
    """Retries of a request or document refused with 429 or 5xx, with exponential backoff."""
    initial_backoff: float = Field(0.5, gt=0)
    max_backoff: float = Field(30.0, gt=0)


# Minimum log retention per security level (cấp độ), in days: TCVN 14423:2026 asks
# L2 >= 1 month, L3 >= 3 months, L4 >= 6 months, L5 >= 12 months (compliance-vn.md
# VN-LOG-04). Decree 330 Art. 34.1.c penalises keeping login data under 90 days, so
# no level keeps less than 90 days by default.
LEGAL_MIN_RETENTION_DAYS: dict[int, int] = {1: 0, 2: 30, 3: 90, 4: 180, 5: 365}
DEFAULT_RETENTION_DAYS: dict[int, int] = {1: 90, 2: 90, 3: 90, 4: 180, 5: 365}


class ElasticsearchConfig(_Model):
    url: list[str] = []
    """One or more node URLs (``SOC_ELASTICSEARCH_URL``, comma-separated)."""
    api_key: str | None = None
    """An encoded API key (``SOC_ELASTICSEARCH_API_KEY``); preferred over user/password."""
    username: str | None = None
    password: str | None = None
    ca_cert: Path | None = None
    """PEM file of the CA that signed the cluster's certificate (``SOC_ELASTICSEARCH_CA_CERT``)."""
    verify_certs: bool = True
    request_timeout: float = Field(30.0, gt=0)
    namespace: str = Field("soc", pattern=r"^[a-z0-9_]{1,40}$")
    """Data stream namespace; the security level is appended (``logs-<dataset>-soc.l3``)."""
    unknown_fields: Literal["flattened", "stored"] = "flattened"
    """Vendor objects (``fortinet.firewall``, ``winlog.event_data`` …) as one flattened field
    each (searchable by key) or only kept in ``_source``; other unmapped fields are always
    kept in ``_source`` without being indexed."""
    retention_days: dict[int, int] = DEFAULT_RETENTION_DAYS
    """Days to keep events per security level 1-5 (an ILM delete phase)."""
    unclassified_retention_days: int = Field(365, gt=0)
    """Events of systems without a level: kept as long as the strictest level."""
    bulk: BulkConfig = BulkConfig()
    mirror_alerts: bool = True
    """Copy alerts, kept in step with triage, into ``alerts_index`` for Kibana."""
    alerts_index: str = Field("soc-alerts", pattern=r"^[a-z0-9][a-z0-9_.-]{0,100}$")
    setup_templates: bool = True
    """Install component/index templates and ILM policies at start (needs the
    ``manage_index_templates`` and ``manage_ilm`` privileges)."""

    @field_validator("retention_days")
    @classmethod
    def _levels(cls, value: dict[int, int]) -> dict[int, int]:
        merged = {**DEFAULT_RETENTION_DAYS, **value}
        for level, days in merged.items():
            if level not in LEGAL_MIN_RETENTION_DAYS:
                raise ValueError(f"unknown security level {level} (levels are 1-5)")
            if days < LEGAL_MIN_RETENTION_DAYS[level]:
                raise ValueError(f"level {level} must keep logs at least {LEGAL_MIN_RETENTION_DAYS[level]} days "
                                 f"(TCVN 14423:2026), got {days}")
        return merged


class PipelineConfig(_Model):
    batch_size: int = Field(2000, gt=0, le=100_000)
    queue_batches: int = Field(64, gt=0)
    status_interval: float = Field(30.0, gt=0)
    spool_replay_interval: float = Field(10.0, gt=0)
    spool_max_bytes: int = Field(2 * 1024**3, gt=0)
    """Disk quota of each sink's spool; past it the spool refuses batches and raises an alarm."""
    spool_alarm_ratio: float = Field(0.8, gt=0, le=1)
    """Fill ratio at which the spool alarm (metric, log line, SOC alert) fires."""


class AuthConfig(_Model):
    session_hours: float = Field(12.0, gt=0)
    """A login's session (cookie or bearer) lasts this long."""
    lockout_threshold: int = Field(5, ge=1, le=100)
    """Failed logins in a row that lock an account."""
    lockout_minutes: float = Field(15.0, gt=0)
    api_token_days: int | None = Field(None, gt=0)
    """Default lifetime of a new API token (``None``: until revoked)."""
    cookie_secure: bool = False
    """Send the session cookie only over HTTPS (turn on behind a TLS proxy)."""


class SlaTarget(_Model):
    acknowledge_minutes: float = Field(gt=0)
    """Time to acknowledge: from the alert's creation to its first move out of ``new``."""
    resolve_minutes: float = Field(gt=0)
    """Time to resolve: from creation to ``resolved``."""


def _default_sla() -> dict[str, SlaTarget]:
    return {
        "critical": SlaTarget(acknowledge_minutes=15, resolve_minutes=4 * 60),
        "high": SlaTarget(acknowledge_minutes=60, resolve_minutes=24 * 60),
        "medium": SlaTarget(acknowledge_minutes=4 * 60, resolve_minutes=3 * 24 * 60),
        "low": SlaTarget(acknowledge_minutes=24 * 60, resolve_minutes=7 * 24 * 60),
        "informational": SlaTarget(acknowledge_minutes=3 * 24 * 60, resolve_minutes=30 * 24 * 60),
    }


class TriageConfig(_Model):
    sla: dict[str, SlaTarget] = Field(default_factory=_default_sla)
    """Targets per alert level (informational, low, medium, high, critical)."""

    @field_validator("sla")
    @classmethod
    def _levels(cls, value: dict[str, SlaTarget]) -> dict[str, SlaTarget]:
        unknown = set(value) - {"informational", "low", "medium", "high", "critical"}
        if unknown:
            raise ValueError(f"unknown alert level {sorted(unknown)[0]!r}; use informational, low, medium, "
                             "high or critical")
        return {**_default_sla(), **value}


class SmtpChannel(_Model):
    """E-mail through an SMTP relay (see docs/notifications.md)."""

    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    """Upgrade the connection with STARTTLS (port 587)."""
    ssl: bool = False
    """Implicit TLS from the first byte (port 465)."""
    username: str | None = None
    password_env: str | None = None
    """Name of the environment variable holding the SMTP password (never in the file)."""
    sender: str = Field(min_length=3)
    to: list[str] = Field(min_length=1)
    timeout: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> SmtpChannel:
        if self.ssl and self.starttls:
            raise ValueError("ssl and starttls exclude each other: ssl for port 465, starttls for port 587")
        if self.username and not self.password_env:
            raise ValueError("username is set but password_env is not: name the environment variable holding "
                             "the password")
        return self


class WebhookChannel(_Model):
    """An HTTP POST: the generic JSON body (``webhook``) or a Telegram Bot API
    ``sendMessage`` body (``telegram``)."""

    type: Literal["webhook", "telegram"]
    url: str = Field(pattern=r"^https?://[^\s]+$")
    """``telegram``: the Bot API ``sendMessage`` URL (or a compatible relay)."""
    token_env: str | None = None
    """Environment variable whose value replaces ``{token}`` in ``url`` (a bot token
    stays out of the file: ``https://api.telegram.org/bot{token}/sendMessage``)."""
    chat_id: str | None = None
    """``telegram`` only: the chat to post into."""
    headers: dict[str, str] = {}
    secret_env: str | None = None
    """Environment variable with a shared secret: the body is signed (``X-SOC-Signature``)."""
    timeout: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> WebhookChannel:
        if self.type == "telegram" and not self.chat_id:
            raise ValueError("a telegram channel needs chat_id")
        if self.type == "webhook" and self.chat_id:
            raise ValueError("chat_id is for telegram channels only")
        if ("{token}" in self.url) != (self.token_env is not None):
            raise ValueError("use token_env together with a '{token}' placeholder in url")
        return self


ChannelConfig = Annotated[SmtpChannel | WebhookChannel, Field(discriminator="type")]


class NotificationRoute(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    min_level: Literal["informational", "low", "medium", "high", "critical"] = "high"
    agencies: list[str] = []
    """Only alerts of these agencies (and their children); empty: every agency."""
    channels: list[str] = Field(min_length=1)
    retro: bool = False
    """Also notify about alerts a retro-hunt (``soc rules hunt``) opened."""


class NotificationsConfig(_Model):
    channels: dict[str, ChannelConfig] = {}
    routes: list[NotificationRoute] = []
    max_attempts: int = Field(6, ge=1, le=50)
    retry_backoff_seconds: float = Field(30.0, gt=0)
    """First retry delay; doubled each attempt (at most one hour)."""
    interval_seconds: float = Field(10.0, gt=0)
    """How often the dispatcher looks for new alerts and due retries."""
    base_url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    """Address of the SOC as readers reach it (``https://soc.phutho.gov.vn``): alert
    links in messages become absolute; without it they are paths (``/api/v1/alerts/…``)."""

    @model_validator(mode="after")
    def _routes_name_channels(self) -> NotificationsConfig:
        """Every channel a route names exists (the error points at the route's entry)."""
        errors: list[InitErrorDetails] = []
        for name in self.channels:
            if not _CHANNEL_NAME.match(name):
                errors.append(_line_error(("channels", name), name, "bad_channel_name",
                                          "channel name '{name}' is too long or has characters other than "
                                          "letters, digits, '_', '.' and '-'", name=name))
        seen: set[str] = set()
        for i, route in enumerate(self.routes):
            if route.name in seen:
                errors.append(_line_error(("routes", i, "name"), route.name, "duplicate_route",
                                          "route name '{name}' is used twice", name=route.name))
            seen.add(route.name)
            for j, channel in enumerate(route.channels):
                if channel not in self.channels:
                    defined = ", ".join(self.channels) or "-"
                    errors.append(_line_error(
                        ("routes", i, "channels", j), channel, "unknown_channel",
                        "route '{route}' names channel '{channel}', which notifications.channels does not define "
                        "(defined: {defined})", route=route.name, channel=channel, defined=defined))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _line_error(loc: tuple[str | int, ...], value: Any, kind: str, template: str, **ctx: Any) -> InitErrorDetails:
    return {"type": PydanticCustomError(kind, template, ctx), "loc": loc, "input": value}


class HealthConfig(_Model):
    silent_check_seconds: float = Field(60.0, gt=0)
    """How often the silent-source job runs."""
    default_interval: str | None = None
    """Expected interval for log sources that declare none (``15m``, ``1h``; ``None``: not
    watched until one is set or learned)."""
    learn_min_samples: int = Field(20, ge=3)
    """Arrival gaps needed before a learned interval is used."""

    @field_validator("default_interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None:
            parse_interval(value)
        return value


class TlsConfig(_Model):
    cert: Path
    key: Path
    ca: Path | None = None
    """When set, clients must present a certificate signed by this CA."""


class _SourceBase(_Model):
    format: str = "auto"
    system: str | None = None
    """Attribute every event of this source to this system id."""
    log_source: str | None = None
    """The log source of that system these events count for in source health (by
    default matched by format, then by transport)."""


class SyslogUdpSource(_SourceBase):
    type: Literal["syslog_udp"]
    host: str = "127.0.0.1"
    port: int = Field(5514, ge=0, le=65535)


class SyslogTcpSource(_SourceBase):
    type: Literal["syslog_tcp"]
    host: str = "127.0.0.1"
    port: int = Field(5514, ge=0, le=65535)
    framing: Literal["auto", "lf", "octet"] = "auto"
    tls: TlsConfig | None = None
    max_message_bytes: int = Field(64 * 1024, gt=0)


class FileSource(_SourceBase):
    type: Literal["file"]
    include: list[str]
    exclude: list[str] = []
    read_from: Literal["beginning", "end"] = "beginning"
    poll_interval: float = Field(0.25, gt=0)


class EvtxSource(_SourceBase):
    type: Literal["evtx"]
    include: list[str]
    poll_interval: float = Field(5.0, gt=0)


class HttpIngestSource(_SourceBase):
    type: Literal["http_ingest"]


class ElasticTailSource(_SourceBase):
    """New documents of existing indices (Beats, Wazuh …) fed through the pipeline."""

    type: Literal["elasticsearch_tail"]
    index: str = Field(min_length=1)
    """Index, alias, data stream or pattern: ``winlogbeat-*``, ``wazuh-alerts-4.x-*``."""
    mapping: Literal["auto", "ecs", "wazuh"] = "auto"
    """How documents become events: ECS documents (Beats, Elastic Agent) are taken as
    they are; Wazuh alerts are mapped; ``auto`` decides per document."""
    url: list[str] = []
    """Cluster to read; empty means the ``elasticsearch`` section's cluster."""
    timestamp_field: str = "@timestamp"
    settle_seconds: float = Field(60.0, ge=0)
    """Only documents older than this are read, so late arrivals are not skipped."""
    start_from: str = Field("now", pattern=r"^(beginning|now|\d+[smhdw])$")
    """``beginning``, ``now`` or a relative age such as ``7d`` for the first run."""
    poll_interval: float = Field(5.0, gt=0)
    page_size: int = Field(1000, gt=0, le=10_000)


SourceConfig = Annotated[
    SyslogUdpSource | SyslogTcpSource | FileSource | EvtxSource | HttpIngestSource | ElasticTailSource,
    Field(discriminator="type"),
]


class TransformConfig(_Model):
    type: str
    options: dict[str, Any] = {}


class StoreSinkConfig(_Model):
    type: Literal["store"]


class FileSinkConfig(_Model):
    type: Literal["file"]
    path: Path
    """NDJSON archive; relative to ``data_dir``."""


SinkConfig = Annotated[StoreSinkConfig | FileSinkConfig, Field(discriminator="type")]


class SocConfig(_Model):
    data_dir: Path = Path("var")
    timezone: str = "Asia/Ho_Chi_Minh"
    systems_dir: Path = Path("systems")
    json_mappings_dir: Path | None = Path("json_mappings")
    api: ApiConfig = ApiConfig()
    store: StoreConfig = StoreConfig()
    elasticsearch: ElasticsearchConfig = ElasticsearchConfig()
    pipeline: PipelineConfig = PipelineConfig()
    auth: AuthConfig = AuthConfig()
    triage: TriageConfig = TriageConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    health: HealthConfig = HealthConfig()
    sources: dict[str, SourceConfig] = {}
    transforms: list[TransformConfig] = [TransformConfig(type="parse"), TransformConfig(type="enrich")]
    sinks: dict[str, SinkConfig] = {"store": StoreSinkConfig(type="store")}

    config_path: Path | None = Field(None, exclude=True)
    """The file this configuration was read from (set by :func:`load_config`)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("transforms")
    @classmethod
    def _parse_first(cls, value: list[TransformConfig]) -> list[TransformConfig]:
        if not value or value[0].type != "parse":
            raise ValueError("the first transform must be 'parse'")
        return value

    # -- resolved paths -----------------------------------------------------------
    @property
    def store_path(self) -> Path:
        return self.data_dir / self.store.path

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def checkpoints_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


# --- loading ----------------------------------------------------------------------

_FIXES = {
    "missing": ("thêm khóa này vào tệp", "add this key to the file"),
    "extra_forbidden": ("xóa khóa này hoặc kiểm tra chính tả", "remove this key or check its spelling"),
    "int_parsing": ("dùng một số nguyên, ví dụ 5514", "use a whole number, e.g. 5514"),
    "int_type": ("dùng một số nguyên, ví dụ 5514", "use a whole number, e.g. 5514"),
    "float_parsing": ("dùng một số, ví dụ 0.5", "use a number, e.g. 0.5"),
    "literal_error": ("dùng một trong các giá trị được phép", "use one of the allowed values"),
    "union_tag_invalid": (
        "dùng một loại hợp lệ: syslog_udp, syslog_tcp, file, evtx, http_ingest, elasticsearch_tail (nguồn) "
        "hoặc store, file (đích)",
        "use a valid type: syslog_udp, syslog_tcp, file, evtx, http_ingest, elasticsearch_tail (sources) "
        "or store, file (sinks)",
    ),
    "union_tag_not_found": ("thêm khóa 'type'", "add a 'type' key"),
    "less_than_equal": ("dùng giá trị nhỏ hơn", "use a smaller value"),
    "greater_than": ("dùng giá trị lớn hơn", "use a larger value"),
    "greater_than_equal": ("dùng giá trị lớn hơn", "use a larger value"),
    "list_type": ("dùng một danh sách YAML (- mục)", "use a YAML list (- item)"),
    "dict_type": ("dùng một ánh xạ YAML (khóa: giá trị)", "use a YAML mapping (key: value)"),
    "model_type": ("dùng một ánh xạ YAML (khóa: giá trị)", "use a YAML mapping (key: value)"),
    "unknown_channel": ("khai báo kênh trong notifications.channels hoặc sửa tên kênh của tuyến",
                        "define the channel under notifications.channels or correct the route's channel name"),
    "duplicate_route": ("đặt cho mỗi tuyến một tên riêng", "give each route its own name"),
    "bad_channel_name": ("đặt tên kênh chỉ gồm chữ, số, '_', '.', '-' (tối đa 100 ký tự)",
                         "name the channel with letters, digits, '_', '.', '-' (at most 100 characters)"),
}


def _fix_for(error_type: str, message: str) -> str:
    vi, en = _FIXES.get(error_type, ("sửa giá trị theo thông báo", "correct the value as the message says"))
    if error_type == "literal_error":
        return f"{vi} / {en} ({message})"
    return f"{vi} / {en}"


def default_config_path() -> Path:
    env = os.environ.get("SOC_CONFIG")
    if env:
        return Path(env)
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    if local.exists():
        return local
    return Path(__file__).resolve().parents[1] / DEFAULT_CONFIG_NAME


def load_config(path: Path | str | None = None) -> SocConfig:
    """Read, validate and resolve a configuration file; apply ``SOC_…`` overrides."""
    cfg_path = Path(path) if path is not None else default_config_path()
    if not cfg_path.is_file():
        raise ConfigError(cfg_path, "-", t("config.not_found", path=cfg_path),
                          "SOC_CONFIG=config/soc.yaml / --config config/soc.yaml")
    try:
        raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "-"
        raise ConfigError(cfg_path, where, t("config.yaml", detail=exc),
                          "kiểm tra thụt lề và dấu hai chấm / check indentation and colons") from exc
    if not isinstance(raw, dict):
        raise ConfigError(cfg_path, "-", "the file must hold a YAML mapping",
                          "bắt đầu bằng các khóa như data_dir: / start with keys such as data_dir:")
    _apply_env(raw)
    try:
        cfg = SocConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        problem = err["msg"]
        if err["type"] not in ("missing", "extra_forbidden") and not isinstance(err.get("input"), dict):
            problem += f" (got {err.get('input')!r})"
        raise ConfigError(cfg_path, _key_path(err["loc"], raw), problem,
                          _fix_for(err["type"], err["msg"])) from None
    return _resolve(cfg, cfg_path)


def _key_path(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """Dotted key of a validation error, without the union tag pydantic inserts
    after a source or sink name (``sources.udp.syslog_udp.port`` → ``sources.udp.port``)."""
    parts: list[str] = []
    i = 0
    while i < len(loc):
        parts.append(str(loc[i]))
        if len(parts) == 2 and parts[0] in ("sources", "sinks") and i + 1 < len(loc):
            entry = (raw.get(parts[0]) or {}).get(loc[i])
            if isinstance(entry, dict) and loc[i + 1] == entry.get("type"):
                i += 1
        elif parts[:2] == ["notifications", "channels"] and len(parts) == 3 and i + 1 < len(loc):
            section = raw.get("notifications")
            channels = section.get("channels") if isinstance(section, dict) else None
            entry = channels.get(loc[i]) if isinstance(channels, dict) else None
            if isinstance(entry, dict) and loc[i + 1] == entry.get("type"):
                i += 1
        i += 1
    return ".".join(parts) or "-"


def _resolve(cfg: SocConfig, cfg_path: Path) -> SocConfig:
    base = cfg_path.resolve().parent
    data_env = os.environ.get("SOC_DATA_DIR")
    data_dir = Path(data_env).resolve() if data_env else _under(base, cfg.data_dir)
    updates: dict[str, Any] = {
        "config_path": cfg_path.resolve(),
        "data_dir": data_dir,
        "systems_dir": _under(base, cfg.systems_dir),
        "json_mappings_dir": _under(base, cfg.json_mappings_dir) if cfg.json_mappings_dir else None,
    }
    sources: dict[str, Any] = {}
    for name, src in cfg.sources.items():
        if isinstance(src, FileSource):
            src = src.model_copy(update={"include": _globs_under(base, src.include),
                                         "exclude": _globs_under(base, src.exclude)})
        elif isinstance(src, EvtxSource):
            src = src.model_copy(update={"include": _globs_under(base, src.include)})
        elif isinstance(src, ElasticTailSource) and not src.url and _reads_own_streams(src.index, cfg):
            raise ConfigError(cfg_path, f"sources.{name}.index",
                              f"'{src.index}' matches the SOC's own event streams: events would be read back "
                              "and stored again",
                              "chỉ định chỉ mục nguồn cụ thể (winlogbeat-*, wazuh-alerts-*) / name the source "
                              "indices precisely (winlogbeat-*, wazuh-alerts-*)")
        elif isinstance(src, SyslogTcpSource) and src.tls is not None:
            tls = src.tls.model_copy(update={"cert": _under(base, src.tls.cert), "key": _under(base, src.tls.key),
                                             "ca": _under(base, src.tls.ca) if src.tls.ca else None})
            src = src.model_copy(update={"tls": tls})
        sources[name] = src
    updates["sources"] = sources
    if cfg.elasticsearch.ca_cert is not None:
        updates["elasticsearch"] = cfg.elasticsearch.model_copy(
            update={"ca_cert": _under(base, cfg.elasticsearch.ca_cert)})
    if cfg.store.type == "elasticsearch" and not cfg.elasticsearch.url:
        raise ConfigError(cfg_path, "elasticsearch.url", "store.type is 'elasticsearch' but no cluster URL is set",
                          "đặt elasticsearch.url hoặc SOC_ELASTICSEARCH_URL / set elasticsearch.url or "
                          "SOC_ELASTICSEARCH_URL (e.g. https://es1:9200)")
    return cfg.model_copy(update=updates)


def _reads_own_streams(index: str, cfg: SocConfig) -> bool:
    """Whether a tail source's index pattern would match what this SOC writes to the
    same cluster (``logs-*`` does; ``filebeat-*`` does not)."""
    if cfg.store.type != "elasticsearch":
        return False
    own = f"logs-system.auth-{cfg.elasticsearch.namespace}.l3"
    return any(fnmatch.fnmatchcase(own, part.strip()) for part in index.split(",") if not part.startswith("-"))


def _globs_under(base: Path, patterns: list[str]) -> list[str]:
    return [str(_under(base, Path(p))) for p in patterns]


def _under(base: Path, path: Path) -> Path:
    path = Path(os.path.expanduser(str(path)))
    return path if path.is_absolute() else (base / path).resolve()


def _apply_env(raw: dict[str, Any]) -> None:
    """``SOC_API_PORT``, ``SOC_API_HOST``, ``SOC_SYSLOG_PORT``, ``SOC_SYSLOG_HOST``,
    ``SOC_TIMEZONE``, ``SOC_RETENTION_DAYS``, ``SOC_ELASTICSEARCH_URL`` (also selects the
    Elasticsearch store), ``SOC_ELASTICSEARCH_API_KEY``, ``…_USERNAME``, ``…_PASSWORD``,
    ``…_CA_CERT`` override the file (``SOC_DATA_DIR`` is
    applied after validation because it is relative to the working directory)."""
    env = os.environ
    if "SOC_API_PORT" in env:
        raw.setdefault("api", {})["port"] = env["SOC_API_PORT"]
    if "SOC_API_HOST" in env:
        raw.setdefault("api", {})["host"] = env["SOC_API_HOST"]
    if "SOC_TIMEZONE" in env:
        raw["timezone"] = env["SOC_TIMEZONE"]
    if "SOC_RETENTION_DAYS" in env:
        raw.setdefault("store", {})["retention_days"] = env["SOC_RETENTION_DAYS"]
    es = raw.get("elasticsearch")
    if not isinstance(es, dict):
        es = {}
    if env.get("SOC_ELASTICSEARCH_URL"):
        es["url"] = [u.strip() for u in env["SOC_ELASTICSEARCH_URL"].split(",") if u.strip()]
        # Pointing the SOC at a cluster is what makes it the event store.
        raw.setdefault("store", {})["type"] = "elasticsearch"
    for var, key in (("SOC_ELASTICSEARCH_API_KEY", "api_key"), ("SOC_ELASTICSEARCH_USERNAME", "username"),
                     ("SOC_ELASTICSEARCH_PASSWORD", "password"), ("SOC_ELASTICSEARCH_CA_CERT", "ca_cert")):
        if env.get(var):
            es[key] = env[var]
    if isinstance(es.get("url"), str):
        es["url"] = [u.strip() for u in es["url"].split(",") if u.strip()]
    if es:
        raw["elasticsearch"] = es
    for src in (raw.get("sources") or {}).values():
        if isinstance(src, dict) and str(src.get("type", "")).startswith("syslog_"):
            if "SOC_SYSLOG_PORT" in env:
                src["port"] = env["SOC_SYSLOG_PORT"]
            if "SOC_SYSLOG_HOST" in env:
                src["host"] = env["SOC_SYSLOG_HOST"]

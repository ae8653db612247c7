"""The index setup the Elasticsearch store installs at start: mappings, component and
index templates, ILM policies.

Every event field the parsers emit with a known type (``collectors.ecs_fields``) is
mapped explicitly and the root mapping is ``dynamic: false``: a field nobody listed
stays in ``_source`` (shown, exported) but is not indexed. That is deliberate: every
indexed field costs ingest throughput, and 19 dynamically mapped fields cut bulk
throughput from ≈19,000 to ≈1,400 docs/s on the test server (issue 5).

The same bodies serve Elasticsearch 8/9 and OpenSearch-based clusters (the Wazuh
indexer); what differs is decided by :class:`ClusterInfo`: ``flattened`` vs
``flat_object``, ``match_only_text`` only on Elasticsearch, data streams and ILM only
where they exist. Where ILM is missing, :func:`retention_plan` is what the store
enforces itself (delete by query).

On Elasticsearch 9 the ``logs-*-*`` streams default to the ``logsdb`` index mode
(synthetic ``_source``, ≈60 % less disk); the templates leave ``index.mode`` and
``_source`` unset so the cluster's default applies.

Installing is idempotent: each PUT overwrites a template or policy with the same
content, so running it at every start is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from collectors.ecs_fields import DEFAULT_SEARCH_FIELDS, FIELD_TYPES, FieldType
from soc.config import ElasticsearchConfig
from soc.store.elastic import names
from soc.store.elastic.connection import ClusterInfo

ECS_COMPONENT = "soc-ecs-mappings"
SETTINGS_COMPONENT = "soc-logs-settings"
LEVEL_SUFFIXES: tuple[str, ...] = (*(f"l{level}" for level in names.LEVELS), names.UNCLASSIFIED)
DEAD_LETTER_SUFFIX = "deadletter"
DEAD_LETTER_RETENTION_DAYS = 90

LEVEL_PRIORITY = 200
"""Above Elasticsearch's built-in ``logs`` template (``logs-*-*``, priority 100)."""
DEAD_LETTER_PRIORITY = 210
"""Its pattern overlaps the level patterns (``logs-soc.deadletter-x.l3`` matches both),
and Elasticsearch refuses two overlapping templates of the same priority."""
ALERTS_PRIORITY = 200

KEYWORD_IGNORE_ABOVE = 1024
TOTAL_FIELDS_LIMIT = 2000
REFRESH_INTERVAL = "5s"
ROLLOVER: dict[str, str] = {"max_primary_shard_size": "50gb", "max_age": "1d"}

PRIVILEGE_TEMPLATES = "manage_index_templates"
PRIVILEGE_ILM = "manage_ilm"
PRIVILEGE_CREATE_INDEX = "create_index"
_OPENSEARCH_GROUPS = {
    PRIVILEGE_TEMPLATES: "cluster_manage_index_templates",
    PRIVILEGE_CREATE_INDEX: "create_index",
}
"""What the OpenSearch security plugin (Wazuh indexer) calls the same permission."""

Body = dict[str, Any]


class TemplateInstallError(RuntimeError):
    """The cluster refused part of the index setup; the message says what and why."""

    def __init__(self, message: str, *, resource: str, status: int | None = None,
                 privilege: str | None = None) -> None:
        super().__init__(message)
        self.resource = resource
        self.status = status
        self.privilege = privilege


# --- mappings ------------------------------------------------------------------------------

def mapping_conflicts(types: Mapping[str, FieldType] = FIELD_TYPES) -> list[tuple[str, str]]:
    """Pairs ``(leaf, child)`` where a typed field is also the parent of another
    (``x`` keyword and ``x.y``): one name cannot be both a value and an object."""
    listed = sorted(types)
    return [(leaf, other) for leaf in listed for other in listed if other.startswith(leaf + ".")]


def _text(info: ClusterInfo) -> Body:
    # match_only_text drops positions and norms (smaller, faster to index); phrase
    # queries still work by re-checking _source. OpenSearch has no such type.
    if info.is_elasticsearch and info.version >= (8,):
        return {"type": "match_only_text"}
    return {"type": "text"}


def _holder(info: ClusterInfo, unknown_fields: str) -> Body:
    """A vendor object: searchable by key, or only kept in ``_source``."""
    if unknown_fields == "flattened":
        return {"type": info.flattened_type}
    return {"type": "object", "enabled": False}


def _leaf(kind: FieldType, info: ClusterInfo, unknown_fields: str, name: str) -> Body:
    if kind == "keyword":
        return {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE}
    if kind == "text":
        return _text(info)
    if kind == "flattened":
        return _holder(info, unknown_fields)
    if kind in ("ip", "long", "double", "date") and name != "@timestamp":
        # One badly typed value (a device writing "-" as a port) leaves that field
        # unindexed and listed in _ignored instead of sending the whole event to the
        # dead letters. Data streams refuse it on @timestamp, which must be valid.
        return {"type": kind, "ignore_malformed": True}
    return {"type": kind}


def _properties(types: Mapping[str, Body]) -> Body:
    """Nested ``properties`` from dotted names to leaf mappings."""
    root: Body = {}
    for dotted in sorted(types):
        parts = dotted.split(".")
        node = root
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {"properties": {}})
            if "properties" not in child:
                parent = ".".join(parts[:i + 1])
                raise ValueError(f"'{parent}' vừa là trường vừa là cha của '{dotted}' / "
                                 f"'{parent}' is both a field and the parent of '{dotted}'")
            node = child["properties"]
        if parts[-1] in node:
            raise ValueError(f"'{dotted}' vừa là trường vừa là cha của trường khác / "
                             f"'{dotted}' is both a field and a parent of other fields")
        node[parts[-1]] = dict(types[dotted])
    return root


def _root(properties: Body) -> Body:
    # No "_source" parameter: _source is on by default, and an explicit
    # {"enabled": true} makes Elasticsearch refuse to create a logsdb index ("only
    # support synthetic source"), the default mode of logs-*-* streams on 9.x.
    return {
        "dynamic": False,
        "date_detection": False,
        "numeric_detection": False,
        "properties": properties,
    }


def event_mappings(info: ClusterInfo, unknown_fields: str, *,
                   types: Mapping[str, FieldType] = FIELD_TYPES) -> Body:
    """Explicit mappings of every typed event field; anything else stays in
    ``_source`` unindexed. Raises ValueError if ``types`` has a leaf/parent conflict."""
    leaves = {name: _leaf(kind, info, unknown_fields, name) for name, kind in types.items()}
    return _root(_properties(leaves))


def dead_letter_mappings() -> Body:
    """An event the cluster refused, with why: the raw event is kept as a JSON string
    (not indexed: it is evidence to replay, and its shape is what failed to map)."""
    return _root(_properties({
        "@timestamp": {"type": "date"},
        "error.type": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "error.message": {"type": "text"},
        "dead_letter.index": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "dead_letter.status": {"type": "long"},
        "dead_letter.stage": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "event.original": {"type": "text", "index": False},
        "event.id": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
        "gov.system.id": {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE},
    }))


_ALERT_KEYWORDS = ("id", "rule_id", "rule_title", "level", "kind", "status", "tactics", "techniques",
                   "dedup_key", "event_ids", "system_id", "agency_id", "level_gov", "hunt_id", "assignee_id",
                   "resolution", "incident_id")
_ALERT_DATES = ("@timestamp", "first_seen", "last_seen", "created_at", "updated_at", "acknowledged_at",
                "resolved_at", "status_changed_at")
_ALERT_LONGS = ("count", "version", "classification")


def alert_mappings(info: ClusterInfo, unknown_fields: str) -> Body:
    """The document of ``soc.alerts.models.Alert.as_dict()`` (plus ``@timestamp`` for
    Kibana's time filter, if the mirror adds one)."""
    fields: Body = {name: {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE} for name in _ALERT_KEYWORDS}
    fields.update({name: {"type": "date"} for name in _ALERT_DATES})
    fields.update({name: {"type": "long"} for name in _ALERT_LONGS})
    fields["retro"] = {"type": "boolean"}
    fields["summary"] = {"type": "text"}
    fields["key_fields"] = _holder(info, unknown_fields)
    return _root(_properties(fields))


# --- templates and policies ----------------------------------------------------------------

def _settings(info: ClusterInfo, replicas: int | None) -> Body:
    settings: Body = {
        "index.refresh_interval": REFRESH_INTERVAL,
        "index.mapping.total_fields.limit": TOTAL_FIELDS_LIMIT,
    }
    if info.is_elasticsearch:
        settings["index.codec"] = "best_compression"
    if replicas is not None:
        settings["index.number_of_replicas"] = replicas
    return settings


def component_templates(info: ClusterInfo, cfg: ElasticsearchConfig, *, replicas: int | None = None) -> dict[str, Body]:
    """Component template name → ``template`` body. ``replicas`` unset keeps the
    cluster's default (a one-node cluster wants 0, a production one 1)."""
    return {
        ECS_COMPONENT: {
            # A bare term (Kibana's KQL, query_string) looks where the SOC's own search does.
            "settings": {"index.query.default_field": list(DEFAULT_SEARCH_FIELDS)},
            "mappings": event_mappings(info, cfg.unknown_fields),
        },
        SETTINGS_COMPONENT: {"settings": _settings(info, replicas)},
    }


def dead_letter_pattern() -> str:
    """Every namespace's dead letters, like the level templates serve every namespace
    (two namespace-specific patterns ``…-soc*`` and ``…-soc2*`` would overlap)."""
    return f"logs-{names.DEAD_LETTER_DATASET}-*"


def index_templates(info: ClusterInfo, cfg: ElasticsearchConfig) -> dict[str, Body]:
    """Index template name → body of ``PUT _index_template/<name>``."""
    out: dict[str, Body] = {}
    for suffix in LEVEL_SUFFIXES:
        template: Body = {}
        if info.ilm:
            template["settings"] = {"index.lifecycle.name": names.policy_name(suffix)}
        body: Body = {
            "index_patterns": [names.level_pattern(suffix)],
            "priority": LEVEL_PRIORITY,
            "composed_of": [SETTINGS_COMPONENT, ECS_COMPONENT],
            "template": template,
            "_meta": {"managed_by": "soc", "description": f"SOC events of security level {suffix}"},
        }
        if info.data_streams:
            body["data_stream"] = {}
        out[names.policy_name(suffix)] = body

    dead: Body = {"mappings": dead_letter_mappings()}
    if info.ilm:
        dead["settings"] = {"index.lifecycle.name": names.policy_name(DEAD_LETTER_SUFFIX)}
    dead_body: Body = {
        "index_patterns": [dead_letter_pattern()],
        "priority": DEAD_LETTER_PRIORITY,
        "composed_of": [SETTINGS_COMPONENT],
        "template": dead,
        "_meta": {"managed_by": "soc", "description": "events the cluster refused"},
    }
    if info.data_streams:
        dead_body["data_stream"] = {}
    out[names.policy_name(DEAD_LETTER_SUFFIX)] = dead_body

    # Alerts are updated in place as triage moves on: a plain index, never a data stream.
    out[cfg.alerts_index] = {
        "index_patterns": [f"{cfg.alerts_index}*"],
        "priority": ALERTS_PRIORITY,
        "composed_of": [SETTINGS_COMPONENT],
        "template": {"mappings": alert_mappings(info, cfg.unknown_fields)},
        "_meta": {"managed_by": "soc", "description": "copy of the SOC's alerts for Kibana"},
    }
    return out


def _retention_by_suffix(cfg: ElasticsearchConfig) -> dict[str, int]:
    days = {f"l{level}": cfg.retention_days[level] for level in names.LEVELS}
    days[names.UNCLASSIFIED] = cfg.unclassified_retention_days
    days[DEAD_LETTER_SUFFIX] = DEAD_LETTER_RETENTION_DAYS
    return days


def retention_plan(cfg: ElasticsearchConfig) -> dict[str, int]:
    """Index pattern → days to keep. ILM policies are built from it; on a cluster
    without ILM the store deletes older documents of each pattern itself."""
    plan: dict[str, int] = {}
    for suffix, days in _retention_by_suffix(cfg).items():
        pattern = dead_letter_pattern() if suffix == DEAD_LETTER_SUFFIX else names.level_pattern(suffix)
        plan[pattern] = days
    return plan


def ilm_policies(cfg: ElasticsearchConfig) -> dict[str, Body]:
    """ILM policy name → ``policy`` body: roll over daily (or at 50 GB a shard), delete
    after the level's retention (counted from rollover)."""
    return {
        names.policy_name(suffix): {
            "_meta": {"managed_by": "soc"},
            "phases": {
                "hot": {"min_age": "0ms", "actions": {"rollover": dict(ROLLOVER)}},
                "delete": {"min_age": f"{days}d", "actions": {"delete": {}}},
            },
        }
        for suffix, days in _retention_by_suffix(cfg).items()
    }


def describe(info: ClusterInfo, cfg: ElasticsearchConfig) -> dict[str, dict[str, Body]]:
    """Everything :func:`install` would PUT, by kind (for docs and ``--dry-run``)."""
    return {
        "component_templates": component_templates(info, cfg),
        "index_templates": index_templates(info, cfg),
        "ilm_policies": ilm_policies(cfg) if info.ilm else {},
    }


# --- installing ----------------------------------------------------------------------------

@dataclass(slots=True)
class InstallReport:
    created: list[str] = field(default_factory=list)
    """``kind/name`` of what did not exist before (``index_template/soc-logs-l3``)."""
    updated: list[str] = field(default_factory=list)
    """``kind/name`` of what existed and was overwritten (usually with the same content)."""
    retention_plan: dict[str, int] = field(default_factory=dict)
    """Index pattern → days, when the cluster has no ILM and the store must delete old
    documents itself; empty when ILM policies enforce retention."""

    @property
    def installed(self) -> list[str]:
        return [*self.created, *self.updated]

    def summary(self) -> str:
        text = (f"mẫu chỉ mục: tạo {len(self.created)}, cập nhật {len(self.updated)} / "
                f"index setup: {len(self.created)} created, {len(self.updated)} updated")
        if self.retention_plan:
            text += " (không có ILM: SOC tự xóa dữ liệu hết hạn / no ILM: the SOC deletes expired data itself)"
        return text


def _refusal(error: ApiError, resource: str, privilege: str) -> TemplateInstallError:
    status = error.meta.status if error.meta is not None else None
    if status == 403:
        group = _OPENSEARCH_GROUPS.get(privilege)
        vi_group = f" (OpenSearch: nhóm quyền '{group}')" if group else ""
        en_group = f" (OpenSearch: action group '{group}')" if group else ""
        message = (f"Cụm Elasticsearch từ chối {resource}: tài khoản của SOC thiếu quyền '{privilege}'{vi_group}. "
                   f"Cấp quyền đó, hoặc đặt elasticsearch.setup_templates: false và để quản trị viên cài "
                   f"mẫu chỉ mục. / "
                   f"The cluster refused {resource}: the SOC's account lacks the '{privilege}' privilege{en_group}. "
                   f"Grant it, or set elasticsearch.setup_templates: false and have an administrator install "
                   f"the templates.")
        return TemplateInstallError(message, resource=resource, status=status, privilege=privilege)
    if status == 401:
        message = (f"Cụm Elasticsearch không chấp nhận thông tin đăng nhập khi {resource} "
                   f"(kiểm tra api_key hoặc username/password). / "
                   f"The cluster rejected the credentials at {resource} (check api_key or username/password).")
        return TemplateInstallError(message, resource=resource, status=status)
    reason = _reason(error)
    message = (f"Cụm Elasticsearch từ chối {resource} (HTTP {status}): {reason} / "
               f"The cluster refused {resource} (HTTP {status}): {reason}")
    return TemplateInstallError(message, resource=resource, status=status)


def _reason(error: ApiError) -> str:
    body = error.body
    if isinstance(body, dict):
        detail = body.get("error")
        if isinstance(detail, dict):
            return f"{detail.get('type', '')}: {detail.get('reason', '')}".strip(": ")
        if detail:
            return str(detail)
    return str(error.message)


def _template_kwargs(body: Body) -> Body:
    """The client's keyword arguments for a template body (``_meta`` is ``meta`` there)."""
    return {("meta" if key == "_meta" else key): value for key, value in body.items()}


def _put(report: InstallReport, kind: str, name: str, privilege: str,
         exists: Callable[[], object], put: Callable[[], object]) -> None:
    label = f"{kind}/{name}"
    try:
        existed = bool(exists())
        put()
    except ApiError as error:
        raise _refusal(error, label, privilege) from error
    (report.updated if existed else report.created).append(label)


def _policy_exists(client: Elasticsearch, name: str) -> bool:
    try:
        client.ilm.get_lifecycle(name=name)
    except ApiError as error:
        if error.meta is not None and error.meta.status == 404:
            return False
        raise
    return True


def install(client: Elasticsearch, info: ClusterInfo, cfg: ElasticsearchConfig, *,
            replicas: int | None = None) -> InstallReport:
    """Install (or overwrite with the same content) policies, component templates and
    index templates, in that order: a template may only name what already exists.
    Raises :class:`TemplateInstallError` when the cluster refuses."""
    report = InstallReport()
    if info.ilm:
        for name, policy in ilm_policies(cfg).items():
            _put(report, "ilm_policy", name, PRIVILEGE_ILM, partial(_policy_exists, client, name),
                 partial(client.ilm.put_lifecycle, name=name, policy=policy))
    else:
        report.retention_plan = retention_plan(cfg)
    for name, template in component_templates(info, cfg, replicas=replicas).items():
        _put(report, "component_template", name, PRIVILEGE_TEMPLATES,
             partial(client.cluster.exists_component_template, name=name),
             partial(client.cluster.put_component_template, name=name, template=template))
    for name, body in index_templates(info, cfg).items():
        _put(report, "index_template", name, PRIVILEGE_TEMPLATES,
             partial(client.indices.exists_index_template, name=name),
             partial(client.indices.put_index_template, name=name, **_template_kwargs(body)))
    return report


def ensure_index(client: Elasticsearch, info: ClusterInfo, name: str, *, data_stream: bool | None = None) -> bool:
    """Create the data stream (or, without data streams or with ``data_stream=False``,
    the plain index) ``name`` from its template; ``True`` if it was created, ``False``
    if it already existed. Writes auto-create too; this is for clusters where
    ``action.auto_create_index`` is restricted, and for the alerts index."""
    as_stream = info.data_streams if data_stream is None else data_stream
    try:
        if as_stream:
            client.indices.create_data_stream(name=name)
        else:
            client.indices.create(index=name)
    except ApiError as error:
        if error.meta is not None and error.meta.status == 400 and "already_exists" in _reason(error):
            return False
        raise _refusal(error, f"index/{name}", PRIVILEGE_CREATE_INDEX) from error
    return True

"""The index setup the Elasticsearch store installs: explicit ECS mappings with
``dynamic: false``, per-level templates, dead letters, alerts, retention.

Integration tests run against osmem (OpenSearch-like: no data streams, no ILM,
``flat_object``); what only a real Elasticsearch gets (data streams, ILM policies) is
checked on the bodies produced for a :class:`ClusterInfo` of Elasticsearch 8.15.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import Elasticsearch, helpers

import collectors.parsers  # noqa: F401  (registers the parsers)
from collectors.ecs_fields import FIELD_TYPES
from collectors.event import Event, get_field
from collectors.parsers import Dispatcher, ParseContext
from soc.alerts.models import DERIVED_COLUMNS, Alert
from soc.config import LEGAL_MIN_RETENTION_DAYS, ElasticsearchConfig
from soc.store.elastic import names
from soc.store.elastic.connection import ClusterInfo, cluster_info, connect
from soc.store.elastic.templates import (
    ECS_COMPONENT,
    SETTINGS_COMPONENT,
    TemplateInstallError,
    alert_mappings,
    dead_letter_mappings,
    dead_letter_pattern,
    describe,
    ensure_index,
    event_mappings,
    ilm_policies,
    index_templates,
    install,
    mapping_conflicts,
    retention_plan,
)
from tests.conftest import DATASETS
from tests.elastic.osmem import OsmemNode

ES8 = ClusterInfo("elasticsearch", (8, 15))
OPENSEARCH = ClusterInfo("opensearch", (2, 19))
LEVEL3 = names.stream_name("linux.auth", 3, "soc")
LEVEL_TEMPLATES = [f"soc-logs-{s}" for s in ("l1", "l2", "l3", "l4", "l5", "unclassified")]


def _field(mappings: dict[str, Any], dotted: str) -> dict[str, Any] | None:
    """The mapping of a dotted field, or None when it is not mapped."""
    node: dict[str, Any] | None = {"properties": mappings["properties"]}
    for part in dotted.split("."):
        node = (node or {}).get("properties", {}).get(part)
        if node is None:
            return None
    return node


def _index_mapping(es: Elasticsearch, index: str) -> dict[str, Any]:
    body = es.indices.get_mapping(index=index).body
    return dict(next(iter(body.values()))["mappings"])


def _write(es: Elasticsearch, index: str, doc: dict[str, Any]) -> None:
    es.index(index=index, document=doc, refresh=True)


def _hits(es: Elasticsearch, index: str, query: dict[str, Any]) -> int:
    return int(es.search(index=index, query=query)["hits"]["total"]["value"])


def _index_templates(es: Elasticsearch) -> dict[str, Any]:
    return {t["name"]: t["index_template"] for t in es.indices.get_index_template()["index_templates"]}


def _installed(es: Elasticsearch, cfg: ElasticsearchConfig) -> ClusterInfo:
    info = cluster_info(es)
    install(es, info, cfg)
    return info


# --- the mapping table --------------------------------------------------------------------

def test_the_field_table_has_no_name_that_is_both_a_field_and_a_parent() -> None:
    assert mapping_conflicts(FIELD_TYPES) == []


def test_a_field_that_is_also_a_parent_is_refused_rather_than_mapped_one_way() -> None:
    table: dict[str, Any] = {"user.name": "keyword", "user.name.first": "keyword"}
    assert mapping_conflicts(table) == [("user.name", "user.name.first")]
    with pytest.raises(ValueError, match=r"user\.name"):
        event_mappings(OPENSEARCH, "flattened", types=table)


@pytest.mark.parametrize(("info", "expected"), [
    (OPENSEARCH, {"keyword": "keyword", "text": "text", "flattened": "flat_object"}),
    (ES8, {"keyword": "keyword", "text": "match_only_text", "flattened": "flattened"}),
])
def test_every_typed_field_is_mapped_with_its_type(info: ClusterInfo, expected: dict[str, str]) -> None:
    mappings = event_mappings(info, "flattened")
    for name, kind in FIELD_TYPES.items():
        mapped = _field(mappings, name)
        assert mapped is not None, name
        assert mapped["type"] == expected.get(kind, kind), name


def test_keywords_longer_than_1024_characters_are_kept_but_not_indexed() -> None:
    assert _field(event_mappings(ES8, "flattened"), "user.name") == {"type": "keyword", "ignore_above": 1024}


def test_unknown_fields_are_not_mapped_dynamically() -> None:
    mappings = event_mappings(ES8, "flattened")
    assert mappings["dynamic"] is False
    assert mappings["date_detection"] is False and mappings["numeric_detection"] is False


def test_source_is_left_to_the_cluster_default_which_logsdb_indices_require() -> None:
    # Elasticsearch refuses an explicit "_source": {"enabled": true} in a logsdb index.
    for mappings in (event_mappings(ES8, "flattened"), dead_letter_mappings(), alert_mappings(ES8, "flattened")):
        assert "_source" not in mappings


def test_stored_vendor_objects_are_kept_in_source_without_being_indexed() -> None:
    mappings = event_mappings(ES8, "stored")
    assert _field(mappings, "winlog.event_data") == {"type": "object", "enabled": False}
    assert _field(mappings, "fortinet.firewall") == {"type": "object", "enabled": False}


def test_the_alert_mapping_covers_every_alert_column() -> None:
    mappings = alert_mappings(OPENSEARCH, "flattened")
    # Derived columns (search text, level rank …) serve SQL filters and never reach documents.
    assert [c.key for c in Alert.__table__.columns
            if c.key not in DERIVED_COLUMNS and _field(mappings, c.key) is None] == []


# --- what a real Elasticsearch gets --------------------------------------------------------

def test_on_elasticsearch_each_level_is_a_data_stream_under_its_own_policy() -> None:
    templates = index_templates(ES8, ElasticsearchConfig())
    for suffix in ("l1", "l2", "l3", "l4", "l5", "unclassified"):
        body = templates[f"soc-logs-{suffix}"]
        assert body["index_patterns"] == [f"logs-*-*.{suffix}"]
        assert body["data_stream"] == {}
        assert body["priority"] == 200
        assert body["composed_of"] == [SETTINGS_COMPONENT, ECS_COMPONENT]
        assert body["template"]["settings"]["index.lifecycle.name"] == f"soc-logs-{suffix}"


def test_on_elasticsearch_the_dead_letters_are_a_data_stream_kept_90_days() -> None:
    cfg = ElasticsearchConfig()
    body = index_templates(ES8, cfg)["soc-logs-deadletter"]
    assert body["data_stream"] == {}
    assert body["template"]["settings"]["index.lifecycle.name"] == "soc-logs-deadletter"
    assert ilm_policies(cfg)["soc-logs-deadletter"]["phases"]["delete"]["min_age"] == "90d"


def test_the_dead_letter_template_outranks_the_overlapping_level_templates() -> None:
    templates = index_templates(ES8, ElasticsearchConfig())
    assert templates["soc-logs-deadletter"]["priority"] > templates["soc-logs-l3"]["priority"]


def test_on_elasticsearch_alerts_are_a_plain_index_updated_in_place() -> None:
    body = index_templates(ES8, ElasticsearchConfig(alerts_index="province-alerts"))["province-alerts"]
    assert body["index_patterns"] == ["province-alerts*"]
    assert "data_stream" not in body


def test_ilm_policies_roll_over_daily_or_at_50gb_and_delete_after_the_retention() -> None:
    policy = ilm_policies(ElasticsearchConfig())["soc-logs-l4"]
    assert policy["phases"]["hot"]["actions"]["rollover"] == {"max_primary_shard_size": "50gb", "max_age": "1d"}
    assert policy["phases"]["delete"] == {"min_age": "180d", "actions": {"delete": {}}}


def test_on_opensearch_there_is_no_data_stream_lifecycle_or_codec() -> None:
    cfg = ElasticsearchConfig()
    planned = describe(OPENSEARCH, cfg)
    assert planned["ilm_policies"] == {}
    for body in planned["index_templates"].values():
        assert "data_stream" not in body
        assert "index.lifecycle.name" not in body["template"].get("settings", {})
    assert "index.codec" not in planned["component_templates"][SETTINGS_COMPONENT]["settings"]


# --- retention ----------------------------------------------------------------------------

def test_each_level_keeps_events_as_long_as_the_configuration_says() -> None:
    cfg = ElasticsearchConfig(retention_days={3: 120, 5: 400}, unclassified_retention_days=500)
    policies = ilm_policies(cfg)
    kept = {suffix: policies[f"soc-logs-{suffix}"]["phases"]["delete"]["min_age"]
            for suffix in ("l1", "l2", "l3", "l4", "l5", "unclassified")}
    assert kept == {"l1": "90d", "l2": "90d", "l3": "120d", "l4": "180d", "l5": "400d", "unclassified": "500d"}


def test_the_retention_plan_and_the_ilm_policies_agree() -> None:
    cfg = ElasticsearchConfig(retention_days={2: 45})
    policies = ilm_policies(cfg)
    plan = retention_plan(cfg)
    assert plan[dead_letter_pattern()] == 90
    for suffix in ("l1", "l2", "l3", "l4", "l5", "unclassified"):
        assert f"{plan[names.level_pattern(suffix)]}d" == policies[f"soc-logs-{suffix}"]["phases"]["delete"]["min_age"]


def test_default_retention_meets_the_legal_minimum_of_every_level() -> None:
    plan = retention_plan(ElasticsearchConfig())
    short = {level: plan[names.level_pattern(f"l{level}")] for level, days in LEGAL_MIN_RETENTION_DAYS.items()
             if plan[names.level_pattern(f"l{level}")] < days}
    assert short == {}
    assert LEGAL_MIN_RETENTION_DAYS == {1: 0, 2: 30, 3: 90, 4: 180, 5: 365}


# --- installing on a cluster ---------------------------------------------------------------

def test_install_creates_everything_the_first_time(es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    report = install(es, cluster_info(es), es_config)
    assert report.updated == []
    assert sorted(report.created) == sorted([
        f"component_template/{ECS_COMPONENT}", f"component_template/{SETTINGS_COMPONENT}",
        *(f"index_template/{name}" for name in [*LEVEL_TEMPLATES, "soc-logs-deadletter", "soc-alerts"]),
    ])


def test_install_is_idempotent(es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    info = cluster_info(es)
    first = install(es, info, es_config)
    templates = _index_templates(es)
    second = install(es, info, es_config)
    assert second.created == [] and sorted(second.updated) == sorted(first.created)
    assert _index_templates(es) == templates


def test_without_ilm_install_hands_the_retention_plan_to_the_store(
        es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    report = install(es, cluster_info(es), es_config)
    assert report.retention_plan == retention_plan(es_config)
    assert not any(label.startswith("ilm_policy/") for label in report.installed)


def test_an_event_in_a_level_3_stream_gets_the_explicit_mapping(
        es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    _installed(es, es_config)
    _write(es, LEVEL3, {"@timestamp": "2026-11-23T01:00:00Z", "source": {"ip": "203.0.113.7"},
                        "user": {"name": "root"}, "winlog": {"event_data": {"TargetUserName": "admin"}}})
    mappings = _index_mapping(es, LEVEL3)
    assert _field(mappings, "source.ip") == {"type": "ip", "ignore_malformed": True}
    assert _field(mappings, "user.name") == {"type": "keyword", "ignore_above": 1024}
    assert _field(mappings, "winlog.event_data") == {"type": "flat_object"}


def test_a_vendor_object_is_searchable_by_key_when_flattened(
        es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    _installed(es, es_config)
    _write(es, LEVEL3, {"@timestamp": "2026-11-23T01:00:00Z", "winlog": {"event_data": {"TargetUserName": "admin"}}})
    assert _hits(es, LEVEL3, {"term": {"winlog.event_data.TargetUserName": "admin"}}) == 1


def test_a_vendor_object_is_only_stored_when_unknown_fields_are_stored(
        es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    cfg = es_config.model_copy(update={"unknown_fields": "stored"})
    _installed(es, cfg)
    _write(es, LEVEL3, {"@timestamp": "2026-11-23T01:00:00Z", "winlog": {"event_data": {"TargetUserName": "admin"}}})
    assert _field(_index_mapping(es, LEVEL3), "winlog.event_data") == {"type": "object", "enabled": False}
    assert _hits(es, LEVEL3, {"term": {"winlog.event_data.TargetUserName": "admin"}}) == 0


def test_an_unknown_field_is_kept_in_source_but_neither_mapped_nor_searchable(
        es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    _installed(es, es_config)
    _write(es, LEVEL3, {"@timestamp": "2026-11-23T01:00:00Z", "acme": {"shift": "night"}, "user": {"nick": "bob"}})
    mappings = _index_mapping(es, LEVEL3)
    assert _field(mappings, "acme") is None and _field(mappings, "user.nick") is None
    assert _hits(es, LEVEL3, {"term": {"acme.shift": "night"}}) == 0
    source = es.search(index=LEVEL3, query={"match_all": {}})["hits"]["hits"][0]["_source"]
    assert source["acme"] == {"shift": "night"} and source["user"] == {"nick": "bob"}


def test_a_badly_typed_value_leaves_the_rest_of_the_event_searchable(
        es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    _installed(es, es_config)
    _write(es, LEVEL3, {"@timestamp": "2026-11-23T01:00:00Z", "source": {"port": "-", "ip": "unknown"},
                        "user": {"name": "root"}})
    assert _hits(es, LEVEL3, {"term": {"user.name": "root"}}) == 1


def test_a_bare_term_is_looked_up_in_the_message_and_the_original_event_only(
        es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    _installed(es, es_config)
    _write(es, LEVEL3, {"@timestamp": "2026-11-23T01:00:00Z", "event": {"original": "sshd: Failed password"}})
    _write(es, LEVEL3, {"@timestamp": "2026-11-23T01:00:00Z", "message": "session opened"})
    _write(es, LEVEL3, {"@timestamp": "2026-11-23T01:00:00Z", "user": {"name": "failed"}})
    assert _hits(es, LEVEL3, {"query_string": {"query": "failed OR opened"}}) == 2


def test_the_dead_letter_template_applies(es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    _installed(es, es_config)
    index = names.dead_letter_name(es_config.namespace)
    raw = orjson.dumps({"source": {"ip": {"nested": "object"}}}).decode()
    _write(es, index, {"@timestamp": "2026-11-23T01:00:00Z", "error": {"type": "mapper_parsing_exception"},
                       "dead_letter": {"index": LEVEL3, "status": 400, "stage": "bulk"},
                       "event": {"original": raw, "id": "e1"}, "gov": {"system": {"id": "portal"}}})
    mappings = _index_mapping(es, index)
    assert _field(mappings, "event.original") == {"type": "text", "index": False}
    assert _field(mappings, "dead_letter.status") == {"type": "long"}
    assert _hits(es, index, {"term": {"error.type": "mapper_parsing_exception"}}) == 1


def test_the_alerts_template_applies_to_the_alert_document(
        es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    _installed(es, es_config)
    seen = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    alert = Alert(id="a1", rule_id="r1", rule_title="SSH brute force", level="high", kind="detection",
                  status="new", tactics=["credential_access"], techniques=["T1110"], dedup_key="k" * 64, count=12,
                  first_seen=seen, last_seen=seen, created_at=seen, updated_at=seen, version=1,
                  event_ids=["e1", "e2"], key_fields={"source.ip": "203.0.113.7"}, system_id="portal",
                  agency_id="stttt", level_gov="province", classification=3, retro=False,
                  summary="Dò mật khẩu SSH / SSH brute force")
    _write(es, es_config.alerts_index, alert.as_dict())
    mappings = _index_mapping(es, es_config.alerts_index)
    assert _field(mappings, "last_seen") == {"type": "date"}
    assert _field(mappings, "count") == {"type": "long"}
    assert _field(mappings, "key_fields") == {"type": "flat_object"}
    assert _hits(es, es_config.alerts_index, {"term": {"techniques": "T1110"}}) == 1


def test_ensure_index_creates_the_fallback_index_from_its_template_once(
        es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    info = _installed(es, es_config)
    assert ensure_index(es, info, LEVEL3) is True
    assert ensure_index(es, info, LEVEL3) is False
    assert _field(_index_mapping(es, LEVEL3), "source.ip") == {"type": "ip", "ignore_malformed": True}


# --- real events ----------------------------------------------------------------------------

def _real_events() -> list[Event]:
    """A few dozen parsed events each from SSH, Linux, Apache, FortiGate and Windows samples."""
    sources = [
        DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1",
        DATASETS / "logs" / "loghub" / "Linux" / "Linux_2k.log.part1",
        DATASETS / "logs" / "loghub" / "Apache" / "Apache_2k.log.part1",
        DATASETS / "firewall" / "elastic" / "test-fortinet.odd-lines.log",
        DATASETS / "evtx" / "Credential Access" / "CA_DCSync_4662.jsonl",
    ]
    events: list[Event] = []
    for path in sources:
        ctx = ParseContext(now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        events.extend(Dispatcher().parse(line, None, ctx) for line in lines[:40])
    return events


def test_parsed_real_events_are_accepted_without_a_mapping_error(
        es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    _installed(es, es_config)
    events = _real_events()
    actions = [{"_index": names.stream_name(get_field(e, "event.dataset"), 3, "soc"), "_source": e} for e in events]
    stored, errors = helpers.bulk(es, actions, raise_on_error=False, refresh=True)
    assert errors == []
    assert stored == len(events)
    assert {get_field(e, "event.dataset") for e in events} >= {"system.auth", "fortinet.firewall"}


def test_a_parsed_ssh_event_is_found_by_its_typed_fields(es: Elasticsearch, es_config: ElasticsearchConfig) -> None:
    _installed(es, es_config)
    line = next(line for line in (DATASETS / "logs" / "loghub" / "OpenSSH" / "OpenSSH_2k.log.part1")
                .read_text(encoding="utf-8").splitlines() if "Failed password" in line)
    event = Dispatcher().parse(line, None, ParseContext(now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC)))
    index = names.stream_name(get_field(event, "event.dataset"), 3, "soc")
    _write(es, index, event)
    ip = get_field(event, "source.ip")
    assert _hits(es, index, {"bool": {"filter": [{"term": {"source.ip": f"{ip}/24"}},
                                                 {"term": {"event.outcome": "failure"}}]}}) == 1


# --- refusals --------------------------------------------------------------------------------

class _Refusing(OsmemNode):
    """A cluster whose account may read but not change what ``refused`` names."""

    refused: tuple[str, ...] = ()

    def perform_request(self, method: str, target: str, body: bytes | None = None,
                        headers: HttpHeaders | None = None, request_timeout: Any = None) -> Any:
        if any(part in target for part in self.refused) and (method == "PUT" or "_ilm" in target):
            error = {"error": {"type": "security_exception", "reason": f"action on [{target}] is unauthorized"},
                     "status": 403}
            meta = ApiResponseMeta(status=403, http_version="1.1", duration=0.0, node=self.config,
                                   headers=HttpHeaders({"content-type": "application/json"}))
            return NodeApiResponse(meta, orjson.dumps(error))
        return super().perform_request(method, target, body=body, headers=headers, request_timeout=request_timeout)


class _NoTemplates(_Refusing):
    refused = ("_index_template", "_component_template")


class _NoIlm(_Refusing):
    refused = ("_ilm",)


def test_a_refused_template_names_the_missing_privilege(es_config: ElasticsearchConfig) -> None:
    client = connect(es_config, node_class=_NoTemplates)
    with pytest.raises(TemplateInstallError, match="manage_index_templates") as caught:
        install(client, cluster_info(client), es_config)
    assert caught.value.privilege == "manage_index_templates" and caught.value.status == 403
    assert "thiếu quyền" in str(caught.value) and "lacks" in str(caught.value)


def test_a_refused_ilm_policy_names_the_missing_privilege(es_config: ElasticsearchConfig) -> None:
    client = connect(es_config, node_class=_NoIlm)
    with pytest.raises(TemplateInstallError, match="manage_ilm") as caught:
        install(client, ES8, es_config)
    assert caught.value.resource == "ilm_policy/soc-logs-l1"

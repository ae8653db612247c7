"""Documents read back from Elasticsearch or OpenSearch indices → our events.

A record reaches these parsers in one of two shapes: the document itself (its
``_source``), or a search hit ``{"_index": …, "_id": …, "_source": {…}}`` as the
Elasticsearch tail source (:mod:`collectors.sources.es_tail`) and export tools such
as elasticdump write them. A hit's origin is kept in ``labels.source_index`` and
``labels.source_id``: ECS has no field for "read from index X", and ``labels`` is
ECS's place for custom keyword metadata.

ECS documents (Filebeat, Winlogbeat, Auditbeat, Packetbeat, Elastic Agent) are kept
as they are, with three normalisations so that they look like the events our own
parsers make:

* Windows documents (``winlog.*``) go through the Windows parser's Winlogbeat path,
  which keeps what the document has and fills in what our Sigma pipelines read
  (``winlog.event_id`` and ``event.code`` as strings, ``winlog.event_data`` under
  the Windows field names, ``user.*``, ``source.*``, ``process.*`` …);
* ``@timestamp`` is rewritten in our canonical form (UTC, milliseconds, ``Z``);
* ``event.dataset`` is the document's own (``event.dataset``, else
  ``data_stream.dataset``), else what the Windows parser derives from the channel,
  else the index name without its version, date and rollover suffixes
  (``filebeat-8.11.0-2026.11.24-000001`` → ``filebeat``).

``event.original`` is the document as compact JSON unless the document carries one.
Wazuh alerts are recognised here (:func:`is_wazuh_alert`) so that auto-detection
leaves them to :mod:`collectors.parsers.wazuh_alert`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from collectors.event import Event, iso_from_epoch, normalize_timestamp
from collectors.parsers.base import ObjectParser, ParseContext, register_object
from collectors.parsers.windows import WindowsEventParser

_WINDOWS = WindowsEventParser()
_DATA_STREAM_TYPES = frozenset({"logs", "metrics", "traces", "synthetics", "profiling"})
_BAD_DATASET = re.compile(r"[^a-z0-9_.]+")


def unwrap_hit(obj: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None]:
    """``(document, index, id)``: the ``_source`` of a search hit with the hit's
    ``_index`` and ``_id``, or the object itself with no origin."""
    source = obj.get("_source")
    if type(source) is dict and ("_index" in obj or "_id" in obj):
        index, doc_id = obj.get("_index"), obj.get("_id")
        return (source, index if isinstance(index, str) else None,
                str(doc_id) if isinstance(doc_id, str | int) and not isinstance(doc_id, bool) else None)
    return obj, None, None


def is_wazuh_alert(doc: dict[str, Any]) -> bool:
    """A Wazuh alert (``wazuh-alerts-*``): the rule that fired, the agent, and what
    was analysed (``full_log``, decoded ``data``) or the decoder that read it."""
    return (type(doc.get("rule")) is dict and type(doc.get("agent")) is dict
            and ("full_log" in doc or type(doc.get("data")) is dict or type(doc.get("decoder")) is dict))


def dataset_from_index(index: str) -> str | None:
    """A dataset name for documents of an index that carry none: the data stream's
    dataset (``logs-system.auth-default``), else the name up to its first
    version/date part (``wazuh-alerts-4.x-2026.11.24`` → ``wazuh_alerts``)."""
    name = index.lower()
    if name.startswith(".ds-"):
        name = name[4:]
    if ":" in name:  # cross-cluster search: "remote:index"
        name = name.rsplit(":", 1)[1]
    parts = [p for p in name.split("-") if p]
    if len(parts) >= 3 and parts[0] in _DATA_STREAM_TYPES:
        return _clean_dataset(parts[1])
    kept: list[str] = []
    for part in parts:
        if part[:1].isdigit():
            break
        kept.append(part)
    return _clean_dataset("_".join(kept))


def _clean_dataset(value: str) -> str | None:
    cleaned = _BAD_DATASET.sub("_", value.lower()).strip("._")
    return cleaned or None


def canonical_timestamp(value: Any) -> str | None:
    """Our ``@timestamp`` form of an ISO 8601 string or epoch milliseconds."""
    if isinstance(value, str) and value:
        try:
            return normalize_timestamp(value)
        except ValueError:
            if value.isdigit():
                return iso_from_epoch(int(value) / 1000.0)
            return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return iso_from_epoch(float(value) / 1000.0)
    return None


def copy_document(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A deep copy of the document and its compact JSON text (one serialisation
    serves both: the copy keeps the parsers from changing the record, which a
    retried batch parses again)."""
    raw = orjson.dumps(doc, default=str)
    copied: dict[str, Any] = orjson.loads(raw)
    return copied, raw.decode()


def add_origin(event: Event, index: str | None, doc_id: str | None) -> None:
    """``labels.source_index`` / ``labels.source_id`` of a document read from a hit."""
    if index is None and doc_id is None:
        return
    labels = event.get("labels")
    if not isinstance(labels, dict):
        labels = event["labels"] = {}
    if index is not None:
        labels["source_index"] = index
    if doc_id is not None:
        labels["source_id"] = doc_id


def _ecs_markers(doc: dict[str, Any]) -> bool:
    return "@timestamp" in doc and (type(doc.get("ecs")) is dict or type(doc.get("data_stream")) is dict)


@register_object
class EcsDocumentParser(ObjectParser):
    """ECS documents from Beats and Elastic Agent, bare or as search hits."""

    name = "ecs"
    aliases = ("beats", "elastic_agent", "filebeat", "auditbeat", "packetbeat")
    description = "ECS documents from Elasticsearch indices (Beats, Elastic Agent), bare or as search hits"
    # Before the Windows parser: a hit wraps a Winlogbeat document the Windows parser
    # would not recognise. Bare Winlogbeat documents are left to it (same result).
    priority = 14

    def sniff(self, obj: dict[str, Any]) -> bool:
        doc, _, _ = unwrap_hit(obj)
        if is_wazuh_alert(doc):
            return False
        if doc is not obj:
            return True
        return "winlog" not in doc and _ecs_markers(doc)

    def parse(self, obj: dict[str, Any], ctx: ParseContext) -> Event | None:
        doc, index, doc_id = unwrap_hit(obj)
        copied, original = copy_document(doc)
        event: Event | None = None
        if type(copied.get("winlog")) is dict:
            event = _WINDOWS.parse(copied, ctx)
        if event is None:
            event = copied
        finish_ecs(event, copied, index)
        meta = event["event"]
        if not meta.get("original"):
            meta["original"] = original
        add_origin(event, index, doc_id)
        return event


def finish_ecs(event: Event, doc: dict[str, Any], index: str | None) -> None:
    """Canonical ``@timestamp``, ``event.dataset`` and ``event.kind``."""
    stamp = canonical_timestamp(event.get("@timestamp"))
    if stamp is None:
        stamp = canonical_timestamp(doc.get("timestamp"))
    if stamp is not None:
        event["@timestamp"] = stamp
    else:
        # Unreadable: the pipeline stamps the receive time and tags the event;
        # the original value stays in event.original.
        event.pop("@timestamp", None)
    meta = event.get("event")
    if not isinstance(meta, dict):
        meta = event["event"] = {}
    if not meta.get("dataset"):
        stream = doc.get("data_stream")
        dataset = stream.get("dataset") if isinstance(stream, dict) else None
        if not (isinstance(dataset, str) and dataset) and index is not None:
            dataset = dataset_from_index(index)
        if isinstance(dataset, str) and dataset:
            meta["dataset"] = dataset
    meta.setdefault("kind", "event")

"""Connecting to the cluster and learning what it can do.

The product speaks to Elasticsearch 8.x/9.x through elasticsearch-py 8. It also
works against OpenSearch-based clusters (the Wazuh indexer that many provinces
already run): those have no data streams, ILM or ``_pit``, so the store and the
tail source ask :class:`ClusterInfo` which path to take instead of guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from soc.config import ElasticsearchConfig

NodeClass = Any
"""An ``elastic_transport`` node class (tests pass an adapter for their server)."""

_node_class_override: NodeClass | None = None


def set_node_class(node_class: NodeClass | None) -> None:
    """Use ``node_class`` for every client made from now on (``None`` restores the
    default). The integration tests install their transport adapter here."""
    global _node_class_override
    _node_class_override = node_class


def connect(cfg: ElasticsearchConfig, urls: Sequence[str] | None = None, *,
            node_class: NodeClass | None = None) -> Elasticsearch:
    """A client for the cluster the configuration names (or for ``urls``)."""
    hosts = list(urls or cfg.url)
    if not hosts:
        raise ValueError("no Elasticsearch URL configured / chưa cấu hình URL Elasticsearch")
    kwargs: dict[str, Any] = {
        "request_timeout": cfg.request_timeout,
        # Retries are ours (backoff, dead letters), not the transport's.
        "max_retries": 0,
        "retry_on_timeout": False,
    }
    if cfg.api_key:
        kwargs["api_key"] = cfg.api_key
    elif cfg.username:
        kwargs["basic_auth"] = (cfg.username, cfg.password or "")
    if cfg.ca_cert is not None:
        kwargs["ca_certs"] = str(cfg.ca_cert)
    if not cfg.verify_certs:
        kwargs["verify_certs"] = False
        kwargs["ssl_show_warn"] = False
    chosen = node_class or _node_class_override
    if chosen is not None:
        kwargs["node_class"] = chosen
    return Elasticsearch(hosts, **kwargs)


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    distribution: str
    """``elasticsearch`` or ``opensearch``."""
    version: tuple[int, ...]

    @property
    def is_elasticsearch(self) -> bool:
        return self.distribution == "elasticsearch"

    @property
    def data_streams(self) -> bool:
        return self.is_elasticsearch

    @property
    def ilm(self) -> bool:
        return self.is_elasticsearch

    @property
    def flattened_type(self) -> str:
        """The mapping type of a flattened object field."""
        return "flattened" if self.is_elasticsearch else "flat_object"

    def pit_path(self, index: str) -> str:
        """Where a point in time is opened."""
        return f"/{index}/_pit" if self.is_elasticsearch else f"/{index}/_search/point_in_time"

    def close_pit_path(self) -> str:
        return "/_pit" if self.is_elasticsearch else "/_search/point_in_time"


def cluster_info(client: Elasticsearch) -> ClusterInfo:
    """Ask the cluster what it is (``GET /``)."""
    body: dict[str, Any] = dict(client.info())
    version = body.get("version") or {}
    distribution = str(version.get("distribution") or "elasticsearch").lower()
    numbers = tuple(int(p) for p in str(version.get("number", "0")).split("-")[0].split(".") if p.isdigit())
    return ClusterInfo(distribution, numbers or (0,))

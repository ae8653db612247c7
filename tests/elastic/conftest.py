"""Fixtures for the Elasticsearch path: a real osmem-server on 127.0.0.1.

Each test gets a copy-on-write clone of one session-wide server (milliseconds), and
every client the product makes uses :class:`tests.elastic.osmem.OsmemNode`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch
from osmem_server import OsmemServer

from soc.config import ElasticsearchConfig
from soc.store.elastic.connection import connect, set_node_class
from tests.elastic.osmem import OsmemNode


@pytest.fixture(scope="session")
def osmem_server() -> Iterator[OsmemServer]:
    server = OsmemServer.start(japanese=False, addr="127.0.0.1:0")
    yield server
    server.close()


@pytest.fixture
def osmem_url(osmem_server: OsmemServer) -> Iterator[str]:
    clone = osmem_server.clone()
    yield clone.url
    clone.close()


@pytest.fixture(autouse=True)
def _osmem_adapter() -> Iterator[None]:
    set_node_class(OsmemNode)
    yield
    set_node_class(None)


@pytest.fixture
def es_config(osmem_url: str) -> ElasticsearchConfig:
    return ElasticsearchConfig(url=[osmem_url], request_timeout=10.0)


@pytest.fixture
def es(es_config: ElasticsearchConfig) -> Elasticsearch:
    return connect(es_config)

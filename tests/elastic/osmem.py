"""The test-only adapter between elasticsearch-py and osmem-server.

osmem-server (PyPI) is an in-memory OpenSearch-compatible server: the only
Elasticsearch-like server these machines can run. elasticsearch-py 8 sends
``application/vnd.elasticsearch+json; compatible-with=8`` media types, which the
server rejects; this node class rewrites them to plain JSON/NDJSON. Nothing else
is changed: every request the product makes reaches the server as it was made.
"""

from __future__ import annotations

from typing import Any

from elastic_transport import HttpHeaders, Urllib3HttpNode


class OsmemNode(Urllib3HttpNode):
    def perform_request(self, method: str, target: str, body: bytes | None = None,
                        headers: HttpHeaders | None = None, request_timeout: Any = None) -> Any:
        plain = HttpHeaders(headers or {})
        for name in ("accept", "content-type"):
            value = plain.get(name)
            if value and "compatible-with" in value:
                plain[name] = "application/x-ndjson" if "x-ndjson" in value else "application/json"
        return super().perform_request(method, target, body=body, headers=plain, request_timeout=request_timeout)


def install() -> None:
    """Use the adapter for every client the product makes in this process (the
    end-to-end tests' child ``soc run`` calls this before starting)."""
    from soc.store.elastic.connection import set_node_class

    set_node_class(OsmemNode)

"""``soc rules convert``: the same rules as queries for Kibana users, through pySigma's
Elasticsearch backends and our processing pipelines (so the queries name the ECS
fields our parsers emit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sigma.backends.elasticsearch import EqlBackend, ESQLBackend, LuceneBackend
from sigma.collection import SigmaCollection

from soc.detect.loader import load_pipeline
from soc.i18n import t

BACKENDS: dict[str, Any] = {"lucene": LuceneBackend, "esql": ESQLBackend, "eql": EqlBackend}


def convert_rule(path: Path, target: str, pipelines: Path | None = None) -> list[str]:
    """Queries for every rule in the file (correlations included where the backend
    supports them). Raises ValueError for an unknown target."""
    backend_class = BACKENDS.get(target)
    if backend_class is None:
        raise ValueError(t("rules.convert_target", target=target))
    collection = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"))
    pipeline = load_pipeline(pipelines) if pipelines is not None else load_pipeline()
    backend = backend_class(processing_pipeline=pipeline)
    return [str(query) for query in backend.convert(collection)]

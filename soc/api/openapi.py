"""The OpenAPI document as FastAPI generates it, with the ``null`` values of the
examples kept.

FastAPI encodes the finished document with ``exclude_none=True``, which also drops
every ``None`` inside the examples (fastapi/fastapi#5559): an answer's example then
lacks its required nullable fields (``resolved_at``, ``expires_at`` …) and no longer
validates against its own schema. The examples are put back from where they were
written (model ``json_schema_extra`` and ``Field(examples=…)``, a route's
``responses`` and ``openapi_extra``), each matched by its served, stripped form.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import TypeAdapter

_EXAMPLE_KEYS = ("example", "examples")


def keep_example_nulls(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and what serves it) return the examples with their nulls."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    restored: int | None = None

    def openapi() -> dict[str, Any]:
        nonlocal restored
        spec = generate()
        # FastAPI caches the document and returns that same object until its routes change.
        if id(spec) != restored:
            restore_nulls(spec, written_examples(app))
            restored = id(spec)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def written_examples(app: FastAPI) -> list[Any]:
    """Every example value as the code writes it, from every route of ``app``."""
    found: list[Any] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        sources: list[Any] = [route.responses, route.openapi_extra or {}]
        types = [route.response_model, *(param.field_info.annotation for param in route.dependant.body_params)]
        for annotation in types:
            if annotation is None:
                continue
            adapter: TypeAdapter[Any] = TypeAdapter(annotation)
            sources += [adapter.json_schema(mode="validation"), adapter.json_schema(mode="serialization")]
        for source in sources:
            found.extend(_example_values(source))
    return found


def restore_nulls(spec: dict[str, Any], written: Iterable[Any]) -> None:
    """Replace, in place, each example of ``spec`` that is a written example with its
    nulls dropped by the written example itself."""
    originals: dict[bytes, Any] = {}
    ambiguous: set[bytes] = set()
    for value in written:
        full = jsonable_encoder(value)
        stripped = _canonical(jsonable_encoder(value, exclude_none=True))
        if stripped == _canonical(full):
            continue
        if stripped in originals and _canonical(originals[stripped]) != _canonical(full):
            # Two examples that differ only where a null was: either could be meant.
            ambiguous.add(stripped)
        originals.setdefault(stripped, full)
    for key in ambiguous:
        del originals[key]
    if originals:
        _restore(spec, originals)


def _restore(node: Any, originals: dict[bytes, Any]) -> None:
    if isinstance(node, dict):
        for key in _EXAMPLE_KEYS:
            if key in node:
                original = originals.get(_canonical(node[key]))
                if original is not None:
                    node[key] = copy.deepcopy(original)
        for value in node.values():
            _restore(value, originals)
    elif isinstance(node, list):
        for item in node:
            _restore(item, originals)


def _example_values(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key in _EXAMPLE_KEYS:
            if key in node:
                yield node[key]
        for value in node.values():
            yield from _example_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _example_values(item)


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)

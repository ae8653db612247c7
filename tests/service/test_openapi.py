"""The API description (``/openapi.json``): every operation says what it does in
Vietnamese and English, every JSON body and successful JSON answer comes with an
example, every example is a valid instance of what it illustrates (nulls included),
and only service readers get the description.

The description does not depend on the database, so one app built from a minimal
state serves the spec tests of this module; the access tests use the real service."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter, ValidationError

from soc.api.app import create_app
from soc.api.state import AppState
from soc.config import SocConfig
from soc.pipeline.metrics import Metrics
from soc.systems import SystemRegistry
from tests.service.conftest import Caller

JSON = "application/json"


async def _no_submit(batch: Any) -> Any:
    raise AssertionError("the spec tests ingest nothing")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    state = AppState(cfg=SocConfig(), store=None, registry=SystemRegistry(), metrics=Metrics(),  # type: ignore[arg-type]
                     submit=_no_submit, db=None)  # type: ignore[arg-type]
    return create_app(state)


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.original_route.include_in_schema:
            yield context.original_route


def route_of(app: FastAPI, name: str) -> APIRoute:
    method, path = name.split(" ", 1)
    return next(r for r in api_routes(app) if r.path_format == path and method in r.methods)


def component_examples(schema: dict[str, Any]) -> list[Any]:
    return [*schema.get("examples", []), *([schema["example"]] if "example" in schema else [])]


def media_examples(media: dict[str, Any]) -> list[Any]:
    named = [e["value"] for e in media.get("examples", {}).values() if "value" in e]
    return [*named, *([media["example"]] if "example" in media else [])]


def has_example(media: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """On the media type, or on the component its schema (or its items) names."""
    if "example" in media or "examples" in media:
        return True
    schema = media.get("schema", {})
    ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
    return ref is not None and bool(component_examples(schemas[ref.rsplit("/", 1)[-1]]))


def json_bodies(operation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, media type) of the JSON request body and of every 2xx JSON answer."""
    body = operation.get("requestBody", {}).get("content", {})
    if JSON in body:
        yield "request body", body[JSON]
    for status, answer in operation.get("responses", {}).items():
        if status.startswith("2") and JSON in answer.get("content", {}):
            yield f"{status} answer", answer["content"][JSON]


def models_behind(annotation: Any, seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    """The pydantic models ``annotation`` names, with the models of their fields (a tree
    of agencies names itself)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return
        seen.add(annotation)
        yield annotation
        for field in annotation.model_fields.values():
            yield from models_behind(field.annotation, seen)
    elif isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for argument in typing.get_args(annotation):
            yield from models_behind(argument, seen)


def component_models(app: FastAPI) -> dict[str, list[type[BaseModel]]]:
    """Component name → the models of the app's routes it may stand for (FastAPI names a
    component after its model, with the module when two models share a name, and adds
    ``-Input``/``-Output`` when the two directions differ)."""
    found: dict[str, list[type[BaseModel]]] = {}
    seen: set[type[BaseModel]] = set()
    for route in api_routes(app):
        annotations = [route.response_model, *(p.field_info.annotation for p in route.dependant.body_params)]
        for annotation in annotations:
            for model in models_behind(annotation, seen):
                long_name = f"{model.__module__.replace('.', '__')}__{model.__qualname__}"
                for name in {model.__name__, long_name}:
                    if model not in found.setdefault(name, []):
                        found[name].append(model)
    return found


# --- the description ---------------------------------------------------------------------

def bilingual(summary: str) -> bool:
    """``Tiếng Việt / English`` (either language first)."""
    first, separator, second = summary.partition(" / ")
    return bool(separator and first.strip() and second.strip())


def test_every_operation_has_a_vietnamese_and_english_summary(spec: dict[str, Any]) -> None:
    lacking = [f"{name}: {operation.get('summary')!r}" for name, operation in operations(spec)
               if not bilingual(operation.get("summary", ""))]

    assert lacking == []


def test_every_json_body_and_successful_json_answer_has_an_example(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    lacking = [f"{name}: {label}" for name, operation in operations(spec)
               for label, media in json_bodies(operation) if not has_example(media, schemas)]

    assert lacking == []


def test_every_example_of_a_component_is_a_valid_instance_of_its_model(app: FastAPI, spec: dict[str, Any]) -> None:
    models = component_models(app)
    problems: list[str] = []
    checked = 0
    for name, schema in spec["components"]["schemas"].items():
        examples = component_examples(schema)
        if not examples:
            continue
        candidates = models.get(name) or models.get(name.removesuffix("-Input").removesuffix("-Output")) or []
        if len(candidates) != 1:
            problems.append(f"{name}: no single model of the app's routes has this name ({candidates})")
            continue
        for example in examples:
            checked += 1
            try:
                # Unknown keys too: an example with a misspelt field would mislead every reader.
                candidates[0].model_validate(example, extra="forbid")
            except ValidationError as exc:
                problems.append(f"{name}: {exc}")

    assert problems == []
    assert checked >= 40, "the components' examples were not found"


def test_every_example_written_on_a_route_matches_the_routes_types(app: FastAPI, spec: dict[str, Any]) -> None:
    problems: list[str] = []
    for name, operation in operations(spec):
        route = route_of(app, name)
        bodies = [p.field_info.annotation for p in route.dependant.body_params]
        body = operation.get("requestBody", {}).get("content", {}).get(JSON, {})
        checks: list[tuple[str, Any, list[Any]]] = []
        if len(bodies) == 1:
            checks.append(("request body", bodies[0], media_examples(body)))
        if route.response_model is not None:
            for label, media in json_bodies(operation):
                if label.endswith("answer"):
                    checks.append((label, route.response_model, media_examples(media)))
        for label, annotation, examples in checks:
            adapter: TypeAdapter[Any] = TypeAdapter(annotation)
            for example in examples:
                try:
                    adapter.validate_python(example)
                except ValidationError as exc:
                    problems.append(f"{name} {label}: {exc}")

    assert problems == []


def test_examples_keep_their_null_values(spec: dict[str, Any]) -> None:
    # FastAPI drops None from whatever it encodes (fastapi/fastapi#5559); soc.api.openapi puts them back.
    alert = spec["components"]["schemas"]["AlertOut"]["examples"][0]
    deliveries = spec["paths"]["/api/v1/notifications/deliveries"]["get"]["responses"]["200"]["content"][JSON]

    assert "resolution" in alert and alert["resolution"] is None
    assert "resolved_after_s" in alert["sla"] and alert["sla"]["resolved_after_s"] is None
    assert "last_error" in deliveries["example"]["items"][0] and deliveries["example"]["items"][0]["last_error"] is None


# --- who may read it ---------------------------------------------------------------------

def test_an_admin_reads_the_api_description(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    admin = make_caller("admin")

    response = client.get("/openapi.json", headers=admin.headers)

    assert response.status_code == 200
    app = client.app
    assert isinstance(app, FastAPI)
    assert response.json() == app.openapi()


def test_a_viewer_is_refused_the_api_description(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    viewer = make_caller("viewer")

    response = client.get("/openapi.json", headers=viewer.headers)

    assert response.status_code == 403
    assert "service.read" in response.json()["detail"]


def test_the_api_description_needs_credentials(client: TestClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 401

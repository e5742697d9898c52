"""OpenAPI 3.1 generated from the route table and the pydantic models (never written by hand)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from acceptd.api.routes import Route
from acceptd.jobs.registry import JobRegistry
from acceptd.wire.models import Problem

_PARAM = re.compile(r"{(\w+)}")
_REF = "#/components/schemas/{model}"

_ERROR_TEXT = {
    400: "bad request",
    401: "missing or invalid API key",
    403: "the API key's scope does not allow this",
    404: "not found (or another tenant's)",
    409: "conflict",
    413: "body too large",
    415: "not JSON",
    422: "validation failed; `errors` names each field",
    429: "rate or concurrency limit reached; retry after `Retry-After` seconds",
    500: "unexpected error",
    503: "the job store is unavailable (unreachable, full, failing over); retry after "
    "`Retry-After` seconds",
}


def _with_job_inputs(schemas: dict[str, Any], registry: JobRegistry) -> None:
    """Each registered type's input schema, and SubmitJob and BatchItem bound to them: a
    `type` picks the schema its `input` must match (what the API checks before queueing)."""
    variants = []
    for definition in registry:
        name = "JobInput_" + re.sub(r"\W", "_", definition.name)
        schema = definition.input_model.model_json_schema(ref_template=_REF)
        for def_name, def_schema in schema.pop("$defs", {}).items():
            schemas.setdefault(def_name, def_schema)
        schemas[name] = schema
        input_ref = {"$ref": _REF.format(model=name)}
        variants.append(
            {
                "properties": {"type": {"const": definition.name}, "input": input_ref},
                "required": ["type"],
            }
        )
    if not variants:
        return
    for bound in ("SubmitJob", "BatchItem"):
        if bound in schemas:
            schemas[bound] = {"allOf": [schemas[bound], {"oneOf": variants}]}


def build_openapi(
    routes: list[Route], version: str, registry: JobRegistry | None = None
) -> dict[str, Any]:
    models: set[type[BaseModel]] = {Problem}
    for route in routes:
        if route.body is not None:
            models.add(route.body)
        models.update(r.model for r in route.responses.values() if r.model is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, schema = models_json_schema(
        [
            (m, "validation" if any(r.body is m for r in routes) else "serialization")
            for m in ordered
        ],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = schema.get("$defs", {})
    if registry is not None:
        _with_job_inputs(schemas, registry)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "acceptd", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": route.summary,
        "tags": [route.tag],
        "operationId": route.handler.__name__,
        "responses": {},
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(route.path)
    ]
    parameters += [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": text,
            "schema": schema,
        }
        for name, text, schema in route.query
    ]
    if route.idempotent:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "same key + same body within 24 h returns what the first "
                "request created; same key, other body: 422; while the first runs: 409",
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(route.body)}},
        }
    for status, response in route.responses.items():
        entry: dict[str, Any] = {"description": response.description}
        if response.model is not None:
            entry["content"] = {"application/json": {"schema": _ref(response.model)}}
        if response.headers:
            entry["headers"] = {h: {"schema": {"type": "string"}} for h in response.headers}
        operation["responses"][str(status)] = entry
    # Every route can fail like this: an outage of the store (503), and, where a tenant or
    # an address is rate limited, 429; with an API key, 401.
    errors = set(route.errors) | {500}
    if not route.public:
        errors |= {401, 429, 503}
    elif route.by_address:
        errors |= {429, 503}
    for status in sorted(errors):
        operation["responses"][str(status)] = {
            "description": _ERROR_TEXT[status],
            "content": {"application/problem+json": {"schema": _ref(Problem)}},
        }
    if not route.public:
        operation["security"] = [{"bearer": []}]
    return operation

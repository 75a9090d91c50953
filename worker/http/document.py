"""The service's OpenAPI document (``/openapi.json``): FastAPI's, made to say what the service
does and nothing else.

- The request bodies' schemas are the producer's own models: the ingest routes read their
  bodies themselves (bounded, off the event loop), so FastAPI sees no body model.
- Each message type's schema, the envelope's and the batch's carry an example (``examples``).
- The Bearer schemes are declared; each route names the one it checks (``auth.requires``).
- FastAPI's default 422 (``{"detail": [...]}``, HTTPValidationError) is removed: no route lets
  FastAPI validate a parameter (a job id is any string, and one that names no job is a 404),
  so no route ever sends it; the 422s the service sends are declared by the routes that do.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from worker.http import examples
from worker.http.auth import SECURITY_SCHEMES
from worker.http.schemas import BatchRequest, MessageEnvelope, SingleRequest
from worker.models import Message

REF_TEMPLATE = "#/components/schemas/{model}"
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def build_document(app: FastAPI) -> dict[str, Any]:
    """The document for this app's routes (those mounted by its settings)."""
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _, defs = models_json_schema([(BatchRequest, "validation")], ref_template=REF_TEMPLATE)
    single = TypeAdapter(SingleRequest).json_schema(ref_template=REF_TEMPLATE)
    schemas.update(defs.get("$defs", {}))
    schemas.update(single.pop("$defs", {}))
    schemas["SingleRequest"] = single
    _add_examples(schemas)
    if any("security" in operation for operation in operations(document)):
        components["securitySchemes"] = SECURITY_SCHEMES
    _drop_fastapi_validation(document)
    return document


def operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every operation of the document."""
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield operation


def _add_examples(schemas: dict[str, Any]) -> None:
    """An example on each message type's schema (a new type without one fails here), the
    envelope's and the batch's."""
    (kinds,) = typing.get_args(Message)[:1]
    for model in typing.get_args(kinds):
        kind = model.model_fields["type"].default
        schemas[model.__name__]["examples"] = [examples.MESSAGES[kind]]
    schemas[MessageEnvelope.__name__]["examples"] = [examples.ENVELOPE]
    schemas[BatchRequest.__name__]["examples"] = [examples.BATCH]


def _drop_fastapi_validation(document: dict[str, Any]) -> None:
    refs = {f"#/components/schemas/{name}" for name in FASTAPI_VALIDATION}
    for operation in operations(document):
        responses = operation.get("responses", {})
        content = responses.get("422", {}).get("content", {}).get("application/json", {})
        if content.get("schema", {}).get("$ref") in refs:
            del responses["422"]
    for name in FASTAPI_VALIDATION:
        document["components"]["schemas"].pop(name, None)

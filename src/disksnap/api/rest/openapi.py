"""The OpenAPI 3.0 document of the REST surface, generated from the route table.

Nothing here is written by hand per endpoint: paths come from the ``google.api.http``
templates (``{snapshot_id}`` stays a path parameter named by its field path; a verb
stays in the path, ``/operations/{operation_id}:cancel``), parameters and bodies from
the request message, responses from the response message, all through
:class:`~disksnap.api.rest.schemas.SchemaSet`. The split into path, body and query
follows ``http.proto`` as the transcoder does: with ``body: "*"`` the request body is
the request message minus the path fields and there are no query parameters; otherwise
every scalar field the path and body leave free, also inside singular nested
messages (``a.b``), is a query parameter named by its JSON path, as grpc-gateway's
``protoc-gen-openapiv2`` names them.

A custom ``HttpRule`` kind outside OpenAPI's methods is left out of the document, and
a ``**`` variable is documented as a plain path parameter (OpenAPI has no multi-segment
one). Every operation answers ``200`` with the response message and otherwise a
``google.rpc.Status``. Long-running methods say which ``metadata`` and ``response``
types their Operation carries (``x-operation-metadata`` / ``x-operation-response``,
with both schemas in ``components``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor

from disksnap import __version__
from disksnap.api.rest.constraints import field_constraints
from disksnap.api.rest.fields import is_map, is_plain_message
from disksnap.api.rest.params import resolve
from disksnap.api.rest.registry import EXTRA_TYPES
from disksnap.api.rest.routes import Route, RouteTable
from disksnap.api.rest.schemas import Schema, SchemaSet

OPENAPI_VERSION = "3.0.3"
STATUS_TYPE = "google.rpc.Status"
_JSON = "application/json"
_NOT_IN_QUERY = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
    | {"google.protobuf.Any", "google.protobuf.Empty"}
)
_MAX_QUERY_DEPTH = 4
_OPENAPI_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})


def build_openapi(
    table: RouteTable,
    *,
    title: str = "disksnap: Yandex Cloud Compute API",
    version: str = __version__,
    servers: Sequence[str] = (),
) -> dict[str, Any]:
    """The OpenAPI 3.0 document (a JSON-ready dict) of every route in ``table``."""
    schemas = SchemaSet()
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    tags: dict[str, str] = {}
    for route in table.routes:
        if route.http_method not in _OPENAPI_METHODS:
            continue  # a custom HttpRule kind: served, but OpenAPI has no word for it
        item = paths.setdefault(route.template.openapi_path(), {})
        item[route.http_method.lower()] = _operation(route, schemas, operation_ids)
        service = route.method.containing_service
        tags.setdefault(str(service.name), str(service.full_name))
    for descriptor in EXTRA_TYPES:
        schemas.message(descriptor)
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
        "tags": [{"name": name, "description": full} for name, full in tags.items()],
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
    }
    if servers:
        document["servers"] = [{"url": url} for url in servers]
    return document


def _operation(route: Route, schemas: SchemaSet, operation_ids: set[str]) -> dict[str, Any]:
    method = route.method
    service = method.containing_service
    operation: dict[str, Any] = {
        "operationId": _operation_id(route, operation_ids),
        "tags": [str(service.name)],
        "summary": f"{service.name}.{method.name}",
        "description": _description(route),
        "responses": {
            "200": {
                "description": f"`{method.output_type.full_name}`",
                "content": {_JSON: {"schema": _response_schema(route, schemas)}},
            },
            "default": {
                "description": f"An error: `{STATUS_TYPE}`",
                "content": {_JSON: {"schema": schemas.message(_status())}},
            },
        },
    }
    parameters = _path_parameters(route, schemas) + _query_parameters(route, schemas)
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(route, schemas)
    if body is not None:
        operation["requestBody"] = body
    if route.operation is not None:
        operation["x-operation-metadata"] = schemas.message(route.operation.metadata)
        operation["x-operation-response"] = schemas.message(route.operation.response)
    return operation


def _operation_id(route: Route, taken: set[str]) -> str:
    base = f"{route.method.containing_service.name}_{route.method.name}"
    candidate = base if route.origin == "rule" else f"{base}_{route.http_method.lower()}"
    n = 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _description(route: Route) -> str:
    if route.origin == "supplementary":
        text = f"gRPC `{route.grpc_path}`, by a binding disksnap adds to its HTTP rule."
    else:
        text = f"gRPC `{route.grpc_path}`, transcoded by its `google.api.http` rule."
    if route.operation is not None:
        text += (
            f" Returns an Operation whose `metadata` is `{route.operation.metadata.full_name}`"
            f" and whose `response`, once done, is `{route.operation.response.full_name}`."
        )
    return text


def _path_parameters(route: Route, schemas: SchemaSet) -> list[dict[str, Any]]:
    parameters = []
    for path in route.path_fields:
        leaf = resolve(route.method.input_type, path).leaf
        schema = schemas.field(leaf)
        if schema.get("type") == "string":
            schema.setdefault("minLength", 1)  # a template segment is never empty
        parameters.append({"name": path, "in": "path", "required": True, "schema": schema})
    return parameters


def _query_parameters(route: Route, schemas: SchemaSet) -> list[dict[str, Any]]:
    if route.body == "*":
        return []
    bound = [tuple(p.split(".")) for p in route.path_fields]
    if route.body:
        bound.append((route.body,))
    found: list[dict[str, Any]] = []
    _collect_query(route.method.input_type, (), "", bound=bound, schemas=schemas, found=found)
    return found


def _collect_query(
    descriptor: Descriptor,
    names: tuple[str, ...],
    prefix: str,
    *,
    bound: list[tuple[str, ...]],
    schemas: SchemaSet,
    found: list[dict[str, Any]],
) -> None:
    """Add a parameter for every free leaf under ``descriptor`` (recursing into messages)."""
    for field in descriptor.fields:
        path, name = (*names, field.name), f"{prefix}{field.json_name}"
        if any(path[: len(b)] == b or b[: len(path)] == path for b in bound) or is_map(field):
            continue
        if is_plain_message(field):
            if not field.is_repeated and len(path) < _MAX_QUERY_DEPTH:
                _collect_query(
                    field.message_type, path, f"{name}.", bound=bound, schemas=schemas, found=found
                )
            continue
        if field.message_type is not None and field.message_type.full_name in _NOT_IN_QUERY:
            continue
        parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schemas.field(field)}
        if field_constraints(field).required:
            parameter["required"] = True
        if field.is_repeated:
            parameter.update(style="form", explode=True)
        found.append(parameter)


def _request_body(route: Route, schemas: SchemaSet) -> dict[str, Any] | None:
    request = route.method.input_type
    if not route.body:
        return None
    if route.body == "*":
        top_level = {p.split(".")[0] for p in route.path_fields}
        schema = schemas.object_schema(request, top_level) if top_level else schemas.ref(request)
    else:
        schema = schemas.field(request.fields_by_name[route.body])
    return {"required": False, "content": {_JSON: {"schema": schema}}}


def _response_schema(route: Route, schemas: SchemaSet) -> Schema:
    response = route.method.output_type
    if route.response_body:
        return schemas.field(response.fields_by_name[route.response_body])
    return schemas.message(response)


def _status() -> Descriptor:
    return next(d for d in EXTRA_TYPES if d.full_name == STATUS_TYPE)

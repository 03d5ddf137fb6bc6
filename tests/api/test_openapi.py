"""The OpenAPI document generated from the route table and the descriptors."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from disksnap.api.rest.openapi import build_openapi
from disksnap.api.rest.routes import RouteTable

REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def document(table: RouteTable) -> dict[str, Any]:
    return build_openapi(table, servers=["http://127.0.0.1:8080"])


@pytest.fixture(scope="module")
def schemas(document: dict[str, Any]) -> dict[str, Any]:
    components: dict[str, Any] = document["components"]["schemas"]
    return components


def test_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.0.3"
    assert document["servers"] == [{"url": "http://127.0.0.1:8080"}]
    assert document["security"] == [{"bearerAuth": []}]


def test_synthetic_document_is_valid_too(things: RouteTable) -> None:
    doc = build_openapi(things)
    validate(doc)
    assert "/v1/parts" not in doc["paths"]  # the custom REPORT kind has no OpenAPI form
    assert set(doc["paths"]["/v1/{parent.name}/things/{thing_id}"]) == {"get"}


def test_every_route_is_an_operation_with_a_unique_id(
    table: RouteTable, document: dict[str, Any]
) -> None:
    ids = []
    for route in table.routes:
        operation = document["paths"][route.template.openapi_path()][route.http_method.lower()]
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids)) == len(table.routes)
    cancel = document["paths"]["/operations/{operation_id}:cancel"]
    assert (cancel["get"]["operationId"], cancel["post"]["operationId"]) == (
        "OperationService_Cancel",
        "OperationService_Cancel_post",
    )


def test_snapshot_schema_is_the_proto3_json_form(schemas: dict[str, Any]) -> None:
    snapshot = schemas["yandex.cloud.compute.v1.Snapshot"]
    props = snapshot["properties"]
    assert list(props) == [
        "id",
        "folderId",
        "createdAt",
        "name",
        "description",
        "labels",
        "storageSize",
        "diskSize",
        "productIds",
        "status",
        "sourceDiskId",
        "hardwareGeneration",
        "kmsKey",
    ]
    assert snapshot["additionalProperties"] is False
    assert props["createdAt"] == {"type": "string", "format": "date-time"}
    assert props["storageSize"]["type"] == "string"
    assert props["storageSize"]["format"] == "int64"
    assert props["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert props["productIds"] == {"type": "array", "items": {"type": "string"}}
    assert props["status"]["type"] == "string"
    assert "READY" in props["status"]["enum"]
    assert props["hardwareGeneration"] == {
        "$ref": REF + "yandex.cloud.compute.v1.HardwareGeneration"
    }


def test_oneofs_are_described(schemas: dict[str, Any]) -> None:
    generation = schemas["yandex.cloud.compute.v1.HardwareGeneration"]
    assert generation["description"] == (
        "At most one of `legacyFeatures`, `generation2Features` may be set."
    )


def test_operation_schema_has_any_metadata_and_status_error(schemas: dict[str, Any]) -> None:
    props = schemas["yandex.cloud.operation.Operation"]["properties"]
    assert props["done"] == {"type": "boolean"}
    assert props["metadata"]["required"] == ["@type"]
    assert props["error"] == {"$ref": REF + "google.rpc.Status"}
    assert "google.rpc.BadRequest" in schemas
    assert "google.rpc.RequestInfo" in schemas


def test_create_has_the_request_message_as_body(document: dict[str, Any]) -> None:
    create = document["paths"]["/compute/v1/snapshots"]["post"]
    assert "parameters" not in create
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": REF + "yandex.cloud.compute.v1.CreateSnapshotRequest"
    }
    assert create["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": REF + "yandex.cloud.operation.Operation"
    }
    assert create["responses"]["default"]["content"]["application/json"]["schema"] == {
        "$ref": REF + "google.rpc.Status"
    }
    assert create["x-operation-metadata"] == {
        "$ref": REF + "yandex.cloud.compute.v1.CreateSnapshotMetadata"
    }
    assert create["x-operation-response"] == {"$ref": REF + "yandex.cloud.compute.v1.Snapshot"}


def test_update_body_leaves_out_the_path_field(document: dict[str, Any]) -> None:
    update = document["paths"]["/compute/v1/snapshots/{snapshot_id}"]["patch"]
    body = update["requestBody"]["content"]["application/json"]["schema"]
    assert list(body["properties"]) == ["updateMask", "name", "description", "labels"]
    assert body["properties"]["updateMask"]["type"] == "string"
    assert update["parameters"] == [
        {
            "name": "snapshot_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
        }
    ]


def test_list_takes_its_fields_as_query_parameters(document: dict[str, Any]) -> None:
    listing = document["paths"]["/compute/v1/snapshots"]["get"]
    names = [(p["name"], p["in"]) for p in listing["parameters"]]
    assert names == [
        ("folderId", "query"),
        ("pageSize", "query"),
        ("pageToken", "query"),
        ("filter", "query"),
        ("orderBy", "query"),
    ]
    page_size = listing["parameters"][1]["schema"]
    assert (page_size["type"], page_size["format"]) == ("string", "int64")
    assert "requestBody" not in listing


def test_required_path_field_from_validation_options(document: dict[str, Any]) -> None:
    # OperationService's operation_id carries (yandex.cloud.required) in the descriptor.
    get = document["paths"]["/operations/{operation_id}"]["get"]
    assert get["parameters"][0]["required"] is True


def test_synthetic_query_parameters(things: RouteTable) -> None:
    doc = build_openapi(things)
    search = doc["paths"]["/v1/things:search"]["get"]
    params = {p["name"]: p for p in search["parameters"]}
    assert "labels" not in params  # maps have no OpenAPI query form
    assert params["parent.name"]["schema"] == {"type": "string"}
    assert params["ids"]["style"] == "form"
    assert params["ids"]["explode"] is True
    assert params["ids"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert params["limit"]["schema"]["nullable"] is True
    assert params["since"]["schema"]["format"] == "date-time"
    put = doc["paths"]["/v1/things/{thing_id}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": REF + "disksnap.test.Thing"
    }
    assert [p["name"] for p in put["parameters"]] == ["thing_id", "updateMask"]

"""Responses in the proto3 JSON mapping: Operations with typed Any metadata, resources, errors."""

from __future__ import annotations

import json

from google.protobuf import empty_pb2, json_format, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2
from yandex.cloud.compute.v1 import snapshot_pb2, snapshot_service_pb2
from yandex.cloud.operation import operation_pb2

from disksnap.api.rest.registry import POOL
from disksnap.api.rest.transcode import render, render_json

CREATED = timestamp_pb2.Timestamp(seconds=1714564800, nanos=250_000_000)  # 2024-05-01T12:00:00.25Z


def creating_operation() -> operation_pb2.Operation:
    op = operation_pb2.Operation(
        id="fd8op",
        description="Create snapshot",
        created_at=CREATED,
        created_by="ajeadmin",
        modified_at=CREATED,
    )
    op.metadata.Pack(
        snapshot_service_pb2.CreateSnapshotMetadata(snapshot_id="fd8snap", disk_id="epddisk")
    )
    return op


def test_operation_in_flight_renders_done_false_and_typed_metadata() -> None:
    assert render(creating_operation()) == {
        "id": "fd8op",
        "description": "Create snapshot",
        "createdAt": "2024-05-01T12:00:00.250Z",
        "createdBy": "ajeadmin",
        "modifiedAt": "2024-05-01T12:00:00.250Z",
        "done": False,
        "metadata": {
            "@type": "type.googleapis.com/yandex.cloud.compute.v1.CreateSnapshotMetadata",
            "snapshotId": "fd8snap",
            "diskId": "epddisk",
        },
    }


def test_done_operation_carries_the_snapshot_as_response() -> None:
    op = creating_operation()
    op.done = True
    snapshot = snapshot_pb2.Snapshot(
        id="fd8snap",
        folder_id="b1gfolder",
        created_at=CREATED,
        name="nightly",
        labels={"env": "prod"},
        storage_size=1 << 30,
        disk_size=10 << 30,
        status=snapshot_pb2.Snapshot.READY,
        source_disk_id="epddisk",
    )
    op.response.Pack(snapshot)
    rendered = render(op)
    assert rendered["done"] is True
    assert "error" not in rendered
    assert rendered["response"] == {
        "@type": "type.googleapis.com/yandex.cloud.compute.v1.Snapshot",
        "id": "fd8snap",
        "folderId": "b1gfolder",
        "createdAt": "2024-05-01T12:00:00.250Z",
        "name": "nightly",
        "description": "",
        "labels": {"env": "prod"},
        "storageSize": "1073741824",
        "diskSize": "10737418240",
        "productIds": [],
        "status": "READY",
        "sourceDiskId": "epddisk",
    }


def test_failed_operation_carries_a_status_with_typed_details() -> None:
    op = creating_operation()
    op.done = True
    op.error.code = code_pb2.INVALID_ARGUMENT
    op.error.message = "Illegal argument name"
    bad = error_details_pb2.BadRequest()
    bad.field_violations.add(field="name", description="does not match the pattern")
    op.error.details.add().Pack(bad)
    rendered = render(op)
    assert "response" not in rendered
    assert rendered["error"] == {
        "code": 3,
        "message": "Illegal argument name",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": "name", "description": "does not match the pattern", "reason": ""}
                ],
            }
        ],
    }


def test_delete_response_is_empty_with_only_its_type() -> None:
    op = operation_pb2.Operation(id="op", done=True)
    op.response.Pack(empty_pb2.Empty())
    assert render(op)["response"] == {"@type": "type.googleapis.com/google.protobuf.Empty"}


def test_unset_message_fields_stay_absent_and_scalars_print_defaults() -> None:
    rendered = render(snapshot_pb2.Snapshot(id="fd8snap"))
    assert "createdAt" not in rendered
    assert "hardwareGeneration" not in rendered
    assert rendered["storageSize"] == "0"
    assert rendered["status"] == "STATUS_UNSPECIFIED"
    assert rendered["labels"] == {}


def test_render_json_is_compact_utf8_and_round_trips() -> None:
    op = creating_operation()
    op.description = "Снимок"
    data = render_json(op)
    assert "Снимок".encode() in data
    assert b": " not in data
    back = json_format.Parse(data, operation_pb2.Operation(), descriptor_pool=POOL)
    assert back == op
    assert json.loads(data)["done"] is False

"""The official SDK against ``disksnap serve`` over TLS: discovery, the disk and snapshot
lifecycle, both transports on the same state, idempotency keys, request ids, and
deadlines that leave nothing half-written."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from yandex.cloud.compute.v1 import disk_service_pb2 as disk_pb
from yandex.cloud.compute.v1 import snapshot_service_pb2 as snap_pb
from yandex.cloud.compute.v1.disk_pb2 import Disk
from yandex.cloud.compute.v1.disk_service_pb2_grpc import DiskServiceStub
from yandex.cloud.compute.v1.snapshot_pb2 import Snapshot
from yandex.cloud.compute.v1.snapshot_service_pb2_grpc import SnapshotServiceStub
from yandex.cloud.endpoint import api_endpoint_service_pb2 as endpoint_pb
from yandex.cloud.endpoint.api_endpoint_service_pb2_grpc import ApiEndpointServiceStub
from yandex.cloud.operation import operation_service_pb2 as op_pb
from yandex.cloud.operation.operation_service_pb2_grpc import OperationServiceStub
from yandexcloud import _sdk
from yandexcloud._sdk import SDK
from yandexcloud.operations import OperationResult

from tests.e2e.conftest import DISKSNAP, Server
from tests.grpc.conftest import (
    MiB,
    call_of,
    make_disk,
    rich_status,
    status_of,
    trailers,
    wait,
)


def _secure_channel(server: Server) -> grpc.Channel:
    ca = Path(server.info["caCert"]).read_bytes()
    return grpc.secure_channel(server.info["grpc"], grpc.ssl_channel_credentials(ca))


def test_discovery_lists_every_sdk_service_at_the_servers_address(live: Server) -> None:
    address = live.info["grpc"]
    assert re.fullmatch(r"127\.0\.0\.1:[1-9]\d*", address)
    with _secure_channel(live) as channel:
        stub = ApiEndpointServiceStub(channel)  # no credentials: discovery is public
        listed = {
            e.id: e.address for e in stub.List(endpoint_pb.ListApiEndpointsRequest()).endpoints
        }
        sdk_ids = {service_id for _, service_id in _sdk._supported_modules}
        assert sdk_ids <= listed.keys(), sdk_ids - listed.keys()
        assert set(listed.values()) == {address}
        got = stub.Get(endpoint_pb.GetApiEndpointRequest(api_endpoint_id="compute"))
        assert (got.id, got.address) == ("compute", address)
        with pytest.raises(grpc.RpcError) as e:
            stub.Get(endpoint_pb.GetApiEndpointRequest(api_endpoint_id="teleport"))
        assert status_of(e.value) == (grpc.StatusCode.NOT_FOUND, "Api endpoint teleport not found")


def test_disk_snapshot_lifecycle_with_the_sdk(sdk: SDK, live: Server) -> None:
    disk = make_disk(sdk, live.folder, name="grpc-lifecycle")
    assert (disk.folder_id, disk.size, disk.status) == (live.folder, 4 * MiB, Disk.Status.READY)
    snapshots = sdk.client(SnapshotServiceStub)
    op = snapshots.Create(
        snap_pb.CreateSnapshotRequest(
            folder_id=live.folder, disk_id=disk.id, name="nightly", labels={"env": "dev"}
        )
    )
    assert not op.done
    result = sdk.wait_operation_and_get_result(
        op, response_type=Snapshot, meta_type=snap_pb.CreateSnapshotMetadata
    )
    assert isinstance(result, OperationResult)
    snapshot = result.response
    assert isinstance(snapshot, Snapshot)
    assert isinstance(result.meta, snap_pb.CreateSnapshotMetadata)
    assert (result.meta.snapshot_id, result.meta.disk_id) == (snapshot.id, disk.id)
    assert (snapshot.name, snapshot.status, snapshot.disk_size) == (
        "nightly",
        Snapshot.READY,
        4 * MiB,
    )
    assert dict(snapshot.labels) == {"env": "dev"}
    assert snapshot.source_disk_id == disk.id

    assert snapshots.Get(snap_pb.GetSnapshotRequest(snapshot_id=snapshot.id)) == snapshot
    listed = snapshots.List(
        snap_pb.ListSnapshotsRequest(folder_id=live.folder, filter='name="nightly"')
    )
    assert [s.id for s in listed.snapshots] == [snapshot.id]
    done = sdk.client(OperationServiceStub).Get(op_pb.GetOperationRequest(operation_id=op.id))
    assert (done.id, done.done) == (op.id, True)

    update = snapshots.Update(
        snap_pb.UpdateSnapshotRequest(
            snapshot_id=snapshot.id,
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            description="kept for a week",
        )
    )
    updated_result = sdk.wait_operation_and_get_result(
        update, response_type=Snapshot, meta_type=snap_pb.UpdateSnapshotMetadata
    )
    assert isinstance(updated_result, OperationResult)
    updated = updated_result.response
    assert isinstance(updated, Snapshot)
    assert (updated.description, updated.name) == ("kept for a week", "nightly")

    delete = snapshots.Delete(snap_pb.DeleteSnapshotRequest(snapshot_id=snapshot.id))
    sdk.wait_operation_and_get_result(delete)
    with pytest.raises(grpc.RpcError) as e:
        snapshots.Get(snap_pb.GetSnapshotRequest(snapshot_id=snapshot.id))
    assert status_of(e.value)[0] == grpc.StatusCode.NOT_FOUND


def test_what_one_transport_creates_the_other_reads(sdk: SDK, live: Server) -> None:
    made = live.call(
        "POST",
        "/compute/v1/disks",
        {
            "folderId": live.folder,
            "name": "made-over-rest",
            "size": str(4 * MiB),
            "zoneId": "ru-central1-a",
        },
    )
    rest_disk = live.wait(made.body)["response"]
    disk = sdk.client(DiskServiceStub).Get(disk_pb.GetDiskRequest(disk_id=rest_disk["id"]))
    assert (disk.name, disk.size, disk.folder_id) == ("made-over-rest", 4 * MiB, live.folder)

    op = sdk.client(SnapshotServiceStub).Create(
        snap_pb.CreateSnapshotRequest(folder_id=live.folder, disk_id=disk.id, name="made-over-grpc")
    )
    rest_op = live.wait(live.call("GET", f"/operations/{op.id}").body)
    assert rest_op["metadata"]["diskId"] == disk.id
    snapshot = live.call("GET", f"/compute/v1/snapshots/{rest_op['response']['id']}").body
    assert (snapshot["name"], snapshot["status"], snapshot["sourceDiskId"]) == (
        "made-over-grpc",
        "READY",
        disk.id,
    )


def test_idempotency_key_replays_the_first_operation(sdk: SDK, live: Server) -> None:
    disks = sdk.client(DiskServiceStub)
    request = disk_pb.CreateDiskRequest(
        folder_id=live.folder, name="once-only", zone_id="ru-central1-a", size=4 * MiB
    )
    key = (("idempotency-key", str(uuid.uuid4())),)
    first = disks.Create(request, metadata=key)
    again = disks.Create(request, metadata=key)
    assert again.id == first.id
    wait(sdk, first)
    listed = disks.List(disk_pb.ListDisksRequest(folder_id=live.folder, filter='name="once-only"'))
    assert len(listed.disks) == 1
    with pytest.raises(grpc.RpcError) as e:  # a new key: a second disk of that name
        disks.Create(request, metadata=(("idempotency-key", str(uuid.uuid4())),))
    assert status_of(e.value)[0] == grpc.StatusCode.ALREADY_EXISTS


def test_request_ids_travel_in_trailers_and_error_details(sdk: SDK, live: Server) -> None:
    snapshots = sdk.client(SnapshotServiceStub)
    request = snap_pb.ListSnapshotsRequest(folder_id=live.folder)
    _, call = snapshots.List.with_call(request)
    ours = trailers(call)["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", str(ours))

    _, call = snapshots.List.with_call(request, metadata=(("x-client-request-id", "ci-run-7"),))
    assert trailers(call)["x-request-id"] == "ci-run-7"
    with pytest.raises(grpc.RpcError) as e:
        snapshots.Get(
            snap_pb.GetSnapshotRequest(snapshot_id="fd8doesnotexist00000"),
            metadata=(("x-request-id", "ci-run-8"),),
        )
    assert trailers(call_of(e.value))["x-request-id"] == "ci-run-8"
    info = error_details_pb2.RequestInfo()
    assert rich_status(e.value).details[-1].Unpack(info)
    assert info.request_id == "ci-run-8"


def test_calls_cut_off_or_cancelled_leave_whole_state(sdk: SDK, live: Server) -> None:
    """Creates whose deadline expires, or that the client cancels, before, during or
    after the service call: each either happened entirely (the retry with its key
    replays it) or not at all (the retry makes it) - never twice, never half."""
    disks = sdk.client(DiskServiceStub)
    attempts = []
    for i in range(10):
        name = f"cut-off-{i}"
        key = (("idempotency-key", str(uuid.uuid4())),)
        request = disk_pb.CreateDiskRequest(
            folder_id=live.folder, name=name, zone_id="ru-central1-a", size=4 * MiB
        )
        if i % 2:
            code = _cancelled(disks, request, key, after=0.001 * (i // 2))
            assert code in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED)
        else:
            code = _attempt(disks, request, key, timeout=0.001 * (i // 2))
            assert code in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED)
        attempts.append((name, request, key))
    for name, request, key in attempts:
        op = disks.Create(request, metadata=key)  # the same key: replay or first run
        disk = Disk()
        assert wait(sdk, op).response.Unpack(disk)
        assert disk.status == Disk.Status.READY
        listed = disks.List(
            disk_pb.ListDisksRequest(folder_id=live.folder, filter=f'name="{name}"')
        )
        assert [d.id for d in listed.disks] == [disk.id]


def _attempt(
    disks: DiskServiceStub,
    request: disk_pb.CreateDiskRequest,
    metadata: tuple[tuple[str, str], ...],
    timeout: float,
) -> grpc.StatusCode:
    try:
        disks.Create(request, metadata=metadata, timeout=timeout)
    except grpc.RpcError as e:
        return status_of(e)[0]
    return grpc.StatusCode.OK


def _cancelled(
    disks: DiskServiceStub,
    request: disk_pb.CreateDiskRequest,
    metadata: tuple[tuple[str, str], ...],
    after: float,
) -> grpc.StatusCode:
    call = disks.Create.future(request, metadata=metadata)
    time.sleep(after)
    call.cancel()
    try:
        call.result()
    except grpc.FutureCancelledError:
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.OK


def test_a_service_account_key_works_end_to_end(live: Server, tmp_path: Path) -> None:
    """``SDK(service_account_key=...)`` exchanges its PS256 JWT for a token over gRPC
    (IamTokenService.Create, no credentials) and then calls with that token."""
    admin = [DISKSNAP, "admin"]
    account = subprocess.run(
        [*admin, "service-account", "create", "robot", "--folder-id", live.folder,
         "--role", "compute.editor", "--data-dir", str(live.data)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    key = tmp_path / "key.json"
    subprocess.run(
        [*admin, "key", "create", "--service-account-id", account, "--output", str(key),
         "--data-dir", str(live.data)],
        check=True, capture_output=True,
    )  # fmt: skip
    sdk = SDK(
        endpoint=live.info["grpc"],
        root_certificates=Path(live.info["caCert"]).read_bytes(),
        service_account_key=json.loads(key.read_text()),
    )
    disk = make_disk(sdk, live.folder, name="made-by-a-robot")
    op = sdk.client(SnapshotServiceStub).Create(
        snap_pb.CreateSnapshotRequest(folder_id=live.folder, disk_id=disk.id)
    )
    snapshot = Snapshot()
    assert wait(sdk, op).response.Unpack(snapshot)
    assert (snapshot.source_disk_id, snapshot.status) == (disk.id, Snapshot.READY)
    rest = live.call("GET", f"/compute/v1/disks/{disk.id}").body
    assert rest["name"] == "made-by-a-robot"

"""Every error code the REST tests cover, as the SDK sees it: a ``grpc.RpcError`` with
the code and message, the whole ``google.rpc.Status`` in ``grpc-status-details-bin``
(BadRequest field violations, RequestInfo) and ``x-request-id`` in the trailers."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from yandex.cloud.access import access_pb2
from yandex.cloud.compute.v1 import disk_service_pb2 as disk_pb
from yandex.cloud.compute.v1 import snapshot_service_pb2 as snap_pb
from yandex.cloud.compute.v1.disk_service_pb2_grpc import DiskServiceStub
from yandex.cloud.compute.v1.snapshot_service_pb2_grpc import SnapshotServiceStub
from yandex.cloud.vpc.v1 import network_service_pb2
from yandex.cloud.vpc.v1.network_service_pb2_grpc import NetworkServiceStub
from yandexcloud._sdk import SDK

from tests.e2e.conftest import Server
from tests.grpc.conftest import MiB, TiB, call_of, rich_status, sdk_for, status_of, trailers

Code = grpc.StatusCode


def _error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value


def _request_info(error: grpc.RpcError) -> str:
    """The RequestInfo of the details, checked against the x-request-id trailer."""
    info = error_details_pb2.RequestInfo()
    assert rich_status(error).details[-1].Unpack(info)
    assert trailers(call_of(error))["x-request-id"] == info.request_id
    return str(info.request_id)


def test_not_found(sdk: SDK) -> None:
    missing = "fd8doesnotexist00000"
    e = _error(
        lambda: sdk.client(SnapshotServiceStub).Get(snap_pb.GetSnapshotRequest(snapshot_id=missing))
    )
    assert status_of(e) == (Code.NOT_FOUND, f"snapshot {missing} not found")
    assert rich_status(e).code == Code.NOT_FOUND.value[0]
    assert _request_info(e)


def test_invalid_argument_lists_every_field_violation(sdk: SDK, live: Server) -> None:
    snapshots = sdk.client(SnapshotServiceStub)
    e = _error(
        lambda: snapshots.Create(snap_pb.CreateSnapshotRequest(folder_id=live.folder, name="Bad!"))
    )
    code, message = status_of(e)
    assert code == Code.INVALID_ARGUMENT
    assert message.startswith("Validation error:\n")
    bad = error_details_pb2.BadRequest()
    assert rich_status(e).details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["diskId", "name"]
    assert bad.field_violations[0].description == "Field is required"
    assert _request_info(e)
    listed = snapshots.List(
        snap_pb.ListSnapshotsRequest(folder_id=live.folder, filter='name="Bad!"')
    )
    assert list(listed.snapshots) == []


def test_already_exists(sdk: SDK, live: Server) -> None:
    disks = sdk.client(DiskServiceStub)
    request = disk_pb.CreateDiskRequest(
        folder_id=live.folder, name="taken", zone_id="ru-central1-a", size=4 * MiB
    )
    disks.Create(request)
    e = _error(lambda: disks.Create(request))
    code, message = status_of(e)
    assert code == Code.ALREADY_EXISTS
    assert "taken" in message


def test_failed_precondition(frozen: Server) -> None:
    sdk = sdk_for(frozen)
    op = sdk.client(DiskServiceStub).Create(
        disk_pb.CreateDiskRequest(folder_id=frozen.folder, zone_id="ru-central1-a", size=4 * MiB)
    )
    meta = disk_pb.CreateDiskMetadata()
    assert op.metadata.Unpack(meta)  # no workers: the disk stays CREATING
    e = _error(
        lambda: sdk.client(SnapshotServiceStub).Create(
            snap_pb.CreateSnapshotRequest(folder_id=frozen.folder, disk_id=meta.disk_id)
        )
    )
    assert status_of(e) == (Code.FAILED_PRECONDITION, f"Disk {meta.disk_id} is CREATING, not READY")


def test_unauthenticated_without_or_with_a_wrong_token(live: Server) -> None:
    wrong = sdk_for(live, token="ds1.not-a-token")
    request = snap_pb.ListSnapshotsRequest(folder_id=live.folder)
    e = _error(lambda: wrong.client(SnapshotServiceStub).List(request))
    assert status_of(e) == (Code.UNAUTHENTICATED, "The token is invalid, expired or revoked")
    ca = Path(live.info["caCert"]).read_bytes()
    with grpc.secure_channel(live.info["grpc"], grpc.ssl_channel_credentials(ca)) as channel:
        e = _error(lambda: SnapshotServiceStub(channel).List(request))
    assert status_of(e)[0] == Code.UNAUTHENTICATED
    assert _request_info(e)


def test_permission_denied_on_another_folder(sdk: SDK) -> None:
    other = "b1gsomeoneelse000000"
    e = _error(
        lambda: sdk.client(SnapshotServiceStub).List(snap_pb.ListSnapshotsRequest(folder_id=other))
    )
    code, message = status_of(e)
    assert code == Code.PERMISSION_DENIED
    assert other in message


def test_resource_exhausted_by_the_size_quota(sdk: SDK, live: Server) -> None:
    request = disk_pb.CreateDiskRequest(
        folder_id=live.folder, zone_id="ru-central1-a", size=5 * TiB
    )
    e = _error(lambda: sdk.client(DiskServiceStub).Create(request))
    assert status_of(e) == (Code.RESOURCE_EXHAUSTED, "Limit compute.disks.size exceeded")


def test_unimplemented_methods_and_services(sdk: SDK, live: Server) -> None:
    e = _error(
        lambda: sdk.client(SnapshotServiceStub).ListAccessBindings(
            access_pb2.ListAccessBindingsRequest(resource_id="fd8doesnotexist00000")
        )
    )
    assert status_of(e) == (
        Code.UNIMPLEMENTED,
        "yandex.cloud.compute.v1.SnapshotService.ListAccessBindings is not implemented",
    )
    assert _request_info(e)
    # Discovery sends every SDK service here; the ones disksnap does not serve say so.
    e = _error(
        lambda: sdk.client(NetworkServiceStub).List(
            network_service_pb2.ListNetworksRequest(folder_id=live.folder)
        )
    )
    assert status_of(e) == (
        Code.UNIMPLEMENTED,
        "yandex.cloud.vpc.v1.NetworkService.List is not implemented",
    )
    assert _request_info(e)


def test_calls_are_counted_in_the_metrics_by_code(sdk: SDK, live: Server) -> None:
    missing = snap_pb.GetSnapshotRequest(snapshot_id="fd8doesnotexist00001")
    _error(lambda: sdk.client(SnapshotServiceStub).Get(missing))
    request = urllib.request.Request(live.info["rest"] + "/metrics")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    get = 'method="yandex.cloud.compute.v1.SnapshotService.Get"'
    assert f'disksnap_grpc_requests_total{{code="NOT_FOUND",{get}}}' in text
    assert "disksnap_grpc_request_seconds_bucket" in text


def test_bytes_that_are_not_the_request_message_are_invalid_argument(live: Server) -> None:
    ca = Path(live.info["caCert"]).read_bytes()
    with grpc.secure_channel(live.info["grpc"], grpc.ssl_channel_credentials(ca)) as channel:
        get: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/yandex.cloud.compute.v1.SnapshotService/Get"
        )
        e = _error(
            lambda: get(b"\x0a\xff\xff", metadata=(("authorization", f"Bearer {live.token}"),))
        )
    assert status_of(e)[0] == Code.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    assert rich_status(e).details[0].Unpack(bad)
    assert bad.field_violations[0].description == (
        "the request is not a valid yandex.cloud.compute.v1.GetSnapshotRequest message"
    )

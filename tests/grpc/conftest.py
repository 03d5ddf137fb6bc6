"""gRPC fixtures: ``disksnap serve`` subprocesses (the e2e ``Server``, TLS on by
default) shared per session, and the official ``yandexcloud`` SDK configured as a user
configures it for a private endpoint: the endpoint from bootstrap.json, the CA from its
``caCert``, the admin token as ``iam_token``."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import grpc
import pytest
from google.rpc import status_pb2
from grpc_status import rpc_status
from yandex.cloud.compute.v1 import disk_service_pb2 as disk_pb
from yandex.cloud.compute.v1.disk_pb2 import Disk
from yandex.cloud.compute.v1.disk_service_pb2_grpc import DiskServiceStub
from yandex.cloud.operation import operation_service_pb2 as op_pb
from yandex.cloud.operation.operation_pb2 import Operation
from yandex.cloud.operation.operation_service_pb2_grpc import OperationServiceStub
from yandexcloud._sdk import SDK  # the package re-exports it without __all__

from tests.e2e.conftest import Server

MiB = 1 << 20
TiB = 1 << 40

# The SDK's operation waiter still builds its (deprecated) RetryInterceptor; that warning
# is the SDK's own business, not a failure of ours.
WAITER_WARNING = "ignore:Call to deprecated class RetryInterceptor:DeprecationWarning"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.filterwarnings(WAITER_WARNING))


def free_port() -> int:
    """A port to serve on across restarts. Picked below Linux's ephemeral range (32768 and
    up), where the client sockets of other tests on this machine can hold it too."""
    rng = random.SystemRandom()
    while True:
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def sdk_for(server: Server, token: str | None = None) -> SDK:
    """The SDK as the issue configures it, discovering every endpoint from the server."""
    return SDK(
        endpoint=server.info["grpc"],
        root_certificates=Path(server.info["caCert"]).read_bytes(),
        iam_token=token or server.token,
    )


def call_of(error: grpc.RpcError) -> grpc.Call:
    """The finished call a client-side RpcError also is (the stubs type them apart)."""
    assert hasattr(error, "trailing_metadata"), error
    return cast(grpc.Call, error)


def status_of(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    call = call_of(error)
    return call.code(), call.details() or ""


def trailers(call: grpc.Call) -> dict[str, str | bytes]:
    return dict(call.trailing_metadata() or ())


def rich_status(error: grpc.RpcError) -> status_pb2.Status:
    """The google.rpc.Status of ``grpc-status-details-bin``."""
    status = rpc_status.from_call(call_of(error))
    assert status is not None, "no grpc-status-details-bin"
    return status


def wait(sdk: SDK, op: Operation, timeout: float = 30) -> Operation:
    """Poll OperationService.Get until ``op`` is done. The SDK's own waiter sleeps a
    second between polls; the tests that are about it use it, the others use this."""
    operations = sdk.client(OperationServiceStub)
    deadline = time.monotonic() + timeout
    while not op.done:
        assert time.monotonic() < deadline, f"operation {op.id} did not finish"
        time.sleep(0.02)
        op = operations.Get(op_pb.GetOperationRequest(operation_id=op.id))
    assert not op.HasField("error"), op.error
    return op


def make_disk(sdk: SDK, folder: str, name: str = "", size: int = 4 * MiB) -> Disk:
    op = sdk.client(DiskServiceStub).Create(
        disk_pb.CreateDiskRequest(folder_id=folder, name=name, zone_id="ru-central1-a", size=size)
    )
    disk = Disk()
    assert wait(sdk, op).response.Unpack(disk)
    return disk


def serving(s: Server) -> Iterator[Server]:
    """Start ``s``, hand it to the test, stop it cleanly (exit code 0) afterwards."""
    s.start()
    yield s
    if s.proc is not None:
        assert s.stop() == 0


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """TLS with the generated CA, two workers: operations finish."""
    yield from serving(Server(tmp_path_factory.mktemp("grpc-live") / "data"))


@pytest.fixture(scope="session")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No workers: every operation stays in flight for as long as a test needs."""
    yield from serving(Server(tmp_path_factory.mktemp("grpc-frozen") / "data", workers=0))


@pytest.fixture(scope="session")
def sdk(live: Server) -> SDK:
    return sdk_for(live)

"""The listener's other modes and lifecycles, each on a server of its own: plaintext,
a given certificate, and a restart (with new certificate names) while the SDK's
waiter is waiting on an operation."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from yandex.cloud.compute.v1 import disk_service_pb2 as disk_pb
from yandex.cloud.compute.v1 import snapshot_service_pb2 as snap_pb
from yandex.cloud.compute.v1.disk_pb2 import Disk
from yandex.cloud.compute.v1.disk_service_pb2_grpc import DiskServiceStub
from yandex.cloud.compute.v1.snapshot_service_pb2_grpc import SnapshotServiceStub
from yandex.cloud.operation.operation_pb2 import Operation
from yandexcloud._sdk import SDK
from yandexcloud.operations import OperationResult

from disksnap.api.grpc.tls import ensure_certificates
from tests.e2e.conftest import DISKSNAP, Server
from tests.grpc.conftest import MiB, free_port, sdk_for, serving, status_of


def test_plaintext_serves_without_tls_and_advertises_no_ca(tmp_path: Path) -> None:
    for server in serving(Server(tmp_path / "data", args=["--grpc-plaintext"])):
        assert server.info["caCert"] is None
        assert not (tmp_path / "data" / "tls").exists()
        request = snap_pb.ListSnapshotsRequest(folder_id=server.folder)
        auth = (("authorization", f"Bearer {server.token}"),)
        with grpc.insecure_channel(server.info["grpc"]) as channel:
            assert list(SnapshotServiceStub(channel).List(request, metadata=auth).snapshots) == []
        log = (tmp_path / "server.log").read_text()
        assert "WITHOUT TLS" in log
        warned = [json.loads(line) for line in log.splitlines() if "WITHOUT TLS" in line]
        assert [entry["level"] for entry in warned] == ["WARNING"]


def test_a_given_certificate_is_served_and_its_ca_advertised_only_if_given(
    tmp_path: Path,
) -> None:
    given = ensure_certificates(tmp_path / "given", ["127.0.0.1"], dt.datetime.now(dt.UTC))
    pair = ["--grpc-cert", str(given.cert), "--grpc-key", str(given.key)]
    server = Server(tmp_path / "data", args=pair)
    for _ in serving(server):
        assert server.info["caCert"] is None
        assert not (tmp_path / "data" / "tls").exists()
        sdk = SDK(
            endpoint=server.info["grpc"],
            root_certificates=given.ca.read_bytes(),
            iam_token=server.token,
        )
        listed = sdk.client(DiskServiceStub).List(disk_pb.ListDisksRequest(folder_id=server.folder))
        assert list(listed.disks) == []
    server.args = [*pair, "--grpc-ca", str(given.ca)]
    for _ in serving(server):
        assert server.info["caCert"] == str(given.ca)
        ours = sdk_for(server)  # reads the advertised CA
        listed = ours.client(DiskServiceStub).List(
            disk_pb.ListDisksRequest(folder_id=server.folder)
        )
        assert list(listed.disks) == []


@pytest.mark.slow  # the waiter backs off exponentially while the server is down
def test_the_sdk_waiter_waits_across_a_restart(tmp_path: Path) -> None:
    """The waiter's RetryInterceptor retries UNAVAILABLE with exponential backoff
    (13 times, about 3.4 minutes), so a restart only delays the result."""
    server = Server(tmp_path / "data", workers=0, grpc_port=free_port())
    for _ in serving(server):
        ca = Path(server.info["caCert"]).read_bytes()
        sdk = sdk_for(server)
        op = sdk.client(DiskServiceStub).Create(
            disk_pb.CreateDiskRequest(
                folder_id=server.folder, name="survivor", zone_id="ru-central1-a", size=4 * MiB
            )
        )
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_wait_for_disk, sdk, op)
            server.stop()  # the operation is still in flight: no workers
            with pytest.raises(grpc.RpcError) as down:
                sdk.client(DiskServiceStub).List(disk_pb.ListDisksRequest(folder_id=server.folder))
            assert status_of(down.value)[0] == grpc.StatusCode.UNAVAILABLE
            assert not waiting.done()
            server.workers = 2
            server.args = ["--grpc-san", "disks.example.test"]
            server.start()
            disk = waiting.result(timeout=200)
        assert (disk.name, disk.status) == ("survivor", Disk.Status.READY)
        # The new name got a new server certificate from the same CA.
        assert Path(server.info["caCert"]).read_bytes() == ca
        cert = x509.load_pem_x509_certificate((server.data / "tls" / "server.pem").read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "disks.example.test" in sans.get_values_for_type(x509.DNSName)
        assert json.loads((server.data / "bootstrap.json").read_text())["grpc"].endswith(
            f":{server.grpc_port}"
        )


def _wait_for_disk(sdk: SDK, op: Operation) -> Disk:
    result = sdk.wait_operation_and_get_result(
        op, response_type=Disk, meta_type=disk_pb.CreateDiskMetadata
    )
    assert isinstance(result, OperationResult)
    assert isinstance(result.response, Disk)
    return result.response


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--grpc-plaintext", "--grpc-san", "disks.example.test"], "takes no certificate options"),
        (["--grpc-san", "../etc"], "--grpc-san: not a host name or IP address: '../etc'"),
        (["--grpc-cert", "/nonexistent.pem", "--grpc-key", "/nonexistent.pem"], "no such file"),
    ],
)
def test_contradicting_or_bad_options_stop_the_start(
    tmp_path: Path, options: list[str], message: str
) -> None:
    command = [DISKSNAP, "serve", "--data-dir", str(tmp_path / "data"), "--rest-port", "0"]
    command += ["--grpc-port", "0", "--nbd-port", "0", *options]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert message in done.stderr
    assert not (tmp_path / "data" / "bootstrap.json").exists()

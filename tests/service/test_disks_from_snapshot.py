"""DiskService.Create from a snapshot, cancellation, failures and resumption of the job
that makes a disk."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from google.rpc import status_pb2
from yandex.cloud.compute.v1 import disk_pb2, hardware_generation_pb2
from yandex.cloud.compute.v1 import disk_service_pb2 as pb
from yandex.cloud.compute.v1 import snapshot_service_pb2 as spb
from yandex.cloud.operation import operation_pb2, operation_service_pb2

from disksnap.domain.clock import FakeClock
from disksnap.domain.errors import BadRequest, Code, FailedPrecondition
from disksnap.meta import Folder, OperationResult, Snapshot, SnapshotStatus
from disksnap.service.bootstrap import Admin, bootstrap
from disksnap.service.core import Env
from disksnap.workers.disk_jobs import create_disk
from disksnap.workers.lease import Lease
from tests.service.conftest import Client, MiB, add_disk, close_env, make_env
from tests.service.test_disks import (
    OPS,
    ZONE,
    D,
    create,
    disk_id_of,
    fails,
    get,
    op_get,
    ready_disk,
    response_disk,
    subject_client,
)

S = "yandex.cloud.compute.v1.SnapshotService"


def snapshot_of(client: Client, folder: str, disk_id: str, **fields: object) -> str:
    """A READY snapshot of the disk, made through the API and the worker; its id."""
    request = spb.CreateSnapshotRequest(folder_id=folder, disk_id=disk_id, **fields)  # type: ignore[arg-type]
    op = client(f"{S}.Create", request)
    assert isinstance(op, operation_pb2.Operation)
    assert client.work() == 1
    m = spb.CreateSnapshotMetadata()
    assert op.metadata.Unpack(m)
    return str(m.snapshot_id)


def cancel(client: Client, op_id: str) -> operation_pb2.Operation:
    request = operation_service_pb2.CancelOperationRequest(operation_id=op_id)
    op = client(f"{OPS}.Cancel", request)
    assert isinstance(op, operation_pb2.Operation)
    return op


@pytest.fixture
def source(env: Env, admin: Admin, client: Client) -> tuple[str, bytes]:
    """A READY snapshot of an 8 MiB disk of random data (products f2e1, legacy hardware)."""
    add_disk(env, admin.folder_id, "src", size=8 * MiB)
    data = random.Random(5).randbytes(8 * MiB)
    env.engine.disk("src").write(0, data)
    hw = hardware_generation_pb2.HardwareGeneration(
        legacy_features=hardware_generation_pb2.LegacyHardwareFeatures(
            pci_topology=hardware_generation_pb2.PCI_TOPOLOGY_V2
        )
    )
    return snapshot_of(client, admin.folder_id, "src", hardware_generation=hw), data


def test_a_disk_from_a_snapshot_has_its_content(
    env: Env, admin: Admin, client: Client, source: tuple[str, bytes]
) -> None:
    snapshot_id, data = source
    op = create(client, admin.folder_id, snapshot_id=snapshot_id, size=12 * MiB)
    assert get(client, disk_id_of(op)).status == disk_pb2.Disk.CREATING
    assert client.work() == 1
    disk = response_disk(op_get(client, op.id))
    assert disk.status == disk_pb2.Disk.READY
    assert (disk.source_snapshot_id, disk.size) == (snapshot_id, 12 * MiB)
    assert list(disk.product_ids) == ["f2e1"]
    assert disk.hardware_generation.legacy_features.pci_topology == (
        hardware_generation_pb2.PCI_TOPOLOGY_V2
    )
    engine_disk = env.engine.disk(disk.id)
    assert engine_disk.read(0, 8 * MiB) == data
    assert engine_disk.read(8 * MiB, 4 * MiB) == bytes(4 * MiB)
    env.engine.disk("src").write(0, bytes(MiB))  # the source moves on; the copy does not
    assert engine_disk.read(0, MiB) == data[:MiB]


def test_the_request_overrides_the_snapshots_hardware_generation(
    admin: Admin, client: Client, source: tuple[str, bytes]
) -> None:
    hw = hardware_generation_pb2.HardwareGeneration(
        generation2_features=hardware_generation_pb2.Generation2HardwareFeatures()
    )
    disk_id = ready_disk(
        client, admin.folder_id, snapshot_id=source[0], size=8 * MiB, hardware_generation=hw
    )
    assert get(client, disk_id).hardware_generation.WhichOneof("features") == (
        "generation2_features"
    )


def test_the_disk_must_hold_the_snapshot(
    env: Env, admin: Admin, client: Client, source: tuple[str, bytes]
) -> None:
    add_disk(env, admin.folder_id, "big", size=16 * MiB)
    big = snapshot_of(client, admin.folder_id, "big")
    request = pb.CreateDiskRequest(
        folder_id=admin.folder_id, zone_id=ZONE, size=8 * MiB, snapshot_id=big
    )
    error = fails(Code.INVALID_ARGUMENT, f"{D}.Create", client, request)
    assert isinstance(error, BadRequest)
    assert [v.field for v in error.violations] == ["size"]
    with env.meta.transaction(readonly=True) as tx:
        assert tx.disks.usage(admin.folder_id).count == 2  # src and big only


def test_the_snapshot_must_be_ready_and_readable(
    env: Env, admin: Admin, client: Client, source: tuple[str, bytes]
) -> None:
    env.engine.disk("src").write(0, b"more")
    pending = client(
        f"{S}.Create", spb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="src")
    )
    assert isinstance(pending, operation_pb2.Operation)
    m = spb.CreateSnapshotMetadata()
    assert pending.metadata.Unpack(m)
    request = pb.CreateDiskRequest(
        folder_id=admin.folder_id, zone_id=ZONE, size=8 * MiB, snapshot_id=m.snapshot_id
    )
    fails(Code.FAILED_PRECONDITION, f"{D}.Create", client, request)
    with env.meta.transaction() as tx:
        tx.folders.insert(Folder("b1gother0000000000000", "other", env.clock.now()))
        tx.snapshots.insert(_foreign_snapshot("b1gother0000000000000", env.clock.now()))
    request.snapshot_id = "fd8foreign0000000000"
    fails(Code.PERMISSION_DENIED, f"{D}.Create", client, request)
    reader = subject_client(env, "b1gother0000000000000", "viewer", "reader")
    with env.meta.transaction() as tx:
        tx.roles.grant(admin.folder_id, "ajereader", "editor")
    assert create(reader, admin.folder_id, snapshot_id="fd8foreign0000000000").id


def _foreign_snapshot(folder_id: str, now: dt.datetime) -> Snapshot:
    return Snapshot(
        id="fd8foreign0000000000",
        folder_id=folder_id,
        name="",
        description="",
        labels={},
        storage_size=0,
        disk_size=4 * MiB,
        product_ids=(),
        status=SnapshotStatus.READY,
        source_disk_id=None,
        created_at=now,
    )


def test_cancel_before_the_worker_removes_everything(
    env: Env, admin: Admin, client: Client, source: tuple[str, bytes]
) -> None:
    for fields in ({}, {"snapshot_id": source[0]}):
        op = create(client, admin.folder_id, **fields)
        assert not cancel(client, op.id).done
        assert client.work() == 1
        done = op_get(client, op.id)
        assert done.done
        assert done.error.code == Code.CANCELLED
        fails(Code.NOT_FOUND, f"{D}.Get", client, pb.GetDiskRequest(disk_id=disk_id_of(op)))
        assert env.engine.list_disks() == ["src"]
        assert cancel(client, op.id).error.code == Code.CANCELLED  # done: no change


def test_cancel_while_the_disk_is_made(env: Env, admin: Admin, client: Client) -> None:
    op = create(client, admin.folder_id)
    with env.meta.transaction() as tx:
        claimed = tx.operations.claim("w", dt.timedelta(seconds=30))
    assert claimed is not None
    lease = Lease(env, claimed, "w", dt.timedelta(seconds=30))
    cancel(client, op.id)  # after the claim: the job learns of it by heartbeat
    assert not lease.cancel.is_set()
    result = create_disk(env, lease)
    assert isinstance(result, OperationResult)  # no Completion: nothing to commit with it
    assert result.kind == "error"
    assert status_pb2.Status.FromString(result.payload).code == Code.CANCELLED
    assert env.engine.list_disks() == []
    fails(Code.NOT_FOUND, f"{D}.Get", client, pb.GetDiskRequest(disk_id=disk_id_of(op)))


def test_cancel_after_ready_changes_nothing(admin: Admin, client: Client) -> None:
    op = create(client, admin.folder_id)
    client.work()
    assert cancel(client, op.id).WhichOneof("result") == "response"
    assert get(client, disk_id_of(op)).status == disk_pb2.Disk.READY


def test_a_snapshot_cannot_be_deleted_while_a_disk_is_made_from_it(
    env: Env, admin: Admin, client: Client, source: tuple[str, bytes]
) -> None:
    op = create(client, admin.folder_id, snapshot_id=source[0])
    with pytest.raises(FailedPrecondition, match="being created from snapshot"):
        client(f"{S}.Delete", spb.DeleteSnapshotRequest(snapshot_id=source[0]))
    assert client.work() == 1
    assert op_get(client, op.id).WhichOneof("result") == "response"
    deleted = client(f"{S}.Delete", spb.DeleteSnapshotRequest(snapshot_id=source[0]))
    assert isinstance(deleted, operation_pb2.Operation)
    assert deleted.done  # the disk keeps reading from its own copy of the manifest
    disk = env.engine.disk(disk_id_of(op))
    assert disk.read(0, len(source[1])) == source[1]


def test_the_job_resumes_after_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    env = make_env(tmp_path, clock)
    admin = bootstrap(env)
    assert admin is not None
    op = create(Client(env, admin.token), admin.folder_id)
    disk_id = disk_id_of(op)
    env.engine.create_disk(disk_id, 8 * MiB)  # made, then the process died
    env.engine.disk(disk_id).write(0, b"kept")
    close_env(env)
    env = make_env(tmp_path, clock, seed=2)
    try:
        client = Client(env, admin.token)
        assert client.work() == 1
        assert response_disk(op_get(client, op.id)).status == disk_pb2.Disk.READY
        assert env.engine.disk(disk_id).read(0, 4) == b"kept"
    finally:
        close_env(env)

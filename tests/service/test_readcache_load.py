"""``readcache.load``: the resources a batch of changes names, read as their Gets
answer them (one read-only transaction, one statement per kind), on both databases."""

from __future__ import annotations

from yandex.cloud.compute.v1 import disk_service_pb2 as dpb
from yandex.cloud.compute.v1 import snapshot_service_pb2 as spb
from yandex.cloud.operation import operation_service_pb2 as opb

from disksnap.service.bootstrap import Admin
from disksnap.service.readcache import METHODS, load
from tests.service.conftest import Client
from tests.service.test_disks import create, disk_id_of

D = "yandex.cloud.compute.v1.DiskService"
S = "yandex.cloud.compute.v1.SnapshotService"
OPS = "yandex.cloud.operation.OperationService"


def test_load_reads_every_kind_as_its_get_answers_and_skips_what_is_gone(
    client: Client, admin: Admin
) -> None:
    disk_op = create(client, admin.folder_id)
    client.work()
    disk_id = disk_id_of(disk_op)
    request = spb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id=disk_id)
    snap_op = client(f"{S}.Create", request)
    metadata = spb.CreateSnapshotMetadata()
    assert snap_op.metadata.Unpack(metadata)
    snapshot_id = metadata.snapshot_id
    keys = [
        ("disk", disk_id),
        ("snapshot", snapshot_id),
        ("operation", disk_op.id),
        ("operation", snap_op.id),
        ("snapshot", "fd8nosuchsnapshot000"),
        ("disk", "fhmnosuchdisk0000000"),
    ]
    loaded = {(x.rpc, x.resource_id): x for x in load(client.env.meta, keys)}
    gets = {
        ("disk", disk_id): dpb.GetDiskRequest(disk_id=disk_id),
        ("snapshot", snapshot_id): spb.GetSnapshotRequest(snapshot_id=snapshot_id),
        ("operation", disk_op.id): opb.GetOperationRequest(operation_id=disk_op.id),
        ("operation", snap_op.id): opb.GetOperationRequest(operation_id=snap_op.id),
    }
    assert set(loaded) == {(METHODS[kind], rid) for kind, rid in gets}
    for (kind, rid), get in gets.items():
        x = loaded[METHODS[kind], rid]
        assert x.folder_id == admin.folder_id
        assert x.message == client(METHODS[kind], get)
    assert load(client.env.meta, []) == []

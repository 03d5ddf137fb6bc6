"""Background hydration of disks created from snapshots."""

from __future__ import annotations

import random

from yandex.cloud.compute.v1 import disk_service_pb2 as dpb
from yandex.cloud.compute.v1 import snapshot_service_pb2 as spb
from yandex.cloud.operation import operation_pb2

from disksnap.service.bootstrap import Admin
from disksnap.service.core import Env
from disksnap.workers.hydrator import Hydrator
from tests.service.conftest import Client, MiB, add_disk


def test_disks_from_snapshots_are_hydrated_in_the_background(
    env: Env, admin: Admin, client: Client
) -> None:
    add_disk(env, admin.folder_id, "src")
    data = random.Random(2).randbytes(8 * MiB)
    env.engine.disk("src").write(0, data)
    op = client(
        "yandex.cloud.compute.v1.SnapshotService.Create",
        spb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="src"),
    )
    assert isinstance(op, operation_pb2.Operation)
    client.work()
    meta = spb.CreateSnapshotMetadata()
    op.metadata.Unpack(meta)
    made = client(
        "yandex.cloud.compute.v1.DiskService.Create",
        dpb.CreateDiskRequest(
            folder_id=admin.folder_id,
            zone_id="ru-central1-a",
            size=16 * MiB,
            snapshot_id=meta.snapshot_id,
        ),
    )
    assert isinstance(made, operation_pb2.Operation)
    client.work()
    disk_meta = dpb.CreateDiskMetadata()
    made.metadata.Unpack(disk_meta)
    disk = env.engine.disk(disk_meta.disk_id)
    assert disk.backing is not None  # usable at once, reading through
    hydrator = Hydrator(env.engine)
    assert hydrator.run_once() == 1
    assert env.engine.disk(disk_meta.disk_id).backing is None
    assert disk.read(0, 8 * MiB) == data
    assert hydrator.run_once() == 0  # nothing left to do

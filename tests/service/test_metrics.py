"""Service gauges: operations by kind and state, stored bytes."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, generate_latest
from yandex.cloud.compute.v1 import snapshot_service_pb2 as spb

from disksnap.service.bootstrap import Admin
from disksnap.service.core import Env
from disksnap.service.metrics import ServiceCollector
from tests.service.conftest import Client, MiB, add_disk


def test_operations_and_stored_bytes(env: Env, admin: Admin, client: Client) -> None:
    registry = CollectorRegistry()
    registry.register(ServiceCollector(env))
    add_disk(env, admin.folder_id, "d1")
    env.engine.disk("d1").write(0, random.Random(1).randbytes(4 * MiB))
    client(
        "yandex.cloud.compute.v1.SnapshotService.Create",
        spb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="d1"),
    )
    text = generate_latest(registry).decode()
    assert 'disksnap_operations{kind="compute.snapshots.create",state="pending"} 1.0' in text
    assert "disksnap_snapshot_stored_bytes 0.0" in text
    client.work()
    text = generate_latest(registry).decode()
    assert 'disksnap_operations{kind="compute.snapshots.create",state="done"} 1.0' in text
    stored = next(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("disksnap_snapshot_stored_bytes ")
    )
    assert 4 * MiB < stored < 4 * MiB + 4096

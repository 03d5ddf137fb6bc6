"""Small builders of valid records, with every field overridable."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from disksnap.meta import (
    Disk,
    DiskStatus,
    Folder,
    Operation,
    Snapshot,
    SnapshotStatus,
    Subject,
    SubjectKind,
    Transaction,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FOLDER = "b1gfolder0000000000a"
OTHER_FOLDER = "b1gfolder0000000000b"
SUBJECT = "ajesubject000000000a"
GiB = 1 << 30


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def seed(tx: Transaction) -> None:
    """Two folders and a subject, the parents most records need."""
    tx.folders.insert(Folder(FOLDER, "main", T0))
    tx.folders.insert(Folder(OTHER_FOLDER, "other", T0))
    tx.subjects.insert(Subject(SUBJECT, "admin", SubjectKind.USER, FOLDER, T0))


def disk(disk_id: str, **fields: Any) -> Disk:
    base = Disk(
        id=disk_id,
        folder_id=FOLDER,
        name="",
        description="",
        labels={},
        type_id="network-hdd",
        zone_id="ru-central1-a",
        size=GiB,
        block_size=4096,
        product_ids=(),
        status=DiskStatus.READY,
        created_at=T0,
    )
    return replace(base, **fields)


def snapshot(snapshot_id: str, **fields: Any) -> Snapshot:
    base = Snapshot(
        id=snapshot_id,
        folder_id=FOLDER,
        name="",
        description="",
        labels={},
        storage_size=0,
        disk_size=GiB,
        product_ids=(),
        status=SnapshotStatus.READY,
        source_disk_id=None,
        created_at=T0,
    )
    return replace(base, **fields)


def operation(op_id: str, **fields: Any) -> Operation:
    base = Operation(
        id=op_id,
        description="Create snapshot",
        created_at=T0,
        created_by=SUBJECT,
        modified_at=T0,
        done=False,
        metadata=b"\x0a\x03any",
        kind="compute.snapshots.create",
        resource_id="fd8snapshot00000000a",
        params={"diskId": "d1"},
    )
    return replace(base, **fields)

"""Contract: disks and snapshots — insert, get, update, delete, the name rule, usage."""

from __future__ import annotations

import pytest

from disksnap.meta import DiskStatus, Meta, SnapshotStatus, Usage
from disksnap.meta.base import MANY_AT_ONCE
from disksnap.meta.errors import (
    DiskNotFound,
    DuplicateId,
    FolderNotFound,
    NameTaken,
    SnapshotNotFound,
)
from tests.meta.factories import FOLDER, OTHER_FOLDER, GiB, at, disk, seed, snapshot


def test_disk_round_trip(meta: Meta) -> None:
    full = disk(
        "epd1",
        name="boot",
        description="the boot disk",
        labels={"env": "prod", "team": "a"},
        product_ids=("f2e1", "f2e2"),
        status=DiskStatus.CREATING,
        source_snapshot_id="fd8src",
        hardware_generation={"legacyFeatures": {"pciTopology": "PCI_TOPOLOGY_V2"}},
        kms_key={"keyId": "abj", "versionId": "v1"},
        created_at=at(5.123456),
    )
    with meta.transaction() as tx:
        seed(tx)
        tx.disks.insert(full)
        tx.disks.insert(disk("epd2", source_image_id="fd8img"))
    with meta.transaction(readonly=True) as tx:
        assert tx.disks.get("epd1") == full
        assert tx.disks.get("epd2").source_image_id == "fd8img"
        assert tx.disks.get("epd2").hardware_generation is None
        with pytest.raises(DiskNotFound) as info:
            tx.disks.get("epdmissing")
        assert info.value.reason == "DISK_NOT_FOUND"


def test_snapshot_round_trip(meta: Meta) -> None:
    full = snapshot(
        "fd81",
        name="nightly",
        description="d",
        labels={"k": ""},
        storage_size=123,
        disk_size=4 * GiB,
        product_ids=("p",),
        status=SnapshotStatus.CREATING,
        source_disk_id="epd1",
        hardware_generation={"generation2Features": {}},
        kms_key={"keyId": "abj"},
        created_at=at(1),
    )
    with meta.transaction() as tx:
        seed(tx)
        tx.snapshots.insert(full)
    with meta.transaction() as tx:
        assert tx.snapshots.get("fd81") == full
        assert tx.snapshots.get("fd81", for_update=True) == full
        with pytest.raises(SnapshotNotFound):
            tx.snapshots.get("fd8missing")


def test_get_many(meta: Meta) -> None:
    disks = [disk(f"epd{i}") for i in range(3)]
    snapshots = [snapshot(f"fd8{i}") for i in range(MANY_AT_ONCE + 5)]  # two statements
    with meta.transaction() as tx:
        seed(tx)
        for d in disks:
            tx.disks.insert(d)
        for s in snapshots:
            tx.snapshots.insert(s)
    with meta.transaction(readonly=True) as tx:
        got = tx.disks.get_many(["epd2", "epdmissing", "epd0", "fd80"])
        assert sorted(got, key=lambda d: d.id) == [disks[0], disks[2]]
        every = tx.snapshots.get_many([s.id for s in snapshots])
        assert sorted(every, key=lambda s: s.id) == sorted(snapshots, key=lambda s: s.id)
        assert tx.snapshots.get_many([]) == []


def test_insert_conflicts(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.disks.insert(disk("epd1", name="data"))
        tx.snapshots.insert(snapshot("fd81", name="data"))  # names are per kind
        with pytest.raises(DuplicateId):
            tx.disks.insert(disk("epd1", name="other"))
        with pytest.raises(NameTaken) as taken:
            tx.disks.insert(disk("epd2", name="data"))
        assert taken.value.field == "name"
        with pytest.raises(NameTaken):
            tx.snapshots.insert(snapshot("fd82", name="data"))
        with pytest.raises(FolderNotFound):
            tx.disks.insert(disk("epd3", folder_id="b1gmissing"))
        with pytest.raises(FolderNotFound):
            tx.snapshots.insert(snapshot("fd83", folder_id="b1gmissing"))
        # The transaction survives the failed statements.
        tx.disks.insert(disk("epd4", name="data", folder_id=OTHER_FOLDER))
        tx.disks.insert(disk("epd5"))
        tx.disks.insert(disk("epd6"))  # empty names never collide
    with meta.transaction(readonly=True) as tx:
        page = tx.disks.list(FOLDER)
        assert [d.id for d in page.items] == ["epd1", "epd5", "epd6"]


def test_update_disk(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.disks.insert(disk("epd1", name="a", labels={"x": "1"}))
        tx.disks.insert(disk("epd2", name="b"))
    with meta.transaction() as tx:
        updated = tx.disks.update(
            "epd1",
            {
                "name": "renamed",
                "description": "new",
                "labels": {"y": "2"},
                "size": 2 * GiB,
                "status": DiskStatus.ERROR,
                "product_ids": ["q"],
                "kms_key": {"keyId": "k"},
            },
        )
        assert updated == disk(
            "epd1",
            name="renamed",
            description="new",
            labels={"y": "2"},
            size=2 * GiB,
            status=DiskStatus.ERROR,
            product_ids=("q",),
            kms_key={"keyId": "k"},
        )
        assert tx.disks.update("epd1", {}) == updated
        assert tx.disks.update("epd1", {"kms_key": None}).kms_key is None
        with pytest.raises(NameTaken):
            tx.disks.update("epd1", {"name": "b"})
        with pytest.raises(DiskNotFound):
            tx.disks.update("epdmissing", {"name": "z"})
        with pytest.raises(TypeError):
            tx.disks.update("epd1", {"zone_id": "x"})  # type: ignore[typeddict-unknown-key]
    with meta.transaction(readonly=True) as tx:
        assert tx.disks.get("epd1").name == "renamed"


def test_update_snapshot(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.snapshots.insert(snapshot("fd81", status=SnapshotStatus.CREATING))
        tx.snapshots.insert(snapshot("fd82", name="taken"))
        done = tx.snapshots.update(
            "fd81",
            {"status": SnapshotStatus.READY, "storage_size": 77, "labels": {}, "name": "n"},
        )
        assert (done.status, done.storage_size, done.name) == (SnapshotStatus.READY, 77, "n")
        with pytest.raises(NameTaken):
            tx.snapshots.update("fd81", {"name": "taken"})
        with pytest.raises(SnapshotNotFound):
            tx.snapshots.update("fd8missing", {"status": SnapshotStatus.ERROR})


def test_delete(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.disks.insert(disk("epd1", name="a"))
        tx.snapshots.insert(snapshot("fd81", name="a"))
    with meta.transaction() as tx:
        tx.disks.delete("epd1")
        tx.snapshots.delete("fd81")
        with pytest.raises(DiskNotFound):
            tx.disks.delete("epd1")
        with pytest.raises(SnapshotNotFound):
            tx.snapshots.delete("fd81")
        # The names are free again.
        tx.disks.insert(disk("epd2", name="a"))
        tx.snapshots.insert(snapshot("fd82", name="a"))


def test_usage_and_count_by_disk(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        assert tx.disks.usage(FOLDER) == Usage(0, 0)
        assert tx.snapshots.usage(FOLDER) == Usage(0, 0)
        tx.disks.insert(disk("epd1", size=GiB))
        tx.disks.insert(disk("epd2", size=3 * GiB, status=DiskStatus.DELETING))
        tx.disks.insert(disk("epd3", size=5 * GiB, folder_id=OTHER_FOLDER))
        tx.snapshots.insert(snapshot("fd81", storage_size=10, disk_size=GiB, source_disk_id="d"))
        tx.snapshots.insert(
            snapshot(
                "fd82",
                storage_size=20,
                disk_size=GiB,
                source_disk_id="d",
                status=SnapshotStatus.CREATING,
            )
        )
        tx.snapshots.insert(snapshot("fd83", storage_size=40, folder_id=OTHER_FOLDER))
    with meta.transaction(readonly=True) as tx:
        assert tx.disks.usage(FOLDER) == Usage(2, 4 * GiB)
        assert tx.snapshots.usage(FOLDER) == Usage(2, 30)  # storage_size, not disk_size
        assert tx.snapshots.usage(OTHER_FOLDER) == Usage(1, 40)
        assert tx.snapshots.count_by_disk("d") == 2
        assert tx.snapshots.count_by_disk("d", [SnapshotStatus.CREATING]) == 1
        statuses = [SnapshotStatus.ERROR, SnapshotStatus.DELETING]
        assert tx.snapshots.count_by_disk("d", statuses) == 0
        assert tx.snapshots.count_by_disk("nope") == 0


def test_a_disk_locked_with_its_snapshots_counted(meta: Meta) -> None:
    creating, ready = SnapshotStatus.CREATING, SnapshotStatus.READY
    with meta.transaction() as tx:
        seed(tx)
        tx.disks.insert(disk("epd1"))
        tx.disks.insert(disk("epd2"))
        tx.snapshots.insert(snapshot("fd81", source_disk_id="epd1", status=creating))
        tx.snapshots.insert(snapshot("fd82", source_disk_id="epd1"))
        tx.snapshots.insert(snapshot("fd83", source_disk_id="epd1"))
        tx.snapshots.insert(snapshot("fd84", source_disk_id="epd2", status=creating))
    with meta.transaction() as tx:
        assert tx.disks.get_locked_counting("epd1", [creating]) == (tx.disks.get("epd1"), 1)
        assert tx.disks.get_locked_counting("epd1", [ready]) == (tx.disks.get("epd1"), 2)
        assert tx.disks.get_locked_counting("epd1", [creating, ready])[1] == 3
        assert tx.disks.get_locked_counting("epd2", [ready]) == (tx.disks.get("epd2"), 0)
        tx.snapshots.insert(snapshot("fd85", source_disk_id="epd2", status=creating))
        assert tx.disks.get_locked_counting("epd2", [creating])[1] == 2  # this transaction's
        with pytest.raises(DiskNotFound):
            tx.disks.get_locked_counting("epdmissing", [creating])

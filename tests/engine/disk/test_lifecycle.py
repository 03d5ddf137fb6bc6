"""Block disks over time: grow, delete, and reopen after clean and unclean stops."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from disksnap.engine.disk import Disk, read_info
from disksnap.engine.engine import Engine
from disksnap.engine.errors import (
    DiskNotFound,
    InvalidGeometry,
    OutOfBounds,
)
from tests.engine.disk.conftest import CS, SIZE, SMALL
from tests.engine.disk.conftest import data as _data

# --- grow ------------------------------------------------------------------------------


def test_grow_preserves_data_and_new_space_reads_zero(eng: Engine, root: Path, disk: Disk) -> None:
    data = _data(random.Random(8), SIZE)
    disk.write(0, data)
    disk.grow(3 * SIZE)
    assert disk.size == 3 * SIZE
    assert disk.read(0, SIZE) == data
    assert disk.read(SIZE, 2 * SIZE) == bytes(2 * SIZE)
    assert disk.changes.chunk_count == 3 * SIZE // CS
    disk.write(3 * SIZE - 4, b"tail")
    assert disk.read(3 * SIZE - 4, 4) == b"tail"
    with pytest.raises(OutOfBounds):
        disk.read(3 * SIZE - 1, 2)
    eng.close()
    again = Engine(root, config=SMALL)
    try:
        d = again.disk("disk-1")
        assert d.size == 3 * SIZE
        assert d.read(0, SIZE) == data
        assert d.read(SIZE, 2 * SIZE - 4) == bytes(2 * SIZE - 4)
        assert d.read(3 * SIZE - 4, 4) == b"tail"
        assert d.changes.chunk_count == 3 * SIZE // CS
        assert d.map_trusted
    finally:
        again.close()


def test_disk_json_written_by_a_grow_and_a_publish_at_once_stays_whole(disk: Disk) -> None:
    # A publish saves disk.json under the engine's mutex, a grow under the disk's
    # locks: both used one temporary file, so one's rename could fail or take the
    # other's half-written content.
    failures: list[BaseException] = []

    def publish() -> None:
        for _ in range(200):
            try:
                disk.save_info()
            except BaseException as e:  # noqa: BLE001 - collected for the assertion
                failures.append(e)

    publisher = threading.Thread(target=publish)
    publisher.start()
    for step in range(1, 31):
        try:
            disk.grow(SIZE + step * CS)
        except BaseException as e:  # noqa: BLE001
            failures.append(e)
    publisher.join()
    assert failures == []
    assert read_info(disk.dir) == disk.info
    assert disk.size == SIZE + 30 * CS


@pytest.mark.parametrize("new_size", [SIZE - CS, CS, SIZE + 1, SIZE + CS // 2, 2 * SIZE - 1])
def test_grow_rejects_shrinking_and_unaligned(disk: Disk, new_size: int) -> None:
    disk.write(SIZE - 1, b"z")
    with pytest.raises(InvalidGeometry):
        disk.grow(new_size)
    assert disk.size == SIZE
    assert (disk.dir / "data").stat().st_size == SIZE
    assert disk.read(SIZE - 1, 1) == b"z"
    assert disk.changes.chunk_count == SIZE // CS


def test_grow_beyond_engine_maximum_is_rejected(disk: Disk) -> None:
    too_big = SMALL.max_disk_size + CS
    with pytest.raises(InvalidGeometry):
        disk.grow(too_big)
    assert disk.size == SIZE


# --- delete ----------------------------------------------------------------------------


def test_delete_removes_directory(eng: Engine, root: Path, disk: Disk) -> None:
    disk.write(0, b"data")
    directory = disk.dir
    assert directory.is_dir()
    eng.delete_disk("disk-1")
    assert not directory.exists()
    assert eng.list_disks() == []
    with pytest.raises(DiskNotFound):
        eng.disk("disk-1")
    with pytest.raises(DiskNotFound):
        eng.delete_disk("disk-1")
    fresh = eng.create_disk("disk-1", SIZE)
    assert fresh.read(0, 4) == bytes(4)


def test_deleted_disk_stays_deleted_after_restart(root: Path) -> None:
    e = Engine(root, config=SMALL)
    e.create_disk("gone", SIZE)
    e.create_disk("kept", SIZE).write(0, b"k")
    e.delete_disk("gone")
    e.close()
    e2 = Engine(root, config=SMALL)
    try:
        assert e2.list_disks() == ["kept"]
        with pytest.raises(DiskNotFound):
            e2.disk("gone")
        assert e2.disk("kept").read(0, 1) == b"k"
    finally:
        e2.close()


def test_stale_handle_of_deleted_disk_cannot_touch_another_disk(eng: Engine) -> None:
    old = eng.create_disk("old", SIZE)
    eng.delete_disk("old")
    other = eng.create_disk("other", SIZE)  # may reuse the old file descriptor number
    with pytest.raises(DiskNotFound):
        old.write(0, b"stale write")
    with pytest.raises(DiskNotFound):
        old.read(0, 1)
    assert other.read(0, 11) == bytes(11)


# --- reopen ----------------------------------------------------------------------------


def test_reopen_after_clean_close(root: Path) -> None:
    data = _data(random.Random(9), 2 * CS + 17)
    e = Engine(root, config=SMALL)
    d = e.create_disk("disk-1", SIZE)
    d.write(3 * CS - 5, data)
    e.close()
    assert (root / "disks" / "disk-1" / "changemap").exists()
    e2 = Engine(root, config=SMALL)
    try:
        d2 = e2.disk("disk-1")
        assert d2.size == SIZE
        assert d2.map_trusted
        assert d2.read(3 * CS - 5, len(data)) == data
        assert d2.read(0, 3 * CS - 5) == bytes(3 * CS - 5)
        assert d2.changes.changed() == [2, 3, 4, 5]
    finally:
        e2.close()


def test_reopen_after_unclean_stop_is_untrusted(root: Path) -> None:
    e = Engine(root, config=SMALL)
    d = e.create_disk("disk-1", SIZE)
    d.write(CS, b"written before the crash")
    e.abandon()  # no clean close: as if the process died
    del e, d
    e2 = Engine(root, config=SMALL)
    try:
        d2 = e2.disk("disk-1")
        assert not d2.map_trusted
        assert d2.read(CS, 24) == b"written before the crash"
    finally:
        e2.close()


def test_untrusted_map_stays_untrusted_after_a_later_clean_close(root: Path) -> None:
    # Crash after writing chunk 1: the change map is lost.
    e = Engine(root, config=SMALL)
    e.create_disk("disk-1", SIZE).write(CS, b"before the crash")
    e.abandon()
    del e
    # Restart, write chunk 5, shut down cleanly.
    e2 = Engine(root, config=SMALL)
    d2 = e2.disk("disk-1")
    assert not d2.map_trusted
    d2.write(5 * CS, b"after the restart")
    e2.close()
    # The map now on disk knows only chunk 5; it must not claim to cover chunk 1.
    e3 = Engine(root, config=SMALL)
    try:
        d3 = e3.disk("disk-1")
        assert d3.read(CS, 16) == b"before the crash"
        assert (not d3.map_trusted) or d3.changes.is_set(1), (
            "the change map is trusted but misses chunk 1, written before the crash"
        )
    finally:
        e3.close()


def test_damaged_change_map_file_makes_the_map_untrusted(root: Path) -> None:
    e = Engine(root, config=SMALL)
    e.create_disk("disk-1", SIZE).write(0, b"x")
    e.close()
    path = root / "disks" / "disk-1" / "changemap"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    e2 = Engine(root, config=SMALL)
    try:
        d = e2.disk("disk-1")
        assert not d.map_trusted
        assert d.read(0, 1) == b"x"
        assert not path.exists()  # the open disk keeps its map in memory only
    finally:
        e2.close()


def test_leftovers_of_creation_and_deletion_are_not_disks(root: Path) -> None:
    e = Engine(root, config=SMALL)
    e.create_disk("a", SIZE)
    (root / "disks" / ".tmp-b").mkdir()  # a creation in progress
    (root / "disks" / ".tmp-del-c").mkdir()  # a deletion in progress
    assert e.list_disks() == ["a"]
    e.delete_disk("a")
    assert e.list_disks() == []
    assert not (root / "disks" / ".tmp-del-a").exists()
    e.close()
    e = Engine(root, config=SMALL)  # start-up sweeps the leftovers
    try:
        assert sorted(p.name for p in (root / "disks").iterdir()) == []
    finally:
        e.close()

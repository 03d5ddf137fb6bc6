"""Snapshot builds: full, incremental, dedup, zero chunks, accounting, restore."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from disksnap.engine.engine import Engine
from disksnap.engine.errors import DiskExists, InvalidGeometry, SnapshotNotFound
from tests.engine.conftest import KiB, MiB
from tests.engine.helpers import read_all, restored, snapshot, text

CS = 256 * KiB  # chunk size of the test config


def chunk_files(engine: Engine) -> set[str]:
    return set(engine.store.list())


def test_full_snapshot_reads_only_written_extents_and_skips_zeroes(
    engine: Engine, rng: random.Random
) -> None:
    disk = engine.create_disk("d", 8 * MiB)
    disk.write(0, rng.randbytes(CS))  # one random extent
    disk.write(2 * CS, text(rng, CS))  # one compressible extent
    disk.write(4 * CS, bytes(CS))  # written, but all zeroes
    engine.create_checkpoint("d", "s1")
    result = engine.build_snapshot("s1")
    assert result.stats.read_extents == 3  # never-written extents are not even read
    assert result.stats.new_chunks == 2  # the zero extent is not stored
    assert len(chunk_files(engine)) == 2
    m = engine.snapshot("s1")
    assert m.disk_size == 8 * MiB
    assert [i for i, cid in m.iter_refs() if cid is not None] == [0, 2]
    assert m.chunk_sizes()[m.ref(2) or ""] < CS // 2  # text is compressed
    assert restored(engine, "s1") == read_all(disk)


def test_incremental_reads_only_changed_extents(engine: Engine, rng: random.Random) -> None:
    disk = engine.create_disk("d", 16 * MiB)
    disk.write(0, rng.randbytes(16 * MiB))
    snapshot(engine, "d", "s1")
    disk.write(5 * CS + 10, b"a" * 100)  # one extent
    disk.write(9 * CS - 50, b"b" * 100)  # straddles extents 8 and 9
    engine.create_checkpoint("d", "s2")
    result = engine.build_snapshot("s2")
    assert result.stats.incremental
    assert result.stats.read_extents == 3
    assert result.stats.read_bytes == 3 * CS
    assert result.stats.new_chunks == 3
    assert engine.snapshot("s2").parent == "s1"
    assert restored(engine, "s2") == read_all(disk)


def test_identical_content_is_stored_once(engine: Engine, rng: random.Random) -> None:
    block = rng.randbytes(CS)
    a = engine.create_disk("a", 4 * MiB)
    b = engine.create_disk("b", 4 * MiB)
    for i in range(4):
        a.write(i * CS, block)
    b.write(7 * CS, block)
    snapshot(engine, "a", "sa")
    engine.create_checkpoint("b", "sb")
    result = engine.build_snapshot("sb")
    assert result.stats.new_chunks == 0
    assert len(chunk_files(engine)) == 1


def test_storage_size_is_the_delta_and_is_reattributed_on_delete(
    engine: Engine, rng: random.Random
) -> None:
    disk = engine.create_disk("d", 4 * MiB)
    disk.write(0, rng.randbytes(4 * CS))
    snapshot(engine, "d", "s1")
    disk.write(0, rng.randbytes(CS))
    snapshot(engine, "d", "s2")
    disk.write(CS, rng.randbytes(CS))
    snapshot(engine, "d", "s3")
    sizes = engine.storage_sizes("d")
    blob = engine.snapshot("s1").chunk_sizes()[engine.snapshot("s1").ref(0) or ""]
    assert sizes == {"s1": 4 * blob, "s2": blob, "s3": blob}
    assert engine.referenced_bytes() == 6 * blob
    engine.delete_snapshot("s2")
    # s3 now pays for the extent s2 introduced and s1 does not have.
    assert engine.storage_sizes("d") == {"s1": 4 * blob, "s3": 2 * blob}
    engine.delete_snapshot("s1")
    assert engine.storage_sizes("d") == {"s3": 4 * blob}
    assert engine.referenced_bytes() == 4 * blob


def test_restore_is_bit_exact_and_its_first_snapshot_reads_nothing(
    engine: Engine, rng: random.Random
) -> None:
    disk = engine.create_disk("d", 8 * MiB)
    disk.write(123, rng.randbytes(3 * MiB))
    disk.write(6 * MiB, text(rng, 1 * MiB))
    snapshot(engine, "d", "s1")
    copy = engine.restore("s1", "copy")
    assert read_all(copy) == read_all(disk)
    assert copy.extents(4 * MiB, 1 * MiB) == [(4 * MiB, 1 * MiB, False)]  # holes stay holes
    engine.create_checkpoint("copy", "c1")
    result = engine.build_snapshot("c1")
    assert result.stats.read_extents == 0
    assert result.stats.new_chunks == 0
    assert engine.storage_sizes("copy")["c1"] > 0  # its own lineage pays in full


def test_restore_into_a_larger_disk_and_bad_targets(engine: Engine, rng: random.Random) -> None:
    disk = engine.create_disk("d", 2 * MiB)
    disk.write(0, rng.randbytes(2 * MiB))
    snapshot(engine, "d", "s1")
    big = engine.restore("s1", "big", size=4 * MiB)
    assert big.size == 4 * MiB
    assert read_all(big) == read_all(disk) + bytes(2 * MiB)
    with pytest.raises(InvalidGeometry):
        engine.restore("s1", "small", size=1 * MiB)
    with pytest.raises(DiskExists):
        engine.restore("s1", "d")
    with pytest.raises(SnapshotNotFound):
        engine.restore("nope", "x")


def test_grown_disk_snapshots_the_new_size(engine: Engine, rng: random.Random) -> None:
    disk = engine.create_disk("d", 2 * MiB)
    disk.write(0, rng.randbytes(2 * MiB))
    snapshot(engine, "d", "s1")
    disk.grow(4 * MiB)
    disk.write(3 * MiB, b"tail")
    engine.create_checkpoint("d", "s2")
    result = engine.build_snapshot("s2")
    assert result.stats.read_extents == 1
    assert engine.snapshot("s2").disk_size == 4 * MiB
    assert restored(engine, "s2") == read_all(disk)


def test_unclean_stop_falls_back_to_read_and_compare(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    disk = engine.create_disk("d", 8 * MiB)
    disk.write(0, rng.randbytes(8 * MiB))
    snapshot(engine, "d", "s1")
    disk.write(3 * CS, b"changed before the crash")
    engine.abandon()  # the change map of this run is lost
    engine = make_engine()
    disk = engine.disk("d")
    assert not disk.map_trusted
    engine.create_checkpoint("d", "s2")
    result = engine.build_snapshot("s2")
    assert not result.stats.incremental
    assert result.stats.read_extents == 32  # everything read and compared...
    assert result.stats.new_chunks == 1  # ...but only the changed extent stored
    assert restored(engine, "s2") == read_all(disk)
    # The map is exact again from the checkpoint on.
    disk.write(0, b"x")
    engine.create_checkpoint("d", "s3")
    assert engine.build_snapshot("s3").stats.read_extents == 1


def test_deleted_base_means_a_full_read(engine: Engine, rng: random.Random) -> None:
    disk = engine.create_disk("d", 4 * MiB)
    disk.write(0, rng.randbytes(4 * MiB))
    snapshot(engine, "d", "s1")
    engine.delete_snapshot("s1")
    disk.write(0, b"z")
    engine.create_checkpoint("d", "s2")
    result = engine.build_snapshot("s2")
    assert result.stats.read_extents == 16
    assert restored(engine, "s2") == read_all(disk)


def test_snapshot_lookup_errors(engine: Engine) -> None:
    with pytest.raises(SnapshotNotFound):
        engine.snapshot("missing")
    with pytest.raises(SnapshotNotFound):
        engine.snapshot("../etc")
    with pytest.raises(SnapshotNotFound):
        engine.delete_snapshot("missing")

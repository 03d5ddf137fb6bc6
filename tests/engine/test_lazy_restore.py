"""Lazily restored disks: usable at once, read through to the snapshot, copied in on
write or by hydration, crash-safe, and a GC root until they stand on their own."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest

from disksnap.engine.chunkstore import chunk_key
from disksnap.engine.engine import Engine
from disksnap.engine.errors import ChunkCorrupt
from tests.engine.conftest import SMALL, MiB
from tests.engine.helpers import read_all, restored, snapshot, text

CS = SMALL.chunk_size
SIZE = 4 * MiB  # 16 extents


def _source(engine: Engine, rng: random.Random) -> bytes:
    disk = engine.create_disk("src", SIZE)
    disk.write(0, rng.randbytes(2 * MiB))
    disk.write(3 * MiB, text(rng, 512 * 1024))  # extents 12..13; 8..11 and 14..15 zero
    snapshot(engine, "src", "s1")
    return read_all(disk)


def _allocated(engine: Engine, disk_id: str) -> int:
    return (engine.root / "disks" / disk_id / "data").stat().st_blocks * 512


def test_lazy_restore_reads_through_to_the_snapshot(engine: Engine, rng: random.Random) -> None:
    content = _source(engine, rng)
    disk = engine.restore_lazy("s1", "lazy")
    assert _allocated(engine, "lazy") == 0  # nothing copied yet
    assert read_all(disk) == content
    assert disk.read(CS - 10, 20) == content[CS - 10 : CS + 10]  # across extents
    # Pending extents are data for block status; zero extents of the snapshot are holes.
    assert disk.extents(0, SIZE) == [
        (0, 2 * MiB, True),
        (2 * MiB, MiB, False),
        (3 * MiB, MiB // 2, True),
        (3 * MiB + MiB // 2, MiB // 2, False),
    ]


def test_writes_copy_in_what_they_do_not_cover(engine: Engine, rng: random.Random) -> None:
    content = bytearray(_source(engine, rng))
    disk = engine.restore_lazy("s1", "lazy")
    disk.write(100, b"partial")  # extent 0: copied in, then patched
    content[100:107] = b"partial"
    whole = rng.randbytes(CS)
    disk.write(CS, whole)  # extent 1 wholly covered: nothing to copy in
    content[CS : 2 * CS] = whole
    disk.write_zeroes(2 * CS + 5, 10)
    content[2 * CS + 5 : 2 * CS + 15] = bytes(10)
    assert read_all(disk) == bytes(content)
    assert disk.backing is not None
    assert disk.backing.pending_extents() == [3, 4, 5, 6, 7, 12, 13]
    assert _allocated(engine, "lazy") <= 3 * CS + 64 * 1024


def test_snapshot_of_a_lazy_disk_is_incremental_and_exact(
    engine: Engine, rng: random.Random
) -> None:
    _source(engine, rng)
    disk = engine.restore_lazy("s1", "lazy")
    disk.write(5 * CS + 1, b"x")
    engine.create_checkpoint("lazy", "l1")
    disk.write(12 * CS, b"after the checkpoint")  # copy-before-write reads through
    result = engine.build_snapshot("l1")
    assert result.stats.read_extents == 1
    assert result.stats.new_chunks == 1
    expected = bytearray(restored(engine, "s1"))
    expected[5 * CS + 1] = ord("x")
    assert restored(engine, "l1") == bytes(expected)


def test_hydrate_makes_the_disk_independent(engine: Engine, rng: random.Random) -> None:
    content = _source(engine, rng)
    disk = engine.restore_lazy("s1", "lazy")
    disk.write(7, b"mine")
    calls: list[tuple[int, int]] = []
    engine.hydrate("lazy", progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] == 9 * CS  # 10 data extents, one already in
    assert disk.backing is None
    assert not (disk.dir / "backing.manifest").exists()
    engine.delete_snapshot("s1")
    engine.gc_execute(engine.gc_plan())
    assert len(list(engine.store.list())) == 0  # nothing references a chunk any more
    assert read_all(disk) == content[:7] + b"mine" + content[11:]


def test_the_backing_is_a_gc_root(engine: Engine, rng: random.Random) -> None:
    content = _source(engine, rng)
    disk = engine.restore_lazy("s1", "lazy")
    engine.delete_snapshot("s1")
    engine.delete_disk("src")
    result = engine.gc_execute(engine.gc_plan())
    assert result.deleted_chunks == 0
    assert read_all(disk) == content
    engine.delete_disk("lazy")
    assert engine.gc_execute(engine.gc_plan()).deleted_chunks == 10  # 8 random, 2 text


def test_hydration_resumes_after_a_crash(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    content = _source(engine, rng)
    disk = engine.restore_lazy("s1", "lazy")
    disk.write(2 * CS, b"written before the crash")
    expected = content[: 2 * CS] + b"written before the crash" + content[2 * CS + 24 :]

    def crash(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.hydrate("lazy", progress=crash)
    engine.abandon()
    engine = make_engine()
    disk = engine.disk("lazy")
    assert disk.backing is not None
    assert read_all(disk) == expected
    engine.hydrate("lazy")
    assert engine.disk("lazy").backing is None
    assert read_all(disk) == expected


def test_a_corrupt_chunk_fails_the_read_that_needs_it(engine: Engine, rng: random.Random) -> None:
    _source(engine, rng)
    victim = engine.snapshot("s1").ref(1)
    assert victim is not None
    disk = engine.restore_lazy("s1", "lazy")
    blob = engine.root / "store" / chunk_key(victim)
    raw = bytearray(blob.read_bytes())
    raw[60] ^= 1
    blob.write_bytes(bytes(raw))
    disk.read(0, CS)  # other extents are fine
    with pytest.raises(ChunkCorrupt) as err:
        disk.read(CS, 10)
    assert err.value.chunk_id == victim
    with pytest.raises(ChunkCorrupt):
        disk.write(CS + 1, b"needs the old content first")


def test_lazy_disks_are_known_without_opening_every_disk(
    make_engine: Callable[[], Engine], rng: random.Random
) -> None:
    engine = make_engine()
    _source(engine, rng)
    for i in range(3):
        engine.create_disk(f"plain{i}", 2 * CS)
    engine.restore_lazy("s1", "lazy")
    assert engine.lazy_disks() == ["lazy"]
    engine.close()
    engine = make_engine()  # listed again at start, from the disks' own files
    assert engine.lazy_disks() == ["lazy"]
    assert not engine._disks, "no disk was opened to find it"
    engine.hydrate("lazy")
    assert engine.lazy_disks() == []
    engine.restore_lazy("s1", "lazy2")
    engine.delete_disk("lazy2")
    assert engine.lazy_disks() == []


def _chunk_reads(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of the chunks the engine's store backend reads from now on, in order."""
    reads: list[str] = []
    get = type(engine.store.backend).get

    def counted(self: object, key: str) -> bytes:
        if key.startswith("chunks/"):
            reads.append(key)
        return get(self, key)  # type: ignore[arg-type]

    monkeypatch.setattr(type(engine.store.backend), "get", counted)
    return reads


def test_hydration_reads_a_chunk_once_for_all_its_extents(
    engine: Engine, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = engine.create_disk("src", SIZE)
    block = rng.randbytes(CS)
    for extent in (1, 5, 6, 14):  # one chunk at four offsets, between others
        disk.write(extent * CS, block)
    disk.write(2 * CS, rng.randbytes(2 * CS))
    snapshot(engine, "src", "s1")
    content = read_all(disk)
    reads = _chunk_reads(engine, monkeypatch)
    copy = engine.restore("s1", "r")
    assert read_all(copy) == content
    assert len(reads) == 3  # the repeated chunk and the two others
    assert len(set(reads)) == 3


def test_a_chunk_at_many_offsets_is_copied_in_by_several_tasks(
    engine: Engine, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 16 extents of one chunk and GROUP_MAX 4: four tasks (a stop is never more than
    # one task away), each reading the chunk once.
    monkeypatch.setattr("disksnap.engine.hydrate.GROUP_MAX", 4)
    disk = engine.create_disk("src", SIZE)
    block = rng.randbytes(CS)
    for extent in range(SIZE // CS):
        disk.write(extent * CS, block)
    snapshot(engine, "src", "s1")
    reads = _chunk_reads(engine, monkeypatch)
    copy = engine.restore("s1", "r")
    assert len(reads) == SIZE // CS // 4
    assert read_all(copy) == block * (SIZE // CS)


def test_a_snapshot_build_survives_the_backing_being_dropped_under_it(
    engine: Engine, rng: random.Random, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by a kill -9 soak of the service: a build read a lazily restored disk while
    # its hydration finished and dropped the backing, between the build's check of the
    # backing and its use (AttributeError, the snapshot in ERROR). Here the drop is put
    # at the worst moment: after that check, before the extent's lock is taken.
    content = _source(engine, rng)
    disk = engine.restore_lazy("s1", "lazy")
    backing = disk.backing
    assert backing is not None
    disk.hydrate_extents(backing.pending_extents())  # all copied in, not yet dropped
    disk.write(5 * CS + 1, b"x")  # an extent the build reads (the rest is from s1)
    expected = content[: 5 * CS + 1] + b"x" + content[5 * CS + 2 :]
    engine.create_checkpoint("lazy", "l1")
    lock_extent, read_frozen = disk.lock_extent, disk.read_frozen
    reading = threading.local()
    dropped: list[bool] = []

    def frozen(extent: int, into: bytearray | None = None) -> bytes | bytearray | None:
        reading.active = True
        try:
            return read_frozen(extent, into)
        finally:
            reading.active = False

    def drop_then_lock(extent: int) -> object:
        if getattr(reading, "active", False) and not dropped:
            dropped.append(True)
            disk.drop_backing()  # takes every stripe lock, so before this one
        return lock_extent(extent)

    monkeypatch.setattr(disk, "read_frozen", frozen)
    monkeypatch.setattr(disk, "lock_extent", drop_then_lock)
    engine.build_snapshot("l1")
    assert dropped
    assert disk.backing is None
    assert restored(engine, "l1") == expected


def test_a_dropped_backing_still_reads_and_syncs(engine: Engine, rng: random.Random) -> None:
    # Readers that took the backing before the drop (reads, block status and flushes
    # take it without locks) may use it after: nothing is pending, the file serves.
    content = _source(engine, rng)
    disk = engine.restore_lazy("s1", "lazy")
    backing = disk.backing
    assert backing is not None
    engine.hydrate("lazy")
    assert disk.backing is None
    with disk._io() as fd:  # the descriptor a reader holds
        assert backing.read(fd, 0, SIZE) == content
    backing.sync()  # the map is closed: nothing left to sync, and no error
    assert backing.pending_extents() == []

"""Deferred writes while a checkpoint is active: acknowledged at once, visible to reads
at once, applied in order only after the old content is durable (deferred.py).

Holding the disk's apply lock stands the preserver thread still, so what is queued
stays queued while the test looks."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from disksnap.engine.deferred import DeferredWrites, Pending
from disksnap.engine.disk import NOWAIT_MAX, Disk
from disksnap.engine.engine import Engine
from tests.engine.conftest import KiB, MiB
from tests.engine.helpers import read_all, restored

SIZE = 2 * MiB


@contextmanager
def preserver_held(disk: Disk) -> Iterator[None]:
    with disk._apply_lock:  # the test stands the preserver still
        yield


def queued(disk: Disk) -> int:
    deferred = disk._deferred
    return 0 if deferred is None else len(deferred.drained())


@pytest.fixture
def frozen(engine: Engine, rng: random.Random) -> tuple[Disk, bytes]:
    disk = engine.create_disk("d", SIZE)
    before = rng.randbytes(SIZE)
    disk.write(0, before)
    engine.create_checkpoint("d", "s1")
    assert disk.checkpoint is not None
    disk.checkpoint.seal()  # as the first write would: the queue needs the directory
    return disk, before


def test_a_write_needing_preservation_is_queued_and_read_back_at_once(
    engine: Engine, frozen: tuple[Disk, bytes], rng: random.Random
) -> None:
    disk, before = frozen
    data = rng.randbytes(4 * KiB)
    with preserver_held(disk):
        disk.write(100 * KiB, data)
        assert queued(disk) == 1
        assert disk.read(100 * KiB - 10, 4 * KiB + 20) == (
            before[100 * KiB - 10 : 100 * KiB] + data + before[104 * KiB : 104 * KiB + 10]
        )
    disk.flush()  # waits until it is applied
    assert queued(disk) == 0
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == before
    assert read_all(disk)[100 * KiB : 104 * KiB] == data


def _preservers(disk_id: str) -> int:
    return sum(t.name == f"preserve-{disk_id}" for t in threading.enumerate())


def test_the_preserver_thread_starts_with_the_first_deferred_write_only(
    engine: Engine, frozen: tuple[Disk, bytes], rng: random.Random
) -> None:
    disk, before = frozen
    assert _preservers("d") == 0  # a checkpoint alone starts none
    disk.read(0, SIZE)
    assert _preservers("d") == 0
    data = rng.randbytes(4 * KiB)
    disk.write(200 * KiB, data)  # needs copy-before-write: queued
    assert _preservers("d") == 1
    disk.write(200 * KiB, data)  # overlaps a queued write, or lands after it: one thread
    assert _preservers("d") == 1
    disk.flush()
    engine.build_snapshot("s1")
    assert _preservers("d") == 0  # joined when the checkpoint was detached
    assert restored(engine, "s1") == before
    assert read_all(disk)[200 * KiB : 204 * KiB] == data


def test_a_snapshot_of_a_disk_nobody_writes_runs_no_preserver(
    engine: Engine, frozen: tuple[Disk, bytes]
) -> None:
    disk, before = frozen
    engine.build_snapshot("s1")
    assert _preservers("d") == 0
    assert restored(engine, "s1") == before
    engine.create_checkpoint("d", "s2")
    engine.abort_checkpoint("s2")  # stopping a queue that never had a thread
    assert read_all(disk) == before


def test_overlapping_writes_land_in_the_order_they_were_made(
    engine: Engine, frozen: tuple[Disk, bytes]
) -> None:
    disk, before = frozen
    with preserver_held(disk):
        disk.write(0, b"a" * 8 * KiB)
        disk.write(4 * KiB, b"b" * 8 * KiB)  # overlaps the queued one: queued behind it
        disk.write_zeroes(6 * KiB, 1 * KiB, punch=True)
        assert queued(disk) == 3
        expected = b"a" * 4 * KiB + b"b" * 2 * KiB + bytes(1 * KiB) + b"b" * 5 * KiB
        assert disk.read(0, 12 * KiB) == expected
    disk.flush()
    assert disk.read(0, 12 * KiB) == expected
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == before


def test_a_write_to_a_preserved_block_goes_straight_to_the_file(
    engine: Engine, frozen: tuple[Disk, bytes]
) -> None:
    disk, _ = frozen
    disk.write(0, b"x" * 4 * KiB)
    disk.flush()  # block 0 (16 KiB) is preserved now
    with preserver_held(disk):
        disk.write(8 * KiB, b"y" * 4 * KiB)
        assert queued(disk) == 0


def test_block_status_waits_for_queued_writes_into_holes(engine: Engine) -> None:
    disk = engine.create_disk("d", SIZE)
    engine.create_checkpoint("d", "s1")  # all hole: still preserved (as hole, zeroes)
    disk.write(1 * MiB, b"z" * 4 * KiB)
    runs = disk.extents(0, SIZE)
    assert any(is_data and start <= 1 * MiB < start + n for start, n, is_data in runs)
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == bytes(SIZE)


def test_a_fua_write_is_applied_before_it_returns(
    engine: Engine, frozen: tuple[Disk, bytes]
) -> None:
    disk, _ = frozen
    disk.write(0, b"f" * 4 * KiB, fua=True)
    assert queued(disk) == 0


def test_the_queue_is_bounded_and_writers_wait_for_room(
    engine: Engine, frozen: tuple[Disk, bytes], rng: random.Random
) -> None:
    disk, _ = frozen
    deferred = disk._deferred
    assert deferred is not None
    deferred.limit = 64 * KiB
    chunks = [rng.randbytes(32 * KiB) for _ in range(4)]
    done = threading.Event()

    def writer() -> None:
        for i, c in enumerate(chunks):
            disk.write(i * 256 * KiB, c)
        done.set()

    with preserver_held(disk):
        t = threading.Thread(target=writer)
        t.start()
        deadline = time.monotonic() + 30
        while queued(disk) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queued(disk) == 2
        assert not done.wait(0.2), "four 32 KiB writes fit a 64 KiB queue"
        assert queued(disk) == 2
    t.join()
    disk.flush()
    assert [disk.read(i * 256 * KiB, 32 * KiB) for i in range(4)] == chunks


def test_detaching_applies_what_is_queued(engine: Engine, frozen: tuple[Disk, bytes]) -> None:
    disk, before = frozen
    disk.write(0, b"q" * 4 * KiB)
    engine.build_snapshot("s1")  # detaches the checkpoint at the end
    assert disk.checkpoint is None
    assert queued(disk) == 0
    assert disk.read(0, 4 * KiB) == b"q" * 4 * KiB
    assert restored(engine, "s1") == before


def test_after_a_crash_flushed_writes_and_the_point_in_time_are_kept(
    engine: Engine, frozen: tuple[Disk, bytes]
) -> None:
    disk, before = frozen
    disk.write(0, b"1" * 4 * KiB)
    disk.flush()  # durable
    disk.write(64 * KiB, b"2" * 4 * KiB)  # acknowledged, not flushed: may be lost
    engine.abandon()  # as kill -9 would leave things
    after = Engine(engine.root, config=engine.config)
    try:
        disk2 = after.disk("d")
        assert disk2.read(0, 4 * KiB) == b"1" * 4 * KiB
        assert disk2.read(64 * KiB, 4 * KiB) in (b"2" * 4 * KiB, before[64 * KiB : 68 * KiB])
        after.build_snapshot("s1")
        assert restored(after, "s1") == before
    finally:
        after.close()


def test_pending_lays_only_its_own_bytes_over_a_range() -> None:
    buf = bytearray(b"." * 10)
    Pending(1, offset=5, length=4, data=b"abcd").lay_over(buf, offset=3)
    assert bytes(buf) == b"..abcd...."
    Pending(2, offset=0, length=5, data=None).lay_over(buf, offset=3)
    assert bytes(buf) == b"\0\0abcd...."[:10]


def test_an_apply_error_is_raised_by_the_next_wait_and_only_once() -> None:
    q = DeferredWrites()
    seq = q.put(0, 4, b"abcd")
    (entry,) = q.drained()
    q.applied(entry, OSError(5, "EIO"))
    with pytest.raises(OSError, match="EIO"):
        q.wait_applied(seq)
    q.wait_applied(seq)


def test_the_overlap_index_agrees_with_a_scan_of_the_queue() -> None:
    """Random changes (some longer than the index takes) queued and applied oldest
    first: ``overlaps`` and ``overlapping`` always answer what a scan answers."""
    rng = random.Random(5)
    q = DeferredWrites()
    grain = 64 * KiB
    for _ in range(2000):
        if rng.random() < 0.55:
            length = rng.choice([1, 4 * KiB, grain, 3 * grain + 7, 80 * grain])
            offset = rng.randrange(0, 256 * grain)
            q.put(offset, length, None if rng.random() < 0.3 else bytes(1), punch=True)
        elif q.drained():
            q.applied(q.drained()[0])
        offset, length = rng.randrange(0, 300 * grain), rng.choice([1, 4 * KiB, 5 * grain])
        scan = [p for p in q.drained() if p.overlaps(offset, length)]
        assert q.overlapping(offset, length) == scan
        assert q.overlaps(offset, length) == bool(scan)


def test_write_nowait_queues_what_needs_preserving_and_writes_what_does_not(
    engine: Engine, frozen: tuple[Disk, bytes]
) -> None:
    disk, before = frozen
    with preserver_held(disk):
        assert disk.write_nowait(0, b"n" * 4 * KiB)  # needs preserving: queued
        assert queued(disk) == 1
        assert disk.read(0, 4 * KiB) == b"n" * 4 * KiB
    disk.flush()
    # Block 0 is preserved now: a write there goes to the page cache at once.
    assert disk.write_nowait(4 * KiB, b"m" * 4 * KiB)
    assert queued(disk) == 0
    assert disk.read(0, 8 * KiB) == b"n" * 4 * KiB + b"m" * 4 * KiB
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == before


def test_write_nowait_does_nothing_where_it_would_wait(
    engine: Engine, frozen: tuple[Disk, bytes]
) -> None:
    disk, before = frozen
    disk.write(0, b"p" * 4 * KiB)
    disk.flush()  # block 0 is preserved: writes there would go straight to the file
    # Another thread holding the range's lock: no waiting for it.
    with disk.lock_range(512 * KiB, 1):
        assert not disk.write_nowait(512 * KiB, b"l" * 4 * KiB)
    # Part of a page: the kernel may have to read the page in first.
    assert not disk.write_nowait(4 * KiB + 512, b"u" * 512)
    assert queued(disk) == 0
    assert disk.read(0, SIZE) == b"p" * 4 * KiB + before[4 * KiB :]  # nothing happened
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == before


def test_write_nowait_leaves_copy_before_write_to_write_once_the_queue_is_gone(
    engine: Engine, frozen: tuple[Disk, bytes]
) -> None:
    # Closing stops the queue before it closes the file, with the checkpoint still
    # attached: a write in between must preserve the old block, so go to ``write``.
    disk, before = frozen
    disk._stop_deferring()
    assert not disk.write_nowait(0, b"w" * 4 * KiB)
    disk.write(0, b"w" * 4 * KiB)
    engine.build_snapshot("s1")
    assert restored(engine, "s1") == before


def test_write_nowait_without_a_checkpoint_writes_and_marks_the_change(
    engine: Engine, rng: random.Random
) -> None:
    disk = engine.create_disk("d", SIZE)
    data = rng.randbytes(8 * KiB)
    assert disk.write_nowait(1 * MiB, data)
    assert disk.read(1 * MiB, 8 * KiB) == data
    assert disk.changes.is_set(1 * MiB // disk.chunk_size)
    # Larger than a page-cache write that is certain to be quick: left to ``write``.
    assert not disk.write_nowait(0, data * (NOWAIT_MAX // len(data) + 1))
    assert disk.read(0, 8 * KiB) == bytes(8 * KiB)


def test_write_nowait_leaves_a_lazily_restored_disk_to_write(
    engine: Engine, frozen: tuple[Disk, bytes]
) -> None:
    _, before = frozen
    engine.build_snapshot("s1")
    lazy = engine.restore_lazy("s1", "lazy")
    # Copying in from the snapshot reads chunks and syncs: not for the event loop.
    assert not lazy.write_nowait(0, b"z" * 4 * KiB)
    assert lazy.read(0, SIZE) == before


def test_write_nowait_leaves_a_full_queue_to_write(
    engine: Engine, frozen: tuple[Disk, bytes]
) -> None:
    disk, _ = frozen
    deferred = disk._deferred
    assert deferred is not None
    deferred.limit = 8 * KiB
    with preserver_held(disk):
        assert disk.write_nowait(0, b"a" * 8 * KiB)
        assert not disk.write_nowait(256 * KiB, b"b" * 4 * KiB)  # no room
        assert queued(disk) == 1

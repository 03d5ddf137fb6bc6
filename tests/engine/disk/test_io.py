"""Block disks: geometry, I/O against a model, bounds, sparseness, change map and
concurrent I/O."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from disksnap.engine.disk import Disk
from disksnap.engine.engine import Engine
from disksnap.engine.errors import (
    DiskExists,
    InvalidGeometry,
    OutOfBounds,
)
from tests.engine.disk.conftest import CS, SIZE, SMALL, KiB, MiB, TiB
from tests.engine.disk.conftest import blocks as _blocks
from tests.engine.disk.conftest import data as _data

# --- geometry --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, -CS, CS + 1, CS - 1, 3 * CS // 2, SMALL.max_disk_size + CS, 2 * SMALL.max_disk_size],
)
def test_create_with_bad_size_raises(eng: Engine, root: Path, size: int) -> None:
    with pytest.raises(InvalidGeometry):
        eng.create_disk("bad", size)
    assert eng.list_disks() == []
    assert not (root / "disks" / "bad").exists()


def test_create_at_limits(eng: Engine) -> None:
    one = eng.create_disk("one-chunk", CS)
    assert one.size == CS
    assert one.read(0, CS) == bytes(CS)
    biggest = eng.create_disk("biggest", SMALL.max_disk_size)
    assert biggest.size == SMALL.max_disk_size
    assert eng.list_disks() == ["biggest", "one-chunk"]


def test_create_twice_raises(eng: Engine, disk: Disk) -> None:
    disk.write(0, b"keep")
    with pytest.raises(DiskExists):
        eng.create_disk("disk-1", SIZE)
    assert eng.disk("disk-1").read(0, 4) == b"keep"


@pytest.mark.parametrize("disk_id", ["../x", "a/b", "", "A", ".", "..", "-x", "x" * 51, "a b"])
def test_unsafe_disk_ids_are_rejected(eng: Engine, root: Path, disk_id: str) -> None:
    with pytest.raises(InvalidGeometry):
        eng.create_disk(disk_id, SIZE)
    with pytest.raises(InvalidGeometry):
        eng.disk(disk_id)
    with pytest.raises(InvalidGeometry):
        eng.delete_disk(disk_id)
    assert list((root / "disks").iterdir()) == []
    assert not (root / "x").exists()


def test_default_engine_4tib_disk_is_instant_and_sparse(tmp_path: Path) -> None:
    e = Engine(tmp_path / "big")
    try:
        assert e.config.chunk_size == 4 * MiB
        t0 = time.perf_counter()
        d = e.create_disk("big", 4 * TiB)
        assert time.perf_counter() - t0 < 2.0
        assert d.size == 4 * TiB
        assert (d.dir / "data").stat().st_size == 4 * TiB
        assert _blocks(d) < 64 * KiB
        assert d.changes.chunk_count == TiB // MiB
        end = 4 * TiB
        assert d.read(end - 4096, 4096) == bytes(4096)
        d.write(end - 10, b"0123456789")
        assert d.read(end - 12, 12) == b"\x00\x000123456789"
        assert _blocks(d) < 64 * KiB
        assert d.extents(0, 4 * MiB) == [(0, 4 * MiB, False)]
        assert d.changes.changed() == [TiB // MiB - 1]
    finally:
        e.close()


# --- I/O against a model ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, 1),
        (CS - 1, 2),  # straddles the first chunk boundary
        (CS - 3, CS + 6),  # covers a whole chunk plus both neighbours' edges
        (5 * CS + 123, 3 * CS + 7),
        (SIZE - 1, 1),  # last byte
        (SIZE - CS - 5, CS + 5),  # up to the end
        (0, SIZE),  # everything
        (4095, 4097),
        (12345, 0),
    ],
)
def test_unaligned_write_read(disk: Disk, offset: int, length: int) -> None:
    rng = random.Random(offset * 31 + length)
    model = bytearray(SIZE)
    data = _data(rng, length)
    disk.write(offset, data)
    model[offset : offset + length] = data
    assert disk.read(offset, length) == data
    assert disk.read(0, SIZE) == bytes(model)
    # Reads that start and end anywhere see the same thing as the model.
    for _ in range(20):
        a = rng.randrange(0, SIZE + 1)
        b = rng.randrange(a, min(SIZE, a + 3 * CS) + 1)
        assert disk.read(a, b - a) == bytes(model[a:b])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_match_model(disk: Disk, seed: int) -> None:
    rng = random.Random(seed)
    model = bytearray(SIZE)
    for _ in range(150):
        offset = rng.randrange(0, SIZE)
        length = rng.randrange(0, min(SIZE - offset, 3 * CS) + 1)
        op = rng.choice(["write", "write", "write", "trim", "zero", "zero-keep", "read"])
        if op == "write":
            data = _data(rng, length)
            disk.write(offset, data)
            model[offset : offset + length] = data
        elif op == "trim":
            disk.trim(offset, length)
            model[offset : offset + length] = bytes(length)
        elif op == "zero":
            disk.write_zeroes(offset, length)
            model[offset : offset + length] = bytes(length)
        elif op == "zero-keep":
            disk.write_zeroes(offset, length, punch=False)
            model[offset : offset + length] = bytes(length)
        assert disk.read(offset, length) == bytes(model[offset : offset + length]), op
    assert disk.read(0, SIZE) == bytes(model)


def test_write_with_fua_and_flush_reach_the_file(disk: Disk) -> None:
    disk.write(100, b"forced unit access", fua=True)
    disk.write(CS * 3, b"flushed")
    disk.flush()
    with open(disk.dir / "data", "rb") as f:
        f.seek(100)
        assert f.read(18) == b"forced unit access"
        f.seek(CS * 3)
        assert f.read(7) == b"flushed"


# --- bounds ----------------------------------------------------------------------------


def _snapshot_state(d: Disk) -> tuple[bytes, list[int], int]:
    return d.read(0, d.size), d.changes.changed(), d.size


@pytest.mark.parametrize(
    ("op", "offset", "length"),
    [
        ("read", SIZE - 1, 2),
        ("read", SIZE, 1),
        ("read", SIZE + 1, 0),
        ("read", 2**62, 1),
        ("write", SIZE - 3, 4),
        ("write", SIZE, 1),
        ("write", 0, SIZE + 1),
        ("trim", SIZE - CS, CS + 1),
        ("trim", SIZE, CS),
        ("zero", 0, SIZE + 1),
        ("zero-keep", SIZE - 1, 2),
        ("extents", 0, SIZE + 1),
    ],
)
def test_out_of_range_raises_and_changes_nothing(
    disk: Disk, op: str, offset: int, length: int
) -> None:
    disk.write(SIZE - 2 * CS, _data(random.Random(0), 2 * CS))
    disk.changes.flags[:] = bytes(disk.changes.chunk_count)  # start from a clean map
    before = _snapshot_state(disk)
    allocated = _blocks(disk)
    calls: dict[str, Callable[[], object]] = {
        "read": lambda: disk.read(offset, length),
        "write": lambda: disk.write(offset, b"\xff" * length),
        "trim": lambda: disk.trim(offset, length),
        "zero": lambda: disk.write_zeroes(offset, length),
        "zero-keep": lambda: disk.write_zeroes(offset, length, punch=False),
        "extents": lambda: disk.extents(offset, length),
    }
    with pytest.raises(OutOfBounds):
        calls[op]()
    assert _snapshot_state(disk) == before
    assert _blocks(disk) == allocated
    assert (disk.dir / "data").stat().st_size == SIZE


@pytest.mark.parametrize(
    ("op", "offset", "length"),
    [
        ("read", -1, 1),
        ("read", 0, -1),
        ("write", -1, 1),
        ("write", -CS, CS),
        ("trim", -1, 2),
        ("trim", 0, -1),
        ("zero", -CS, CS),
        ("zero", CS, -1),
    ],
)
def test_negative_offset_or_length_is_rejected(
    disk: Disk, op: str, offset: int, length: int
) -> None:
    calls: dict[str, Callable[[], object]] = {
        "read": lambda: disk.read(offset, length),
        "write": lambda: disk.write(offset, b"x" * length),
        "trim": lambda: disk.trim(offset, length),
        "zero": lambda: disk.write_zeroes(offset, length),
    }
    with pytest.raises((OutOfBounds, InvalidGeometry)):
        calls[op]()
    assert disk.read(0, SIZE) == bytes(SIZE)
    assert disk.changes.changed() == []


# --- zeroes, trim and allocation -------------------------------------------------------


@pytest.mark.parametrize("how", ["trim", "write_zeroes"])
def test_trim_and_write_zeroes_deallocate(disk: Disk, how: str) -> None:
    data = _data(random.Random(5), 4 * CS)
    disk.write(2 * CS, data)
    disk.flush()
    allocated = _blocks(disk)
    assert allocated >= 4 * CS
    assert disk.extents(2 * CS, 4 * CS) == [(2 * CS, 4 * CS, True)]
    if how == "trim":
        disk.trim(3 * CS, 2 * CS)
    else:
        disk.write_zeroes(3 * CS, 2 * CS)
    assert disk.read(3 * CS, 2 * CS) == bytes(2 * CS)
    assert disk.read(2 * CS, CS) == data[:CS]
    assert disk.read(5 * CS, CS) == data[3 * CS :]
    assert _blocks(disk) <= allocated - 2 * CS
    assert disk.extents(2 * CS, 4 * CS) == [
        (2 * CS, CS, True),
        (3 * CS, 2 * CS, False),
        (5 * CS, CS, True),
    ]


def test_unaligned_trim_zeroes_exactly_the_range(disk: Disk) -> None:
    data = _data(random.Random(6), 3 * CS)
    disk.write(0, data)
    disk.trim(CS - 100, CS + 200)
    expected = bytearray(data)
    expected[CS - 100 : 2 * CS + 100] = bytes(CS + 200)
    assert disk.read(0, 3 * CS) == bytes(expected)
    # The whole chunk in the middle is deallocated.
    runs = disk.extents(CS, CS)
    assert runs == [(CS, CS, False)]


def test_write_zeroes_without_punch_keeps_allocation(disk: Disk) -> None:
    disk.write(CS, _data(random.Random(7), 2 * CS))
    disk.flush()
    allocated = _blocks(disk)
    disk.write_zeroes(CS, 2 * CS, punch=False)
    disk.flush()
    assert disk.read(CS, 2 * CS) == bytes(2 * CS)
    assert _blocks(disk) >= allocated
    assert disk.extents(CS, 2 * CS) == [(CS, 2 * CS, True)]


def test_new_disk_is_one_hole(disk: Disk) -> None:
    assert disk.extents(0, SIZE) == [(0, SIZE, False)]
    assert _blocks(disk) == 0
    assert disk.read(0, SIZE) == bytes(SIZE)


# --- change map ------------------------------------------------------------------------


def test_change_map_marks_exactly_the_chunks_touched(disk: Disk) -> None:
    assert disk.changes.changed() == []
    disk.write(CS - 1, b"ab")  # chunks 0 and 1
    disk.write(4 * CS, b"x")  # chunk 4
    disk.write(7 * CS + CS - 1, b"y")  # last byte of chunk 7
    disk.write(9 * CS, b"")  # nothing
    disk.write_zeroes(10 * CS + 5, 2 * CS)  # chunks 10..12
    disk.write_zeroes(13 * CS, CS, punch=False)  # chunk 13
    disk.trim(15 * CS, CS)  # chunk 15
    disk.read(0, SIZE)  # reads change nothing
    assert disk.changes.changed() == [0, 1, 4, 7, 10, 11, 12, 13, 15]
    assert disk.changes.count() == 9


# --- concurrency -----------------------------------------------------------------------


def test_concurrent_writers_and_readers(disk: Disk) -> None:
    writers, region = 4, SIZE // 4  # each writer owns 4 chunks
    models = [bytearray(region) for _ in range(writers)]
    # Writer w only writes byte values from its own alphabet, so a reader can tell
    # whether any byte it sees could have been written there.
    alphabets = [bytes(range(1 + 60 * w, 61 + 60 * w)) for w in range(writers)]
    allowed = [set(a) | {0} for a in alphabets]
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = [0] * (writers + 2)
    touched: list[set[int]] = [set() for _ in range(writers)]

    def writer(w: int) -> None:
        rng = random.Random(100 + w)
        base = w * region
        try:
            while not stop.is_set():
                off = rng.randrange(0, region)
                n = rng.randrange(1, min(region - off, CS + 300) + 1)
                if rng.random() < 0.15:
                    disk.trim(base + off, n)
                    models[w][off : off + n] = bytes(n)
                else:
                    data = bytes(rng.choice(alphabets[w]) for _ in range(16)) * (n // 16 + 1)
                    data = data[:n]
                    disk.write(base + off, data)
                    models[w][off : off + n] = data
                touched[w].update(range((base + off) // CS, (base + off + n - 1) // CS + 1))
                counts[w] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def reader(r: int) -> None:
        rng = random.Random(200 + r)
        try:
            while not stop.is_set():
                off = rng.randrange(0, SIZE)
                n = rng.randrange(0, min(SIZE - off, 2 * CS) + 1)
                got = disk.read(off, n)
                assert len(got) == n
                for i in range(0, n, 97):
                    owner = (off + i) // region
                    assert got[i] in allowed[owner], (off + i, got[i])
                counts[writers + r] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert all(c > 0 for c in counts), counts
    assert disk.read(0, SIZE) == b"".join(bytes(m) for m in models)
    assert disk.changes.changed() == sorted(set().union(*touched))
    for w in range(writers):
        assert touched[w] <= set(range(w * 4, w * 4 + 4))


def test_engine_returns_the_same_disk_object(eng: Engine, disk: Disk) -> None:
    assert eng.disk("disk-1") is disk
    disk.write(7, b"seven")
    assert eng.disk("disk-1").read(7, 5) == b"seven"
    assert os.path.samefile(disk.dir, eng.root / "disks" / "disk-1")

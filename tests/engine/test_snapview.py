"""Read-only snapshot views (``Engine.open_snapshot``) and disk-removal watchers: the
engine side of the NBD snapshot exports and of disconnecting a deleted disk's clients."""

from __future__ import annotations

import random

import pytest

from disksnap.engine.chunkstore import chunk_key
from disksnap.engine.engine import Engine
from disksnap.engine.errors import ChunkMissing, DiskNotFound, OutOfBounds, SnapshotNotFound
from tests.engine.conftest import SMALL, MiB
from tests.engine.helpers import read_all, snapshot, text

CS = SMALL.chunk_size
SIZE = 4 * MiB


def _source(engine: Engine, rng: random.Random) -> bytes:
    disk = engine.create_disk("src", SIZE)
    disk.write(0, rng.randbytes(2 * MiB))
    disk.write(3 * MiB, text(rng, 512 * 1024))
    snapshot(engine, "src", "s1")
    return read_all(disk)


def test_a_view_reads_the_snapshot_as_it_was(engine: Engine, rng: random.Random) -> None:
    content = _source(engine, rng)
    engine.disk("src").write(0, b"later" * 1000)  # the snapshot must not see it
    view = engine.open_snapshot("s1")
    assert view.size == SIZE
    assert view.read(0, SIZE) == content
    assert view.read(CS - 3, 7) == content[CS - 3 : CS + 4]  # across extents
    assert view.read(2 * MiB + 5, 10) == bytes(10)  # a zero extent
    assert view.extents(0, SIZE) == [
        (0, 2 * MiB, True),
        (2 * MiB, MiB, False),
        (3 * MiB, MiB // 2, True),
        (3 * MiB + MiB // 2, MiB // 2, False),
    ]
    assert view.extents(CS + 1, 10) == [(CS + 1, 10, True)]


def test_a_view_refuses_what_is_not_there(engine: Engine, rng: random.Random) -> None:
    _source(engine, rng)
    view = engine.open_snapshot("s1")
    with pytest.raises(OutOfBounds):
        view.read(SIZE - 1, 2)
    with pytest.raises(OutOfBounds):
        view.extents(SIZE, 1)
    with pytest.raises(SnapshotNotFound):
        engine.open_snapshot("nope")


def test_a_view_never_returns_other_data_once_chunks_are_gone(
    engine: Engine, rng: random.Random
) -> None:
    _source(engine, rng)
    view = engine.open_snapshot("s1")
    cid = view.manifest.ref(7)
    assert cid is not None
    engine.backend.delete(chunk_key(cid))
    with pytest.raises(ChunkMissing):
        view.read(7 * CS, 10)


def test_removal_watchers_hear_of_a_deleted_disk_before_its_io_stops(engine: Engine) -> None:
    disk = engine.create_disk("d", SIZE)
    heard: list[tuple[str, bytes]] = []
    unwatch = engine.watch_removals(lambda disk_id: heard.append((disk_id, disk.read(0, 4))))
    engine.delete_disk("d")
    assert heard == [("d", bytes(4))]  # the disk could still be read when it was told
    with pytest.raises(DiskNotFound):
        disk.read(0, 4)
    unwatch()
    engine.create_disk("e", SIZE)
    engine.delete_disk("e")
    assert len(heard) == 1

"""Corruption is reported as data loss naming the chunk, never returned silently."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from disksnap.engine.chunkstore import chunk_key
from disksnap.engine.engine import Engine
from disksnap.engine.errors import ChunkCorrupt, ChunkMissing, DiskNotFound
from tests.engine.conftest import MiB
from tests.engine.helpers import snapshot


def _blob_path(engine: Engine, chunk_id: str) -> Path:
    return engine.root / "store" / chunk_key(chunk_id)


def _flip(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("offset", [0, 20, 47, 48, 1000, -1])
def test_flipped_byte_is_detected_by_restore_and_verify(
    engine: Engine, rng: random.Random, offset: int
) -> None:
    disk = engine.create_disk("d", 2 * MiB)
    disk.write(0, rng.randbytes(2 * MiB))
    snapshot(engine, "d", "s1")
    snapshot(engine, "d", "s2")  # shares every chunk with s1
    victim = engine.snapshot("s1").ref(3)
    assert victim is not None
    _flip(_blob_path(engine, victim), offset)

    with pytest.raises(ChunkCorrupt) as err:
        engine.restore("s1", "r1")
    assert err.value.chunk_id == victim
    assert victim in err.value.message
    with pytest.raises(DiskNotFound):  # no half-restored disk is left behind
        engine.disk("r1")

    report = engine.verify()
    assert not report.ok
    assert list(report.bad_chunks) == [victim]
    assert report.damaged_snapshots == ["s1", "s2"]
    assert report.chunks_checked == 8


def test_missing_chunk_is_data_loss(engine: Engine, rng: random.Random) -> None:
    disk = engine.create_disk("d", 1 * MiB)
    disk.write(0, rng.randbytes(1 * MiB))
    snapshot(engine, "d", "s1")
    victim = engine.snapshot("s1").ref(0)
    assert victim is not None
    _blob_path(engine, victim).unlink()
    with pytest.raises(ChunkMissing) as err:
        engine.restore("s1", "r1")
    assert err.value.chunk_id == victim
    assert engine.verify(["s1"]).bad_chunks.keys() == {victim}


def test_healthy_store_verifies(engine: Engine, rng: random.Random) -> None:
    disk = engine.create_disk("d", 2 * MiB)
    disk.write(0, rng.randbytes(2 * MiB))
    snapshot(engine, "d", "s1")
    report = engine.verify()
    assert report.ok
    assert report.chunks_checked == 8
    assert report.snapshots == 1

"""Shared helpers for engine tests: deterministic content and whole-disk comparison."""

from __future__ import annotations

import random

from disksnap.engine.checkpoint import CheckpointInfo
from disksnap.engine.disk import Disk
from disksnap.engine.engine import Engine


def randbytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def text(rng: random.Random, n: int) -> bytes:
    words = [b"alpha", b"beta", b"gamma", b"delta", b"snapshot", b"disk", b"chunk", b"zstd"]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])


def read_all(disk: Disk) -> bytes:
    return disk.read(0, disk.size)


def restored(engine: Engine, snapshot_id: str, disk_id: str | None = None) -> bytes:
    """Restore a snapshot into a fresh disk and return its whole content."""
    target = disk_id or f"r-{snapshot_id}"
    disk = engine.restore(snapshot_id, target)
    try:
        return read_all(disk)
    finally:
        engine.delete_disk(target)


def snapshot(engine: Engine, disk_id: str, snapshot_id: str) -> None:
    engine.create_checkpoint(disk_id, snapshot_id)
    engine.build_snapshot(snapshot_id)


def small_checkpoint_info(snapshot_id: str = "s1") -> CheckpointInfo:
    """A checkpoint of a 1 MiB disk "d" in 256 KiB extents of 16 KiB blocks."""
    return CheckpointInfo(
        snapshot_id=snapshot_id,
        disk_id="d",
        size=1 << 20,
        chunk_size=256 << 10,
        block_size=16 << 10,
        sequence=1,
        base=None,
        map_trusted=True,
        created_at="2026-11-30T00:00:00Z",
        preserve_limit=1 << 20,
    )

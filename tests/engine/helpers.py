"""Shared helpers for engine tests: deterministic content and whole-disk comparison."""

from __future__ import annotations

import random

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

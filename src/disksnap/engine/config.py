"""Engine configuration: geometry, compression, parallelism and bounds."""

from __future__ import annotations

import os
from dataclasses import dataclass

from disksnap.engine.errors import InvalidGeometry

MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40


@dataclass(frozen=True)
class EngineConfig:
    chunk_size: int = 4 * MiB
    block_size: int = 64 * 1024  # copy-before-write granularity
    # Level 1: on text-like data it stores ~12% more than level 3 at half the CPU, and
    # compression is what bounds a full snapshot's speed (bench/engine.py).
    zstd_level: int = 1
    # Pool threads: one per core for hashing and compression, plus two so that
    # fdatasync waits of chunk writes overlap with computation.
    workers: int = (os.cpu_count() or 2) + 2
    preserve_limit: int = 1 * GiB  # copy-before-write space per checkpoint
    max_disk_size: int = 8 * TiB
    # Chunks kept decoded for reads served from snapshots (lazily restored disks).
    cache_chunks: int = 8

    def __post_init__(self) -> None:
        if self.chunk_size % self.block_size or self.block_size % 4096:
            raise InvalidGeometry("chunk size must be a multiple of the block size (4 KiB units)")

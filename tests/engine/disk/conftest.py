"""Fixtures for the block-disk tests: a small engine and one 1 MiB disk."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from disksnap.engine.disk import Disk
from disksnap.engine.engine import Engine, EngineConfig

KiB = 1 << 10
MiB = 1 << 20
TiB = 1 << 40
CS = 64 * KiB  # chunk size of the small configuration
SMALL = EngineConfig(chunk_size=CS, block_size=16 * KiB, workers=2, max_disk_size=64 * MiB)
SIZE = 16 * CS  # 1 MiB


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "engine"


@pytest.fixture
def eng(root: Path) -> Iterator[Engine]:
    e = Engine(root, config=SMALL)
    yield e
    e.close()


@pytest.fixture
def disk(eng: Engine) -> Disk:
    return eng.create_disk("disk-1", SIZE)


def blocks(d: Disk) -> int:
    """Bytes allocated to the disk's data file."""
    return (d.dir / "data").stat().st_blocks * 512


def data(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n).replace(b"\x00", b"\x01")

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from disksnap.engine.engine import Engine, EngineConfig

KiB = 1024
MiB = 1024 * KiB

# Small geometry keeps tests fast while exercising every code path: 256 KiB chunks,
# 16 KiB copy-before-write blocks.
SMALL = EngineConfig(chunk_size=256 * KiB, block_size=16 * KiB, workers=2, preserve_limit=64 * MiB)


@pytest.fixture
def config() -> EngineConfig:
    return SMALL


@pytest.fixture
def engine_root(tmp_path: Path) -> Path:
    return tmp_path / "engine"


@pytest.fixture
def make_engine(engine_root: Path, config: EngineConfig) -> Iterator[Callable[[], Engine]]:
    made: list[Engine] = []

    def make() -> Engine:
        e = Engine(engine_root, config=config)
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()


@pytest.fixture
def engine(make_engine: Callable[[], Engine]) -> Engine:
    return make_engine()


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)

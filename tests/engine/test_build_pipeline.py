"""The snapshot build pipeline: a slow extent does not hold up the extents behind it,
and a chunk that several extents hold is stored once."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

from disksnap.engine.backends.base import Value
from disksnap.engine.backends.memory import MemoryBackend
from disksnap.engine.build import BuildStats
from disksnap.engine.chunkstore import PREFIX, ChunkStore, chunk_key
from disksnap.engine.engine import Engine
from tests.engine.conftest import SMALL
from tests.engine.helpers import read_all, restored

HOLD_LIMIT = 30.0  # seconds; only reached if the pipeline is stuck behind the held put


class HoldingBackend(MemoryBackend):
    """A memory backend whose put of one chunk waits until ``others`` other chunk puts
    have completed (fault injection: a slow write, not a mock)."""

    def __init__(self, held: str, others: int) -> None:
        super().__init__()
        self.held, self.others = chunk_key(held), others
        self.released_by_others: bool | None = None
        self._done = 0
        self._cond = threading.Condition()

    def put(self, key: str, data: Value) -> None:
        if not key.startswith(PREFIX):
            super().put(key, data)
            return
        hold = key == self.held
        if hold:
            with self._cond:
                released = self._cond.wait_for(lambda: self._done >= self.others, HOLD_LIMIT)
            self.released_by_others = released
        super().put(key, data)
        if not hold:
            with self._cond:
                self._done += 1
                self._cond.notify_all()


def test_a_slow_chunk_write_does_not_stall_the_extents_behind_it(tmp_path: Path) -> None:
    # The engine keeps workers * 2 extents in flight. The first extent's chunk write is
    # held until that many other chunks are written, which needs extents beyond the
    # first window to be started while the held one is still unfinished.
    in_flight = SMALL.workers * 2
    extents = in_flight + 3
    content = random.Random(7).randbytes(extents * SMALL.chunk_size)
    backend = HoldingBackend(ChunkStore.hash(content[: SMALL.chunk_size]), others=in_flight)
    stats = _snapshot_through(tmp_path, backend, content)
    assert backend.released_by_others is True
    assert stats.new_chunks == extents


def _snapshot_through(tmp_path: Path, backend: MemoryBackend, content: bytes) -> BuildStats:
    """Snapshot a disk holding ``content`` into ``backend``; check that it restores
    exactly and return the build's stats."""
    engine = Engine(tmp_path / "engine", backend=backend, config=SMALL)
    try:
        disk = engine.create_disk("d", len(content))
        disk.write(0, content)
        engine.create_checkpoint("d", "s1")
        result = engine.build_snapshot("s1")
        assert restored(engine, "s1") == read_all(disk) == content
        return result.stats
    finally:
        engine.close()


class SlowCountingBackend(MemoryBackend):
    """A memory backend that counts chunk puts by key and makes each take a while, so
    that extents with the same content are in the pipeline at the same time."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.puts: Counter[str] = Counter()
        self._mutex = threading.Lock()

    def put(self, key: str, data: Value) -> None:
        if key.startswith(PREFIX):
            with self._mutex:
                self.puts[key] += 1
            time.sleep(self.delay)
        super().put(key, data)


def test_extents_with_the_same_content_store_their_chunk_once(tmp_path: Path) -> None:
    # Both pool threads take an extent of the same content while the first put is slow:
    # the second waits for the first thread's answer instead of storing it again.
    chunk = random.Random(8).randbytes(SMALL.chunk_size)
    other = random.Random(9).randbytes(SMALL.chunk_size)
    content = chunk * 4 + other + chunk
    backend = SlowCountingBackend(delay=0.2)
    stats = _snapshot_through(tmp_path, backend, content)
    assert sorted(backend.puts.values()) == [1, 1]
    assert (stats.new_chunks, stats.reused_extents) == (2, 4)

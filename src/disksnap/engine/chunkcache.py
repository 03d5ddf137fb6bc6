"""A bounded cache of verified chunk plaintexts, for reads served from snapshots
(lazily restored disks, read-only snapshot views)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable


class ChunkCache:
    """LRU of at most ``capacity`` chunks. ``load`` (``ChunkStore.get``: verified, or
    raising a data-loss error) runs outside the lock; two threads missing the same
    chunk at once may both load it, which is harmless."""

    def __init__(self, load: Callable[[str], bytes | memoryview], capacity: int) -> None:
        self._load = load
        self._capacity = capacity
        self._items: OrderedDict[str, bytes | memoryview] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, chunk_id: str) -> bytes | memoryview:
        """Bypass the cache (a chunk needed once must not evict those read often)."""
        return self._load(chunk_id)

    def get(self, chunk_id: str) -> bytes | memoryview:
        with self._lock:
            data = self._items.get(chunk_id)
            if data is not None:
                self._items.move_to_end(chunk_id)
                return data
        data = self._load(chunk_id)
        with self._lock:
            self._items[chunk_id] = data
            self._items.move_to_end(chunk_id)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return data

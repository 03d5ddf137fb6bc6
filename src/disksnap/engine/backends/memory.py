"""An in-memory backend for unit tests. It passes the same contract suite as the others
(durability aside: it lives as long as the process)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from disksnap.engine.backends.base import (
    KeyNotFound,
    Value,
    validate_key,
    validate_prefix,
    value_parts,
)


class MemoryBackend:
    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: Value) -> None:
        validate_key(key)
        value = b"".join(value_parts(data))
        with self._lock:
            self._data[key] = value

    def get(self, key: str) -> bytes:
        validate_key(key)
        with self._lock:
            try:
                return self._data[key]
            except KeyError:
                raise KeyNotFound(key) from None

    def exists(self, key: str) -> bool:
        validate_key(key)
        with self._lock:
            return key in self._data

    def stat(self, key: str) -> int:
        return len(self.get(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        validate_prefix(prefix)
        with self._lock:
            keys = [k for k in self._data if k.startswith(prefix)]
        yield from keys

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._lock:
            if self._data.pop(key, None) is None:
                raise KeyNotFound(key)

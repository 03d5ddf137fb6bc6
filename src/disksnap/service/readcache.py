"""Answers of point reads (Get) kept while nothing in the metadata has changed.

A Get's answer depends only on committed metadata (the caller's token, their roles, the
resource) and on the time (the token's expiry). So an answer computed when the
database's change counter read N is still exactly the answer while the counter reads N
and the token has not expired: no commit, by this process or any other (``disksnap
admin`` revoking a token, another server), has happened since. Any commit empties the
cache; a revoked token or role stops working at once. A transport (the REST server)
keeps its rendered answers here and serves a hit without a service call, a thread or
SQL. Only the methods in ``CACHEABLE`` are kept: reads of one resource, whose answers
hold nothing but committed metadata.

Without a change counter (PostgreSQL: ``Meta.change_counter`` is None) nothing is cached.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from disksnap.domain.clock import Clock

T = TypeVar("T")

CACHEABLE = frozenset(
    {
        "yandex.cloud.compute.v1.SnapshotService.Get",
        "yandex.cloud.compute.v1.DiskService.Get",
        "yandex.cloud.operation.OperationService.Get",
    }
)
MAX_ENTRIES = 10_000  # about a kilobyte each


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    value: T
    valid_until: dt.datetime | None  # the caller's token expires then (None: never)


class ReadCache(Generic[T]):
    """Values by key, all computed at one reading of ``counter``; emptied when it
    changes. Thread-safe."""

    def __init__(
        self, counter: Callable[[], int], clock: Clock, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._counter = counter
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._version: int | None = None
        self._entries: dict[bytes, _Entry[T]] = {}

    def version(self) -> int:
        """The change counter now: read it before computing an answer to ``put``."""
        return self._counter()

    def get(self, key: bytes) -> T | None:
        """The value kept for ``key``, if nothing has been committed since it was
        computed and its token is still valid."""
        version = self._counter()
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
                return None
            entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.valid_until is not None and self._clock.now() >= entry.valid_until:
            return None
        return entry.value

    def put(self, key: bytes, version: int, value: T, valid_until: dt.datetime | None) -> None:
        """Keep ``value``, computed after ``version()`` returned ``version``, unless
        something has been committed since (it may be stale already)."""
        if self._counter() != version:
            return
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
            if key not in self._entries and len(self._entries) >= self._max:
                del self._entries[next(iter(self._entries))]  # the oldest
            self._entries[key] = _Entry(value, valid_until)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

"""The store lock that makes GC safe against snapshots being built.

Builders hold it *shared* while they decide that a chunk exists (or put it) and record
the reference in their journal, and while they publish a manifest. GC holds it
*exclusive* while it re-reads every root and deletes. So a chunk that a build has
deduplicated against is always either visible to GC as a root or not yet looked at.

It is an ``flock`` on a file. Inside one engine it orders builder threads against GC;
because flock also orders processes, the same protocol will hold when builders and GC
run in separate worker processes on one machine (one engine per root is enforced
separately, by ``engine.lock``). Each thread uses its own open file description,
because flock locks belong to the description, not the thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path


class StoreLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[int] = []
        self._all_lock = threading.Lock()

    def _fd(self) -> int:
        fd: int | None = getattr(self._local, "fd", None)
        if fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._local.fd = fd
            with self._all_lock:
                self._all.append(fd)
        return fd

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        fd = self._fd()
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def close(self) -> None:
        with self._all_lock:
            for fd in self._all:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._all.clear()
        self._local = threading.local()

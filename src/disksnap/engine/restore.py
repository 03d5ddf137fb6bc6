"""Restore a manifest into a disk, bit-exact: every chunk is fetched once, verified
(stored checksum and content hash) and written to every extent that uses it. Zero
extents are left as holes."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future

from disksnap.engine.build import Progress
from disksnap.engine.chunkstore import ChunkStore
from disksnap.engine.disk import Disk
from disksnap.engine.manifest import Manifest


def restore_into(
    disk: Disk,
    m: Manifest,
    store: ChunkStore,
    pool: Executor,
    *,
    max_inflight: int,
    progress: Progress | None = None,
    check_stop: Callable[[], None] | None = None,
) -> None:
    users: dict[int, list[int]] = {}
    for extent, k in enumerate(m.refs):
        if k:
            users.setdefault(k, []).append(extent)
    total = sum(len(v) for v in users.values()) * m.chunk_size
    done = 0

    def fetch_and_write(k: int, extents: list[int]) -> int:
        cid = m.ids[(k - 1) * 32 : k * 32].hex()
        data = store.get(cid)
        for e in extents:
            disk.restore_write(e * m.chunk_size, data)
        return len(extents) * m.chunk_size

    inflight: deque[Future[int]] = deque()
    try:
        for k, extents in users.items():
            if check_stop is not None:
                check_stop()
            inflight.append(pool.submit(fetch_and_write, k, extents))
            while len(inflight) >= max_inflight:
                done += inflight.popleft().result()
                if progress is not None:
                    progress(done, total)
        while inflight:
            done += inflight.popleft().result()
            if progress is not None:
                progress(done, total)
    finally:
        for f in inflight:
            f.cancel()
    disk.flush()


def hydrate_disk(
    disk: Disk,
    pool: Executor,
    *,
    max_inflight: int,
    progress: Progress | None = None,
    check_stop: Callable[[], None] | None = None,
) -> None:
    """Copy a lazily restored disk's pending extents in from its snapshot."""
    if disk.backing is None:
        return
    pending = disk.backing.pending_extents()
    total, done = len(pending) * disk.chunk_size, 0
    inflight: deque[Future[bool]] = deque()
    try:
        for extent in pending:
            if check_stop is not None:
                check_stop()
            inflight.append(pool.submit(disk.hydrate_extent, extent))
            while len(inflight) >= max_inflight:
                inflight.popleft().result()
                done += disk.chunk_size
                if progress is not None:
                    progress(done, total)
        while inflight:
            inflight.popleft().result()
            done += disk.chunk_size
            if progress is not None:
                progress(done, total)
    finally:
        for f in inflight:
            f.cancel()

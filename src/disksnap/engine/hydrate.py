"""Hydration: copy a lazily restored disk's pending extents in from its snapshot, each
chunk verified (stored checksum and content hash), several at a time; the extents that
take the same chunk (a copy of data elsewhere on the disk) in one task, which reads the
chunk once. Zero extents are never pending, so they stay holes. An eager restore is a
lazy restore hydrated before it returns (``Engine.restore``)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future

from disksnap.engine.build import Progress
from disksnap.engine.disk import Disk
from disksnap.engine.inflight import first_finished

GROUP_MAX = 16  # extents per task that share one chunk read


def hydrate_disk(
    disk: Disk,
    pool: Executor,
    *,
    max_inflight: int,
    progress: Progress | None = None,
    check_stop: Callable[[], None] | None = None,
) -> None:
    """Copy a lazily restored disk's pending extents in from its snapshot."""
    backing = disk.backing  # once: another hydration may drop it meanwhile
    if backing is None:
        return
    # A chunk at thousands of offsets (a disk of one repeated pattern) is split into
    # tasks of at most GROUP_MAX extents, so that a stop is never far away.
    groups = [
        extents[i : i + GROUP_MAX]
        for extents in backing.pending_by_chunk()
        for i in range(0, len(extents), GROUP_MAX)
    ]
    total, done = sum(map(len, groups)) * disk.chunk_size, 0
    inflight: set[Future[int]] = set()

    def copy(extents: list[int]) -> int:
        disk.hydrate_extents(extents)
        return len(extents)  # dealt with: a write may have copied some in meanwhile

    def collect(keep: int) -> None:
        # Waiting for the oldest left the pool's threads idle a third of the time.
        nonlocal done
        for finished in first_finished(inflight, keep):
            done += sum(finished) * disk.chunk_size
            if progress is not None:
                progress(done, total)

    try:
        for extents in groups:
            if check_stop is not None:
                check_stop()
            inflight.add(pool.submit(copy, extents))
            collect(max_inflight - 1)
        collect(0)
    finally:
        for f in inflight:
            f.cancel()

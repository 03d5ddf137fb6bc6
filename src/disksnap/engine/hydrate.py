"""Hydration: copy a lazily restored disk's pending extents in from its snapshot, each
chunk verified (stored checksum and content hash), several at a time. Zero extents
are never pending, so they stay holes. An eager restore is a lazy restore hydrated
before it returns (``Engine.restore``)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future

from disksnap.engine.build import Progress
from disksnap.engine.disk import Disk
from disksnap.engine.inflight import first_finished


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
    inflight: set[Future[bool]] = set()

    def collect(keep: int) -> None:
        # Waiting for the oldest left the pool's threads idle a third of the time.
        nonlocal done
        for finished in first_finished(inflight, keep):
            done += len(finished) * disk.chunk_size
            if progress is not None:
                progress(done, total)

    try:
        for extent in pending:
            if check_stop is not None:
                check_stop()
            inflight.add(pool.submit(disk.hydrate_extent, extent))
            collect(max_inflight - 1)
        collect(0)
    finally:
        for f in inflight:
            f.cancel()

"""Snapshot build: turn a checkpoint into a manifest, reading only what changed.

Pipeline: the calling thread reads extents of the frozen view in order (``pread``
releases the GIL); a pool hashes, deduplicates, compresses and stores them (BLAKE3,
zstd and file I/O release the GIL too, so both cores stay busy); the calling thread
collects results, makes their journal records durable in batches and marks those
extents done, which ends copy-before-write for them.

Resume after a crash: extents in the journal are not read again, and a chunk that is
already in the store is never written again. The manifest is published only after
every chunk it references is durable (``Backend.put`` is durable on return).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

from disksnap.engine.backends.base import Backend, KeyNotFound
from disksnap.engine.changemap import ChangeMap
from disksnap.engine.checkpoint import Checkpoint, JournalEntry
from disksnap.engine.chunkstore import ChunkStore, zero_id
from disksnap.engine.disk import Disk
from disksnap.engine.errors import ChunkMissing
from disksnap.engine.inflight import first_finished
from disksnap.engine.manifest import Manifest, ManifestBuilder, decode, manifest_key
from disksnap.engine.storelock import StoreLock

Progress = Callable[[int, int], None]
COMMIT_BATCH = 16


@dataclass
class BuildStats:
    extents: int = 0
    read_extents: int = 0
    read_bytes: int = 0
    zero_extents: int = 0
    reused_extents: int = 0  # taken from the base manifest or found in the store
    new_chunks: int = 0
    new_bytes: int = 0  # stored bytes of chunks this build wrote
    incremental: bool = False

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.__dict__.items()}


@dataclass
class _Context:
    disk: Disk
    cp: Checkpoint
    store: ChunkStore
    lock: StoreLock
    base: Manifest | None
    stats: BuildStats
    # chunk id -> stored size; a Future while the thread that took the chunk stores it
    seen: dict[str, int | Future[int]] = field(default_factory=dict)
    mutex: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)

    def buffer(self) -> bytearray:
        """This pool thread's read buffer, reused for every extent it processes (a new
        one would be zero-filled holding the GIL, see ``Disk.read_frozen``)."""
        buf: bytearray | None = getattr(self.local, "buffer", None)
        if buf is None:
            buf = self.local.buffer = bytearray(self.cp.info.chunk_size)
        return buf

    def count(self, name: str, n: int = 1) -> None:
        with self.mutex:
            setattr(self.stats, name, getattr(self.stats, name) + n)


def load_base(cp: Checkpoint, backend: Backend, lock: StoreLock) -> Manifest | None:
    """The base manifest, kept by the checkpoint so GC keeps its chunks while we build,
    even if the base snapshot is deleted meanwhile."""
    if cp.info.base is None:
        return None
    key = manifest_key(cp.info.base)

    def fetch() -> bytes:
        try:
            return backend.get(key)
        except KeyNotFound:
            return b""

    # Read and kept under one hold of the store lock: GC cannot run between the two.
    with lock.shared():
        raw = cp.base_manifest(fetch)
    base = decode(raw) if raw else None
    if base is not None and base.chunk_size != cp.info.chunk_size:
        return None  # extents do not line up: nothing can be taken from it by index
    return base


def build(
    disk: Disk,
    cp: Checkpoint,
    store: ChunkStore,
    lock: StoreLock,
    pool: Executor,
    *,
    max_inflight: int,
    progress: Progress | None = None,
    check_stop: Callable[[], None] | None = None,
) -> tuple[ManifestBuilder, BuildStats, Manifest | None]:
    """Build the manifest of a checkpoint. ``check_stop`` is called before each extent
    and raises to stop (cancellation, shutdown); the journal keeps what is done."""
    info = cp.info
    base = load_base(cp, store.backend, lock)
    changed = cp.changed()
    # The map says what changed since `base`. Without a trustworthy map, or when the
    # base is gone, every extent is read and compared (correctness never rests on it).
    use_map = info.map_trusted and (info.base is None or base is not None)
    stats = BuildStats(extents=info.extent_count, incremental=base is not None and use_map)
    ctx = _Context(disk, cp, store, lock, base, stats)
    result = ManifestBuilder(info.extent_count)
    todo, settled = _plan(cp, changed if use_map else None, base, result, stats)
    cp.release(settled, disk.lock_extent)  # their content is known: no more preserving
    total = len(todo) * info.chunk_size
    done = 0
    inflight: set[Future[JournalEntry]] = set()
    batch: list[JournalEntry] = []

    def settle(entries: list[JournalEntry]) -> None:
        nonlocal done
        cp.commit(entries, disk.lock_extent)
        for e in entries:
            result.set(e.extent, e.chunk_id, e.stored_size)
        done += len(entries) * info.chunk_size
        if progress is not None:
            progress(min(done, total), total)

    def collect(keep: int) -> None:
        for entries in first_finished(inflight, keep):
            batch.extend(entries)

    try:
        for i in todo:
            if check_stop is not None:
                check_stop()
            inflight.add(pool.submit(_read_and_process, ctx, i))
            collect(max_inflight - 1)
            if len(batch) >= COMMIT_BATCH:
                settle(batch)
                batch = []
        collect(0)
        settle(batch)
    finally:
        for f in inflight:
            f.cancel()
        for f in inflight:
            if not f.cancelled():
                f.exception()
    if progress is not None and total == 0:
        progress(0, 0)
    return result, stats, base


def _plan(
    cp: Checkpoint,
    changed: ChangeMap | None,
    base: Manifest | None,
    result: ManifestBuilder,
    stats: BuildStats,
) -> tuple[list[int], list[int]]:
    """Fill in what needs no reading - journaled on an earlier run, or unchanged since
    the base - and return (extents to read, extents settled from the base)."""
    todo: list[int] = []
    settled: list[int] = []
    for i in range(cp.info.extent_count):
        entry = cp.journal.get(i)
        if entry is not None:
            result.set(i, entry.chunk_id, entry.stored_size)
        elif changed is not None and not changed.is_set(i):
            cid, size = _base_ref(base, i)
            result.set(i, cid, size)
            settled.append(i)
            stats.reused_extents += cid is not None
            stats.zero_extents += cid is None
        else:
            todo.append(i)
    return todo, settled


def _base_ref(base: Manifest | None, extent: int) -> tuple[str | None, int]:
    if base is None or extent >= base.extent_count:
        return None, 0
    return base.ref_with_size(extent)


def _read_and_process(ctx: _Context, extent: int) -> JournalEntry:
    # Reading in the pool too keeps several reads in flight (a deeper I/O queue) and
    # the calling thread free to keep the pool fed.
    data = ctx.disk.read_frozen(extent, ctx.buffer())
    if data is not None:
        ctx.count("read_extents")
        ctx.count("read_bytes", len(data))
    return _process(ctx, extent, data)


def _record_zero(ctx: _Context, extent: int) -> JournalEntry:
    entry = JournalEntry(extent, None, 0)
    ctx.count("zero_extents")
    ctx.cp.record([entry])
    return entry


def _process(ctx: _Context, extent: int, data: bytes | bytearray | None) -> JournalEntry:
    # All zeroes is told by the hash, which is needed anyway and runs without the GIL;
    # comparing 4 MiB with zeroes holds it, and the serving threads wait.
    if data is None:
        return _record_zero(ctx, extent)
    cid = ctx.store.hash(data)
    if cid == zero_id(len(data)):
        return _record_zero(ctx, extent)
    base_cid, base_size = _base_ref(ctx.base, extent)
    if base_cid == cid:
        entry = JournalEntry(extent, cid, base_size)
        ctx.count("reused_extents")
        ctx.cp.record([entry])
        return entry
    with ctx.lock.shared():
        size = _store_once(ctx, cid, data)
        entry = JournalEntry(extent, cid, size)
        ctx.cp.record([entry])
    return entry


def _store_once(ctx: _Context, cid: str, data: bytes | bytearray) -> int:
    """The stored size of chunk ``cid``, storing it unless the store has it. Each chunk
    is looked up or stored by one thread: another extent with the same content waits
    for that thread's answer instead of compressing and writing the chunk again."""
    with ctx.mutex:
        known = ctx.seen.get(cid)
        if known is None:
            mine: Future[int] = Future()
            ctx.seen[cid] = mine
    if known is not None:
        ctx.count("reused_extents")
        return known if isinstance(known, int) else known.result()
    try:
        try:
            size = ctx.store.stored_size(cid)
            ctx.count("reused_extents")
        except ChunkMissing:
            size = ctx.store.put(cid, data)
            ctx.count("new_chunks")
            ctx.count("new_bytes", size)
    except BaseException as e:
        mine.set_exception(e)
        raise
    with ctx.mutex:
        ctx.seen[cid] = size  # an int is smaller than a Future: one per chunk of the disk
    mine.set_result(size)
    return size

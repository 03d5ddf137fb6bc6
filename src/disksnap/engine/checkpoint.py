"""Checkpoints: a frozen, point-in-time view of a disk while it keeps being written.

A checkpoint starts in memory, made durable by its record in the checkpoint log
(``checkpoint_log.py``): while nothing has changed the disk since the freeze, the disk
itself holds the point in time. It is *sealed* - written to its directory - before the
first change to the disk (``Disk`` calls ``seal``), before the build journals a chunk,
and at a clean shutdown. A sealed checkpoint lives in ``checkpoints/<snapshot_id>/``
(docs/formats.md#checkpoint):

* ``checkpoint.json`` - geometry, lineage (base snapshot, sequence) and whether the
  captured change map can be trusted;
* ``changed`` - the disk's change map at the checkpoint moment (what changed since base);
* ``preserve.log`` - copy-before-write records: fixed-size records of one block each,
  holding the block's content at the checkpoint moment;
* ``journal`` - one record per chunk the snapshot build has stored: extent -> chunk id;
* ``base.manifest`` - a copy of the base snapshot's manifest (a GC root while building);
* ``failed`` - present when the preserve bound was hit: the point in time is lost.

Before a block of a chunk the build has not finished is overwritten, its content at
the checkpoint moment is copied into the preserve log and fdatasynced, so the point in
time survives kill -9 and power loss: ``before_write`` does both under the disk's chunk
locks; the disk's preserver thread does it for a whole batch of deferred writes with
``stage`` and one ``commit_staged`` (deferred.py). Blocks of finished chunks are punched
out of the log again, so the space used is bounded by ``limit`` and reported as
``preserved_bytes``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path

from disksnap.engine.changemap import ChangeMap
from disksnap.engine.errors import PreserveLimitExceeded
from disksnap.engine.fileio import (
    fsync_dir,
    pread_full,
    pread_into,
    punch_hole,
    pwrite_full,
    write_file_atomic,
    write_file_synced,
)

PRESERVE_MAGIC = b"DSPR"
# magic, version, block index, data length, crc32(block index, length, data)
_REC = struct.Struct("<4sB3xQII")
REC_HEADER = 32
JOURNAL_REC = struct.Struct("<Q32sII")  # extent, chunk id, stored size, crc32 of the rest
_PENDING, _DONE = 0, 1


@dataclass(frozen=True)
class CheckpointInfo:
    snapshot_id: str
    disk_id: str
    size: int
    chunk_size: int
    block_size: int
    sequence: int
    base: str | None  # snapshot id the captured change map is relative to; None = zeroes
    map_trusted: bool
    created_at: str
    preserve_limit: int

    @property
    def extent_count(self) -> int:
        return -(-self.size // self.chunk_size)


@dataclass(frozen=True)
class Staged:
    """Blocks whose old content ``stage`` wrote to the log from ``start``, not yet synced."""

    start: int
    blocks: tuple[int, ...]


@dataclass(frozen=True)
class JournalEntry:
    extent: int
    chunk_id: str | None
    stored_size: int


class Checkpoint:
    """In-memory state of one checkpoint, backed by its directory.

    Thread-safety: ``before_write``, ``patch_extent`` and ``preserved_in`` are called with
    the disk's lock for the affected chunks held; bookkeeping shared between chunks uses
    ``_lock``.
    """

    def __init__(
        self,
        directory: Path,
        info: CheckpointInfo,
        *,
        frozen: ChangeMap | None = None,
        on_seal: Callable[[], None] | None = None,
    ) -> None:
        """The sealed checkpoint in ``directory``; with ``frozen`` (the change map taken
        at the freeze), an unsealed one that ``seal`` will write there, then call
        ``on_seal`` (the engine records it in the checkpoint log)."""
        self.dir = directory
        self.info = info
        self._lock = threading.Lock()
        # Sealing, and the journal records kept in memory until then (all of zeroes:
        # a record naming a chunk seals first, so that GC sees it in the journal file).
        self._seal_lock = threading.RLock()
        self._frozen = frozen
        self._unsynced: list[bytes] = []
        self._base_raw: bytes | None = None  # the base manifest, while unsealed
        self._on_seal = on_seal
        self._state = bytearray(info.extent_count)
        self._preserved: dict[int, int] = {}  # block index -> record offset in the log
        # extent -> how many of its blocks are in _preserved: releasing or patching an
        # extent with none (nearly all of them) costs nothing per block.
        self._preserved_extents: dict[int, int] = {}
        self._blocks_per_extent = info.chunk_size // info.block_size
        self._staged: set[int] = set()  # copied into the log, not yet synced
        self.preserved_bytes = 0
        self.failed: PreserveLimitExceeded | None = None
        self._record_size = REC_HEADER + info.block_size
        self._log_end = 0
        self.journal: dict[int, JournalEntry] = {}
        self.sealed = frozen is None
        self._log = self._journal = -1
        if self.sealed:
            self._log, self._journal = _open_files(directory)
            self._recover()

    # --- sealing and loading ---------------------------------------------------------
    #
    # ``seal`` writes the directory under a temporary name and renames it into place:
    # a crash before the rename leaves a ``.tmp-`` leftover that start-up sweeps, and
    # the checkpoint log's record, which start-up freezes again (nothing changed the
    # disk: every change waits for the seal).

    def seal(self) -> None:
        """Write the checkpoint to its directory, durably; a no-op once sealed. Safe
        from several threads; writers to the disk wait for it (``Disk``)."""
        with self._seal_lock:
            if self.sealed:
                return
            assert self._frozen is not None
            tmp = self.dir.with_name(f".tmp-{self.info.snapshot_id}")
            if tmp.exists():
                shutil.rmtree(tmp)  # an earlier attempt that failed
            tmp.mkdir(parents=True)
            fds: tuple[int, int] | None = None
            try:
                info_json = json.dumps(asdict(self.info), sort_keys=True).encode()
                write_file_synced(tmp / "checkpoint.json", info_json)
                write_file_synced(tmp / "changed", self._frozen.encode())
                if self._base_raw is not None:
                    write_file_synced(tmp / "base.manifest", self._base_raw)
                fds = _open_files(tmp)
                if self._unsynced:
                    os.write(fds[1], b"".join(self._unsynced))
                    os.fdatasync(fds[1])
                fsync_dir(tmp)
                os.rename(tmp, self.dir)
                fsync_dir(self.dir.parent)
            except BaseException:
                if fds is not None:
                    for fd in fds:
                        os.close(fd)
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._log, self._journal = fds
            self._unsynced.clear()
            self._base_raw = None
            self.sealed = True
            if self._on_seal is not None:
                self._on_seal()

    @classmethod
    def open(cls, directory: Path) -> Checkpoint:
        info = CheckpointInfo(**json.loads((directory / "checkpoint.json").read_text()))
        return cls(directory, info)

    def changed(self) -> ChangeMap:
        """The disk's change map at the freeze: what changed since ``info.base``."""
        if self._frozen is not None:
            return self._frozen
        return ChangeMap.load(self.dir / "changed")

    def base_manifest(self, fetch: Callable[[], bytes]) -> bytes:
        """The base snapshot's manifest as the build uses it (empty if it is gone),
        fetched once: copied into the directory, so that GC keeps its chunks while the
        build runs even if the base snapshot is deleted meanwhile - or, while unsealed,
        kept in memory, where the engine's GC looks (``base_in_memory``)."""
        with self._seal_lock:
            if not self.sealed:
                if self._base_raw is None:
                    self._base_raw = fetch()
                return self._base_raw
        copy = self.dir / "base.manifest"
        if not copy.exists():
            write_file_atomic(copy, fetch())
        return copy.read_bytes()

    @property
    def base_in_memory(self) -> bytes | None:
        """The base manifest an unsealed checkpoint's build holds (a GC root)."""
        return self._base_raw

    def _recover(self) -> None:
        if (self.dir / "failed").exists():
            self.failed = PreserveLimitExceeded("copy-before-write space was exhausted")
        self._recover_journal()
        self._recover_preserved()
        # What recovery trusts must be on disk before anything relies on it: records
        # may have been written but not yet synced when the process stopped.
        os.fsync(self._journal)
        os.fsync(self._log)

    def _recover_journal(self) -> None:
        size = os.fstat(self._journal).st_size
        raw = pread_full(self._journal, size, 0)
        good = 0
        for off in range(0, size - JOURNAL_REC.size + 1, JOURNAL_REC.size):
            extent, cid, stored, crc = JOURNAL_REC.unpack_from(raw, off)
            if zlib.crc32(raw[off : off + JOURNAL_REC.size - 4]) != crc:
                break
            if extent >= self.info.extent_count:
                break
            self.journal[extent] = JournalEntry(
                extent, None if cid == bytes(32) else cid.hex(), stored
            )
            self._state[extent] = _DONE
            good = off + JOURNAL_REC.size
        if good != size:
            # A torn or damaged record was never acknowledged (commit fdatasyncs before
            # anything relies on a record), and neither was anything after it. Cut it
            # off so records appended from now on are not hidden behind it.
            os.ftruncate(self._journal, good)

    def _recover_preserved(self) -> None:
        log_size = os.fstat(self._log).st_size
        rs, bs = self._record_size, self.info.block_size
        blocks = -(-self.info.size // bs)
        for off in range(0, log_size - REC_HEADER + 1, rs):
            head = pread_full(self._log, REC_HEADER, off)
            magic, _v, block, length, crc = _REC.unpack_from(head)
            if magic != PRESERVE_MAGIC or block >= blocks or length > bs:
                continue  # never written, punched, or not a record
            data = pread_full(self._log, length, off + REC_HEADER)
            if zlib.crc32(struct.pack("<QI", block, length) + data) != crc:
                continue  # torn: the overwrite it guarded never happened
            if self._state[block * bs // self.info.chunk_size] == _DONE:
                continue
            self._add_preserved(block, off)
        self.preserved_bytes = len(self._preserved) * bs
        self._log_end = -(-log_size // rs) * rs

    # --- the writer's side ----------------------------------------------------------

    def before_write(
        self, offset: int, length: int, read_live: Callable[[int, int], bytes]
    ) -> None:
        """Preserve the checkpoint content of every block [offset, offset+length) touches,
        durably, before the caller overwrites it (``stage`` then ``commit_staged``).

        ``failed`` is set only once the ``failed`` marker is durable, so a writer that
        sees it may overwrite unpreserved data: a restart will know the point in time
        is lost."""
        staged = self.stage(offset, length, read_live)
        if staged is not None:
            self.commit_staged([staged])

    def needs_preserve(self, offset: int, length: int) -> bool:
        """Whether a write to the range must wait for old content to be preserved.
        Call with the disk's locks for the range held."""
        return self.failed is None and any(True for _ in self._unpreserved(offset, length))

    def _unpreserved(self, offset: int, length: int) -> Iterator[int]:
        """Blocks of the range, within the checkpoint's size, neither preserved nor in
        an extent the build has finished."""
        info = self.info
        bs, end = info.block_size, min(offset + length, info.size)
        if length <= 0 or offset >= end:
            return
        for b in range(offset // bs, (end - 1) // bs + 1):
            if b not in self._preserved and self._state[b * bs // info.chunk_size] == _PENDING:
                yield b

    def stage(
        self, offset: int, length: int, read_live: Callable[[int, int], bytes]
    ) -> Staged | None:
        """Copy the old content of the blocks that need it into the log, not yet
        durable; ``commit_staged`` before overwriting them. The caller makes sure the
        blocks are not overwritten meanwhile (the disk's locks for the range, or its
        queue of deferred writes); blocks staged but not committed still need
        preserving, so writes to them keep waiting. A block whose chunk the build
        finishes meanwhile may be copied torn: ``commit_staged`` drops it."""
        info, bs = self.info, self.info.block_size
        assert self.sealed, "a change to the disk seals its checkpoint first"
        with self._lock:
            blocks = [b for b in self._unpreserved(offset, length) if b not in self._staged]
            if not blocks or self.failed is not None:
                return None
            need = len(blocks) * bs
            if self.preserved_bytes + need > info.preserve_limit:
                self._fail(
                    f"copy-before-write space for snapshot {info.snapshot_id} exceeded "
                    f"{info.preserve_limit} bytes"
                )
                return None
            start = self._log_end
            self._log_end += len(blocks) * self._record_size
            self.preserved_bytes += need
            self._staged.update(blocks)
        try:
            self._append_records(start, blocks, read_live)
        except OSError as e:
            with self._lock:
                self.preserved_bytes -= need
                self._staged.difference_update(blocks)
                # Without the old data the write may not proceed unless the snapshot is
                # durably failed first; if even that is impossible, the write fails.
                self._fail(f"copy-before-write for snapshot {info.snapshot_id} failed: {e}")
            return None
        return Staged(start, tuple(blocks))

    def commit_staged(self, staged: Iterable[Staged]) -> None:
        """Make staged copies durable (one sync for all) and count them as preserved:
        from here on the blocks may be overwritten."""
        staged = list(staged)
        if not staged:
            return
        try:
            os.fdatasync(self._log)
        except OSError as e:
            with self._lock:
                for s in staged:
                    self._staged.difference_update(s.blocks)
                    self.preserved_bytes -= len(s.blocks) * self.info.block_size
                self._fail(f"copy-before-write for snapshot {self.info.snapshot_id} failed: {e}")
            return
        per = self._blocks_per_extent
        with self._lock:
            for s in staged:
                self._staged.difference_update(s.blocks)
                for i, b in enumerate(s.blocks):
                    if self._state[b // per] == _DONE:
                        # The build finished the chunk meanwhile: the copy is not needed.
                        self.preserved_bytes -= self.info.block_size
                    else:
                        self._add_preserved(b, s.start + i * self._record_size)

    def _add_preserved(self, block: int, off: int) -> None:
        """Count a block as preserved at ``off`` in the log (the first record of it
        wins). Call with ``_lock`` held, or before the checkpoint is shared."""
        if block not in self._preserved:
            self._preserved[block] = off
            extent = block // self._blocks_per_extent
            self._preserved_extents[extent] = self._preserved_extents.get(extent, 0) + 1

    def _append_records(
        self, start: int, blocks: list[int], read_live: Callable[[int, int], bytes]
    ) -> None:
        bs, size = self.info.block_size, self.info.size
        records = []
        for b in blocks:
            data = read_live(b * bs, min(bs, size - b * bs))
            crc = zlib.crc32(struct.pack("<QI", b, len(data)) + data)
            head = _REC.pack(PRESERVE_MAGIC, 1, b, len(data), crc).ljust(REC_HEADER, b"\0")
            records.append(head + data.ljust(bs, b"\0"))
        pwrite_full(self._log, b"".join(records), start)

    def _fail(self, message: str) -> None:
        """Durably mark the point in time as lost, then say so. Call with ``_lock``."""
        if self.failed is None:
            fd = os.open(self.dir / "failed", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_dir(self.dir)
            self.failed = PreserveLimitExceeded(message)

    # --- the builder's side ---------------------------------------------------------

    def is_done(self, extent: int) -> bool:
        return self._state[extent] == _DONE

    def patch_extent(self, extent: int, live: bytes | bytearray | None) -> bytes | bytearray | None:
        """``live`` (the extent as read, None for a hole) with every preserved block put
        back: the content at the checkpoint moment, None if that is still all hole.
        Call with the disk's lock for this chunk held; ``live`` may have been read
        before it was taken, since any block written since was preserved first."""
        return self.patch(extent, live, self.preserved_in(extent))

    def preserved_in(self, extent: int) -> list[tuple[int, int]]:
        """The extent's preserved blocks and their records in the log. Taken with the
        disk's lock for the chunk held, the list covers every block overwritten before
        that moment; the records never change while the extent is not done, so ``patch``
        may read them after the lock is released (writers need not wait for the reads)."""
        if self.failed is not None:
            raise self.failed
        return self._preserved_in(extent)

    def patch(
        self, extent: int, live: bytes | bytearray | None, patches: list[tuple[int, int]]
    ) -> bytes | bytearray | None:
        """``live`` with the blocks of ``patches`` (``preserved_in``) put back."""
        if self.failed is not None:
            raise self.failed
        if not patches:
            return live
        info = self.info
        start, length = extent * info.chunk_size, self._extent_length(extent)
        buf = live if isinstance(live, bytearray) else bytearray(live or length)
        view = memoryview(buf)
        for block, off in patches:
            rel = block * info.block_size - start
            n = min(info.block_size, length - rel)
            pread_into(self._log, view[rel : rel + n], off + REC_HEADER)
        return buf

    def _extent_length(self, extent: int) -> int:
        return min(self.info.chunk_size, self.info.size - extent * self.info.chunk_size)

    def _preserved_in(self, extent: int) -> list[tuple[int, int]]:
        per = self._blocks_per_extent
        first = extent * per
        with self._lock:
            if extent not in self._preserved_extents:
                return []
            return [
                (b, self._preserved[b]) for b in range(first, first + per) if b in self._preserved
            ]

    def record(self, entries: Iterable[JournalEntry]) -> None:
        """Append journal records (not yet durable; see ``commit``). Unsealed, records
        of zeroes wait in memory for the seal; one naming a chunk seals first."""
        out = []
        chunks = False
        for e in entries:
            cid = bytes(32) if e.chunk_id is None else bytes.fromhex(e.chunk_id)
            chunks = chunks or e.chunk_id is not None
            body = JOURNAL_REC.pack(e.extent, cid, e.stored_size, 0)[:-4]
            out.append(body + struct.pack("<I", zlib.crc32(body)))
        if not out:
            return
        with self._seal_lock:
            if not self.sealed:
                if not chunks:
                    self._unsynced.extend(out)
                    return
                self.seal()
        os.write(self._journal, b"".join(out))

    def commit(
        self,
        entries: list[JournalEntry],
        lock_extent: Callable[[int], AbstractContextManager[object]],
    ) -> None:
        """Make journal records durable, then mark their extents done. Unsealed, there
        is nothing to sync: ``seal`` writes the records before any change to the disk."""
        if self.sealed:
            os.fdatasync(self._journal)
        for e in entries:
            self.journal[e.extent] = e
        self.release([e.extent for e in entries], lock_extent)

    def release(
        self, extents: Iterable[int], lock_extent: Callable[[int], AbstractContextManager[object]]
    ) -> None:
        """Mark extents done: their snapshot content is settled (journaled, or known from
        the base), so writes to them need no preservation and their preserved blocks
        are punched out of the log."""
        per = self._blocks_per_extent
        for extent in extents:
            freed = []
            with lock_extent(extent):
                self._state[extent] = _DONE
                with self._lock:
                    if self._preserved_extents.pop(extent, 0):
                        for b in range(extent * per, (extent + 1) * per):
                            off = self._preserved.pop(b, None)
                            if off is not None:
                                freed.append(off)
                    self.preserved_bytes -= len(freed) * self.info.block_size
            # Outside the lock (a punch may wait for the file system's journal): nothing
            # reads these records any more, and the log never reuses their space.
            for off in freed:
                punch_hole(self._log, off, self._record_size)

    def close(self) -> None:
        with self._seal_lock:
            for fd in (self._log, self._journal):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._log = self._journal = -1


def _open_files(directory: Path) -> tuple[int, int]:
    """The preserve log and the journal of a checkpoint directory, created if missing."""
    log = os.open(directory / "preserve.log", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        journal = os.open(directory / "journal", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    except BaseException:
        os.close(log)
        raise
    return log, journal


def journal_chunk_ids(path: Path) -> set[str]:
    """Chunk ids a journal file records (for GC roots; torn records may be included,
    which only keeps more)."""
    out: set[str] = set()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return out
    for off in range(0, len(raw) - JOURNAL_REC.size + 1, JOURNAL_REC.size):
        cid = raw[off + 8 : off + 40]
        if cid != bytes(32):
            out.add(cid.hex())
    return out

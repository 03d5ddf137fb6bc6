"""Block disks: a sparse file per disk with positional read / write / trim / zero / flush.

Layout (docs/formats.md#disk): ``disks/<disk_id>/data`` (sparse, exactly ``size``
bytes), ``disk.json`` (geometry and lineage) and, only after a clean close,
``changemap``.

Concurrency: reads need no lock (``pread``). Every mutation holds the locks of the
chunk stripes it touches, in ascending order; creating or dropping a checkpoint holds
all stripes, so each write lands wholly before or wholly after the checkpoint moment.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from disksnap.engine.backing import Backing, ChunkSource
from disksnap.engine.changemap import ChangeMap, ChangeMapError
from disksnap.engine.checkpoint import Checkpoint, Staged
from disksnap.engine.deferred import DeferredWrites, Pending
from disksnap.engine.errors import DiskBusy, DiskNotFound, InvalidGeometry, OutOfBounds
from disksnap.engine.fileio import (
    data_extents,
    fsync_dir,
    has_data,
    pread_full,
    pread_into,
    punch_hole,
    pwrite_full,
    write_file_atomic,
)
from disksnap.engine.stripes import Stripes

STRIPES = 64
PAGE = 4096
NOWAIT_MAX = 128 * 1024  # largest write ``write_nowait`` puts in the page cache itself
log = logging.getLogger(__name__)


@dataclass
class DiskInfo:
    disk_id: str
    size: int
    chunk_size: int
    base: str | None  # snapshot whose content the change map is relative to; None = zeroes
    next_sequence: int = 1
    backing: str | None = None  # snapshot that extents not yet copied in are read from

    def take_base(self, snapshot_id: str, sequence: int) -> bool:
        """Make the published snapshot ``snapshot_id`` (number ``sequence``) the base,
        unless this info is already past it; whether it changed."""
        if self.next_sequence > sequence + 1:
            return False
        self.base, self.next_sequence = snapshot_id, sequence + 1
        return True


class Disk:
    def __init__(
        self,
        directory: Path,
        info: DiskInfo,
        changes: ChangeMap,
        trusted: bool,
        *,
        max_size: int,
        chunks: ChunkSource,
    ) -> None:
        self.dir = directory
        self.info = info
        self.backing = Backing(directory, chunks) if info.backing is not None else None
        self.changes = changes
        self.map_trusted = trusted
        self.max_size = max_size
        self.checkpoint: Checkpoint | None = None
        # While a checkpoint is active (and the disk has no backing): writes that must
        # wait for copy-before-write, queued for the preserver thread (deferred.py).
        self._deferred: DeferredWrites | None = None
        self._preserver: threading.Thread | None = None  # started by the first deferral
        self._preserver_lock = threading.Lock()  # its start, against _stop_deferring
        self._apply_lock = threading.Lock()  # taken before any stripe lock
        self._fd = os.open(directory / "data", os.O_RDWR)
        self._stripes = Stripes(STRIPES)
        # disk.json's writers (a grow, a publish, the end of a hydration) hold different
        # locks; this one keeps their temporary files apart.
        self._info_lock = threading.Lock()
        # I/O in flight, so closing waits for it and a stale handle can never reach a
        # descriptor number that has been reused by another file.
        self._state = threading.Condition()
        self._active = 0
        self._closed = False

    # --- lifecycle ------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        info: DiskInfo,
        max_size: int,
        chunks: ChunkSource,
        backing_manifest: bytes | None = None,
    ) -> Disk:
        """Build the disk in a hidden directory and rename it into place, so a crash
        leaves either a whole disk or a ``.tmp-`` leftover that start-up sweeps."""
        tmp = directory.with_name(f".tmp-{directory.name}")
        shutil.rmtree(tmp, ignore_errors=True)  # an earlier attempt that failed
        tmp.mkdir(parents=True)
        try:
            fd = os.open(tmp / "data", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(fd, info.size)
                os.fsync(fd)
            finally:
                os.close(fd)
            if backing_manifest is not None:
                Backing.write_files(tmp, backing_manifest)
            write_file_atomic(tmp / "disk.json", _dump(info))
            os.rename(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(directory.parent)
        changes = ChangeMap(info.size // info.chunk_size)
        return cls(directory, info, changes, True, max_size=max_size, chunks=chunks)

    @classmethod
    def open(cls, directory: Path, max_size: int, chunks: ChunkSource) -> Disk:
        info = read_info(directory)
        count = info.size // info.chunk_size
        path = directory / "changemap"
        try:
            changes, trusted = ChangeMap.load(path), True
            changes.resize(count)
        except (FileNotFoundError, ChangeMapError):
            changes, trusted = ChangeMap(count), False
        # From here on the map lives in memory only; a crash must not find a stale file.
        if path.exists():
            path.unlink()
            fsync_dir(directory)
        return cls(directory, info, changes, trusted, max_size=max_size, chunks=chunks)

    def close(self) -> None:
        """Flush data and persist the change map - only if it is trustworthy, since its
        presence is what tells the next open that it may be trusted. Queued writes are
        applied first, with their copy-before-write (a checkpoint resumes next start)."""
        self._stop_deferring()
        with self.all_locks():
            if self._shut():
                return
            os.fsync(self._fd)
            if self.backing is not None:
                self.backing.sync()
                self.backing.close()
            if self.map_trusted:
                self.changes.save(self.dir / "changemap")
            os.close(self._fd)

    def abandon(self) -> None:
        """Close without persisting the change map (as a crash would): queued writes
        are lost, as a crash loses them."""
        self._stop_deferring(discard=True)
        with self.all_locks():
            if not self._shut():
                if self.backing is not None:
                    self.backing.close()
                os.close(self._fd)

    def _shut(self) -> bool:
        """Refuse new I/O and wait for I/O in flight; True if it was already shut."""
        with self._state:
            was = self._closed
            self._closed = True
            while self._active:
                self._state.wait()
        return was

    @contextlib.contextmanager
    def _io(self) -> Iterator[int]:
        with self._state:
            if self._closed:
                raise DiskNotFound(f"disk {self.disk_id} is closed or deleted")
            self._active += 1
        try:
            yield self._fd
        finally:
            with self._state:
                self._active -= 1
                if not self._active:
                    self._state.notify_all()

    def save_info(self) -> None:
        """Write ``info`` to disk.json durably; safe from several threads (the last
        writer's content is ``info`` as it was when it took the lock)."""
        with self._info_lock:
            write_info(self.dir, self.info)

    # --- geometry -------------------------------------------------------------------

    @property
    def disk_id(self) -> str:
        return self.info.disk_id

    @property
    def size(self) -> int:
        return self.info.size

    @property
    def chunk_size(self) -> int:
        return self.info.chunk_size

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0:
            raise InvalidGeometry("offset and length must not be negative")
        if offset + length > self.info.size:
            raise OutOfBounds(
                f"range {offset}+{length} is beyond the end of disk {self.disk_id} "
                f"({self.info.size} bytes)"
            )

    # --- locking --------------------------------------------------------------------

    def _stripes_of(self, offset: int, length: int) -> tuple[int, int, list[int]]:
        """The first and last chunk of a range and its stripes, in locking order."""
        cs = self.info.chunk_size
        first, last = offset // cs, (offset + max(length, 1) - 1) // cs
        stripes = sorted({c % STRIPES for c in range(first, min(last, first + STRIPES) + 1)})
        return first, last, stripes

    @contextlib.contextmanager
    def lock_range(self, offset: int, length: int) -> Iterator[tuple[int, int]]:
        first, last, stripes = self._stripes_of(offset, length)
        self._stripes.acquire(stripes)
        try:
            yield first, last
        finally:
            self._stripes.release(stripes)

    def lock_extent(self, extent: int) -> contextlib.AbstractContextManager[object]:
        return self._stripes.holding((extent % STRIPES,))

    def all_locks(self) -> contextlib.AbstractContextManager[None]:
        return self._stripes.holding_all()

    # --- I/O ------------------------------------------------------------------------

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        deferred = self._deferred
        # Queued writes are taken before the file is read: one applied in between is
        # then laid over its own data again, never missed.
        queued = deferred.overlapping(offset, length) if deferred is not None else []
        with self._io() as fd:
            data = self._read_at(fd, offset, length)
        if not queued:
            return data
        buf = bytearray(data)
        for p in queued:
            p.lay_over(buf, offset)
        return bytes(buf)

    def _read_at(self, fd: int, offset: int, length: int) -> bytes:
        backing = self.backing  # once: ``drop_backing`` may clear it meanwhile
        if backing is not None:
            return backing.read(fd, offset, length)
        return pread_full(fd, length, offset)

    def _read_live(self, offset: int, length: int) -> bytes:
        return self._read_at(self._fd, offset, length)

    def write(self, offset: int, data: bytes, *, fua: bool = False) -> None:
        self._check(offset, len(data))
        if not data:
            return
        self._wait_room(len(data))
        with self.lock_range(offset, len(data)) as (first, last), self._io() as fd:
            self._seal_checkpoint()
            queued = self._defer(offset, len(data), data, first, last)
            if not queued:
                covered = self._before_change(fd, offset, len(data), first, last)
                pwrite_full(fd, data, offset)
                self._after_change(fd, covered, fua)
        if queued and fua:
            self._settled_and_synced(queued)

    def write_zeroes(
        self, offset: int, length: int, *, punch: bool = True, fua: bool = False
    ) -> None:
        """Make the range read as zeroes; ``punch`` also deallocates it (sparse)."""
        self._check(offset, length)
        if not length:
            return
        with self.lock_range(offset, length) as (first, last), self._io() as fd:
            self._seal_checkpoint()
            queued = self._defer(offset, length, None, first, last, punch=punch)
            if not queued:
                covered = self._before_change(fd, offset, length, first, last)
                _zero(fd, offset, length, punch=punch)
                self._after_change(fd, covered, fua)
        if queued and fua:
            self._settled_and_synced(queued)

    def trim(self, offset: int, length: int) -> None:
        """Discard a range. disksnap guarantees trimmed ranges read back as zeroes."""
        self.write_zeroes(offset, length, punch=True)

    def flush(self) -> None:
        deferred = self._deferred
        if deferred is not None:
            deferred.wait_applied(deferred.last)
        with self._io() as fd:
            os.fdatasync(fd)
            backing = self.backing  # once: ``drop_backing`` may clear it meanwhile
            if backing is not None:
                backing.sync()

    def _seal_checkpoint(self) -> None:
        """Before any change: write the active checkpoint to its directory if it is
        still in memory only - until now the disk itself held its point in time (a
        restart freezes it again from the checkpoint log). Call with the range's locks
        held: the checkpoint cannot be attached or dropped meanwhile."""
        cp = self.checkpoint
        if cp is not None and not cp.sealed:
            cp.seal()

    def _before_change(self, fd: int, offset: int, length: int, first: int, last: int) -> list[int]:
        """Copy-before-write (reading through the backing), then copy in the backing
        extents the change only partly covers. Returns the backing extents it covers
        wholly, which ``_after_change`` marks once the change is durable."""
        cp = self.checkpoint
        if cp is not None:
            cp.before_write(offset, length, self._read_live)
        self.changes.mark(first, last)
        if self.backing is None:
            return []
        return self.backing.prepare_write(fd, offset, length)

    def _after_change(self, fd: int, covered: list[int], fua: bool) -> None:
        if covered and self.backing is not None:
            os.fdatasync(fd)
            self.backing.mark(covered)
        elif fua:
            os.fdatasync(fd)
        if fua and self.backing is not None:
            self.backing.sync()

    def grow(self, new_size: int) -> None:
        cs = self.info.chunk_size
        if new_size % cs or new_size < self.info.size or new_size > self.max_size:
            raise InvalidGeometry(
                f"a disk can only grow, to a multiple of {cs} bytes, at most "
                f"{self.max_size} (asked {new_size})"
            )
        with self.all_locks(), self._io() as fd:
            self._seal_checkpoint()
            os.ftruncate(fd, new_size)
            self.info.size = new_size
            self.changes.resize(new_size // cs)
            self.save_info()

    def extents(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """Allocation map of a range: (start, length, is_data) runs; holes read as zero.
        Extents still read from a backing snapshot count as data."""
        self._check(offset, length)
        deferred = self._deferred
        if deferred is not None:  # what is queued is not in the file's map yet
            deferred.wait_applied(deferred.last)
        with self._io() as fd:
            backing = self.backing  # once: ``drop_backing`` may clear it meanwhile
            if backing is None:
                return data_extents(fd, offset, length)
            runs: list[tuple[int, int, bool]] = []
            cs, pos, end = self.chunk_size, offset, offset + length
            while pos < end:
                extent = pos // cs
                n = min(end, (extent + 1) * cs) - pos
                pending = backing.pending(extent) is not None
                for run in [(pos, n, True)] if pending else data_extents(fd, pos, n):
                    if runs and runs[-1][2] == run[2] and sum(runs[-1][:2]) == run[0]:
                        runs[-1] = (runs[-1][0], runs[-1][1] + run[1], run[2])
                    else:
                        runs.append(run)
                pos += n
            return runs

    # --- deferred writes (deferred.py) ---------------------------------------------------

    def write_nowait(self, offset: int, data: bytes) -> bool:
        """Do a write now if that needs no waiting - for a lock another thread holds,
        for room in the queue, for a sync or for a page read: True if done. Otherwise
        nothing happened and the caller uses ``write``, from a thread that may block.

        A write that must wait for copy-before-write is queued (``_defer``); any other
        goes to the page cache, if it is at most ``NOWAIT_MAX`` bytes, whole pages (a
        partial page may have to be read in first) and the disk has no backing (copying
        in from a snapshot reads chunks and syncs)."""
        deferred = self._deferred
        if not data or (deferred is not None and not deferred.has_room(len(data))):
            return False
        self._check(offset, len(data))
        first, last, stripes = self._stripes_of(offset, len(data))
        if not self._stripes.try_acquire(stripes):
            return False
        try:
            with self._io():
                return self._write_locked_nowait(offset, data, first, last)
        except DiskNotFound:
            return False  # closed: ``write`` raises it
        finally:
            self._stripes.release(stripes)

    def _write_locked_nowait(self, offset: int, data: bytes, first: int, last: int) -> bool:
        """``write_nowait`` once the range's locks are held and the disk is open."""
        cp = self.checkpoint
        if cp is not None and (self._deferred is None or not cp.sealed):
            return False  # no queue (closing, a backing), or a seal: ``write`` does it
        if self._defer(offset, len(data), data, first, last):
            return True
        direct = (
            self.backing is None
            and len(data) <= NOWAIT_MAX
            and offset % PAGE == 0
            and len(data) % PAGE == 0
        )
        if direct:
            self.changes.mark(first, last)
            pwrite_full(self._fd, data, offset)
        return direct

    def _wait_room(self, size: int) -> None:
        deferred = self._deferred
        if deferred is not None:
            deferred.wait_room(size)

    def _defer(
        self,
        offset: int,
        length: int,
        data: bytes | None,
        first: int,
        last: int,
        *,
        punch: bool = False,
    ) -> int:
        """Queue the change if it must wait for copy-before-write or for a queued change
        it overlaps; its seq, or 0 if the caller applies it now. Call with the range's
        locks held."""
        deferred, cp = self._deferred, self.checkpoint
        if deferred is None or cp is None:
            return 0
        if not (cp.needs_preserve(offset, length) or deferred.overlaps(offset, length)):
            return 0
        self.changes.mark(first, last)
        seq = deferred.put(offset, length, data, punch=punch)
        self._start_preserver(deferred)
        return seq

    def _start_preserver(self, deferred: DeferredWrites) -> None:
        """Start the preserver thread for ``deferred`` unless it runs or the queue is
        stopping: a checkpoint of a disk that nobody writes meanwhile never needs one
        (starting and joining it was 0.5 ms of a snapshot). Under ``_preserver_lock``,
        which ``_stop_deferring`` holds while it stops the queue, so a thread is either
        started before the stop, and joined, or never: what it would have applied is
        then still queued for the final apply."""
        with self._preserver_lock:
            if self._preserver is not None or deferred.stopping:
                return
            self._preserver = threading.Thread(
                target=self._preserve_and_apply,
                args=(deferred,),
                name=f"preserve-{self.disk_id}",
                daemon=True,
            )
            self._preserver.start()

    def _settled_and_synced(self, seq: int) -> None:
        deferred = self._deferred
        if deferred is not None:
            deferred.wait_applied(seq)
        with self._io() as fd:
            os.fdatasync(fd)

    def _preserve_and_apply(self, deferred: DeferredWrites) -> None:
        """The preserver thread: batches of queued changes, one sync each."""
        try:
            while (batch := deferred.next_batch()) is not None:
                with self._apply_lock:
                    self._settle(deferred, batch, locked=False)
        except Exception as e:  # a bug: fail loudly at the next flush, never hang writers
            log.exception("deferred writes of disk %s failed", self.disk_id)
            deferred.stop(discard=True, error=OSError(errno.EIO, f"deferred writes lost: {e}"))

    def _settle(self, deferred: DeferredWrites, batch: list[Pending], *, locked: bool) -> None:
        """Preserve the old content under ``batch`` (one sync), then apply it, oldest
        first. ``locked``: the caller holds every stripe lock."""
        cp = self.checkpoint
        staged: list[Staged] = []
        if cp is not None:
            # Without the range's locks: what is staged cannot change meanwhile, as
            # every write to a block not yet preserved is queued behind this batch.
            for p in batch:
                s = cp.stage(p.offset, p.length, self._read_live)
                if s is not None:
                    staged.append(s)
            cp.commit_staged(staged)
        for p in batch:
            error: OSError | None = None
            with self._range_locked(p, locked):
                try:
                    if p.data is None:
                        _zero(self._fd, p.offset, p.length, punch=p.punch)
                    else:
                        pwrite_full(self._fd, p.data, p.offset)
                except OSError as e:
                    error = e
                deferred.applied(p, error)

    def _range_locked(self, p: Pending, locked: bool) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext() if locked else self.lock_range(p.offset, p.length)

    def attach_checkpoint(self, cp: Checkpoint) -> None:
        """Make ``cp`` the active checkpoint. Call with every stripe lock held."""
        self.checkpoint = cp
        if self.backing is None:
            self._deferred = DeferredWrites()  # its thread starts with the first change

    def detach_checkpoint(self) -> None:
        """Apply what is queued, then drop the active checkpoint."""
        self._stop_deferring()
        with self.all_locks():
            self.checkpoint = None

    def _stop_deferring(self, *, discard: bool = False) -> None:
        with self._preserver_lock:
            deferred, thread = self._deferred, self._preserver
            if deferred is None:
                return
            deferred.stop(discard=discard)
        if thread is not None:
            thread.join()  # after its batch; writers may still queue (up to the limit)
        with self._apply_lock, self.all_locks():
            if not discard:
                self._settle(deferred, deferred.drained(), locked=True)
            self._deferred = self._preserver = None

    # --- checkpoint support ---------------------------------------------------------

    def read_frozen(self, extent: int, into: bytearray | None = None) -> bytes | bytearray | None:
        """Extent content at the active checkpoint's moment; None when it is all hole.
        ``into``, a buffer of the extent's length, is filled and returned instead of a
        new one: a new 4 MiB buffer is zero-filled holding the GIL, which the serving
        threads then wait for."""
        cp = self.checkpoint
        if cp is None:
            raise DiskBusy(f"disk {self.disk_id} has no active checkpoint")
        start = extent * cp.info.chunk_size
        length = min(cp.info.chunk_size, cp.info.size - start)
        with self._io() as fd:
            if self.backing is not None:
                # Hydration moves a lazily restored extent into the file under the lock;
                # the backing is taken under it too, as ``drop_backing`` may have cleared
                # it since (the read below then serves: the file holds every extent).
                with self.lock_extent(extent):
                    backing = self.backing
                    if backing is not None:
                        live = None
                        if has_data(fd, start, length) or backing.pending(extent) is not None:
                            live = backing.read(fd, start, length)
                        return cp.patch_extent(extent, live)
            # Read without the lock, so writers are not held for a whole chunk's read
            # from the device. A block written meanwhile was preserved before it was
            # overwritten, and under the lock every such block is in the preserve map.
            # Into a bytearray the preserved blocks are then patched in place: 4 MiB
            # copies hold the GIL, which the serving threads wait for.
            read: bytearray | None = None
            if has_data(fd, start, length):
                read = into if into is not None and len(into) == length else bytearray(length)
                got = pread_into(fd, read, start)
                if got < length:  # past the end of the file reads as zeroes
                    read[got:] = bytes(length - got)
            # Under the lock, only which blocks to patch: reading them from the log took
            # up to 9 ms with the lock held, and writes to the extent waited for it.
            with self.lock_extent(extent):
                patches = cp.preserved_in(extent)
            return cp.patch(extent, read, patches)

    # --- lazily restored disks -------------------------------------------------------

    def hydrate_extent(self, extent: int) -> bool:
        """Copy one backing extent into the disk's file; False if nothing was pending."""
        return self.hydrate_extents([extent]) == 1

    def hydrate_extents(self, extents: list[int]) -> int:
        """Copy backing extents into the disk's file, one at a time, reading each chunk
        they take once; how many were pending."""
        loaded: dict[str, bytes | memoryview] = {}
        copied = 0
        for extent in extents:
            backing = self.backing
            if backing is None:
                break
            with self.lock_extent(extent), self._io() as fd:
                copied += backing.copy_in(fd, extent, loaded)
        return copied

    def drop_backing(self) -> None:
        """Once every extent is copied in, the disk stands on its own."""
        with self.all_locks():
            backing = self.backing
            if backing is None or backing.pending_extents():
                return
            self.info.backing = None
            self.save_info()  # the commit point; the files below are then just litter
            self.backing = None
            backing.close()
            for name in ("backing.manifest", "materialized"):
                (self.dir / name).unlink(missing_ok=True)


def read_info(directory: Path) -> DiskInfo:
    """A disk directory's ``disk.json``."""
    return DiskInfo(**json.loads((directory / "disk.json").read_text()))


def write_info(directory: Path, info: DiskInfo) -> None:
    """Replace a disk directory's ``disk.json`` durably."""
    write_file_atomic(directory / "disk.json", _dump(info))


def _zero(fd: int, offset: int, length: int, *, punch: bool) -> None:
    if punch:
        punch_hole(fd, offset, length)
        return
    step = 1 << 20
    for pos in range(offset, offset + length, step):
        pwrite_full(fd, bytes(min(step, offset + length - pos)), pos)


def _dump(info: DiskInfo) -> bytes:
    return json.dumps(asdict(info), sort_keys=True).encode()

"""The engine facade: disks, checkpoints, snapshot builds, restore, accounting, GC, verify.

Directory layout under ``root`` (docs/formats.md)::

    disks/<disk_id>/...            block disks (disk.py)
    checkpoints.log                the open checkpoints (checkpoint_log.py)
    checkpoints/<snapshot_id>/...  sealed checkpoints of snapshots being built (checkpoint.py)
    store/                         the local chunk backend, unless another is given
    store.lock                     the GC / build lock (storelock.py)

Thread-safe. One ``Engine`` per root directory at a time, enforced by an exclusive
lock on ``engine.lock`` (start-up recovery rewrites shared state, so a second engine
on the same root is refused with ``RootInUse``). GC, verify and builds inside the
engine coordinate through the store lock.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from disksnap.domain.clock import Clock, SystemClock
from disksnap.domain.ids import is_safe_id
from disksnap.engine import gc as gc_mod
from disksnap.engine import manifest as mf
from disksnap.engine.backends.base import Backend
from disksnap.engine.backends.local import LocalBackend
from disksnap.engine.background import lower_priority
from disksnap.engine.blob import Codec
from disksnap.engine.build import BuildStats, Progress, build
from disksnap.engine.catalog import Catalog
from disksnap.engine.changemap import ChangeMap
from disksnap.engine.checkpoint import Checkpoint, CheckpointInfo
from disksnap.engine.checkpoint_log import ABORTED, CheckpointLog
from disksnap.engine.chunkcache import ChunkCache
from disksnap.engine.chunkstore import ChunkStore
from disksnap.engine.config import EngineConfig
from disksnap.engine.disk import Disk, DiskInfo, read_info, write_info
from disksnap.engine.errors import (
    BuildCancelled,
    CheckpointNotFound,
    DiskBusy,
    DiskExists,
    DiskNotFound,
    EngineClosing,
    InvalidGeometry,
    RootInUse,
    SnapshotExists,
)
from disksnap.engine.fileio import lock_file, remove_dir
from disksnap.engine.hydrate import hydrate_disk
from disksnap.engine.snapview import SnapshotView
from disksnap.engine.storelock import StoreLock
from disksnap.engine.verify import VerifyReport, verify

__all__ = ["Engine", "EngineConfig", "SnapshotResult"]


@dataclass
class SnapshotResult:
    manifest: mf.Manifest
    stats: BuildStats


class Engine:
    def __init__(
        self,
        root: Path,
        backend: Backend | None = None,
        config: EngineConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.root = root
        self.config = config or EngineConfig()
        self.clock = clock or SystemClock()
        for sub in ("disks", "checkpoints"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._root_lock = _lock_root(root)
        try:
            self.backend: Backend = backend or LocalBackend(root / "store")
        except BaseException:
            os.close(self._root_lock)
            raise
        self.store = ChunkStore(self.backend, Codec(self.config.zstd_level))
        self.lock = StoreLock(root / "store.lock")
        self._pool = ThreadPoolExecutor(
            self.config.workers, thread_name_prefix="engine", initializer=lower_priority
        )
        self._mutex = threading.RLock()
        self._closing = threading.Event()
        self._jobs = 0  # builds, restores, checkpoints being made; shutdown waits for them
        self._jobs_done = threading.Condition()
        self._disks: dict[str, Disk] = {}
        # Disks whose checkpoint is being made, outside the mutex: disk id -> snapshot id.
        self._reserved: dict[str, str] = {}
        # Lazily restored disks still reading through to a snapshot: listed once at
        # start, then kept, so the hydrator need not open every disk to find them.
        self._lazy: set[str] = set()
        self._removal_watchers: list[Callable[[str], None]] = []
        self.catalog = Catalog(self.backend)
        self._chunks = ChunkCache(self.store.get, self.config.cache_chunks)
        self._cplog: CheckpointLog | None = None
        try:
            self._cplog = CheckpointLog(root / "checkpoints.log")
            self._recover()
        except BaseException:
            self.abandon()  # let go of the root lock and whatever recovery opened
            raise

    # --- start-up and shutdown ------------------------------------------------------

    def _recover(self) -> None:
        for leftover in (*self.root.glob("checkpoints/.tmp-*"), *self.root.glob("disks/.tmp-*")):
            shutil.rmtree(leftover)
        log = self._log
        self._save_logged_bases()  # first: the checkpoints below move next_sequence on
        cps = self.root / "checkpoints"
        for d in cps.iterdir():
            cp = Checkpoint.open(d)
            try:
                disk = self.disk(cp.info.disk_id)
            except BaseException:
                cp.close()
                raise
            # disk.json is saved at publication only: a checkpoint still here may hold
            # the disk's newest sequence number.
            disk.info.next_sequence = max(disk.info.next_sequence, cp.info.sequence + 1)
            if (d / "aborted").exists() or log.closed.get(d.name) == ABORTED:
                cp.close()
                self._finish_abort(disk, d, cp.info, ChangeMap.load(d / "changed"))
                if d.name in log.open:
                    log.aborted(d.name)
            else:
                with disk.all_locks():
                    disk.attach_checkpoint(cp)
        for snapshot_id, (info, changed) in list(log.open.items()):
            if not (cps / snapshot_id).exists():
                self._reopen(info, changed, sealed=snapshot_id in log.sealed_ids)
        log.bases_saved()  # above, and by _reopen
        log.compact()
        for info_file in (self.root / "disks").glob("*/disk.json"):
            directory = info_file.parent
            if not directory.name.startswith(".") and read_info(directory).backing:
                self._lazy.add(directory.name)
        if isinstance(self.backend, LocalBackend):
            self.backend.sweep_temporaries()

    def _save_logged_bases(self) -> None:
        """Publication records a disk's new base in the log only: each disk whose
        ``disk.json`` is not past its logged base takes it and saves it now (before the
        log's rewrite drops it)."""
        for disk_id, (sequence, snapshot_id) in self._log.bases.items():
            directory = self._disk_dir(disk_id)
            if not (directory / "disk.json").exists():
                continue  # deleted (its directory removed before the record)
            info = read_info(directory)
            if info.take_base(snapshot_id, sequence):
                write_info(directory, info)

    def _reopen(self, info: CheckpointInfo, changed: ChangeMap, *, sealed: bool) -> None:
        """A checkpoint the log says is open but that has no directory. If its snapshot
        was published before the stop, the disk takes it as its base (disk.json may
        not say so yet). If it was sealed, its directory - the point in time - is lost:
        its build will say so. Otherwise nothing has changed the disk since the freeze
        (every change seals first), so freezing it again now gives the same point in
        time."""
        log = self._log
        try:
            disk = self.disk(info.disk_id)
        except DiskNotFound:
            log.aborted(info.snapshot_id)  # nothing left to take it from
            return
        if self.catalog.exists(info.snapshot_id):
            if disk.info.take_base(info.snapshot_id, info.sequence):
                disk.save_info()
            log.done(info)
            return
        if sealed:
            log.aborted(info.snapshot_id)
            return
        disk.info.next_sequence = max(disk.info.next_sequence, info.sequence + 1)
        if disk.size != info.size:  # cannot be: growing seals first
            raise InvalidGeometry(
                f"disk {disk.disk_id} is {disk.size} bytes, its open checkpoint "
                f"{info.snapshot_id} {info.size}"
            )
        self._freeze(disk, info, changed)

    @property
    def _log(self) -> CheckpointLog:
        assert self._cplog is not None
        return self._cplog

    def close(self) -> None:
        """Clean shutdown: persist change maps so the next start can trust them."""
        self._shutdown(clean=True)

    def abandon(self) -> None:
        """Let go of everything without a clean shutdown, leaving the directory as a
        crash would (change maps not persisted). For fatal errors and crash tests."""
        self._shutdown(clean=False)

    def _shutdown(self, *, clean: bool) -> None:
        # Running builds and restores stop at their next extent (EngineClosing) with
        # their progress journaled; only then are their files closed under them.
        self._closing.set()
        with self._jobs_done:
            while self._jobs:
                self._jobs_done.wait()
        with self._mutex:
            for disk in self._disks.values():
                cp = disk.checkpoint
                if clean and cp is not None and not cp.sealed:
                    # Keeps the change map taken at the freeze: the disk's own map,
                    # persisted next, only says what changed since.
                    cp.seal()
                # The disk first: its queued writes still need the checkpoint.
                if clean:
                    disk.close()
                else:
                    disk.abandon()
                if cp is not None:
                    cp.close()
            self._disks.clear()
        self._pool.shutdown(wait=True)
        if self._cplog is not None:
            self._cplog.close()
        self.lock.close()
        if self._root_lock >= 0:
            os.close(self._root_lock)  # releases the root lock
            self._root_lock = -1

    # --- disks ----------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closing.is_set():
            raise EngineClosing("the engine is shut down")

    def _disk_dir(self, disk_id: str) -> Path:
        if not is_safe_id(disk_id):
            raise InvalidGeometry(f"invalid disk id {disk_id!r}")
        return self.root / "disks" / disk_id

    def _check_size(self, size: int, chunk_size: int | None = None) -> None:
        cs = chunk_size or self.config.chunk_size
        if size <= 0 or size % cs or size > self.config.max_disk_size:
            raise InvalidGeometry(
                f"disk size must be a positive multiple of {cs} bytes, at most "
                f"{self.config.max_disk_size} (asked {size})"
            )

    def create_disk(self, disk_id: str, size: int) -> Disk:
        """A new, empty (all-zero, unallocated) disk."""
        return self._create_disk(disk_id, size, base=None)

    def _create_disk(
        self,
        disk_id: str,
        size: int,
        *,
        base: str | None,
        backing: tuple[str, bytes, int] | None = None,  # snapshot id, manifest, chunk size
    ) -> Disk:
        chunk_size = self.config.chunk_size if backing is None else backing[2]
        self._check_size(size, chunk_size)
        directory = self._disk_dir(disk_id)
        with self._mutex:
            self._ensure_open()  # under the mutex: shutdown closes what is open after it
            if directory.exists():
                raise DiskExists(f"disk {disk_id} already exists")
            info = DiskInfo(disk_id, size, chunk_size, base)
            info.backing = None if backing is None else backing[0]
            disk = Disk.create(
                directory,
                info,
                self.config.max_disk_size,
                self._chunks,
                None if backing is None else backing[1],
            )
            self._disks[disk_id] = disk
            if backing is not None:
                self._lazy.add(disk_id)
            return disk

    def lazy_disks(self) -> list[str]:
        """Disks restored lazily whose content is not all copied in yet."""
        with self._mutex:
            return sorted(self._lazy)

    def disk(self, disk_id: str) -> Disk:
        with self._mutex:
            self._ensure_open()
            disk = self._disks.get(disk_id)
            if disk is None:  # only then a path (and the id checked for one)
                directory = self._disk_dir(disk_id)
                if not (directory / "disk.json").exists():
                    raise DiskNotFound(f"disk {disk_id} not found")
                disk = Disk.open(directory, self.config.max_disk_size, self._chunks)
                self._disks[disk_id] = disk
            return disk

    def list_disks(self) -> list[str]:
        return sorted(
            p.name
            for p in (self.root / "disks").iterdir()
            if not p.name.startswith(".") and (p / "disk.json").exists()
        )

    def delete_disk(self, disk_id: str) -> None:
        with self._mutex:
            disk = self.disk(disk_id)
            busy = self._in_flight(disk)
            if busy is not None:
                raise DiskBusy(f"disk {disk_id} has snapshot {busy} in flight")
            for watcher in list(self._removal_watchers):
                watcher(disk_id)
            disk.abandon()
            del self._disks[disk_id]
            self._lazy.discard(disk_id)
            remove_dir(disk.dir)
            self._log.disk_deleted(disk_id)

    def watch_removals(self, watcher: Callable[[str], None]) -> Callable[[], None]:
        """Call ``watcher(disk_id)`` whenever a disk is about to be deleted, before its
        I/O is cut off, so that whoever serves it (NBD) can let its clients go cleanly.
        The watcher runs in the deleting thread under the engine mutex: it must only
        hand the news on, never block or call back into the engine. Returns the
        function that stops the watching."""
        with self._mutex:
            self._removal_watchers.append(watcher)

        def unwatch() -> None:
            with self._mutex, contextlib.suppress(ValueError):
                self._removal_watchers.remove(watcher)

        return unwatch

    # --- jobs -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _job(self, cancel: threading.Event | None, what: str) -> Iterator[Callable[[], None]]:
        """Run a long job: yields its stop check, and keeps shutdown waiting for it."""

        def check_stop() -> None:
            if self._closing.is_set():
                raise EngineClosing(f"{what} stopped: the engine is shutting down")
            if cancel is not None and cancel.is_set():
                raise BuildCancelled(f"{what} was cancelled")

        with self._jobs_done:
            check_stop()
            self._jobs += 1
        try:
            yield check_stop
        finally:
            with self._jobs_done:
                self._jobs -= 1
                self._jobs_done.notify_all()

    # --- checkpoints and snapshot builds --------------------------------------------

    def create_checkpoint(
        self, disk_id: str, snapshot_id: str, *, durable: bool = True
    ) -> CheckpointInfo:
        """Freeze the disk's content now, durably by the time it returns: writers are
        held only while the change map is swapped and copy-before-write switched on,
        then one record in the checkpoint log (its sync shared with other checkpoints
        being taken) makes it durable. The checkpoint's directory is written later, if
        ever (``Checkpoint.seal``). The engine's mutex is held only to reserve the disk
        and the snapshot id.

        ``durable=False``: the record is written but not synced; the checkpoint is
        durable once ``sync_checkpoints`` returns (checkpoints taken one after another
        then share one sync). A crash before that leaves either no checkpoint or one
        that start-up restores, as a crash during the sync would."""
        if not is_safe_id(snapshot_id):
            raise InvalidGeometry(f"invalid snapshot id {snapshot_id!r}")
        with self._job(None, f"checkpoint of disk {disk_id}"):
            disk, info = self._reserve_checkpoint(disk_id, snapshot_id)
            try:
                cp, frozen = self._freeze(disk, info)
                try:
                    self._log.frozen(cp.info, frozen, sync=durable)
                    if cp.sealed:  # by a writer, whose record may precede this one
                        self._log.sealed(snapshot_id)
                except BaseException:
                    self._drop(disk, cp)  # not durable: undo the freeze
                    raise
            finally:
                with self._mutex:
                    del self._reserved[disk_id]
            return cp.info

    def sync_checkpoints(self) -> None:
        """Make every checkpoint taken so far durable (see ``create_checkpoint``)."""
        self._log.sync()

    def _reserve_checkpoint(self, disk_id: str, snapshot_id: str) -> tuple[Disk, CheckpointInfo]:
        """Under the mutex: the disk, with no other checkpoint in flight or being made,
        and the checkpoint's lineage. Sequence, base and map_trusted change only under
        the mutex, and only through a checkpoint of the disk, which this one excludes."""
        with self._mutex:
            if snapshot_id in self._reserved.values() or self._snapshot_known(snapshot_id):
                raise SnapshotExists(f"snapshot {snapshot_id} already exists")
            disk = self.disk(disk_id)
            busy = self._in_flight(disk)
            if busy is not None:
                raise DiskBusy(f"disk {disk_id} already has snapshot {busy} in flight")
            info = CheckpointInfo(
                snapshot_id=snapshot_id,
                disk_id=disk_id,
                size=disk.size,
                chunk_size=disk.chunk_size,
                # The disk may predate the current config: the copy-before-write
                # block must divide its chunk size.
                block_size=math.gcd(self.config.block_size, disk.chunk_size),
                sequence=disk.info.next_sequence,
                base=disk.info.base,
                map_trusted=disk.map_trusted,
                created_at=self.clock.now().isoformat(),
                preserve_limit=self.config.preserve_limit,
            )
            # Kept in memory: checkpoint.json holds the number until publishing saves
            # disk.json, and a restart takes it from there (_recover). A number may be
            # used again after an abort, as no snapshot of the disk kept it.
            disk.info.next_sequence += 1
            self._reserved[disk_id] = snapshot_id
            return disk, info

    def _in_flight(self, disk: Disk) -> str | None:
        """The snapshot whose checkpoint the disk has or is being given (under the mutex)."""
        if disk.checkpoint is not None:
            return disk.checkpoint.info.snapshot_id
        return self._reserved.get(disk.disk_id)

    def _freeze(
        self, disk: Disk, info: CheckpointInfo, frozen: ChangeMap | None = None
    ) -> tuple[Checkpoint, ChangeMap]:
        """The point in time: the moment copy-before-write is switched on, at the disk's
        size then (``Disk.grow`` does not take the mutex). The frozen map is the disk's
        own, or ``frozen`` when start-up freezes again from the checkpoint log."""
        with disk.all_locks():
            if disk.size != info.size:
                info = replace(info, size=disk.size)
            if frozen is None:
                frozen = disk.changes
            cp = self._unsealed(info, frozen)
            disk.attach_checkpoint(cp)
            # Every write from now on happens in this process: the new map is exact.
            disk.changes = ChangeMap(disk.size // disk.chunk_size)
            disk.map_trusted = True
            return cp, frozen

    def _unsealed(self, info: CheckpointInfo, frozen: ChangeMap) -> Checkpoint:
        snapshot_id = info.snapshot_id
        return Checkpoint(
            self.root / "checkpoints" / snapshot_id,
            info,
            frozen=frozen,
            on_seal=lambda: self._log.sealed(snapshot_id),
        )

    def _snapshot_known(self, snapshot_id: str) -> bool:
        """Whether the id is taken by a checkpoint or a published snapshot (under the
        mutex; a checkpoint being made is in ``_reserved`` until its record is open)."""
        return (
            snapshot_id in self._log.open
            or (self.root / "checkpoints" / snapshot_id).exists()
            or self.catalog.exists(snapshot_id)
        )

    def _checkpoint(self, snapshot_id: str) -> tuple[Disk, Checkpoint]:
        with self._mutex:
            for disk in self._disks.values():
                cp = disk.checkpoint
                if cp is not None and cp.info.snapshot_id == snapshot_id:
                    return disk, cp
        raise CheckpointNotFound(f"no snapshot {snapshot_id} is being built")

    def pending_checkpoints(self) -> list[CheckpointInfo]:
        with self._mutex:
            return [d.checkpoint.info for d in self._disks.values() if d.checkpoint is not None]

    def checkpoint_usage(self, snapshot_id: str) -> int:
        """Bytes of copy-before-write data the checkpoint currently holds."""
        return self._checkpoint(snapshot_id)[1].preserved_bytes

    def build_snapshot(
        self,
        snapshot_id: str,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> SnapshotResult:
        """Build (or resume building) the snapshot of a checkpoint and publish it."""
        with self._job(cancel, f"build of snapshot {snapshot_id}") as check_stop:
            return self._build(snapshot_id, progress, check_stop)

    def _build(
        self, snapshot_id: str, progress: Progress | None, check_stop: Callable[[], None]
    ) -> SnapshotResult:
        disk, cp = self._checkpoint(snapshot_id)
        stats = BuildStats()
        if not self.catalog.exists(snapshot_id):
            result, stats, base = build(
                disk,
                cp,
                self.store,
                self.lock,
                self._pool,
                max_inflight=self.config.workers * 2,
                progress=progress,
                check_stop=check_stop,
            )
            manifest = result.finish(
                snapshot_id=snapshot_id,
                disk_id=cp.info.disk_id,
                disk_size=cp.info.size,
                chunk_size=cp.info.chunk_size,
                sequence=cp.info.sequence,
                parent=base.snapshot_id if base is not None and stats.incremental else None,
                created_at=cp.info.created_at,
                stats=stats.as_dict(),
            )
            with self.lock.shared():
                self.catalog.publish(manifest)
        manifest = self.snapshot(snapshot_id)
        with self._mutex:
            disk.info.base = snapshot_id  # durable with the done record below
            disk.detach_checkpoint()
            cp.close()
            if cp.sealed:
                remove_dir(cp.dir)
        # Before the caller can call the snapshot READY (and someone delete it): a
        # restart must not take an open record of a deleted snapshot for a new one.
        self._log.done(cp.info)
        return SnapshotResult(manifest, stats)

    def abort_checkpoint(self, snapshot_id: str) -> None:
        """Drop a checkpoint whose snapshot failed or was cancelled. Its changes are
        merged back into the disk's map so the next snapshot still sees them."""
        disk, cp = self._checkpoint(snapshot_id)
        self._log.aborted(snapshot_id)  # from here on a restart drops it too
        with self._mutex:
            self._drop(disk, cp)

    def _drop(self, disk: Disk, cp: Checkpoint) -> None:
        """Detach ``cp`` (applying queued writes, which may still use it), close it and
        finish the abort: its frozen map merged back, its directory (if a seal wrote
        one meanwhile) removed."""
        disk.detach_checkpoint()
        cp.close()
        self._finish_abort(disk, cp.dir if cp.sealed else None, cp.info, cp.changed())

    def _finish_abort(
        self, disk: Disk, directory: Path | None, info: CheckpointInfo, changed: ChangeMap
    ) -> None:
        disk.detach_checkpoint()
        with disk.all_locks():
            disk.changes.merge(changed)
            disk.map_trusted = disk.map_trusted and info.map_trusted
        if directory is not None:
            remove_dir(directory)

    # --- snapshots ------------------------------------------------------------------

    def snapshot(self, snapshot_id: str) -> mf.Manifest:
        return self.catalog.get(snapshot_id)

    def has_snapshot(self, snapshot_id: str) -> bool:
        """Whether the snapshot is published (its manifest is in the catalog)."""
        return self.catalog.exists(snapshot_id)

    def open_snapshot(self, snapshot_id: str) -> SnapshotView:
        """Read a published snapshot in place (verified chunks through the bounded chunk
        cache), without restoring it. ``SnapshotNotFound`` unless it is published."""
        self._ensure_open()
        return SnapshotView(self.snapshot(snapshot_id), self._chunks)

    def list_snapshots(self, disk_id: str | None = None) -> list[mf.Manifest]:
        return self.catalog.list(disk_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Unpublish a snapshot. Its chunks are freed by the next GC."""
        self.catalog.delete(snapshot_id)

    def restore(
        self,
        snapshot_id: str,
        disk_id: str,
        *,
        size: int | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> Disk:
        """Create ``disk_id`` with the snapshot's content copied in and durable, every
        chunk verified: a lazy restore, hydrated before returning. Calling again after a
        crash or a shutdown resumes where hydration stopped; on any other error (a
        damaged chunk, cancellation) the disk is removed."""
        try:
            disk = self.disk(disk_id)
            if disk.info.backing != snapshot_id:
                raise DiskExists(f"disk {disk_id} already exists")
        except DiskNotFound:
            disk = self.restore_lazy(snapshot_id, disk_id, size=size)
        try:
            self.hydrate(disk_id, progress, cancel)
        except EngineClosing:
            raise  # the disk keeps its backing; calling restore again resumes
        except BaseException:
            self.delete_disk(disk_id)
            raise
        return disk

    def restore_lazy(self, snapshot_id: str, disk_id: str, *, size: int | None = None) -> Disk:
        """Create ``disk_id`` with the snapshot's content at once: extents not yet copied
        in are read from the snapshot (verified, through a bounded cache), and writes
        copy an extent in first. ``hydrate`` copies the rest; until then the disk keeps
        its own copy of the manifest, a GC root, so the snapshot may be deleted."""
        m = self.snapshot(snapshot_id)
        size = m.disk_size if size is None else size
        if size < m.disk_size:
            raise InvalidGeometry(f"a disk from snapshot {snapshot_id} needs {m.disk_size} bytes")
        # Under the store lock, GC sees either the snapshot or the disk's copy as a root.
        with self.lock.shared():
            raw = self.catalog.raw(snapshot_id)
            return self._create_disk(
                disk_id,
                size,
                base=snapshot_id,
                backing=(snapshot_id, raw, m.chunk_size),
            )

    def hydrate(
        self,
        disk_id: str,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Copy every extent of a lazily restored disk in from its snapshot, then drop
        the backing. Resumable: what was copied stays copied."""
        disk = self.disk(disk_id)
        if disk.backing is None:
            return
        with self._job(cancel, f"hydration of disk {disk_id}") as check_stop:
            hydrate_disk(
                disk,
                self._pool,
                max_inflight=self.config.workers * 2,
                progress=progress,
                check_stop=check_stop,
            )
        disk.drop_backing()
        if disk.info.backing is None:  # dropped: the disk stands on its own
            with self._mutex:
                self._lazy.discard(disk_id)

    # --- accounting, GC and verify ---------------------------------------------------

    def storage_sizes(self, disk_id: str) -> dict[str, int]:
        return self.catalog.storage_sizes(disk_id)

    def referenced_bytes(self) -> int:
        return self.catalog.referenced_bytes()

    def _roots(self) -> tuple[set[str], int]:
        # The base manifests of unsealed checkpoints first: one sealed meanwhile has
        # its copy in its directory by the time the directories are read.
        with self._mutex:
            held = [
                raw
                for d in self._disks.values()
                if d.checkpoint is not None and (raw := d.checkpoint.base_in_memory)
            ]
        live, count = gc_mod.live_chunks(
            self.catalog.list(), self.root / "checkpoints", self.root / "disks"
        )
        for raw in held:
            live.update(mf.decode(raw).chunk_sizes())
        return live, count + len(held)

    def gc_plan(self, safety: gc_mod.SafetyParameters | None = None) -> gc_mod.GcPlan:
        return gc_mod.plan(self.store, self._roots, safety)

    def gc_execute(self, plan: gc_mod.GcPlan) -> gc_mod.GcResult:
        return gc_mod.execute(self.store, self.lock, self._roots, plan)

    def verify(self, snapshot_ids: list[str] | None = None) -> VerifyReport:
        if snapshot_ids is None:
            manifests = self.list_snapshots()
        else:
            manifests = [self.snapshot(s) for s in snapshot_ids]
        return verify(self.store, manifests, self._pool)


def _lock_root(root: Path) -> int:
    try:
        return lock_file(root / "engine.lock")
    except BlockingIOError:
        raise RootInUse(f"another engine is using {root}") from None

"""What an NBD export name opens, and who may write.

Names (docs/nbd.md):

* ``<disk-id>`` - the disk, read-write for the first connection while the disk is
  READY; while that writer is connected, further connections get the disk read-only
  (the export flags say so, so qemu-img and friends refuse to open it for writing and
  writes get EPERM). One writer at a time keeps a disk's content the product of one
  client's ordered writes and flushes.
* ``readonly/<disk-id>`` - the disk read-only, never taking the writer's place (for
  copies out, inspection, ``nbdinfo``).
* ``snapshot/<snapshot-id>`` - a READY snapshot, read-only, served from the chunk store.

Everything here blocks (metadata queries, engine calls): the server calls it in threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from disksnap.domain.ids import is_safe_id
from disksnap.engine.disk import Disk
from disksnap.engine.engine import Engine
from disksnap.engine.errors import DiskNotFound as EngineDiskNotFound
from disksnap.engine.errors import SnapshotNotFound as EngineSnapshotNotFound
from disksnap.engine.snapview import SnapshotView
from disksnap.meta import DiskStatus, Meta, SnapshotStatus
from disksnap.meta.errors import DiskNotFound, SnapshotNotFound
from disksnap.nbd.names import READONLY_PREFIX, SNAPSHOT_PREFIX

MAX_LISTED = 1000


class ExportUnknown(Exception):
    """No such export (NBD_REP_ERR_UNKNOWN)."""


class ExportRefused(Exception):
    """The export exists but may not be served now (NBD_REP_ERR_POLICY)."""


class Export(Protocol):
    """One opened export. Ranges are checked by the engine (``OutOfBounds``)."""

    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def multi_conn(self) -> bool:
        """Safe to serve over several connections at once (NBD_FLAG_CAN_MULTI_CONN)."""
        ...

    @property
    def disk_id(self) -> str | None:
        """The disk behind the export, to disconnect its clients when it is deleted."""
        ...

    def read(self, offset: int, length: int) -> bytes: ...
    def write(self, offset: int, data: bytes, *, fua: bool) -> None: ...
    def write_nowait(self, offset: int, data: bytes) -> bool:
        """``write`` (no FUA) if it can be done at once without blocking, so on the
        event loop without a thread hand-off: True if done; else nothing happened."""
        ...

    def write_zeroes(self, offset: int, length: int, *, punch: bool, fua: bool) -> None: ...
    def flush(self) -> None: ...
    def extents(self, offset: int, length: int) -> list[tuple[int, int, bool]]: ...
    def close(self) -> None: ...


class ReadOnly(Exception):
    """A write to a read-only export (EPERM)."""


@dataclass
class DiskExport:
    name: str
    disk: Disk
    read_only: bool
    release: Callable[[], None]

    multi_conn = False

    @property
    def size(self) -> int:
        return self.disk.size

    @property
    def disk_id(self) -> str | None:
        return self.disk.disk_id

    def read(self, offset: int, length: int) -> bytes:
        return self.disk.read(offset, length)

    def write(self, offset: int, data: bytes, *, fua: bool) -> None:
        self._writable()
        self.disk.write(offset, data, fua=fua)

    def write_nowait(self, offset: int, data: bytes) -> bool:
        # A queued write, or a small whole-page one into the page cache, does not block.
        return not self.read_only and self.disk.write_nowait(offset, data)

    def write_zeroes(self, offset: int, length: int, *, punch: bool, fua: bool) -> None:
        self._writable()
        self.disk.write_zeroes(offset, length, punch=punch, fua=fua)

    def flush(self) -> None:
        if not self.read_only:
            self.disk.flush()

    def extents(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        return self.disk.extents(offset, length)

    def close(self) -> None:
        self.release()

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnly(f"export {self.name} is read-only")


@dataclass
class SnapshotExport:
    name: str
    view: SnapshotView

    read_only = True
    multi_conn = True
    disk_id: str | None = None

    @property
    def size(self) -> int:
        return self.view.size

    def read(self, offset: int, length: int) -> bytes:
        return self.view.read(offset, length)

    def write(self, offset: int, data: bytes, *, fua: bool) -> None:  # noqa: ARG002
        raise ReadOnly(f"snapshot export {self.name} is read-only")

    def write_nowait(self, offset: int, data: bytes) -> bool:  # noqa: ARG002
        return False  # ``write`` refuses it

    def write_zeroes(
        self,
        offset: int,  # noqa: ARG002
        length: int,  # noqa: ARG002
        *,
        punch: bool,  # noqa: ARG002
        fua: bool,  # noqa: ARG002
    ) -> None:
        raise ReadOnly(f"snapshot export {self.name} is read-only")

    def flush(self) -> None:
        pass

    def extents(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        return self.view.extents(offset, length)

    def close(self) -> None:
        pass


class Exports:
    """Resolves export names against metadata and the engine; keeps the writer slots."""

    def __init__(self, meta: Meta, engine: Engine) -> None:
        self._meta = meta
        self._engine = engine
        self._writers: set[str] = set()
        self._lock = threading.Lock()

    def open(self, name: str, *, claim: bool = True) -> Export:
        """Open an export. With ``claim`` a disk export takes the writer slot if it is
        free; without (NBD_OPT_INFO) it only reports what GO would give now."""
        if name.startswith(SNAPSHOT_PREFIX):
            return self._snapshot(name, name.removeprefix(SNAPSHOT_PREFIX))
        if name.startswith(READONLY_PREFIX):
            disk_id = name.removeprefix(READONLY_PREFIX)
            return DiskExport(name, self._disk(disk_id), True, lambda: None)
        disk = self._disk(name)
        with self._lock:
            writable = name not in self._writers
            if writable and claim:
                self._writers.add(name)
        if not writable or not claim:
            return DiskExport(name, disk, not writable, lambda: None)
        return DiskExport(name, disk, False, lambda: self._release(name))

    def _release(self, disk_id: str) -> None:
        with self._lock:
            self._writers.discard(disk_id)

    def _disk(self, disk_id: str) -> Disk:
        if not is_safe_id(disk_id):
            raise ExportUnknown(f"no export named {disk_id!r}")
        with self._meta.transaction(readonly=True) as tx:
            try:
                status = tx.disks.get(disk_id).status
            except DiskNotFound:
                raise ExportUnknown(f"disk {disk_id} not found") from None
        if status is not DiskStatus.READY:
            raise ExportRefused(f"disk {disk_id} is {status}, not READY")
        try:
            return self._engine.disk(disk_id)
        except EngineDiskNotFound:
            raise ExportUnknown(f"disk {disk_id} not found") from None

    def _snapshot(self, name: str, snapshot_id: str) -> SnapshotExport:
        if not is_safe_id(snapshot_id):
            raise ExportUnknown(f"no export named {name!r}")
        with self._meta.transaction(readonly=True) as tx:
            try:
                status = tx.snapshots.get(snapshot_id).status
            except SnapshotNotFound:
                raise ExportUnknown(f"snapshot {snapshot_id} not found") from None
        if status is not SnapshotStatus.READY:
            raise ExportRefused(f"snapshot {snapshot_id} is {status}, not READY")
        try:
            return SnapshotExport(name, self._engine.open_snapshot(snapshot_id))
        except EngineSnapshotNotFound:
            raise ExportUnknown(f"snapshot {snapshot_id} not found") from None

    def names(self) -> list[str]:
        """READY disks and snapshots (NBD_OPT_LIST), at most ``MAX_LISTED``."""
        disks = self._engine.list_disks()[:MAX_LISTED]
        snapshots = [m.snapshot_id for m in self._engine.list_snapshots()][:MAX_LISTED]
        out: list[str] = []
        with self._meta.transaction(readonly=True) as tx:
            for disk_id in disks:
                try:
                    if tx.disks.get(disk_id).status is DiskStatus.READY:
                        out.append(disk_id)
                except DiskNotFound:
                    continue
            for snapshot_id in snapshots:
                try:
                    if tx.snapshots.get(snapshot_id).status is SnapshotStatus.READY:
                        out.append(SNAPSHOT_PREFIX + snapshot_id)
                except SnapshotNotFound:
                    continue
        return out[:MAX_LISTED]

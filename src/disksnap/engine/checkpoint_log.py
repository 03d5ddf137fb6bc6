"""The checkpoint log: one append-only file, ``checkpoints.log``, saying which checkpoints
are open (docs/formats.md#checkpoint-log, docs/lifecycle.md).

A checkpoint is first made durable here, by one record appended and synced (``frozen``:
its ``CheckpointInfo`` and the change map captured at the freeze), not by a directory
of its own: that directory (``checkpoint.py``) is written only once something needs it
- the first change to the disk after the freeze, the first chunk the build stores, a
clean shutdown. Until then the disk itself still holds the point in time, and start-up
freezes it again from the record. A ``sealed`` record follows the directory's rename:
from then on the directory is the checkpoint, and if it is lost, so is the point in
time (start-up never freezes a sealed checkpoint again). ``done`` (published) and
``aborted`` records close a checkpoint; start-up neither resumes nor freezes again a
closed one.

A ``done`` record also names the disk and the snapshot's sequence: publication makes the
snapshot its disk's base without rewriting ``disk.json``, and start-up takes the base
from the log (``bases``) where ``disk.json`` is older. A ``deleted`` record (its ``id`` a
disk's) withdraws the base recorded before it, so a disk made again under the same id
never inherits it.

Records are lines ``<crc32 of the JSON, 8 hex digits> <JSON>\\n``. Appends from several
threads share syncs (group commit): a record is durable when its ``append`` returns. A
torn or damaged record was never acknowledged, nor was anything after it: reading stops
there and the file is cut. The file is rewritten with only the open records at start-up
and whenever it has grown by ``COMPACT_BYTES``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import threading
import zlib
from pathlib import Path
from typing import Any

from disksnap.engine.changemap import ChangeMap
from disksnap.engine.checkpoint import CheckpointInfo
from disksnap.engine.fileio import fsync_dir, write_all

COMPACT_BYTES = 1 << 20
FROZEN, SEALED, DONE, ABORTED = "frozen", "sealed", "done", "aborted"
DELETED = "deleted"


class CheckpointLog:
    """The open checkpoints' records, and the closing records read at start-up."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.open: dict[str, tuple[CheckpointInfo, ChangeMap]] = {}
        self._lines: dict[str, bytes] = {}  # each open checkpoint's frozen record, as written
        self.sealed_ids: set[str] = set()  # open and sealed
        self.closed: dict[str, str] = {}  # snapshot id -> DONE or ABORTED, read at start-up
        # Disk id -> (sequence, snapshot id) of its newest snapshot published since the
        # bases were last saved in disk.json (``bases_saved``); ``compact`` keeps them.
        self.bases: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()  # the file's end and the open records
        self._sync_lock = threading.Lock()  # one sync at a time; taken before _lock
        self._written = 0  # records appended since this object opened the file
        self._synced = 0  # records known durable
        self._fd = self._open()
        self._grown = 0  # bytes appended since the file was last rewritten

    def _open(self) -> int:
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        if created:
            fsync_dir(self.path.parent)
            return fd
        size = os.fstat(fd).st_size
        raw = os.pread(fd, size, 0)
        good = 0
        for line in raw.splitlines(keepends=True):
            record = _decode(line)
            if record is None:
                break
            self._apply(record, line)
            if record["op"] in (DONE, ABORTED):
                self.closed[str(record["id"])] = str(record["op"])
            elif record["op"] == FROZEN:
                self.closed.pop(str(record["id"]), None)
            good += len(line)
        if good != size:
            os.ftruncate(fd, good)
            os.fsync(fd)
        return fd

    def _apply(
        self,
        record: dict[str, Any],
        line: bytes,
        opened: tuple[CheckpointInfo, ChangeMap] | None = None,
    ) -> None:
        """Take in ``record`` (written as ``line``). A frozen record appended now comes
        with what it was made of (``opened``); one read from the file is decoded."""
        snapshot_id = str(record["id"])
        if record["op"] == DELETED:
            self.bases.pop(snapshot_id, None)  # the id is the disk's
            return
        if record["op"] == DONE and "disk" in record:  # older logs' records have none
            self.bases[str(record["disk"])] = (int(record["seq"]), snapshot_id)
        if record["op"] == FROZEN:
            if opened is None:
                info = CheckpointInfo(**record["info"])
                opened = (info, ChangeMap.decode(base64.b64decode(record["changed"])))
            self.open[snapshot_id] = opened
            self._lines[snapshot_id] = line
        elif record["op"] == SEALED:
            if snapshot_id in self.open:
                self.sealed_ids.add(snapshot_id)
        else:
            self.open.pop(snapshot_id, None)
            self._lines.pop(snapshot_id, None)
            self.sealed_ids.discard(snapshot_id)

    # --- records --------------------------------------------------------------------

    def frozen(self, info: CheckpointInfo, changed: ChangeMap, *, sync: bool = True) -> None:
        """Durably record a checkpoint taken: start-up freezes it again unless it is
        closed or has its directory by then. ``sync=False``: written, durable only once
        ``sync`` (or any later synced record) returns."""
        self._append(_frozen_record(info, changed), sync=sync, opened=(info, changed))

    def sealed(self, snapshot_id: str) -> None:
        """Durably record that the checkpoint's directory is in place."""
        self._append({"op": SEALED, "id": snapshot_id})

    def done(self, info: CheckpointInfo) -> None:
        """Durably record that the snapshot is published, its checkpoint gone, and the
        snapshot its disk's base."""
        self._append(_done_record(info.disk_id, info.sequence, info.snapshot_id))

    def disk_deleted(self, disk_id: str) -> None:
        """Durably withdraw the disk's recorded base, if it has one (its directory is
        gone: a disk made later under the same id starts from zeroes)."""
        with self._lock:
            if disk_id not in self.bases:
                return
        self._append({"op": DELETED, "id": disk_id})

    def bases_saved(self) -> None:
        """Every base recorded so far is in its disk's ``disk.json`` now: the next
        ``compact`` drops them."""
        with self._lock:
            self.bases.clear()

    def aborted(self, snapshot_id: str) -> None:
        """Durably record that the checkpoint is dropped: never resumed, never frozen
        again, even if its directory survives a crash."""
        self._append({"op": ABORTED, "id": snapshot_id})

    def sync(self) -> None:
        """Make every record written so far durable."""
        with self._lock:
            written = self._written
        self._sync(written)

    def _append(
        self,
        record: dict[str, Any],
        *,
        sync: bool = True,
        opened: tuple[CheckpointInfo, ChangeMap] | None = None,
    ) -> None:
        line = _encode(record)
        with self._lock:
            write_all(self._fd, [line])
            self._apply(record, line, opened)
            self._written += 1
            mine = self._written
            self._grown += len(line)
            compact = self._grown >= COMPACT_BYTES
        if sync:
            self._sync(mine)
        if compact:
            self.compact()

    def _sync(self, mine: int) -> None:
        """Make the first ``mine`` records durable; one sync covers every record written
        before it started (the threads waiting meanwhile need none of their own)."""
        with self._sync_lock:
            if self._synced >= mine:
                return
            with self._lock:
                target, fd = self._written, self._fd
            os.fdatasync(fd)
            self._synced = max(self._synced, target)

    def compact(self) -> None:
        """Rewrite the file with only the open records and the bases not yet saved in
        ``disk.json`` (a crash leaves the old file or the new one)."""
        with self._sync_lock, self._lock:
            records = [_encode(_done_record(d, *base)) for d, base in self.bases.items()]
            for sid in self.open:
                records.append(self._lines[sid])
                if sid in self.sealed_ids:
                    records.append(_encode({"op": SEALED, "id": sid}))
            body = b"".join(records)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            try:
                write_all(fd, [body])
                os.fsync(fd)
                os.replace(tmp, self.path)
                fsync_dir(self.path.parent)
            except BaseException:
                os.close(fd)
                raise
            os.close(self._fd)
            self._fd = fd
            self._synced = self._written
            self._grown = 0

    def close(self) -> None:
        with self._sync_lock, self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _frozen_record(info: CheckpointInfo, changed: ChangeMap) -> dict[str, Any]:
    changes = base64.b64encode(changed.encode()).decode()
    fields = {name: getattr(info, name) for name in _INFO_FIELDS}  # asdict copies deeply
    return {"op": FROZEN, "id": info.snapshot_id, "info": fields, "changed": changes}


_INFO_FIELDS = tuple(f.name for f in dataclasses.fields(CheckpointInfo))
# One encoder for every record (``json.dumps`` with options makes one per call).
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _done_record(disk_id: str, sequence: int, snapshot_id: str) -> dict[str, Any]:
    return {"op": DONE, "id": snapshot_id, "disk": disk_id, "seq": sequence}


def _encode(record: dict[str, Any]) -> bytes:
    body = _JSON.encode(record).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode(line: bytes) -> dict[str, Any] | None:
    """The record of a whole line, or None if it is torn or damaged."""
    if not line.endswith(b"\n") or len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "op" in record and "id" in record else None

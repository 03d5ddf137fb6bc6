"""Lazily restored disks: extents not yet copied into the disk's own file are read from
the snapshot the disk was restored from (its *backing*).

Files in the disk's directory (docs/formats.md#backing):

* ``backing.manifest`` - a copy of the backing snapshot's manifest, taken under the
  store lock when the disk was created. It is a GC root, so the chunks stay even if
  the snapshot is deleted.
* ``materialized`` - one byte per extent of the backing manifest: 1 when the disk's
  own file holds the extent's content (or the extent is zero in the snapshot, which a
  hole in the sparse file already is).

The rule that keeps this crash-safe: a byte is set only after the extent's content in
the disk's file is durable (fdatasync), so a 1 never points at data a crash could have
lost. A write into a pending extent first copies the extent in from the snapshot
(unless the write covers all of it), then writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from disksnap.engine.fileio import drop_cache, pread_full, pwrite_full
from disksnap.engine.manifest import Manifest, decode


class ChunkSource(Protocol):
    """Verified chunk plaintexts by id (``ChunkCache``)."""

    def get(self, chunk_id: str) -> bytes | memoryview:
        """Through the cache: for reads, which tend to come back to a chunk."""
        ...

    def load(self, chunk_id: str) -> bytes | memoryview:
        """Around the cache: for hydration, which needs each chunk once."""
        ...


def initial_map(manifest: Manifest) -> bytes:
    """Zero extents of the snapshot need no copying: a hole reads as zeroes."""
    return bytes(0 if k else 1 for k in manifest.refs)


class Backing:
    def __init__(self, directory: Path, chunks: ChunkSource) -> None:
        self.manifest = decode((directory / "backing.manifest").read_bytes())
        self._chunks = chunks
        self._map_fd = os.open(directory / "materialized", os.O_RDWR)
        count = self.manifest.extent_count
        self._map = bytearray(pread_full(self._map_fd, count, 0))
        self.chunk_size = self.manifest.chunk_size

    @staticmethod
    def write_files(directory: Path, raw_manifest: bytes) -> None:
        """Create the backing files of a new disk (inside its not yet renamed directory)."""
        (directory / "backing.manifest").write_bytes(raw_manifest)
        (directory / "materialized").write_bytes(initial_map(decode(raw_manifest)))
        for name in ("backing.manifest", "materialized"):
            fd = os.open(directory / name, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

    def close(self) -> None:
        """Close the map. A reader that took the disk's backing before it was dropped
        may still use it (``Disk`` reads it without locks): by then nothing is pending,
        so ``read`` reads the disk's own file, and ``sync`` has nothing left to do."""
        fd, self._map_fd = self._map_fd, -1
        os.close(fd)

    # --- state ----------------------------------------------------------------------

    def pending(self, extent: int) -> str | None:
        """The chunk id still to be copied into extent ``extent``, or None."""
        if extent >= len(self._map) or self._map[extent]:
            return None
        return self.manifest.ref(extent)

    def pending_extents(self) -> list[int]:
        return [i for i, done in enumerate(self._map) if not done]

    def pending_by_chunk(self) -> list[list[int]]:
        """The pending extents, grouped by the chunk they take (in the order of each
        chunk's first extent): a chunk the snapshot holds at several offsets is read
        and verified once for all of them."""
        groups: dict[str | None, list[int]] = {}
        for extent in self.pending_extents():
            groups.setdefault(self.manifest.ref(extent), []).append(extent)
        return list(groups.values())

    def mark(self, extents: list[int]) -> None:
        """Record extents whose content in the disk's file is durable."""
        for e in extents:
            self._map[e] = 1
            os.pwrite(self._map_fd, b"\x01", e)

    def sync(self) -> None:
        fd = self._map_fd
        if fd >= 0:
            os.fdatasync(fd)

    # --- I/O (the caller holds the disk's locks for writes) ---------------------------

    def read(self, fd: int, offset: int, length: int) -> bytes:
        cs = self.chunk_size
        parts: list[bytes | memoryview] = []
        pos, end = offset, offset + length
        while pos < end:
            extent = pos // cs
            n = min(end, (extent + 1) * cs) - pos
            cid = self.pending(extent)
            if cid is None:
                parts.append(pread_full(fd, n, pos))
            else:
                rel = pos - extent * cs
                parts.append(self._chunks.get(cid)[rel : rel + n])
            pos += n
        return b"".join(parts)

    def prepare_write(self, fd: int, offset: int, length: int) -> list[int]:
        """Copy in the pending extents a write only partly covers (durably, then mark
        them); return the pending extents it covers wholly, to be marked once the
        write itself is durable."""
        cs = self.chunk_size
        copied: list[int] = []
        covered: list[int] = []
        for extent in range(offset // cs, (offset + length - 1) // cs + 1):
            cid = self.pending(extent)
            if cid is None:
                continue
            if offset <= extent * cs and (extent + 1) * cs <= offset + length:
                covered.append(extent)
            else:
                pwrite_full(fd, self._chunks.get(cid), extent * cs)
                copied.append(extent)
        if copied:
            os.fdatasync(fd)
            self.mark(copied)
        return covered

    def copy_in(
        self, fd: int, extent: int, loaded: dict[str, bytes | memoryview] | None = None
    ) -> bool:
        """Hydrate one extent (caller holds its lock). False if nothing was pending.
        ``loaded`` keeps chunks read for this extent for the next ones that take them."""
        cid = self.pending(extent)
        if cid is None:
            return False
        data = loaded.get(cid) if loaded is not None else None
        if data is None:
            data = self._chunks.load(cid)
            if loaded is not None:
                loaded[cid] = data
        offset = extent * self.chunk_size
        pwrite_full(fd, data, offset)
        os.fdatasync(fd)
        drop_cache(fd, offset, self.chunk_size)  # hydration writes gigabytes: fileio
        self.mark([extent])
        return True

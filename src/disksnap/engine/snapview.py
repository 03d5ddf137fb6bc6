"""Read-only views of published snapshots, served straight from the chunk store.

A view needs no disk and no restore: every read is answered from the snapshot's
manifest and its chunks, fetched (and verified, ``ChunkStore.get``) through the
engine's bounded ``ChunkCache``. Zero extents are never stored, so they read as
zeroes and report as holes.

The view holds the manifest it was opened with. If the snapshot is deleted and a GC
frees its chunks meanwhile, reads of extents not in the cache fail with
``ChunkMissing`` (DATA_LOSS); they never return other data.
"""

from __future__ import annotations

from disksnap.engine.backing import ChunkSource
from disksnap.engine.errors import InvalidGeometry, OutOfBounds
from disksnap.engine.manifest import Manifest


class SnapshotView:
    """Thread-safe: the manifest never changes and the chunk cache has its own lock."""

    def __init__(self, manifest: Manifest, chunks: ChunkSource) -> None:
        self.manifest = manifest
        self._chunks = chunks

    @property
    def snapshot_id(self) -> str:
        return self.manifest.snapshot_id

    @property
    def size(self) -> int:
        return self.manifest.disk_size

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0:
            raise InvalidGeometry("offset and length must not be negative")
        if offset + length > self.size:
            raise OutOfBounds(
                f"range {offset}+{length} is beyond the end of snapshot {self.snapshot_id} "
                f"({self.size} bytes)"
            )

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        cs = self.manifest.chunk_size
        parts: list[bytes | memoryview] = []
        pos, end = offset, offset + length
        while pos < end:
            extent = pos // cs
            n = min(end, (extent + 1) * cs) - pos
            cid = self.manifest.ref(extent)
            if cid is None:
                parts.append(bytes(n))
            else:
                rel = pos - extent * cs
                piece = self._chunks.get(cid)[rel : rel + n]
                parts.append(piece)
                if len(piece) < n:  # a short last chunk
                    parts.append(bytes(n - len(piece)))
            pos += n
        return b"".join(parts)

    def extents(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """(start, length, is_data) runs, as ``Disk.extents``: zero extents are holes."""
        self._check(offset, length)
        cs = self.manifest.chunk_size
        runs: list[tuple[int, int, bool]] = []
        pos, end = offset, offset + length
        while pos < end:
            extent = pos // cs
            n = min(end, (extent + 1) * cs) - pos
            data = self.manifest.refs[extent] != 0
            if runs and runs[-1][2] == data:
                runs[-1] = (runs[-1][0], runs[-1][1] + n, data)
            else:
                runs.append((pos, n, data))
            pos += n
        return runs

"""The catalog of published snapshots: their manifests in the backend, a small cache
of decoded ones, and the accounting derived from them.

Manifests never change once published, so caching them is safe. Every delete bumps an
epoch, and a read caches what it read only if no delete happened meanwhile, so a read
racing a delete cannot put a deleted manifest back in the cache.

The catalog is the only writer of its manifests (its engine holds the store's root
lock), so it also keeps which snapshots each disk has: listed once, on first use, then
kept by ``publish`` and ``delete``. A disk's accounting then reads that disk's
manifests only, not every manifest in the store (which made each build's accounting
O(all snapshots)).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from disksnap.domain.ids import is_safe_id
from disksnap.engine import manifest as mf
from disksnap.engine.backends.base import Backend, KeyNotFound
from disksnap.engine.errors import SnapshotNotFound

CACHE_SIZE = 64  # decoded manifests kept in memory


class Catalog:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._mutex = threading.Lock()
        self._cache: OrderedDict[str, mf.Manifest] = OrderedDict()  # LRU
        self._epoch = 0  # deletes so far
        self._by_disk: dict[str, set[str]] | None = None  # disk id -> snapshot ids
        self._changes = 0  # publishes and deletes so far

    def exists(self, snapshot_id: str) -> bool:
        return self.backend.exists(mf.manifest_key(snapshot_id))

    def publish(self, manifest: mf.Manifest) -> None:
        """Make a snapshot visible. The caller holds the store lock (shared)."""
        self.backend.put(mf.manifest_key(manifest.snapshot_id), mf.encode(manifest))
        with self._mutex:
            self._changes += 1
            if self._by_disk is not None:
                self._by_disk.setdefault(manifest.disk_id, set()).add(manifest.snapshot_id)
            self._remember(manifest)  # the build and the service read it next

    def raw(self, snapshot_id: str) -> bytes:
        """The published manifest's bytes (to copy it)."""
        if not is_safe_id(snapshot_id):
            raise SnapshotNotFound(f"snapshot {snapshot_id!r} not found")
        try:
            return self.backend.get(mf.manifest_key(snapshot_id))
        except KeyNotFound:
            raise SnapshotNotFound(f"snapshot {snapshot_id} not found") from None

    def get(self, snapshot_id: str) -> mf.Manifest:
        with self._mutex:
            cached = self._cache.get(snapshot_id)
            if cached is not None:
                self._cache.move_to_end(snapshot_id)
                return cached
            epoch = self._epoch
        if not is_safe_id(snapshot_id):
            raise SnapshotNotFound(f"snapshot {snapshot_id!r} not found")
        try:
            m = mf.decode(self.backend.get(mf.manifest_key(snapshot_id)))
        except KeyNotFound:
            raise SnapshotNotFound(f"snapshot {snapshot_id} not found") from None
        with self._mutex:
            if self._epoch == epoch:
                self._remember(m)
        return m

    def _remember(self, m: mf.Manifest) -> None:
        """Cache ``m``; call with ``_mutex`` held."""
        self._cache[m.snapshot_id] = m
        self._cache.move_to_end(m.snapshot_id)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def list(self, disk_id: str | None = None) -> list[mf.Manifest]:
        """Published snapshots (of one disk), in lineage order."""
        ids: tuple[str, ...]
        if disk_id is None:
            ids = tuple(key[len(mf.PREFIX) :] for key in self.backend.list(mf.PREFIX))
        else:
            ids = self._snapshots_of(disk_id)
        out = []
        for snapshot_id in ids:
            try:
                m = self.get(snapshot_id)
            except SnapshotNotFound:
                continue  # deleted meanwhile
            if disk_id is None or m.disk_id == disk_id:
                out.append(m)
        return sorted(out, key=lambda m: (m.disk_id, m.sequence))

    def _snapshots_of(self, disk_id: str) -> tuple[str, ...]:
        with self._mutex:
            if self._by_disk is not None:
                return tuple(self._by_disk.get(disk_id, ()))
            changes = self._changes
        index: dict[str, set[str]] = {}
        for m in self.list():
            index.setdefault(m.disk_id, set()).add(m.snapshot_id)
        with self._mutex:
            # A publish or delete meanwhile is not in what was listed: list again later.
            if self._changes == changes and self._by_disk is None:
                self._by_disk = index
        return tuple(index.get(disk_id, ()))

    def delete(self, snapshot_id: str) -> None:
        if not is_safe_id(snapshot_id):
            raise SnapshotNotFound(f"snapshot {snapshot_id!r} not found")
        try:
            self.backend.delete(mf.manifest_key(snapshot_id))
        except KeyNotFound:
            raise SnapshotNotFound(f"snapshot {snapshot_id} not found") from None
        finally:
            with self._mutex:
                self._epoch += 1
                self._changes += 1
                self._cache.pop(snapshot_id, None)
                for ids in (self._by_disk or {}).values():
                    ids.discard(snapshot_id)

    # --- accounting -----------------------------------------------------------------

    def storage_sizes(self, disk_id: str) -> dict[str, int]:
        """Per snapshot of the disk: stored bytes of the chunks it references that the
        previous existing snapshot of the same disk does not."""
        sizes: dict[str, int] = {}
        prev: dict[str, int] = {}
        for m in self.list(disk_id):
            cur = m.chunk_sizes()
            sizes[m.snapshot_id] = sum(v for k, v in cur.items() if k not in prev)
            prev = cur
        return sizes

    def referenced_bytes(self) -> int:
        """Store-wide: stored bytes of all distinct chunks any snapshot references."""
        seen: dict[str, int] = {}
        for m in self.list():
            seen.update(m.chunk_sizes())
        return sum(seen.values())

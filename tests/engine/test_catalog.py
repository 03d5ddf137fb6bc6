"""The catalog of published manifests: caching that a racing delete cannot poison."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from disksnap.engine import manifest as mf
from disksnap.engine.backends.memory import MemoryBackend
from disksnap.engine.catalog import Catalog


class PausingBackend(MemoryBackend):
    """A memory backend that runs a callback in the middle of the next ``get``: after
    the value is read, before it is returned (fault injection, not a mock)."""

    def __init__(self) -> None:
        super().__init__()
        self.during_get: Callable[[], None] | None = None

    def get(self, key: str) -> bytes:
        value = super().get(key)
        hook, self.during_get = self.during_get, None
        if hook is not None:
            hook()
        return value


def _manifest(snapshot_id: str, disk_size: int) -> mf.Manifest:
    builder = mf.ManifestBuilder(disk_size // (1 << 20))
    return builder.finish(
        snapshot_id=snapshot_id,
        disk_id="d",
        disk_size=disk_size,
        chunk_size=1 << 20,
        sequence=1,
        parent=None,
        created_at="2026-01-01T00:00:00+00:00",
    )


def test_a_read_racing_a_delete_and_reuse_does_not_cache_the_old_manifest() -> None:
    backend = PausingBackend()
    catalog = Catalog(backend)
    Catalog(backend).publish(_manifest("x", 1 << 20))  # elsewhere: not in this cache

    def delete_and_reuse() -> None:
        catalog.delete("x")
        catalog.publish(_manifest("x", 2 << 20))

    backend.during_get = delete_and_reuse
    assert catalog.get("x").disk_size == 1 << 20  # what was there when the read began
    assert catalog.get("x").disk_size == 2 << 20  # but it was not cached


def test_cache_serves_repeated_reads_and_forgets_deleted() -> None:
    backend = PausingBackend()
    catalog = Catalog(backend)
    catalog.publish(_manifest("x", 1 << 20))
    first = catalog.get("x")
    assert catalog.get("x") is first
    catalog.delete("x")
    assert catalog.list() == []


class CountingBackend(MemoryBackend):
    """Counts manifest reads (``get``) and listings."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.lists = 0

    def get(self, key: str) -> bytes:
        self.gets += 1
        return super().get(key)

    def list(self, prefix: str = "") -> Iterator[str]:
        self.lists += 1
        return super().list(prefix)


def _of_disk(snapshot_id: str, disk_id: str, sequence: int) -> mf.Manifest:
    builder = mf.ManifestBuilder(1)
    return builder.finish(
        snapshot_id=snapshot_id,
        disk_id=disk_id,
        disk_size=1 << 20,
        chunk_size=1 << 20,
        sequence=sequence,
        parent=None,
        created_at="2026-01-01T00:00:00+00:00",
    )


def test_a_disks_snapshots_are_listed_without_reading_every_manifest() -> None:
    backend = CountingBackend()
    catalog = Catalog(backend)
    for i in range(200):  # more than the cache holds
        catalog.publish(_of_disk(f"s{i:03}", f"d{i % 100}", i))
    assert [m.snapshot_id for m in catalog.list("d7")] == ["s007", "s107"]  # lists once
    backend.gets = backend.lists = 0
    catalog.publish(_of_disk("s200", "d7", 200))
    catalog.delete("s007")
    assert [m.snapshot_id for m in catalog.list("d7")] == ["s107", "s200"]
    assert backend.lists == 0
    assert backend.gets <= 2
    assert [m.snapshot_id for m in catalog.list("d8")] == ["s008", "s108"]
    fresh = Catalog(backend)  # what another start sees
    assert [m.snapshot_id for m in fresh.list("d7")] == ["s107", "s200"]


def test_a_published_manifest_is_served_without_reading_it_back() -> None:
    backend = CountingBackend()
    catalog = Catalog(backend)
    published = _manifest("x", 1 << 20)
    catalog.publish(published)
    assert catalog.get("x") is published
    assert backend.gets == 0

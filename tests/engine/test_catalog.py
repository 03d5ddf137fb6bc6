"""The catalog of published manifests: caching that a racing delete cannot poison."""

from __future__ import annotations

from collections.abc import Callable

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
    catalog.publish(_manifest("x", 1 << 20))

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

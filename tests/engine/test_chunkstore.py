"""The content-addressed chunk store over a real local backend."""

from __future__ import annotations

import random
import re
from pathlib import Path

import blake3
import pytest

from disksnap.engine.backends.local import LocalBackend
from disksnap.engine.blob import HEADER_SIZE, Codec
from disksnap.engine.chunkstore import ChunkStore, chunk_key
from disksnap.engine.errors import ChunkCorrupt, ChunkMissing

KEY_RE = re.compile(r"chunks/([0-9a-f]{2})/([0-9a-f]{64})")


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "store")


@pytest.fixture
def store(backend: LocalBackend) -> ChunkStore:
    return ChunkStore(backend, Codec())


def _random(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _text(n: int) -> bytes:
    return (b"the quick brown fox jumps over the lazy disk " * (n // 45 + 1))[:n]


def _put(store: ChunkStore, data: bytes) -> str:
    cid = ChunkStore.hash(data)
    store.put(cid, data)
    return cid


def _flip(store: ChunkStore, cid: str, pos: int) -> None:
    blob = bytearray(store.backend.get(chunk_key(cid)))
    blob[pos] ^= 0x40
    store.backend.put(chunk_key(cid), bytes(blob))


@pytest.mark.parametrize(
    "data",
    [b"x", _random(70_000, 1), _text(300_000)],
    ids=["one-byte", "random", "text"],
)
def test_put_get_roundtrip(store: ChunkStore, data: bytes) -> None:
    cid = _put(store, data)
    assert cid == blake3.blake3(data).hexdigest()
    assert store.exists(cid)
    assert store.get(cid) == data
    store.check(cid, deep=False)
    store.check(cid, deep=True)


def test_key_layout(store: ChunkStore, backend: LocalBackend) -> None:
    cid = _put(store, b"layout")
    keys = list(backend.list())
    assert keys == [f"chunks/{cid[:2]}/{cid}"]
    match = KEY_RE.fullmatch(keys[0])
    assert match is not None
    assert match.group(1) == cid[:2]
    assert match.group(2) == cid
    assert (backend.root / "chunks" / cid[:2] / cid).is_file()
    assert chunk_key(cid) == keys[0]


@pytest.mark.parametrize("data", [_random(50_000, 2), _text(200_000)], ids=["random", "text"])
def test_stored_size_equals_blob_size(
    store: ChunkStore, backend: LocalBackend, data: bytes
) -> None:
    cid = ChunkStore.hash(data)
    returned = store.put(cid, data)
    blob = backend.get(chunk_key(cid))
    assert returned == len(blob)
    assert store.stored_size(cid) == len(blob)
    assert backend.stat(chunk_key(cid)) == len(blob)
    assert len(blob) > HEADER_SIZE


def test_put_same_chunk_twice_is_harmless(store: ChunkStore, backend: LocalBackend) -> None:
    data = _text(10_000)
    cid = _put(store, data)
    _put(store, data)
    assert list(backend.list()) == [chunk_key(cid)]
    assert store.get(cid) == data


def test_missing_chunk_raises_chunk_missing(store: ChunkStore) -> None:
    _put(store, b"present")
    absent = ChunkStore.hash(b"absent")
    with pytest.raises(ChunkMissing) as info:
        store.get(absent)
    assert info.value.chunk_id == absent
    assert absent in str(info.value)
    for deep in (False, True):
        with pytest.raises(ChunkMissing) as info:
            store.check(absent, deep=deep)
        assert info.value.chunk_id == absent
    with pytest.raises(ChunkMissing) as info:
        store.stored_size(absent)
    assert info.value.chunk_id == absent
    assert not store.exists(absent)


@pytest.mark.parametrize("where", ["magic", "checksum", "first-stored", "last-stored"])
@pytest.mark.parametrize("kind", ["random", "text"])
def test_flipped_byte_raises_chunk_corrupt(store: ChunkStore, where: str, kind: str) -> None:
    data = _random(20_000, 3) if kind == "random" else _text(20_000)
    cid = _put(store, data)
    size = store.stored_size(cid)
    pos = {"magic": 0, "checksum": 20, "first-stored": HEADER_SIZE, "last-stored": size - 1}
    _flip(store, cid, pos[where])
    with pytest.raises(ChunkCorrupt) as info:
        store.get(cid)
    assert info.value.chunk_id == cid
    assert cid in str(info.value)
    for deep in (False, True):
        with pytest.raises(ChunkCorrupt) as info:
            store.check(cid, deep=deep)
        assert info.value.chunk_id == cid


def test_truncated_blob_raises_chunk_corrupt(store: ChunkStore) -> None:
    cid = _put(store, _random(5000, 4))
    blob = store.backend.get(chunk_key(cid))
    store.backend.put(chunk_key(cid), blob[: len(blob) // 2])
    with pytest.raises(ChunkCorrupt) as info:
        store.get(cid)
    assert info.value.chunk_id == cid


def test_valid_blob_with_wrong_content_raises_chunk_corrupt(store: ChunkStore) -> None:
    good = _random(8000, 5)
    other = _random(8000, 6)
    cid = _put(store, good)
    other_id = _put(store, other)
    # Replace the chunk's blob with another chunk's blob: checksum intact, content wrong.
    store.backend.put(chunk_key(cid), store.backend.get(chunk_key(other_id)))
    store.check(cid, deep=False)  # framing and checksum are fine
    with pytest.raises(ChunkCorrupt) as info:
        store.check(cid, deep=True)
    assert info.value.chunk_id == cid
    with pytest.raises(ChunkCorrupt) as info:
        store.get(cid)
    assert info.value.chunk_id == cid
    assert "content hash" in str(info.value)
    assert store.get(other_id) == other


def test_list_yields_ids(store: ChunkStore, backend: LocalBackend) -> None:
    assert list(store.list()) == []
    ids = {_put(store, _random(100 + i, 10 + i)) for i in range(12)}
    # Non-chunk keys and leftovers under chunks/ are not chunk ids.
    backend.put("manifests/fd8something", b"m")
    backend.put("chunks/ab/short", b"x")
    listed = list(store.list())
    assert len(listed) == len(set(listed))
    assert set(listed) == ids


def test_delete_is_idempotent(store: ChunkStore) -> None:
    keep = _put(store, b"keep me")
    cid = _put(store, b"delete me")
    store.delete(cid)
    assert not store.exists(cid)
    with pytest.raises(ChunkMissing):
        store.get(cid)
    store.delete(cid)  # again: no error
    store.delete(ChunkStore.hash(b"never stored"))
    assert list(store.list()) == [keep]
    assert store.get(keep) == b"keep me"

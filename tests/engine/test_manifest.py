"""Snapshot manifests: builder, wire format roundtrip and corruption detection."""

from __future__ import annotations

import json
import struct
import time

import blake3
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from disksnap.engine import manifest as mf
from disksnap.engine.errors import ManifestCorrupt

MiB = 1 << 20
TiB = 1 << 40
FUZZ = settings(max_examples=40, deadline=None, database=None, derandomize=True)


def _cid(n: int) -> str:
    return blake3.blake3(n.to_bytes(8, "little")).hexdigest()


def _fields(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "snapshot_id": "fd8snapshot000000001",
        "disk_id": "disk-1",
        "disk_size": 8 * MiB,
        "chunk_size": MiB,
        "sequence": 3,
        "parent": "fd8snapshot000000000",
        "created_at": "2026-01-01T00:00:00+00:00",
        "stats": {"chunks_stored": 2, "bytes_read": 12345},
    }
    fields.update(overrides)
    return fields


def _build(refs: list[int | None], sizes: dict[int, int] | None = None) -> mf.Manifest:
    """refs[i] is None for a zero extent, or a small int naming a chunk."""
    b = mf.ManifestBuilder(len(refs))
    for i, r in enumerate(refs):
        if r is not None:
            b.set(i, _cid(r), (sizes or {}).get(r, 1000 + r))
    return b.finish(**_fields(disk_size=len(refs) * MiB))


SAMPLE = _build([1, None, 2, 1, None, None, 3, 2])
SAMPLE_BYTES = mf.encode(SAMPLE)


def test_builder_refs_and_sizes() -> None:
    m = SAMPLE
    assert m.extent_count == 8
    assert m.ref(0) == _cid(1)
    assert m.ref(1) is None
    assert m.ref(3) == m.ref(0)
    assert m.ref_with_size(2) == (_cid(2), 1002)
    assert m.ref_with_size(5) == (None, 0)
    assert m.chunk_sizes() == {_cid(1): 1001, _cid(2): 1002, _cid(3): 1003}
    assert list(m.iter_refs()) == [
        (0, _cid(1)),
        (1, None),
        (2, _cid(2)),
        (3, _cid(1)),
        (4, None),
        (5, None),
        (6, _cid(3)),
        (7, _cid(2)),
    ]


def test_builder_accepts_refs_in_any_order() -> None:
    b = mf.ManifestBuilder(4)
    b.set(3, _cid(9), 9)
    b.set(0, _cid(8), 8)
    b.set(2, _cid(9), 9)
    m = b.finish(**_fields(disk_size=4 * MiB))
    assert [m.ref(i) for i in range(4)] == [_cid(8), None, _cid(9), _cid(9)]
    assert m.chunk_sizes() == {_cid(8): 8, _cid(9): 9}


def test_encode_decode_roundtrip_keeps_every_field() -> None:
    m = mf.decode(SAMPLE_BYTES)
    assert m == SAMPLE
    assert m.header() == SAMPLE.header()
    assert m.snapshot_id == "fd8snapshot000000001"
    assert m.parent == "fd8snapshot000000000"
    assert m.sequence == 3
    assert m.stats == {"chunks_stored": 2, "bytes_read": 12345}
    assert mf.encode(m) == SAMPLE_BYTES


def test_roundtrip_without_parent_and_all_zero() -> None:
    b = mf.ManifestBuilder(5)
    m = b.finish(**_fields(parent=None, disk_size=5 * MiB, stats={}))
    back = mf.decode(mf.encode(m))
    assert back.parent is None
    assert back.extent_count == 5
    assert all(back.ref(i) is None for i in range(5))
    assert back.chunk_sizes() == {}


def test_wire_header() -> None:
    magic, version, body_len = struct.unpack_from("<4sB3xQ", SAMPLE_BYTES)
    assert magic == b"DSMF"
    assert version == 1
    assert len(SAMPLE_BYTES) == 16 + body_len + 32
    assert SAMPLE_BYTES[-32:] == blake3.blake3(SAMPLE_BYTES[:-32]).digest()
    assert mf.manifest_key("fd8abc") == "manifests/fd8abc"


@given(
    st.lists(
        st.one_of(st.none(), st.integers(0, 6)),  # few chunk ids: many repeats
        min_size=1,
        max_size=200,
    ),
    st.dictionaries(st.integers(0, 6), st.integers(0, 2**32 - 1)),
)
@FUZZ
def test_roundtrip_random_ref_patterns(refs: list[int | None], sizes: dict[int, int]) -> None:
    m = _build(refs, {k: v for k, v in sizes.items()})
    back = mf.decode(mf.encode(m))
    assert back.extent_count == len(refs)
    expected_sizes: dict[str, int] = {}
    for i, r in enumerate(refs):
        if r is None:
            assert back.ref(i) is None
            assert back.ref_with_size(i) == (None, 0)
        else:
            size = sizes.get(r, 1000 + r)
            assert back.ref(i) == _cid(r)
            assert back.ref_with_size(i) == (_cid(r), size)
            expected_sizes[_cid(r)] = size
    assert back.chunk_sizes() == expected_sizes
    assert back == m


# --- corruption ------------------------------------------------------------------------


@given(
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    mask=st.integers(1, 255),
)
@FUZZ
def test_any_flipped_byte_raises(where: float, mask: int) -> None:
    pos = int(where * len(SAMPLE_BYTES))
    damaged = bytearray(SAMPLE_BYTES)
    damaged[pos] ^= mask
    with pytest.raises(ManifestCorrupt):
        mf.decode(bytes(damaged))


def test_every_header_and_trailer_byte_flip_raises() -> None:
    positions = [*range(16), *range(len(SAMPLE_BYTES) - 32, len(SAMPLE_BYTES))]
    for pos in positions:
        damaged = bytearray(SAMPLE_BYTES)
        damaged[pos] ^= 0x01
        with pytest.raises(ManifestCorrupt):
            mf.decode(bytes(damaged))


def _reframe(magic: bytes, version: int, body: bytes) -> bytes:
    """A manifest with a valid checksum around the given header fields."""
    head = struct.pack("<4sB3xQ", magic, version, len(body)) + body
    return head + blake3.blake3(head).digest()


def test_wrong_magic_raises_even_with_valid_checksum() -> None:
    body = SAMPLE_BYTES[16:-32]
    assert mf.decode(_reframe(b"DSMF", 1, body)) == SAMPLE
    with pytest.raises(ManifestCorrupt, match="magic"):
        mf.decode(_reframe(b"DSCK", 1, body))


@pytest.mark.parametrize("version", [0, 2, 255])
def test_wrong_version_raises_even_with_valid_checksum(version: int) -> None:
    body = SAMPLE_BYTES[16:-32]
    with pytest.raises(ManifestCorrupt, match="version"):
        mf.decode(_reframe(b"DSMF", version, body))


def test_undecodable_body_with_valid_checksum_raises() -> None:
    with pytest.raises(ManifestCorrupt):
        mf.decode(_reframe(b"DSMF", 1, b"definitely not zstd"))


def _body(header: object, ids: bytes, sizes: list[int], refs: list[int]) -> bytes:
    raw = json.dumps(header).encode()
    return zstandard.ZstdCompressor().compress(
        struct.pack("<I", len(raw))
        + raw
        + ids
        + struct.pack(f"<{len(sizes)}I", *sizes)
        + struct.pack(f"<{len(refs)}I", *refs)
    )


_DROP = object()


def _header(**overrides: object) -> dict[str, object]:
    h = {**SAMPLE.header(), "chunk_count": 1, "extent_count": 2}
    h.update(overrides)
    return {k: v for k, v in h.items() if v is not _DROP}


@pytest.mark.parametrize(
    ("header", "refs"),
    [
        (_header(), [1, 2]),  # ref beyond the chunk table
        (_header(extent_count=3), [1, 0]),  # fewer refs than extents
        (_header(chunk_count=2), [1, 0]),  # chunk table shorter than announced
        (_header(snapshot_id=_DROP), [1, 0]),  # a required field is missing
        (_header(chunk_count="1"), [1, 0]),  # a count of the wrong type
        ([1, 2, 3], [1, 0]),  # the header is not an object
    ],
    ids=["ref-beyond-table", "short-refs", "short-table", "no-snapshot-id", "str-count", "list"],
)
def test_inconsistent_body_with_valid_checksum_raises(header: object, refs: list[int]) -> None:
    good = _reframe(b"DSMF", 1, _body(_header(), bytes(32), [7], [1, 0]))
    assert mf.decode(good).ref_with_size(0) == (bytes(32).hex(), 7)
    with pytest.raises(ManifestCorrupt):
        mf.decode(_reframe(b"DSMF", 1, _body(header, bytes(32), [7], refs)))


@pytest.mark.parametrize("cut", [1, 32, len(SAMPLE_BYTES) - 10, len(SAMPLE_BYTES)])
def test_truncated_raises(cut: int) -> None:
    with pytest.raises(ManifestCorrupt):
        mf.decode(SAMPLE_BYTES[:-cut])


def test_trailing_garbage_raises() -> None:
    with pytest.raises(ManifestCorrupt):
        mf.decode(SAMPLE_BYTES + b"\x00")


# --- scale -----------------------------------------------------------------------------


def test_million_extent_manifest_is_small_and_fast() -> None:
    extents = (4 * TiB) // (4 * MiB)
    assert extents == 1 << 20
    b = mf.ManifestBuilder(extents)
    used = [0, 1, 2, 1000, 65_536, 500_000, extents - 1]
    for n, i in enumerate(used):
        b.set(i, _cid(n % 4), 4 * MiB + 48)
    m = b.finish(**_fields(disk_size=4 * TiB, chunk_size=4 * MiB))
    t0 = time.perf_counter()
    data = mf.encode(m)
    back = mf.decode(data)
    elapsed = time.perf_counter() - t0
    assert len(data) < MiB
    assert elapsed < 2.0
    assert back.extent_count == extents
    assert back.disk_size == 4 * TiB
    for n, i in enumerate(used):
        assert back.ref(i) == _cid(n % 4)
    assert back.ref(3) is None
    assert back.ref(extents - 2) is None
    assert len(back.chunk_sizes()) == 4

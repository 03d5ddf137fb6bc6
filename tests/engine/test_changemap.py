"""Changed-block tracking maps: marking, resizing, merging and the on-disk format."""

from __future__ import annotations

import struct
from pathlib import Path

import blake3
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from disksnap.engine.changemap import ChangeMap, ChangeMapError

FUZZ = settings(max_examples=40, deadline=None, database=None, derandomize=True)


def test_new_map_is_clean() -> None:
    cm = ChangeMap(10)
    assert cm.chunk_count == 10
    assert cm.changed() == []
    assert cm.count() == 0
    assert not any(cm.is_set(i) for i in range(12))


def test_mark_ranges_inclusive() -> None:
    cm = ChangeMap(16)
    cm.mark(3, 3)
    cm.mark(5, 7)
    cm.mark(6, 9)  # overlaps the previous range
    cm.mark(15, 15)
    assert cm.changed() == [3, 5, 6, 7, 8, 9, 15]
    assert cm.count() == 7
    assert cm.is_set(5)
    assert not cm.is_set(4)
    assert not cm.is_set(10)
    assert not cm.is_set(16)  # beyond the end: not set, no error
    assert cm.chunk_count == 16


def test_mark_everything() -> None:
    cm = ChangeMap(1000)
    cm.mark(0, 999)
    assert cm.count() == 1000
    assert cm.changed() == list(range(1000))
    assert cm.chunk_count == 1000


@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 10)), max_size=20))
@FUZZ
def test_mark_matches_a_set_model(ranges: list[tuple[int, int]]) -> None:
    cm = ChangeMap(64)
    model: set[int] = set()
    for first, span in ranges:
        last = min(63, first + span)
        cm.mark(first, last)
        model.update(range(first, last + 1))
    assert cm.changed() == sorted(model)
    assert cm.count() == len(model)
    assert cm.chunk_count == 64
    assert [cm.is_set(i) for i in range(64)] == [i in model for i in range(64)]


def test_resize_grows_with_clean_chunks_and_keeps_marks() -> None:
    cm = ChangeMap(4)
    cm.mark(1, 3)
    cm.resize(10)
    assert cm.chunk_count == 10
    assert cm.changed() == [1, 2, 3]
    cm.mark(9, 9)
    assert cm.changed() == [1, 2, 3, 9]
    cm.resize(10)  # same size: nothing changes
    assert cm.chunk_count == 10
    assert cm.changed() == [1, 2, 3, 9]


def test_merge_is_a_union_and_grows() -> None:
    a = ChangeMap(6)
    a.mark(0, 1)
    b = ChangeMap(9)
    b.mark(1, 2)
    b.mark(8, 8)
    a.merge(b)
    assert a.chunk_count == 9
    assert a.changed() == [0, 1, 2, 8]
    assert b.changed() == [1, 2, 8]  # the argument is not modified

    c = ChangeMap(3)
    c.mark(2, 2)
    a.merge(c)  # a smaller map merges without shrinking
    assert a.chunk_count == 9
    assert a.changed() == [0, 1, 2, 8]


def test_copy_is_independent() -> None:
    a = ChangeMap(5)
    a.mark(1, 1)
    b = a.copy()
    b.mark(3, 3)
    assert a.changed() == [1]
    assert b.changed() == [1, 3]


def test_flags_must_match_count() -> None:
    with pytest.raises(ChangeMapError):
        ChangeMap(4, bytearray(3))


@pytest.mark.parametrize("count", [0, 1, 1000, 1 << 20])
def test_save_load_roundtrip(tmp_path: Path, count: int) -> None:
    cm = ChangeMap(count)
    marks = [i for i in (0, 1, 7, 999, 4096, count - 1) if 0 <= i < count]
    for i in marks:
        cm.mark(i, i)
    path = tmp_path / "changemap"
    cm.save(path)
    back = ChangeMap.load(path)
    assert back.chunk_count == count
    assert back.changed() == sorted(set(marks))
    assert ChangeMap.decode(cm.encode()).changed() == back.changed()
    # Only the file itself is left: no temporaries.
    assert [p.name for p in tmp_path.iterdir()] == ["changemap"]


def test_save_replaces_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "changemap"
    first = ChangeMap(8)
    first.mark(0, 7)
    first.save(path)
    second = ChangeMap(4)
    second.mark(2, 2)
    second.save(path)
    back = ChangeMap.load(path)
    assert back.chunk_count == 4
    assert back.changed() == [2]


def test_encoded_header() -> None:
    cm = ChangeMap(300)
    cm.mark(5, 5)
    data = cm.encode()
    magic, version, count = struct.unpack_from("<4sB3xQ", data)
    assert (magic, version, count) == (b"DSCM", 1, 300)
    assert data[-32:] == blake3.blake3(data[:-32]).digest()


# --- corruption ------------------------------------------------------------------------

ENCODED = ChangeMap(500, bytearray(b"\x01\x00\x00" * 166 + b"\x01\x01")).encode()


@given(
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    mask=st.integers(1, 255),
)
@FUZZ
def test_flipped_byte_raises(where: float, mask: int) -> None:
    damaged = bytearray(ENCODED)
    damaged[int(where * len(ENCODED))] ^= mask
    with pytest.raises(ChangeMapError):
        ChangeMap.decode(bytes(damaged))


@pytest.mark.parametrize("keep", [0, 10, 16, 47, len(ENCODED) - 1])
def test_truncated_raises(keep: int) -> None:
    with pytest.raises(ChangeMapError):
        ChangeMap.decode(ENCODED[:keep])


def test_corrupted_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "changemap"
    ChangeMap(100).save(path)
    raw = bytearray(path.read_bytes())
    raw[20] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ChangeMapError):
        ChangeMap.load(path)
    path.write_bytes(b"")
    with pytest.raises(ChangeMapError):
        ChangeMap.load(path)


def _reframe(magic: bytes, version: int, count: int, payload: bytes) -> bytes:
    """A change map file with a valid checksum around the given fields."""
    body = struct.pack("<4sB3xQ", magic, version, count) + payload
    return body + blake3.blake3(body).digest()


@pytest.mark.parametrize(
    ("magic", "version", "count", "flags"),
    [
        (b"DSMF", 1, 4, bytes(4)),  # wrong magic
        (b"DSCM", 2, 4, bytes(4)),  # unknown version
        (b"DSCM", 1, 5, bytes(4)),  # count disagrees with the flags
    ],
    ids=["magic", "version", "count"],
)
def test_wrong_fields_with_valid_checksum_raise(
    magic: bytes, version: int, count: int, flags: bytes
) -> None:
    assert ChangeMap.decode(_reframe(b"DSCM", 1, 4, zstandard.compress(bytes(4)))).count() == 0
    with pytest.raises(ChangeMapError):
        ChangeMap.decode(_reframe(magic, version, count, zstandard.compress(flags)))


def test_undecodable_flags_with_valid_checksum_raise() -> None:
    with pytest.raises(ChangeMapError):
        ChangeMap.decode(_reframe(b"DSCM", 1, 4, b"not a zstd frame"))

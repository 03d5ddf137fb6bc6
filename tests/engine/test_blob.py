"""Chunk blob format: roundtrips, the documented header, and corruption detection."""

from __future__ import annotations

import random
import struct

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disksnap.engine.blob import (
    CODEC_RAW,
    CODEC_ZSTD,
    HEADER_SIZE,
    BlobFormatError,
    Codec,
    check_stored,
    chunk_id,
    parse_header,
)

MiB = 1 << 20
CODEC = Codec()
FUZZ = settings(max_examples=60, deadline=None, database=None, derandomize=True)


def _random(n: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)


def _text(n: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"snapshot", b"disk", b"chunk", b"\n"]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])


def _flip(blob: bytes, pos: int, mask: int) -> bytes:
    damaged = bytearray(blob)
    damaged[pos] ^= mask
    return bytes(damaged)


# Small samples so that the corruption tests stay fast; one of each codec.
RAW_BLOB = CODEC.encode(_random(3000))
ZSTD_BLOB = CODEC.encode(_text(3000))
BLOBS = {"raw": RAW_BLOB, "zstd": ZSTD_BLOB}


def _fields(blob: bytes) -> tuple[bytes, int, int, int, int, int, bytes]:
    magic, version, codec, flags, raw_len, stored_len, checksum = struct.unpack_from(
        "<4sBBHII32s", blob
    )
    return magic, version, codec, flags, raw_len, stored_len, checksum


# --- roundtrips and the header -------------------------------------------------------


def test_random_data_is_stored_raw() -> None:
    data = _random(256 * 1024)
    blob = CODEC.encode(data)
    magic, version, codec, flags, raw_len, stored_len, checksum = _fields(blob)
    assert (magic, version, codec, flags) == (b"DSCK", 1, CODEC_RAW, 0)
    assert raw_len == stored_len == len(data)
    assert len(blob) == HEADER_SIZE + len(data) == 48 + len(data)
    assert blob[HEADER_SIZE:] == data
    assert checksum == blake3.blake3(blob[:16] + blake3.blake3(data).digest()).digest()
    assert CODEC.decode(blob) == data


def test_a_raw_blobs_plaintext_is_a_view_of_the_blob_not_a_copy() -> None:
    data = _random(256 * 1024)
    blob = CODEC.encode(data)
    plain = CODEC.decode(blob, expect=blake3.blake3(data).digest())
    assert isinstance(plain, memoryview)
    assert plain.obj is blob
    assert plain == data


def test_compressible_text_is_stored_zstd_and_smaller() -> None:
    data = _text(512 * 1024)
    blob = CODEC.encode(data)
    magic, version, codec, flags, raw_len, stored_len, checksum = _fields(blob)
    assert (magic, version, codec, flags) == (b"DSCK", 1, CODEC_ZSTD, 0)
    assert raw_len == len(data)
    assert stored_len == len(blob) - HEADER_SIZE
    assert len(blob) < len(data) // 2
    inner = blake3.blake3(blob[HEADER_SIZE:]).digest()
    assert checksum == blake3.blake3(blob[:16] + inner).digest()
    assert CODEC.decode(blob) == data


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"x", b"ab" * 3, bytes(100), _random(17)],
    ids=["empty", "zero-byte", "one-byte", "six-bytes", "100-zeroes", "17-random"],
)
def test_tiny_inputs_roundtrip(data: bytes) -> None:
    blob = CODEC.encode(data)
    header = parse_header(blob)
    assert header.raw_len == len(data)
    assert header.stored_len == len(blob) - HEADER_SIZE
    check_stored(blob)
    assert CODEC.decode(blob) == data


@pytest.mark.parametrize("kind", ["random", "text", "zeroes"])
def test_exactly_4mib_roundtrip(kind: str) -> None:
    size = 4 * MiB
    data = {"random": _random(size), "text": _text(size), "zeroes": bytes(size)}[kind]
    blob = CODEC.encode(data)
    header = parse_header(blob)
    assert header.raw_len == size
    assert header.codec == (CODEC_RAW if kind == "random" else CODEC_ZSTD)
    if kind == "random":
        assert len(blob) == HEADER_SIZE + size
    else:
        assert len(blob) < size // 4
    assert CODEC.decode(blob) == data


@given(st.binary(max_size=4096))
@FUZZ
def test_roundtrip_any_bytes(data: bytes) -> None:
    blob = CODEC.encode(data)
    assert parse_header(blob).raw_len == len(data)
    assert CODEC.decode(blob) == data


def test_codec_levels_decode_each_other() -> None:
    data = _text(100_000)
    assert Codec(level=1).decode(Codec(level=19).encode(data)) == data


def test_chunk_id_is_blake3_hex_of_plaintext() -> None:
    for data in [b"", b"abc", _random(5000), _text(70_000)]:
        cid = chunk_id(data)
        assert cid == blake3.blake3(data).hexdigest()
        assert len(cid) == 64
        assert cid == cid.lower()
        assert chunk_id(memoryview(data)) == cid
    assert chunk_id(b"a") != chunk_id(b"b")


# --- corruption ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BLOBS))
def test_decode_detects_every_single_byte_flip_in_header(name: str) -> None:
    blob = BLOBS[name]
    undetected = []
    for pos in range(HEADER_SIZE):
        for mask in (0x01, 0x80, 0xFF):
            try:
                CODEC.decode(_flip(blob, pos, mask))
            except BlobFormatError:
                continue
            undetected.append((pos, mask))
    assert undetected == [], f"header flips (position, xor mask) decode without error: {undetected}"


@pytest.mark.parametrize("name", sorted(BLOBS))
def test_check_stored_detects_every_single_byte_flip_in_header(name: str) -> None:
    blob = BLOBS[name]
    undetected = []
    for pos in range(HEADER_SIZE):
        for mask in (0x01, 0x80, 0xFF):
            try:
                check_stored(_flip(blob, pos, mask))
            except BlobFormatError:
                continue
            undetected.append((pos, mask))
    assert undetected == [], f"header flips (position, xor mask) pass check_stored: {undetected}"


@given(
    name=st.sampled_from(sorted(BLOBS)),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    mask=st.integers(1, 255),
)
@FUZZ
def test_decode_detects_a_flipped_stored_byte(name: str, where: float, mask: int) -> None:
    blob = BLOBS[name]
    pos = HEADER_SIZE + int(where * (len(blob) - HEADER_SIZE))
    damaged = _flip(blob, pos, mask)
    with pytest.raises(BlobFormatError):
        CODEC.decode(damaged)
    with pytest.raises(BlobFormatError):
        check_stored(damaged)


@given(
    name=st.sampled_from(sorted(BLOBS)),
    pos=st.integers(0, HEADER_SIZE - 1),
    mask=st.integers(1, 255),
)
@FUZZ
def test_decode_detects_a_flipped_header_byte(name: str, pos: int, mask: int) -> None:
    with pytest.raises(BlobFormatError):
        CODEC.decode(_flip(BLOBS[name], pos, mask))


@pytest.mark.parametrize("name", sorted(BLOBS))
@pytest.mark.parametrize("cut", [1, 2, 100, -HEADER_SIZE + 1, 0])
def test_truncation_raises(name: str, cut: int) -> None:
    blob = BLOBS[name]
    # cut > 0: drop that many bytes from the end; cut <= 0: keep only a header prefix.
    short = blob[:-cut] if cut > 0 else blob[: HEADER_SIZE - 1 + cut]
    with pytest.raises(BlobFormatError):
        CODEC.decode(short)
    with pytest.raises(BlobFormatError):
        check_stored(short)


@pytest.mark.parametrize("name", sorted(BLOBS))
def test_appended_bytes_raise(name: str) -> None:
    with pytest.raises(BlobFormatError):
        CODEC.decode(BLOBS[name] + b"\x00")
    with pytest.raises(BlobFormatError):
        check_stored(BLOBS[name] + b"\x00")


def test_empty_and_foreign_input_raise() -> None:
    for junk in [b"", b"DSCK", bytes(HEADER_SIZE), b"X" * 200]:
        with pytest.raises(BlobFormatError):
            CODEC.decode(junk)
        with pytest.raises(BlobFormatError):
            check_stored(junk)


def test_check_stored_does_not_decompress() -> None:
    # A blob whose stored bytes are a consistent, checksummed but invalid zstd frame:
    # check_stored (framing + checksum only) accepts it; decode must reject it.
    stored = b"not a zstd frame at all"
    fields = struct.pack("<4sBBHII", b"DSCK", 1, CODEC_ZSTD, 0, 1000, len(stored))
    header = fields + blake3.blake3(fields + blake3.blake3(stored).digest()).digest()
    blob = header + stored
    check_stored(blob)
    with pytest.raises(BlobFormatError):
        CODEC.decode(blob)


def test_valid_checksum_but_wrong_length_is_rejected() -> None:
    # Tampered raw_len with a consistent checksum: only the length check can catch it.
    data = _random(1000)
    stored = data
    fields = struct.pack("<4sBBHII", b"DSCK", 1, CODEC_RAW, 0, 999, 1000)
    header = fields + blake3.blake3(fields + blake3.blake3(stored).digest()).digest()
    with pytest.raises(BlobFormatError):
        CODEC.decode(header + stored)

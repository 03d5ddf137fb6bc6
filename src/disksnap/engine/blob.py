"""Chunk blob format (docs/formats.md#chunk-blob).

A blob is a 48-byte header followed by the stored bytes::

    offset size field
    0      4    magic  b"DSCK"
    4      1    version (1)
    5      1    codec  (0 = raw, 1 = zstd)
    6      2    flags  (0)
    8      4    raw_len     u32 little-endian: plaintext length
    12     4    stored_len  u32 little-endian: length of the stored bytes
    16     32   checksum    BLAKE3-256 of (header bytes 0..15 || BLAKE3-256(stored bytes))

Readers reject any other magic, version, codec, non-zero flags, a length that does not
match, or a checksum mismatch. The chunk id is the BLAKE3-256 of the plaintext, so a
blob is checked twice on read: the checksum catches damage to the header or the stored
bytes without decompressing (verify), and the plaintext hash catches anything else
(restore). Hashing the stored bytes first means a raw blob's inner digest *is* its
chunk id: encoding and decoding raw blobs hashes the data once, not twice.
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

import blake3
import zstandard

MAGIC = b"DSCK"
VERSION = 1
CODEC_RAW = 0
CODEC_ZSTD = 1
HEADER = struct.Struct("<4sBBHII32s")
HEADER_SIZE = HEADER.size  # 48
_CHECKED = 16  # header bytes covered by the checksum (everything before it)

# Incompressible data is detected on a sample before paying for a full compression:
# SAMPLES slices of SAMPLE_SIZE bytes, spread over the chunk, compressed at level 1.
SAMPLE_SIZE = 16 * 1024
SAMPLES = 4
SAMPLE_MAX_RATIO = 0.95
# A compressed result must save at least this fraction to be kept.
MIN_SAVING = 0.03


class BlobFormatError(ValueError):
    """The bytes are not a well-formed blob, or fail their checksum."""


@dataclass(frozen=True)
class BlobHeader:
    codec: int
    raw_len: int
    stored_len: int
    checksum: bytes


def chunk_id(plaintext: bytes | memoryview) -> str:
    return blake3.blake3(plaintext).hexdigest()


class Codec:
    """Encodes and decodes blobs. Safe to share between threads (per-thread zstd state)."""

    def __init__(self, level: int = 3) -> None:
        self.level = level
        self._local = threading.local()

    def _compressors(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdCompressor]:
        pair = getattr(self._local, "compressors", None)
        if pair is None:
            pair = (zstandard.ZstdCompressor(level=self.level), zstandard.ZstdCompressor(level=1))
            self._local.compressors = pair
        return pair

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        d = getattr(self._local, "decompressor", None)
        if d is None:
            d = zstandard.ZstdDecompressor()
            self._local.decompressor = d
        return d

    def _looks_incompressible(self, data: bytes | bytearray) -> bool:
        n = len(data)
        if n <= SAMPLE_SIZE * SAMPLES:
            return False
        _, fast = self._compressors()
        step = (n - SAMPLE_SIZE) // (SAMPLES - 1)
        sample = b"".join(data[i * step : i * step + SAMPLE_SIZE] for i in range(SAMPLES))
        return len(fast.compress(sample)) > len(sample) * SAMPLE_MAX_RATIO

    def encode(self, plaintext: bytes | bytearray, digest: bytes | None = None) -> bytes:
        """Encode a chunk. ``digest`` is BLAKE3-256(plaintext) if the caller has it."""
        return b"".join(self.encode_parts(plaintext, digest))

    def encode_parts(
        self, plaintext: bytes | bytearray, digest: bytes | None = None
    ) -> tuple[bytes, bytes | bytearray]:
        """The blob as (header, stored bytes), for a backend to write without joining
        them: joining copies the chunk holding the GIL. A raw blob's stored bytes are
        ``plaintext`` itself."""
        codec, stored = CODEC_RAW, plaintext
        if not self._looks_incompressible(plaintext):
            full, _ = self._compressors()
            packed = full.compress(plaintext)
            if len(packed) <= len(plaintext) * (1 - MIN_SAVING):
                codec, stored = CODEC_ZSTD, packed
        fields = HEADER.pack(MAGIC, VERSION, codec, 0, len(plaintext), len(stored), bytes(32))
        if codec != CODEC_RAW or digest is None:
            digest = blake3.blake3(stored).digest()
        return fields[:_CHECKED] + _checksum(fields, digest), stored

    def decode(self, blob: bytes, expect: bytes | None = None) -> bytes | memoryview:
        """Return the plaintext; raise ``BlobFormatError`` on any damage, or when
        ``expect`` is given and is not BLAKE3-256 of the plaintext. A raw blob's
        plaintext is a view into ``blob``: copying 4 MiB would hold the GIL."""
        header, stored_digest = _checked(blob)
        stored = memoryview(blob)[HEADER_SIZE:]
        digest: bytes | None = None
        plaintext: bytes | memoryview
        if header.codec == CODEC_RAW:
            plaintext, digest = stored, stored_digest
        else:
            try:
                plaintext = self._decompressor().decompress(stored, max_output_size=header.raw_len)
            except zstandard.ZstdError as e:
                raise BlobFormatError(f"zstd: {e}") from e
        if len(plaintext) != header.raw_len:
            raise BlobFormatError("plaintext length differs from the header")
        if expect is not None:
            if digest is None:
                digest = blake3.blake3(plaintext).digest()
            if digest != expect:
                raise BlobFormatError("content hash does not match the chunk id")
        return plaintext


def parse_header(blob: bytes) -> BlobHeader:
    if len(blob) < HEADER_SIZE:
        raise BlobFormatError("shorter than a blob header")
    magic, version, codec, _flags, raw_len, stored_len, checksum = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise BlobFormatError("bad magic")
    if version != VERSION:
        raise BlobFormatError(f"unsupported blob version {version}")
    if codec not in (CODEC_RAW, CODEC_ZSTD):
        raise BlobFormatError(f"unknown codec {codec}")
    if _flags != 0:
        raise BlobFormatError(f"unknown flags {_flags:#x}")
    if codec == CODEC_RAW and raw_len != stored_len:
        raise BlobFormatError("a raw blob's lengths differ")
    if stored_len != len(blob) - HEADER_SIZE:
        raise BlobFormatError("stored length differs from the header")
    return BlobHeader(codec, raw_len, stored_len, checksum)


def check_stored(blob: bytes) -> None:
    """Verify a blob's framing and checksum without decompressing it."""
    _checked(blob)


def _checksum(header: bytes, stored_digest: bytes) -> bytes:
    return blake3.blake3(header[:_CHECKED] + stored_digest).digest()


def _checked(blob: bytes) -> tuple[BlobHeader, bytes]:
    """Parse and verify; return the header and BLAKE3-256 of the stored bytes."""
    header = parse_header(blob)
    stored_digest = blake3.blake3(memoryview(blob)[HEADER_SIZE:]).digest()
    if _checksum(blob, stored_digest) != header.checksum:
        raise BlobFormatError("blob does not match its checksum")
    return header, stored_digest

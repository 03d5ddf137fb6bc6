"""Changed-block tracking: one flag per chunk, set when any byte of the chunk is written.

File format (docs/formats.md#change-map)::

    magic b"DSCM" | version u8 | 3 reserved | chunk_count u64 | zstd(flags) | BLAKE3-256(all before)

A disk's map is written only on a clean close and removed when the disk is opened, so
its presence means "every write since the base is recorded here". After an unclean
stop there is no file and the engine treats the map as untrusted.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import blake3
import zstandard

from disksnap.engine.fileio import write_file_atomic

MAGIC = b"DSCM"
VERSION = 1
_HEAD = struct.Struct("<4sB3xQ")
# zstd contexts are costly to make (a checkpoint encodes a map) and not to be shared
# between threads at once: one pair per thread.
_zstd = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    c: zstandard.ZstdCompressor | None = getattr(_zstd, "compressor", None)
    if c is None:
        c = _zstd.compressor = zstandard.ZstdCompressor(level=1)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d: zstandard.ZstdDecompressor | None = getattr(_zstd, "decompressor", None)
    if d is None:
        d = _zstd.decompressor = zstandard.ZstdDecompressor()
    return d


class ChangeMapError(ValueError):
    pass


class ChangeMap:
    def __init__(self, chunk_count: int, flags: bytearray | None = None) -> None:
        self.flags = flags if flags is not None else bytearray(chunk_count)
        if len(self.flags) != chunk_count:
            raise ChangeMapError("flag count differs from chunk count")

    @property
    def chunk_count(self) -> int:
        return len(self.flags)

    def mark(self, first: int, last: int) -> None:
        """Mark chunks first..last inclusive."""
        n = last - first + 1
        self.flags[first : last + 1] = b"\x01" * n

    def is_set(self, index: int) -> bool:
        return index < len(self.flags) and self.flags[index] != 0

    def changed(self) -> list[int]:
        return [i for i, f in enumerate(self.flags) if f]

    def count(self) -> int:
        return len(self.flags) - self.flags.count(0)

    def resize(self, chunk_count: int) -> None:
        if chunk_count > len(self.flags):
            self.flags.extend(bytes(chunk_count - len(self.flags)))

    def merge(self, other: ChangeMap) -> None:
        self.resize(other.chunk_count)
        for i in other.changed():
            self.flags[i] = 1

    def copy(self) -> ChangeMap:
        return ChangeMap(len(self.flags), bytearray(self.flags))

    def encode(self) -> bytes:
        head = _HEAD.pack(MAGIC, VERSION, len(self.flags))
        body = head + _compressor().compress(bytes(self.flags))
        return body + blake3.blake3(body).digest()

    @classmethod
    def decode(cls, data: bytes) -> ChangeMap:
        if len(data) < _HEAD.size + 32 or blake3.blake3(data[:-32]).digest() != data[-32:]:
            raise ChangeMapError("change map checksum mismatch")
        magic, version, count = _HEAD.unpack_from(data)
        if magic != MAGIC or version != VERSION:
            raise ChangeMapError("not a change map")
        try:
            flags = _decompressor().decompress(data[_HEAD.size : -32])
        except zstandard.ZstdError as e:
            raise ChangeMapError(f"change map body unreadable: {e}") from e
        return cls(count, bytearray(flags))

    def save(self, path: Path) -> None:
        write_file_atomic(path, self.encode())

    @classmethod
    def load(cls, path: Path) -> ChangeMap:
        return cls.decode(path.read_bytes())

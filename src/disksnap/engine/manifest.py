"""Snapshot manifests (docs/formats.md#manifest).

A manifest lists, for every chunk-sized extent of the disk at the snapshot moment,
either "zero" or the id of a stored chunk. It is self-contained: restore needs no
other manifest. On the wire::

    magic b"DSMF" | version u8 | 3 reserved bytes | body_len u64 | body | BLAKE3-256(all before)

    body (zstd-compressed) =
        header_len u32 | header JSON (utf-8) |
        chunk table: n ids of 32 bytes | n stored sizes u32 |
        refs: m u32, one per extent; 0 = zero extent, k = chunk table entry k-1

``m = ceil(disk_size / chunk_size)``. Sizes are little-endian. Manifests are keyed
``manifests/<snapshot_id>`` in the backend and never change once published.
"""

from __future__ import annotations

import json
import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import blake3
import zstandard

from disksnap.engine.errors import ManifestCorrupt

MAGIC = b"DSMF"
VERSION = 1
PREFIX = "manifests/"
_HEAD = struct.Struct("<4sB3xQ")
ZERO = -1


def manifest_key(snapshot_id: str) -> str:
    return PREFIX + snapshot_id


@dataclass
class Manifest:
    snapshot_id: str
    disk_id: str
    disk_size: int
    chunk_size: int
    sequence: int  # position in the disk's lineage (checkpoint order)
    parent: str | None  # the snapshot it was built incrementally against, if any
    created_at: str  # RFC 3339
    ids: bytes = b""  # n * 32 raw chunk ids
    sizes: array[int] = field(default_factory=lambda: array("I"))
    refs: array[int] = field(default_factory=lambda: array("I"))
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def extent_count(self) -> int:
        return len(self.refs)

    def ref(self, index: int) -> str | None:
        """Chunk id of extent ``index``, or None for a zero extent."""
        k = self.refs[index]
        if k == 0:
            return None
        return self.ids[(k - 1) * 32 : k * 32].hex()

    def ref_with_size(self, index: int) -> tuple[str | None, int]:
        k = self.refs[index]
        if k == 0:
            return None, 0
        return self.ids[(k - 1) * 32 : k * 32].hex(), self.sizes[k - 1]

    def iter_refs(self) -> Iterator[tuple[int, str | None]]:
        for i in range(len(self.refs)):
            yield i, self.ref(i)

    def chunk_sizes(self) -> dict[str, int]:
        """Every distinct chunk this manifest references, with its stored size."""
        return {
            self.ids[j * 32 : (j + 1) * 32].hex(): self.sizes[j] for j in range(len(self.sizes))
        }

    def header(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "snapshot_id": self.snapshot_id,
            "disk_id": self.disk_id,
            "disk_size": self.disk_size,
            "chunk_size": self.chunk_size,
            "sequence": self.sequence,
            "parent": self.parent,
            "created_at": self.created_at,
            "chunk_count": len(self.sizes),
            "extent_count": len(self.refs),
            "stats": self.stats,
        }


class ManifestBuilder:
    """Collects refs (in any order) and produces a ``Manifest``."""

    def __init__(self, extent_count: int) -> None:
        self._refs = array("I", bytes(4 * extent_count))
        self._index: dict[str, int] = {}
        self._ids = bytearray()
        self._sizes = array("I")

    def set(self, extent: int, chunk_id: str | None, stored_size: int = 0) -> None:
        if chunk_id is None:
            self._refs[extent] = 0
            return
        k = self._index.get(chunk_id)
        if k is None:
            self._ids += bytes.fromhex(chunk_id)
            self._sizes.append(stored_size)
            k = len(self._sizes)
            self._index[chunk_id] = k
        self._refs[extent] = k

    def finish(self, **fields: Any) -> Manifest:
        return Manifest(ids=bytes(self._ids), sizes=self._sizes, refs=self._refs, **fields)


def encode(m: Manifest) -> bytes:
    header = json.dumps(m.header(), sort_keys=True).encode()
    body = b"".join(
        [
            struct.pack("<I", len(header)),
            header,
            m.ids,
            _le(m.sizes).tobytes(),
            _le(m.refs).tobytes(),
        ]
    )
    packed = zstandard.ZstdCompressor(level=3).compress(body)
    head = _HEAD.pack(MAGIC, VERSION, len(packed)) + packed
    return head + blake3.blake3(head).digest()


def decode(data: bytes) -> Manifest:
    if len(data) < _HEAD.size + 32:
        raise ManifestCorrupt("manifest too short")
    magic, version, body_len = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise ManifestCorrupt("bad manifest magic")
    if version != VERSION:
        raise ManifestCorrupt(f"unsupported manifest version {version}")
    end = _HEAD.size + body_len
    if end + 32 != len(data) or blake3.blake3(data[:end]).digest() != data[end:]:
        raise ManifestCorrupt("manifest checksum mismatch")
    try:
        body = zstandard.ZstdDecompressor().decompress(data[_HEAD.size : end])
        (hlen,) = struct.unpack_from("<I", body)
        h = json.loads(body[4 : 4 + hlen])
        n, m = h["chunk_count"], h["extent_count"]
        pos = 4 + hlen
        ids = body[pos : pos + 32 * n]
        pos += 32 * n
        sizes = _from_le(body[pos : pos + 4 * n])
        pos += 4 * n
        refs = _from_le(body[pos : pos + 4 * m])
        if len(ids) != 32 * n or len(sizes) != n or len(refs) != m or any(r > n for r in refs):
            raise ManifestCorrupt("manifest tables are inconsistent")
        return Manifest(
            snapshot_id=str(h["snapshot_id"]),
            disk_id=str(h["disk_id"]),
            disk_size=int(h["disk_size"]),
            chunk_size=int(h["chunk_size"]),
            sequence=int(h["sequence"]),
            parent=None if h["parent"] is None else str(h["parent"]),
            created_at=str(h["created_at"]),
            ids=ids,
            sizes=sizes,
            refs=refs,
            stats=dict(h.get("stats", {})),
        )
    except (zstandard.ZstdError, ValueError, KeyError, TypeError, struct.error) as e:
        raise ManifestCorrupt(f"manifest body unreadable: {e}") from e


def _le(a: array[int]) -> array[int]:
    if struct.pack("=I", 1) == struct.pack("<I", 1):
        return a
    b = array("I", a)
    b.byteswap()
    return b


def _from_le(raw: bytes) -> array[int]:
    a = array("I")
    a.frombytes(raw)
    return _le(a)

"""Content-addressed chunk store on top of a ``Backend``.

Chunks are keyed ``chunks/<id[:2]>/<id>`` where ``id`` is the BLAKE3-256 hex digest of
the plaintext. All-zero chunks are never stored (manifests record them as zero refs).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import blake3

from disksnap.engine.backends.base import Backend, KeyNotFound
from disksnap.engine.blob import BlobFormatError, Codec, check_stored
from disksnap.engine.errors import ChunkCorrupt, ChunkMissing

PREFIX = "chunks/"
ID_HEX_LEN = 64


def chunk_key(chunk_id: str) -> str:
    return f"{PREFIX}{chunk_id[:2]}/{chunk_id}"


@functools.lru_cache(maxsize=8)
def zero_id(length: int) -> str:
    """The id that ``length`` zero bytes would have (never stored: a zero ref)."""
    return ChunkStore.hash(bytes(length))


class ChunkStore:
    def __init__(self, backend: Backend, codec: Codec) -> None:
        self.backend = backend
        self.codec = codec

    @staticmethod
    def hash(plaintext: bytes | bytearray) -> str:
        return blake3.blake3(plaintext).hexdigest()

    def exists(self, chunk_id: str) -> bool:
        return self.backend.exists(chunk_key(chunk_id))

    def stored_size(self, chunk_id: str) -> int:
        """Bytes the chunk occupies in the backend (blob header included)."""
        try:
            return self.backend.stat(chunk_key(chunk_id))
        except KeyNotFound:
            raise ChunkMissing(chunk_id) from None

    def put(self, chunk_id: str, plaintext: bytes | bytearray) -> int:
        """Encode and store the chunk; return its stored size. Durable on return."""
        header, stored = self.codec.encode_parts(plaintext, bytes.fromhex(chunk_id))
        self.backend.put(chunk_key(chunk_id), (header, stored))
        return len(header) + len(stored)

    def get(self, chunk_id: str) -> bytes | memoryview:
        """Return the verified plaintext, or raise ``ChunkMissing`` / ``ChunkCorrupt``."""
        try:
            blob = self.backend.get(chunk_key(chunk_id))
        except KeyNotFound:
            raise ChunkMissing(chunk_id) from None
        try:
            return self.codec.decode(blob, expect=bytes.fromhex(chunk_id))
        except BlobFormatError as e:
            raise ChunkCorrupt(chunk_id, str(e)) from e

    def check(self, chunk_id: str, *, deep: bool = True) -> None:
        """Raise if the chunk is missing or damaged. ``deep`` also checks the content hash."""
        if deep:
            self.get(chunk_id)
            return
        try:
            blob = self.backend.get(chunk_key(chunk_id))
        except KeyNotFound:
            raise ChunkMissing(chunk_id) from None
        try:
            check_stored(blob)
        except BlobFormatError as e:
            raise ChunkCorrupt(chunk_id, str(e)) from e

    def list(self) -> Iterator[str]:
        for key in self.backend.list(PREFIX):
            name = key.rsplit("/", 1)[-1]
            if len(name) == ID_HEX_LEN:
                yield name

    def delete(self, chunk_id: str) -> None:
        with contextlib.suppress(KeyNotFound):
            self.backend.delete(chunk_key(chunk_id))

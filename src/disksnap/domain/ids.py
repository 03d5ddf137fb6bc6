"""Resource ids: 20 characters of ``[a-z0-9]`` with a 3-character prefix per kind.

Randomness is read here and nowhere else (request ids too); tests pass a seeded
``random.Random``.
"""

from __future__ import annotations

import os
import random
import re
import string
import threading

ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 20
# Engine-level names (disk ids, snapshot ids) are used in file and object names, so they
# are validated against this pattern before any path or key is built from them.
SAFE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,49}")

PREFIX_SNAPSHOT = "fd8"
PREFIX_FOLDER = "b1g"
PREFIX_SUBJECT = "aje"


# Bytes at or above this are skipped when mapping random bytes to ALPHABET, so that
# every character is equally likely (252 = 7 x 36).
_UNBIASED = 256 - 256 % len(ALPHABET)


class _Entropy:
    """``os.urandom`` read a block at a time: one system call serves many ids (it was
    one per character: ``secrets.choice``). Reset in a forked child, which must not
    hand out its parent's bytes again."""

    BLOCK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._pos = 0
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._buffer, self._pos = b"", 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._pos + n > len(self._buffer):
                self._buffer, self._pos = os.urandom(max(n, self.BLOCK)), 0
            out = self._buffer[self._pos : self._pos + n]
            self._pos += n
            return out


_ENTROPY = _Entropy()


def new_request_id() -> str:
    """A new request id: 32 hex digits, 128 random bits."""
    return _ENTROPY.take(16).hex()


class IdGenerator:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng

    def new(self, prefix: str) -> str:
        n = ID_LENGTH - len(prefix)
        if self._rng is not None:
            return prefix + "".join(self._rng.choice(ALPHABET) for _ in range(n))
        tail = ""
        while len(tail) < n:
            tail += characters(_ENTROPY.take(n))
        return prefix + tail[:n]


# Each byte as its ALPHABET character, and the bytes skipped.
_AS_CHARACTER = bytes.maketrans(
    bytes(range(256)), bytes(ord(ALPHABET[b % len(ALPHABET)]) for b in range(256))
)
_SKIPPED = bytes(range(_UNBIASED, 256))


def characters(data: bytes) -> str:
    """Random bytes as ALPHABET characters, each equally likely (some bytes are skipped)."""
    return data.translate(_AS_CHARACTER, _SKIPPED).decode("ascii")


def is_safe_id(value: str) -> bool:
    return SAFE_ID.fullmatch(value) is not None

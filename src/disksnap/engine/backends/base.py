"""The backend protocol: a flat key -> bytes store.

Contract (every implementation passes ``tests/engine/test_backend_contract.py``):

* Keys are ``/``-separated relative names of ``[a-z0-9._-]`` segments (``validate_key``);
  no empty segment, no ``.`` or ``..``. Backends may map ``/`` to directories.
* ``put(key, data)`` is atomic and durable: once it returns, ``get`` returns exactly
  ``data`` even after a crash or power loss; a reader never sees a partial value; a
  crash during ``put`` leaves either the old value or none. Overwriting is allowed and
  replaces the value atomically. ``data`` is one buffer or a tuple of them, stored as
  their concatenation (a blob's header and payload are not copied into one buffer:
  a large copy holds the GIL that the serving threads wait for).
* ``get(key)`` returns the whole value or raises ``KeyNotFound`` (also when ``key`` is
  only a prefix of other keys).
* ``exists(key)`` is true exactly when ``get`` would succeed.
* ``list(prefix)`` yields every key that starts with ``prefix`` (a string prefix, not
  only a directory), in no particular order, each once. A prefix that no valid key
  can start with (``../``, ``a//``) raises ``InvalidKey``. Keys put before the call
  started are listed; keys put or deleted during it may or may not be.
* ``delete(key)`` removes the key; deleting a missing key raises ``KeyNotFound``.
* ``stat(key)`` returns the stored size in bytes or raises ``KeyNotFound``.
* Any other failure (I/O error, permission, network) raises ``BackendError``;
  ``BackendUnavailable`` marks transient failures that a retry may fix.

Chunking, compression, checksums and indexing live above this protocol; retries,
metrics and fault injection are wrappers around it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

from disksnap.domain import errors as d

Buffer = bytes | bytearray | memoryview
Value = Buffer | tuple[Buffer, ...]

_SEGMENT = re.compile(r"[a-z0-9_-][a-z0-9._-]*")


class BackendError(d.DisksnapError):
    code = d.Code.INTERNAL
    reason = "BACKEND_ERROR"


class BackendUnavailable(BackendError):
    code = d.Code.UNAVAILABLE
    reason = "BACKEND_UNAVAILABLE"


class KeyNotFound(BackendError):
    code = d.Code.NOT_FOUND
    reason = "KEY_NOT_FOUND"

    def __init__(self, key: str) -> None:
        super().__init__(f"no such key: {key}")
        self.key = key


class InvalidKey(BackendError):
    code = d.Code.INVALID_ARGUMENT
    reason = "INVALID_KEY"


def validate_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or not _SEGMENT.fullmatch(p) for p in parts):
        raise InvalidKey(f"invalid backend key: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """A list prefix: complete key segments, then possibly a partial last segment."""
    *dirs, last = prefix.split("/")
    if any(p in ("", ".", "..") or not _SEGMENT.fullmatch(p) for p in dirs) or (
        last and not _SEGMENT.fullmatch(last)
    ):
        raise InvalidKey(f"invalid backend key prefix: {prefix!r}")
    return prefix


def value_parts(data: Value) -> tuple[Buffer, ...]:
    return data if isinstance(data, tuple) else (data,)


class Backend(Protocol):
    def put(self, key: str, data: Value) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> int: ...

    def list(self, prefix: str = "") -> Iterator[str]: ...

    def delete(self, key: str) -> None: ...

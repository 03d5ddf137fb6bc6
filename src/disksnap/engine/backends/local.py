"""A backend on a local directory: one file per key, ``/`` in keys are directories.

``put`` writes a hidden temporary file in the target directory, fsyncs it, renames it
over the final name and fsyncs the directory, so a value is either wholly there or
absent after a crash. Temporary files start with ``.`` (which no key segment may), so
``list`` never reports them and ``sweep_temporaries`` can remove leftovers.

A value is written once and read rarely (a restore, a verify), so once it is durable
``put`` drops its pages from the page cache (``POSIX_FADV_DONTNEED``): a snapshot of
a large disk does not push everything else out of memory, and the next value's write
reuses the freed pages instead of taking fresh ones.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from disksnap.engine.backends.base import (
    BackendError,
    KeyNotFound,
    Value,
    validate_key,
    validate_prefix,
    value_parts,
)
from disksnap.engine.fileio import drop_cache, fsync_dir, write_all


class LocalBackend:
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self._fsync = fsync
        root.mkdir(parents=True, exist_ok=True)
        self._known_dirs: set[Path] = set()
        self._dirs_lock = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _ensure_dir(self, directory: Path) -> None:
        with self._dirs_lock:
            if directory in self._known_dirs:
                return
        directory.mkdir(parents=True, exist_ok=True)
        with self._dirs_lock:
            self._known_dirs.add(directory)

    def put(self, key: str, data: Value) -> None:
        path = self._path(key)
        self._ensure_dir(path.parent)
        tmp = path.parent / f".tmp-{secrets.token_hex(8)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                write_all(fd, value_parts(data))
                if self._fsync:
                    os.fdatasync(fd)
                    drop_cache(fd)  # clean now, so the advice takes effect at once
            finally:
                os.close(fd)
            os.replace(tmp, path)
            if self._fsync:
                fsync_dir(path.parent)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise BackendError(f"put {key}: {e.strerror}") from e

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFound(key) from None
        except OSError as e:
            raise BackendError(f"get {key}: {e.strerror}") from e

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str) -> int:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            raise KeyNotFound(key) from None
        except OSError as e:
            raise BackendError(f"stat {key}: {e.strerror}") from e
        if not stat.S_ISREG(st.st_mode):
            raise KeyNotFound(key)
        return st.st_size

    def list(self, prefix: str = "") -> Iterator[str]:
        # Walk only the directory that can hold matches: everything up to the last "/".
        base, _, _ = validate_prefix(prefix).rpartition("/")
        start = self.root / base if base else self.root
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [n for n in dirnames if not n.startswith(".")]
            rel = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    yield key

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyNotFound(key) from None
        except OSError as e:
            raise BackendError(f"delete {key}: {e.strerror}") from e

    def sweep_temporaries(self) -> int:
        """Remove temporary files left by puts that a crash interrupted."""
        removed = 0
        for dirpath, _, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(".tmp-"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
        return removed

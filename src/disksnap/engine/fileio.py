"""Positional file I/O helpers: full reads/writes, hole punching, data extents, fsync of
directories. All release the GIL in the kernel call."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_fallocate = _libc.fallocate
_fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_fallocate.restype = ctypes.c_int


def pread_into(fd: int, buf: bytearray | memoryview, offset: int) -> int:
    """Fill ``buf`` from ``offset`` without an intermediate copy; return the bytes read.
    Beyond the end of the file it keeps what it holds (zeroes, for a new bytearray)."""
    view = memoryview(buf)
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:]], offset + got)
        if n == 0:
            break
        got += n
    return got


def pread_full(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) == length:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        more = os.pread(fd, length - got, offset + got)
        if not more:  # beyond EOF of a sparse file: zeroes
            parts.append(bytes(length - got))
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def pwrite_full(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def write_all(fd: int, parts: Sequence[bytes | bytearray | memoryview]) -> None:
    """Write the buffers one after the other at the file position, without joining
    them first (``writev``; a short write continues where it stopped)."""
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        n = os.writev(fd, views)
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views:
            views[0] = views[0][n:]


def punch_hole(fd: int, offset: int, length: int) -> None:
    """Deallocate a range; it reads back as zeroes. Falls back to writing zeroes."""
    if length <= 0:
        return
    if _fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return
    err = ctypes.get_errno()
    if err not in (errno.EOPNOTSUPP, errno.ENOSYS):
        raise OSError(err, os.strerror(err))
    step = 1 << 20
    zero = bytes(step)
    end = offset + length
    while offset < end:
        n = min(step, end - offset)
        pwrite_full(fd, zero[:n], offset)
        offset += n


def has_data(fd: int, offset: int, length: int) -> bool:
    """False when [offset, offset+length) is entirely a hole (so reads as zeroes)."""
    try:
        pos = os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as e:
        if e.errno == errno.ENXIO:  # no data after offset
            return False
        raise
    return pos < offset + length


def data_extents(fd: int, offset: int, length: int) -> list[tuple[int, int, bool]]:
    """Split [offset, offset+length) into (start, length, is_data) runs."""
    end = offset + length
    runs: list[tuple[int, int, bool]] = []
    pos = offset
    while pos < end:
        try:
            data_at = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            data_at = end
        data_at = min(data_at, end)
        if data_at > pos:
            runs.append((pos, data_at - pos, False))
            pos = data_at
            continue
        hole_at = min(os.lseek(fd, pos, os.SEEK_HOLE), end)
        runs.append((pos, hole_at - pos, True))
        pos = hole_at
    return runs


def drop_cache(fd: int, offset: int = 0, length: int = 0) -> None:
    """Advise the kernel to drop the clean cached pages of a range of the file (all of
    it by default). Only advice: a failure changes nothing that matters.

    Written data that will not be read again soon goes after its fdatasync: the next
    write then reuses the freed pages. Written through the page cache without it,
    gigabytes synced chunk by chunk ran into the kernel's dirty-page throttling: on the
    test machine 378-448 MB/s and 9-11 s of system time for 3 GiB in 4 MiB writes from
    two threads, against 1,813-1,894 MB/s and 0.6-0.7 s with it (O_DIRECT: 1,629-1,710
    MB/s, 0.2 s)."""
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_synced(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) with ``data``, durable on return but for its
    directory entry (the caller syncs the directory)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_all(fd, [data])
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write a small file so that a crash leaves the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        pwrite_full(fd, data, 0)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def lock_file(path: Path) -> int:
    """Take an exclusive flock on ``path`` without waiting; return the descriptor that
    holds it (closing it releases the lock). BlockingIOError if someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_dir(directory: Path) -> None:
    """Remove a directory so that a crash midway leaves either all of it or a hidden
    ``.tmp-del-`` leftover (which engine start-up sweeps), never half of it."""
    doomed = directory.with_name(f".tmp-del-{directory.name}")
    os.rename(directory, doomed)
    fsync_dir(directory.parent)
    shutil.rmtree(doomed)

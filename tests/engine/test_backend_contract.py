"""The backend contract (``disksnap.engine.backends.base``), run against every backend.

Each implementation is one param of the ``backend`` fixture; adding S3 later means
adding one entry to ``BACKENDS`` and a branch in ``_make_backend``. Tests that only make
sense for the local directory backend (temporary files, file modes, paths) come last.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import mmap
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from disksnap.engine.backends.base import Backend, InvalidKey, KeyNotFound
from disksnap.engine.backends.local import LocalBackend
from disksnap.engine.backends.memory import MemoryBackend

MiB = 1 << 20

BACKENDS = ["local", "memory"]


def _make_backend(kind: str, tmp_path: Path) -> Backend:
    if kind == "local":
        return LocalBackend(tmp_path / "store")
    if kind == "memory":
        return MemoryBackend()
    raise AssertionError(f"unknown backend kind {kind}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _make_backend(request.param, tmp_path)


# --- put / get -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00", bytes(range(256)) * (5 * MiB // 256)],
    ids=["empty", "one-byte", "5MiB"],
)
def test_put_get_roundtrip(backend: Backend, value: bytes) -> None:
    backend.put("objects/k1", value)
    assert backend.get("objects/k1") == value
    assert backend.stat("objects/k1") == len(value)
    assert backend.exists("objects/k1")


def test_a_value_in_parts_is_stored_as_their_concatenation(backend: Backend) -> None:
    big = bytes(range(256)) * (3 * MiB // 256)
    parts = (b"head", bytearray(b""), memoryview(big)[1:], bytearray(b"tail"))
    backend.put("objects/parts", parts)
    expected = b"head" + big[1:] + b"tail"
    assert backend.get("objects/parts") == expected
    assert backend.stat("objects/parts") == len(expected)


def test_overwrite_replaces_value(backend: Backend) -> None:
    backend.put("a/b", b"first value, longer")
    backend.put("a/b", b"second")
    assert backend.get("a/b") == b"second"
    assert backend.stat("a/b") == len(b"second")
    assert list(backend.list("a/")) == ["a/b"]


def test_keys_are_independent(backend: Backend) -> None:
    backend.put("x/one", b"1")
    backend.put("x/two", b"22")
    backend.put("one", b"333")
    assert backend.get("x/one") == b"1"
    assert backend.get("x/two") == b"22"
    assert backend.get("one") == b"333"


# --- missing keys ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "stat", "delete"])
def test_missing_key_raises_key_not_found(backend: Backend, method: str) -> None:
    backend.put("present/key", b"v")
    call: Callable[[str], object] = getattr(backend, method)
    with pytest.raises(KeyNotFound) as info:
        call("absent/key")
    assert info.value.key == "absent/key"
    assert backend.get("present/key") == b"v"


def test_exists_true_and_false(backend: Backend) -> None:
    assert not backend.exists("k")
    backend.put("k", b"v")
    assert backend.exists("k")
    assert not backend.exists("k2")
    assert not backend.exists("k/sub")


@pytest.mark.parametrize("method", ["get", "stat", "delete"])
def test_key_that_is_only_a_prefix_of_other_keys_is_missing(backend: Backend, method: str) -> None:
    # "dir" is not a key even though "dir/x" is (backends may map "/" to directories,
    # but that must not leak through the contract).
    backend.put("dir/x", b"v")
    assert not backend.exists("dir")
    call: Callable[[str], object] = getattr(backend, method)
    with pytest.raises(KeyNotFound):
        call("dir")
    assert backend.get("dir/x") == b"v"


def test_delete_then_missing(backend: Backend) -> None:
    backend.put("d/k", b"v")
    backend.put("d/other", b"w")
    backend.delete("d/k")
    assert not backend.exists("d/k")
    with pytest.raises(KeyNotFound):
        backend.get("d/k")
    with pytest.raises(KeyNotFound):
        backend.delete("d/k")
    assert sorted(backend.list("")) == ["d/other"]
    backend.put("d/k", b"again")
    assert backend.get("d/k") == b"again"


# --- list ------------------------------------------------------------------------------

KEYS = [
    "chunks/ab/x",
    "chunks/ab/y",
    "chunks/ac/z",
    "chunks/b0/w",
    "chunksx",
    "manifests/fd8one",
    "manifests/fd8two",
    "top",
]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", KEYS),
        ("chunks/a", ["chunks/ab/x", "chunks/ab/y", "chunks/ac/z"]),
        ("chunks/ab/", ["chunks/ab/x", "chunks/ab/y"]),
        ("chunks/ab/x", ["chunks/ab/x"]),
        ("chunks", [k for k in KEYS if k.startswith("chunks")]),
        ("chunks/", ["chunks/ab/x", "chunks/ab/y", "chunks/ac/z", "chunks/b0/w"]),
        ("manifests/fd8t", ["manifests/fd8two"]),
        ("t", ["top"]),
        ("nothing", []),
        ("chunks/zz/", []),
        ("top/", []),
    ],
)
def test_list_string_prefix(backend: Backend, prefix: str, expected: list[str]) -> None:
    for k in KEYS:
        backend.put(k, k.encode())
    listed = list(backend.list(prefix))
    assert len(listed) == len(set(listed)), "a key was listed twice"
    assert sorted(listed) == sorted(expected)


def test_list_default_prefix_lists_everything(backend: Backend) -> None:
    for k in KEYS:
        backend.put(k, b"")
    assert sorted(backend.list()) == sorted(KEYS)


def test_list_empty_backend(backend: Backend) -> None:
    assert list(backend.list()) == []
    assert list(backend.list("chunks/")) == []


@pytest.mark.parametrize("prefix", ["../", "../../", "/", "a//"])
def test_list_with_prefix_no_key_can_have_is_empty(
    backend: Backend, prefix: str, tmp_path: Path
) -> None:
    # A file next to (not inside) the local backend's root: no key names it.
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "file").write_bytes(b"")
    backend.put("a/b", b"v")
    try:
        listed = list(backend.list(prefix))
    except InvalidKey:
        return
    assert listed == []


# --- invalid keys ----------------------------------------------------------------------

INVALID_KEYS = ["", "a//b", "../x", "a/./b", "A", "/abs", "a/b/", ".", "..", "a/../b", "a b"]


@pytest.mark.parametrize("key", INVALID_KEYS)
@pytest.mark.parametrize("method", ["put", "get", "exists", "stat", "delete"])
def test_invalid_key_raises(backend: Backend, method: str, key: str) -> None:
    call: Callable[[str], object] = getattr(backend, method)
    if method == "put":
        call = functools.partial(backend.put, data=b"data")
    with pytest.raises(InvalidKey):
        call(key)
    assert list(backend.list()) == []


# --- concurrency -----------------------------------------------------------------------


def test_concurrent_puts_are_all_readable(backend: Backend) -> None:
    threads_n, per_thread = 8, 40
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                # Shared directories between threads exercise directory creation races.
                backend.put(f"c/{i % 5:02d}/t{t}-{i}", f"{t}:{i}".encode() * (i + 1))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    expected = {
        f"c/{i % 5:02d}/t{t}-{i}": f"{t}:{i}".encode() * (i + 1)
        for t in range(threads_n)
        for i in range(per_thread)
    }
    assert sorted(backend.list("c/")) == sorted(expected)
    for key, value in expected.items():
        assert backend.get(key) == value


# --- local directory backend only ------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "store")


def test_local_interrupted_put_leaves_invisible_temporary(local: LocalBackend) -> None:
    local.put("chunks/ab/real", b"value")
    # What a put killed between creating its temporary file and renaming it leaves.
    leftover = local.root / "chunks" / "ab" / ".tmp-0123456789abcdef"
    leftover.write_bytes(b"partial")
    top_leftover = local.root / ".tmp-fedcba9876543210"
    top_leftover.write_bytes(b"")
    assert sorted(local.list()) == ["chunks/ab/real"]
    assert list(local.list("chunks/ab/")) == ["chunks/ab/real"]
    assert local.sweep_temporaries() == 2
    assert not leftover.exists()
    assert not top_leftover.exists()
    assert local.get("chunks/ab/real") == b"value"
    assert local.sweep_temporaries() == 0


def test_local_put_leaves_no_temporary(local: LocalBackend) -> None:
    for i in range(5):
        local.put(f"p/k{i}", b"v" * i)
    names = [n for _, _, files in os.walk(local.root) for n in files]
    assert sorted(names) == [f"k{i}" for i in range(5)]


def test_local_files_are_private(local: LocalBackend) -> None:
    local.put("chunks/ab/k", b"secret")
    local.put("chunks/ab/k", b"overwritten")
    mode = stat.S_IMODE((local.root / "chunks" / "ab" / "k").stat().st_mode)
    assert mode == 0o600


def test_local_layout_maps_slashes_to_directories(local: LocalBackend) -> None:
    local.put("a/b/c", b"xyz")
    assert (local.root / "a" / "b" / "c").read_bytes() == b"xyz"


def test_local_key_never_escapes_root(tmp_path: Path) -> None:
    root = tmp_path / "nested" / "store"
    backend = LocalBackend(root)
    outside = tmp_path / "nested" / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not yours")
    for key in ["../outside/secret", "/etc/passwd", "a/../../outside/secret", "../x"]:
        with pytest.raises(InvalidKey):
            backend.put(key, b"evil")
        with pytest.raises(InvalidKey):
            backend.get(key)
        with pytest.raises(InvalidKey):
            backend.exists(key)
        with pytest.raises(InvalidKey):
            backend.delete(key)
    assert (outside / "secret").read_bytes() == b"not yours"
    assert not (tmp_path / "nested" / "x").exists()
    # Listing must not walk out of the root either.
    for prefix in ["../", "../outside/", "../../"]:
        try:
            listed = list(backend.list(prefix))
        except InvalidKey:
            continue
        assert listed == [], f"list({prefix!r}) reported files outside the root"


def _resident_pages(path: Path) -> int:
    """How many of the file's pages are in the page cache (mincore on a mapping)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            vec = ctypes.create_string_buffer(pages)
            assert libc.mincore(addr, size, vec) == 0, os.strerror(ctypes.get_errno())
            return sum(b & 1 for b in vec.raw)
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def test_local_put_leaves_the_value_out_of_the_page_cache(
    local: LocalBackend, tmp_path: Path
) -> None:
    value = os.urandom(2 * MiB)
    control = tmp_path / "control"
    control.write_bytes(value)  # written the usual way: stays cached
    if _resident_pages(control) == 0:
        pytest.skip("this filesystem does not keep written pages in the page cache")
    local.put("chunks/ab/k", value)
    assert _resident_pages(local.root / "chunks" / "ab" / "k") == 0
    assert local.get("chunks/ab/k") == value

"""``write_all`` writes every part, in order, however short the system's writes are."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from disksnap.engine.fileio import write_all

Parts = Sequence[bytes | bytearray | memoryview]


def _written(path: Path, parts: Parts) -> bytes:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, parts)
    finally:
        os.close(fd)
    return path.read_bytes()


@pytest.mark.parametrize("cap", [1, 7, 4096, None], ids=["1", "7", "4096", "whole"])
def test_short_writes_continue_where_they_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: int | None
) -> None:
    real = os.writev
    calls = 0

    def short_writev(fd: int, buffers: Sequence[memoryview]) -> int:
        """The kernel may write less than asked (a signal, a full device): at most ``cap``
        bytes here, taken from the front of the buffers like a real short write."""
        nonlocal calls
        calls += 1
        if cap is None:
            return real(fd, buffers)
        return real(fd, [b"".join(bytes(b) for b in buffers)[:cap]])

    monkeypatch.setattr(os, "writev", short_writev)  # what fileio calls
    body = bytes(range(256)) * 40
    parts: Parts = (b"head", b"", bytearray(body), memoryview(b"tail-xyz")[:4])
    assert _written(tmp_path / "f", parts) == b"head" + body + b"tail"
    total = 4 + len(body) + 4
    assert calls == (1 if cap is None else -(-total // cap))


def test_nothing_to_write_writes_nothing(tmp_path: Path) -> None:
    assert _written(tmp_path / "f", ()) == b""
    assert _written(tmp_path / "g", (b"", b"")) == b""

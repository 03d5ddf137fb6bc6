"""Timestamped, sequential records written one at a time over NBD, and the checks that
a disk image is exactly the content after one of them.

Record ``i`` is one 4 KiB block at block ``i % blocks``: its index, the wall-clock
nanoseconds it was made at, and filler derived from both, so every byte is checked.
The writer waits for each acknowledgement before sending the next write, so at any
moment the disk holds exactly "the content after record k" for some k.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from dataclasses import dataclass, field

from tests.nbd import client as nbd

BLOCK = 4096


def record(index: int, stamp: int) -> bytes:
    head = struct.pack(">QQ", index, stamp)
    seed = hashlib.sha256(head).digest()
    return head + (seed * (BLOCK // len(seed)))[: BLOCK - len(head)]


@dataclass
class Writer:
    """Writes records until stopped (or the connection dies); remembers what was sent,
    acknowledged and covered by an acknowledged FLUSH."""

    client: nbd.Client
    blocks: int
    flush_every: int = 0  # 0: never flush
    stamps: list[int] = field(default_factory=list)  # stamps[i]: record i was sent
    acked: int = -1  # last acknowledged record
    flushed: int = -1  # last record an acknowledged FLUSH covers
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Writer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def wait_for(self, acked: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < acked:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self) -> None:
        """Wait for the writer to end by itself (the server went away)."""
        assert self._thread is not None
        self._thread.join(60)
        assert not self._thread.is_alive(), "the writer is stuck"

    def _run(self) -> None:
        try:
            i = 0
            while not self._stop.is_set():
                stamp = time.time_ns()
                self.stamps.append(stamp)
                err = self.client.write((i % self.blocks) * BLOCK, record(i, stamp))
                assert err == 0, f"write {i} failed with {err}"
                self.acked = i
                if self.flush_every and i % self.flush_every == self.flush_every - 1:
                    assert self.client.call(nbd.FLUSH, 0, 0).error == 0
                    self.flushed = i
                i += 1
        except (ConnectionError, OSError) as e:
            self.error = e

    def image_after(self, k: int) -> bytes:
        """The disk's first ``blocks`` blocks after record ``k`` (zeroes never written)."""
        image = bytearray(self.blocks * BLOCK)
        for i in range(max(0, k - self.blocks + 1), k + 1):
            b = i % self.blocks
            image[b * BLOCK : (b + 1) * BLOCK] = record(i, self.stamps[i])
        return bytes(image)


def last_record(image: bytes) -> int:
    """The highest record index in an image (-1 if none)."""
    best = -1
    for b in range(len(image) // BLOCK):
        index, _ = struct.unpack_from(">QQ", image, b * BLOCK)
        if image[b * BLOCK : (b + 1) * BLOCK] != bytes(BLOCK):
            best = max(best, index)
    return best

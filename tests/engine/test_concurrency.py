"""A writer hammers the disk while snapshots are taken: each snapshot must equal the
disk after exactly the writes that preceded its checkpoint - no torn write, no later
write, no lost write."""

from __future__ import annotations

import random
import threading
from array import array

from disksnap.engine.engine import Engine
from tests.engine.conftest import KiB, MiB
from tests.engine.helpers import read_all, restored

SIZE = 8 * MiB


class StampWriter(threading.Thread):
    """Write k fills its range with the 8-byte stamp k; ranges are 8-byte aligned and may
    span several chunks."""

    def __init__(self, engine: Engine, disk_id: str) -> None:
        super().__init__(daemon=True)
        self.disk = engine.disk(disk_id)
        self.rng = random.Random(7)
        self.log: list[tuple[int, int]] = []  # (offset, length) of write k at index k-1
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                k = len(self.log) + 1
                length = self.rng.choice([8, 4 * KiB, 64 * KiB, 600 * KiB])
                offset = self.rng.randrange(0, (SIZE - length) // 8) * 8
                self.disk.write(offset, array("Q", [k]).tobytes() * (length // 8))
                self.log.append((offset, length))
        except BaseException as e:  # noqa: BLE001 - surfaced by the test
            self.error = e

    def state_after(self, n: int) -> bytes:
        buf = bytearray(SIZE)
        for k, (offset, length) in enumerate(self.log[:n], start=1):
            buf[offset : offset + length] = array("Q", [k]).tobytes() * (length // 8)
        return bytes(buf)


def test_snapshots_under_live_writes_are_exact_points_in_time(engine: Engine) -> None:
    engine.create_disk("d", SIZE)
    writer = StampWriter(engine, "d")
    writer.start()
    try:
        points = []
        during: list[int] = []  # writes that landed while a build was running
        for n in range(3):
            while len(writer.log) < 200 * (n + 1):
                threading.Event().wait(0.001)
            lo = len(writer.log)
            engine.create_checkpoint("d", f"s{n}")
            hi = len(writer.log) + 1  # a write may be in flight past the log
            engine.build_snapshot(f"s{n}")
            points.append((f"s{n}", lo, hi))
            during.append(len(writer.log) - hi)
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None
    assert len(writer.log) > 600
    assert sum(during) > 0, "no write overlapped a build: copy-before-write untested"
    for sid, lo, hi in points:
        content = restored(engine, sid)
        n = max(array("Q", content), default=0)
        assert lo <= n <= hi, (sid, lo, n, hi)
        assert content == writer.state_after(n), f"{sid} is not the state after write {n}"
    assert read_all(engine.disk("d")) == writer.state_after(len(writer.log))

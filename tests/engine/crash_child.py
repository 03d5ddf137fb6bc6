"""Child process for test_crash: resumes or starts snapshot "s1" of disk "d" while a writer
overwrites the frozen content, reporting acknowledged (written and flushed) writes and
build progress on stdout, until the parent kills it with SIGKILL.

Run as ``python -m tests.engine.crash_child ROOT [--no-pause]``; ``--no-pause`` builds
without waiting after each progress report (to be killed once built).
"""

from __future__ import annotations

import sys
import threading
import time
from array import array
from pathlib import Path

from disksnap.engine.engine import Engine, EngineConfig

KiB = 1024
CONFIG = EngineConfig(chunk_size=256 * KiB, block_size=16 * KiB, workers=1)
BLOCK = 4 * KiB


def stamp(i: int) -> bytes:
    return array("Q", [i + 1]).tobytes() * (BLOCK // 8)


def main(root: Path, *, pause: bool = True) -> None:
    engine = Engine(root, config=CONFIG)
    disk = engine.disk("d")
    if not engine.pending_checkpoints():
        engine.create_checkpoint("d", "s1")
    print("checkpoint", flush=True)
    out = threading.Lock()
    acked = threading.Event()

    def writer() -> None:
        # Back to front, so the writes hit extents the build has not read yet.
        for i in reversed(range(disk.size // BLOCK)):
            disk.write(i * BLOCK, stamp(i))
            disk.flush()
            with out:
                print("ack", i, flush=True)
            acked.set()
            time.sleep(0.002)

    threading.Thread(target=writer, daemon=True).start()

    def progress(done: int, total: int) -> None:
        # The parent kills after a number of reports: let the writer be acknowledged
        # at least once by then, however slow the machine is.
        acked.wait(30)
        with out:
            print("progress", done, total, flush=True)
        if pause:
            time.sleep(0.3)

    engine.build_snapshot("s1", progress=progress)
    print("built", flush=True)
    time.sleep(60)  # wait to be killed


if __name__ == "__main__":
    main(Path(sys.argv[1]), pause="--no-pause" not in sys.argv[2:])

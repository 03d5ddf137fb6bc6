"""A lower CPU priority for the engine's background threads.

Snapshot builds, restores, verify and GC keep both cores busy hashing and compressing.
Requests to the same process - an NBD write, an API call - then waited for a core
behind them (bench/nbd.py: most slow 4 KiB writes during a snapshot spent their time
waiting for a thread to be scheduled, not in the engine). Linux gives every thread its
own nice value, so the pool's threads run at ``NICE`` and yield to request threads.
"""

from __future__ import annotations

import contextlib
import os
import threading

NICE = 10


def lower_priority(nice: int = NICE) -> None:
    """Make the calling thread's nice value at least ``nice`` (never raise priority:
    that needs privileges). Where threads have no nice of their own, nothing happens."""
    tid = threading.get_native_id()
    with contextlib.suppress(OSError, AttributeError):
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if current < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)

"""The engine's pool threads run at a lower CPU priority than the threads serving
requests, and never change the caller's."""

from __future__ import annotations

import os
import threading

from disksnap.engine.background import NICE, lower_priority
from disksnap.engine.engine import Engine


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_pool_threads_are_niced_and_the_caller_is_not(engine: Engine) -> None:
    before = _nice()
    niced = engine._pool.submit(_nice).result()
    assert niced >= NICE
    assert _nice() == before


def test_lower_priority_never_raises_a_threads_priority() -> None:
    seen: list[int] = []

    def run() -> None:
        lower_priority(NICE + 5)
        lower_priority(NICE)  # asking for less leaves it where it is
        seen.append(_nice())

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == [NICE + 5]

"""Tasks in flight in a pool, collected in the order they finish (build, hydration)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TypeVar

T = TypeVar("T")


def first_finished(inflight: set[Future[T]], keep: int) -> Iterator[list[T]]:
    """Results of the tasks that finish first, a list per wait, until at most ``keep``
    are left in ``inflight`` (which this removes them from). Waiting for the oldest
    instead lets one slow task (a chunk to compress, an fdatasync) leave the pool's
    threads without work behind it; a failed task raises here."""
    while len(inflight) > keep:
        finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
        inflight -= finished
        yield [f.result() for f in finished]

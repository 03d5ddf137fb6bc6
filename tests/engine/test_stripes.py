"""A disk's stripe locks (engine/stripes.py): sets exclude each other stripe by stripe,
taking all of them waits for the holders in flight and holds back later ones, and sets
taken in ascending order never deadlock."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from disksnap.engine.stripes import Stripes

WAIT = 10  # seconds a test waits for a thread that should finish


def test_a_set_is_taken_only_when_none_of_its_stripes_is_held() -> None:
    stripes = Stripes(8)
    assert stripes.try_acquire([1, 3])
    assert not stripes.try_acquire([0, 3])
    assert stripes.held() == [1, 3], "a refused set takes nothing"
    assert stripes.try_acquire([0, 2, 7])
    assert stripes.held() == [0, 1, 2, 3, 7]
    stripes.release([1, 3])
    assert stripes.try_acquire([3])
    stripes.release([0, 2, 3, 7])
    assert stripes.held() == []


def test_releasing_a_stripe_not_held_is_an_error_and_changes_nothing() -> None:
    stripes = Stripes(4)
    stripes.acquire([2])
    with pytest.raises(RuntimeError, match="not held"):
        stripes.release([1, 2])
    assert stripes.held() == [2]


@pytest.mark.parametrize("count", [0, 1025])
def test_a_stripe_count_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        Stripes(count)


def test_taking_all_waits_for_a_holder_and_holds_back_a_later_one() -> None:
    """A checkpoint takes stripes 0-4, waits for a write on 5; a write to stripe 2 that
    comes after it waits for the checkpoint, as with separate locks taken in order."""
    stripes = Stripes(8)
    stripes.acquire([5])  # a write in flight
    order: list[str] = []
    checkpoint = threading.Thread(target=_hold, args=(stripes, range(8), order, "all"))
    checkpoint.start()
    _until(lambda: stripes.held() == [0, 1, 2, 3, 4, 5])
    later = threading.Thread(target=_hold, args=(stripes, [2], order, "later"))
    later.start()
    time.sleep(0.05)
    assert order == []
    stripes.release([5])
    checkpoint.join(WAIT)
    later.join(WAIT)
    assert order == ["all", "later"]
    assert stripes.held() == []


def test_overlapping_sets_exclude_each_other_and_never_deadlock() -> None:
    """Threads take random sets (ascending, as disks do) and update a counter per stripe
    in two steps, yielding between them; every update survives."""
    stripes = Stripes(16)
    counters = [0] * 16
    expected = [[0] * 16 for _ in range(4)]

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(2_000):
            chosen = sorted(rng.sample(range(16), rng.randint(1, 4)))
            with stripes.holding(chosen):
                for s in chosen:
                    value = counters[s]
                    time.sleep(0)  # let another thread run, mid-update
                    counters[s] = value + 1
                    expected[seed][s] += 1
            if rng.random() < 0.01:
                with stripes.holding_all():
                    pass

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert not w.is_alive(), "deadlocked"
    assert counters == [sum(e[s] for e in expected) for s in range(16)]
    assert stripes.held() == []


def _hold(stripes: Stripes, chosen: range | list[int], order: list[str], name: str) -> None:
    with stripes.holding(list(chosen)):
        order.append(name)


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.001)

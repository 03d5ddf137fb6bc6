"""``disksnap serve`` leaves what start-up made out of later garbage collections."""

from __future__ import annotations

import gc
import weakref

from disksnap.cli.serve import settle_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_start_up_garbage_is_collected_and_the_rest_frozen() -> None:
    garbage = _Node()
    gone = weakref.ref(garbage)
    kept = _Node()
    del garbage
    try:
        settle_heap()
        assert gone() is None  # collected first, not frozen for good
        assert gc.get_freeze_count() > 0
        assert not any(obj is kept for obj in gc.get_objects())  # out of collections
    finally:
        gc.unfreeze()
    assert any(obj is kept for obj in gc.get_objects())

"""Watching a ``Meta`` from tests: the transactions it begins, the changes it queues."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from disksnap.meta import Meta, Transaction


def count_transactions(meta: Meta, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each transaction ``meta`` begins from now on, in order (True: read-only)."""
    begun: list[bool] = []
    real = meta.transaction

    @contextlib.contextmanager
    def counting(*, readonly: bool = False) -> Iterator[Transaction]:
        begun.append(readonly)
        with real(readonly=readonly) as tx:
            yield tx

    monkeypatch.setattr(meta, "transaction", counting)
    return begun


def wait_queued(meta: Meta, changes: int, timeout: float = 10) -> None:
    """Until ``changes`` grouped changes wait for the writer's turn."""
    deadline = time.monotonic() + timeout
    while meta.queued_changes < changes:
        assert time.monotonic() < deadline, f"{changes} changes did not queue"
        time.sleep(0.005)

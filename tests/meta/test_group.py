"""``Meta.grouped``: a change committed before it returns, on both databases; on SQLite,
the changes queued behind the writer committed together (group commit), each undone
alone if it raises."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from disksnap.domain.clock import FakeClock
from disksnap.meta import Folder, Meta, Transaction
from disksnap.meta.errors import MetaUnavailable
from tests.meta.counting import count_transactions, wait_queued
from tests.meta.factories import T0


def _insert(folder_id: str) -> Callable[[Transaction], str]:
    def work(tx: Transaction) -> str:
        tx.folders.insert(Folder(folder_id, "", T0))
        return folder_id

    return work


def _refused(folder_id: str) -> Callable[[Transaction], None]:
    """A change that writes, then raises."""

    def work(tx: Transaction) -> None:
        tx.folders.insert(Folder(folder_id, "", T0))
        raise ValueError("refused after writing")

    return work


def _folders(meta: Meta) -> list[str]:
    with meta.transaction(readonly=True) as tx:
        return sorted(f.id for f in tx.folders.list())


def test_grouped_commits_before_returning_the_result(meta: Meta) -> None:
    hooks: list[str] = []
    assert meta.grouped(_insert("b1ga"), before_commit=lambda: hooks.append("x")) == "b1ga"
    assert _folders(meta) == ["b1ga"]
    assert hooks == ["x"]
    assert meta.queued_changes == 0


def test_grouped_work_that_raises_changes_nothing(meta: Meta) -> None:
    hooks: list[str] = []

    with pytest.raises(ValueError, match="refused after writing"):
        meta.grouped(_refused("b1ga"), before_commit=lambda: hooks.append("x"))
    assert _folders(meta) == []
    assert hooks == []


# --- SQLite: the group commit itself ----------------------------------------------------


@pytest.fixture
def sqlite_meta(tmp_path: Path) -> Iterator[Meta]:
    meta = Meta.open(f"sqlite:///{tmp_path / 'meta.db'}", FakeClock(), busy_timeout=10)
    yield meta
    meta.close()


class Callers:
    """Threads that each call ``meta.grouped`` while the test holds the writer's turn,
    so that their pieces queue and the writer commits them together."""

    def __init__(self, meta: Meta) -> None:
        self.meta = meta
        self.threads: list[threading.Thread] = []
        self.results: dict[int, object] = {}
        self.errors: dict[int, BaseException] = {}
        self.begun: list[bool] = []

    def call(
        self, n: int, work: Callable[[Transaction], object], hook: Callable[[], None] | None
    ) -> None:
        def run() -> None:
            try:
                self.results[n] = self.meta.grouped(work, before_commit=hook)
            except BaseException as exc:  # noqa: BLE001 - the test looks at it
                self.errors[n] = exc

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)

    @contextlib.contextmanager
    def holding_the_writer(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Hold a write transaction while the callers start; count the transactions
        begun from then on; once every caller queued, let go and join them."""
        with self.meta.transaction():
            self.begun = count_transactions(self.meta, monkeypatch)
            yield
            wait_queued(self.meta, len(self.threads))
        for thread in self.threads:
            thread.join(10)


def test_changes_queued_behind_the_writer_commit_in_one_transaction(
    sqlite_meta: Meta, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks: list[str] = []

    def sync() -> None:
        hooks.append("sync")

    callers = Callers(sqlite_meta)
    with callers.holding_the_writer(monkeypatch):
        for n in range(5):
            callers.call(n, _insert(f"b1g{n}"), sync)
    assert callers.errors == {}
    assert callers.results == {n: f"b1g{n}" for n in range(5)}
    assert callers.begun == [False]  # one write transaction for the five
    assert hooks == ["sync"]  # the same hook, once per group
    assert _folders(sqlite_meta) == [f"b1g{n}" for n in range(5)]


def test_a_change_that_raises_is_undone_alone(
    sqlite_meta: Meta, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks: list[str] = []

    failing = _refused("b1gbad")
    callers = Callers(sqlite_meta)
    with callers.holding_the_writer(monkeypatch):
        callers.call(0, _insert("b1g0"), lambda: hooks.append("ok0"))
        callers.call(1, failing, lambda: hooks.append("bad"))
        callers.call(2, _insert("b1g2"), lambda: hooks.append("ok2"))
    assert callers.results == {0: "b1g0", 2: "b1g2"}
    assert isinstance(callers.errors[1], ValueError)
    assert callers.begun == [False]
    assert sorted(hooks) == ["ok0", "ok2"]  # a failed change's hook does not run
    assert _folders(sqlite_meta) == ["b1g0", "b1g2"]


def test_a_hook_that_raises_fails_the_whole_group(
    sqlite_meta: Meta, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hook() -> None:
        raise OSError("sync failed")

    callers = Callers(sqlite_meta)
    with callers.holding_the_writer(monkeypatch):
        callers.call(0, _insert("b1g0"), hook)
        callers.call(1, _insert("b1g1"), hook)
    assert callers.results == {}
    assert sorted(callers.errors) == [0, 1]
    assert all(isinstance(e, OSError) for e in callers.errors.values())
    assert _folders(sqlite_meta) == []


def test_changes_run_in_their_callers_context(
    sqlite_meta: Meta, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the writer's thread, a change sees its own caller's context variables (the
    request id its log entries carry)."""
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    seen: dict[int, str] = {}

    def work(n: int) -> Callable[[Transaction], None]:
        def run(_tx: Transaction) -> None:
            seen[n] = request_id.get()

        return run

    def call(n: int) -> None:
        request_id.set(f"req-{n}")
        sqlite_meta.grouped(work(n))

    callers = Callers(sqlite_meta)
    with callers.holding_the_writer(monkeypatch):
        for n in range(3):
            thread = threading.Thread(target=call, args=(n,))
            thread.start()
            callers.threads.append(thread)
    assert callers.begun == [False]
    assert seen == {n: f"req-{n}" for n in range(3)}


def test_a_change_that_gets_no_turn_is_withdrawn(tmp_path: Path) -> None:
    meta = Meta.open(f"sqlite:///{tmp_path / 'meta.db'}", FakeClock(), busy_timeout=0.05)
    ran: list[str] = []

    def work(tx: Transaction) -> None:
        ran.append("late")
        tx.folders.insert(Folder("b1glate", "", T0))

    try:
        with meta.transaction():
            with pytest.raises(MetaUnavailable):
                meta.grouped(work)
            assert meta.queued_changes == 0
        assert meta.grouped(_insert("b1gnext")) == "b1gnext"
        assert ran == []  # the refused change never ran, not even with the next group
        assert _folders(meta) == ["b1gnext"]
    finally:
        meta.close()


def test_changes_queued_while_a_group_commits_go_together_in_the_next(
    sqlite_meta: Meta, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer, done with its group, takes every change queued meanwhile into the
    next."""
    begun = count_transactions(sqlite_meta, monkeypatch)
    running, release = threading.Event(), threading.Event()

    def slow(tx: Transaction) -> str:
        running.set()
        assert release.wait(10)
        return _insert("b1gfirst")(tx)

    callers = Callers(sqlite_meta)
    callers.call(0, slow, None)
    assert running.wait(10)  # the first group holds the writer
    for n in range(1, 6):
        callers.call(n, _insert(f"b1g{n}"), None)
    wait_queued(sqlite_meta, 5)
    release.set()
    for thread in callers.threads:
        thread.join(10)
    assert callers.errors == {}
    assert callers.results == {0: "b1gfirst", **{n: f"b1g{n}" for n in range(1, 6)}}
    assert begun == [False, False]  # the first group, then the five together
    assert meta_is_idle(sqlite_meta)


def test_a_change_that_waits_too_long_behind_a_group_is_withdrawn(tmp_path: Path) -> None:
    """A caller whose change the writer did not take within the timeout gets
    MetaUnavailable; the group in progress and the changes after it are not held up."""
    meta = Meta.open(f"sqlite:///{tmp_path / 'meta.db'}", FakeClock(), busy_timeout=0.1)
    running, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def slow(tx: Transaction) -> str:
        running.set()
        assert release.wait(10)
        return _insert("b1gslow")(tx)

    def first() -> None:
        outcome["slow"] = meta.grouped(slow)

    try:
        slow_caller = threading.Thread(target=first)
        slow_caller.start()
        assert running.wait(10)
        with pytest.raises(MetaUnavailable):
            meta.grouped(_insert("b1glate"))  # queued behind the slow group: 0.1 s
        assert meta.queued_changes == 0
        release.set()
        slow_caller.join(10)
        assert outcome == {"slow": "b1gslow"}
        assert meta.grouped(_insert("b1gnext")) == "b1gnext"
        assert _folders(meta) == ["b1gnext", "b1gslow"]
    finally:
        meta.close()


def meta_is_idle(meta: Meta) -> bool:
    """No change queued, and the next one commits at once (the writer is not stuck)."""
    done: list[str] = []
    thread = threading.Thread(target=lambda: done.append(meta.grouped(_insert("b1gidle"))))
    thread.start()
    thread.join(5)
    return meta.queued_changes == 0 and done == ["b1gidle"]


def test_submit_returns_at_once_and_its_future_gets_the_committed_result(
    sqlite_meta: Meta, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``submit`` does not wait for the writer: the event loop queues a change without a
    thread of its own. The futures resolve once their one group commits."""
    hooks: list[str] = []

    def sync() -> None:
        hooks.append("sync")

    with sqlite_meta.transaction():  # the writer is busy
        begun = count_transactions(sqlite_meta, monkeypatch)
        futures = [sqlite_meta.submit(_insert(f"b1g{n}"), before_commit=sync) for n in range(3)]
        assert all(f is not None and not f.done() for f in futures)
        assert sqlite_meta.queued_changes == 3
    assert [f.result(10) for f in futures if f is not None] == ["b1g0", "b1g1", "b1g2"]
    assert begun == [False]
    assert hooks == ["sync"]
    assert _folders(sqlite_meta) == ["b1g0", "b1g1", "b1g2"]


def test_a_submitted_change_cancelled_before_its_turn_never_runs(
    sqlite_meta: Meta,
) -> None:
    ran: list[str] = []

    def work(tx: Transaction) -> None:
        ran.append("cancelled")
        tx.folders.insert(Folder("b1gcancelled", "", T0))

    with sqlite_meta.transaction():
        cancelled = sqlite_meta.submit(work)
        kept = sqlite_meta.submit(_insert("b1gkept"))
        assert cancelled is not None
        assert kept is not None
        assert cancelled.cancel()
    assert kept.result(10) == "b1gkept"
    assert ran == []
    assert _folders(sqlite_meta) == ["b1gkept"]
    assert meta_is_idle(sqlite_meta)


def test_a_submitted_change_that_raises_fails_its_future_alone(sqlite_meta: Meta) -> None:
    failing = _refused("b1gbad")
    with sqlite_meta.transaction():
        bad = sqlite_meta.submit(failing)
        good = sqlite_meta.submit(_insert("b1ggood"))
    assert bad is not None
    assert good is not None
    with pytest.raises(ValueError, match="refused after writing"):
        bad.result(10)
    assert good.result(10) == "b1ggood"
    assert _folders(sqlite_meta) == ["b1ggood"]


def test_changes_submitted_on_postgresql_are_left_to_their_callers(meta: Meta) -> None:
    """PostgreSQL runs writers side by side: nothing queues, ``submit`` says so."""
    future = meta.submit(_insert("b1ga"))
    if meta.dialect == "postgresql":
        assert future is None
        assert _folders(meta) == []
    else:
        assert future is not None
        assert future.result(10) == "b1ga"


def test_undo_runs_when_a_change_fails_and_only_then(meta: Meta) -> None:
    undone: list[str] = []

    failing = _refused("b1gbad")
    with pytest.raises(ValueError, match="refused after writing"):
        meta.grouped(failing, undo=lambda: undone.append("bad"))
    assert meta.grouped(_insert("b1ggood"), undo=lambda: undone.append("good")) == "b1ggood"
    assert undone == ["bad"]


def test_a_failed_group_is_undone_before_its_futures_are_decided(sqlite_meta: Meta) -> None:
    """Each piece of a group whose hook failed runs its undo before its caller hears of
    the failure: a caller that retries at once finds nothing left of its first try."""
    futures: list[Future[str]] = []
    seen: list[tuple[int, bool]] = []

    def undo(n: int) -> Callable[[], None]:
        return lambda: seen.append((n, futures[n].done()))

    def hook() -> None:
        raise OSError("sync failed")

    with sqlite_meta.transaction():
        for n in range(2):
            future = sqlite_meta.submit(_insert(f"b1g{n}"), before_commit=hook, undo=undo(n))
            assert future is not None
            futures.append(future)
    for future in futures:
        with pytest.raises(OSError, match="sync failed"):
            future.result(10)
    assert sorted(seen) == [(0, False), (1, False)]
    assert _folders(sqlite_meta) == []

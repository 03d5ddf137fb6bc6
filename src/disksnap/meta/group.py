"""Group commit: the changes of many callers committed in one write transaction.

SQLite has one writer. Under load, a process's write transactions queue for it, and
each pays for its own BEGIN, COMMIT and WAL sync. ``GroupCommit.submit`` queues a
piece of work instead, and one writer thread commits the queue in groups: it takes
every piece queued by the time the writer's turn comes, runs each in a savepoint of
its own, and commits once:

* a piece that raises is undone alone (its savepoint); the others go on;
* the ``before_commit`` hooks of the pieces that succeeded run once each, before the
  commit (a hook that raises fails the whole group);
* if the group cannot begin or commit, every piece in it fails with that error;
* each piece's future gets its result or error only once the group is decided, so a
  result means committed; a piece that failed first runs its ``undo`` hook (what it
  did outside the database), so its caller hears of the failure only once it is undone.

A piece runs in the writer thread, in the context (``contextvars``) of the caller that
queued it. A piece whose future is cancelled before the writer takes it never runs.

Callers do not wait in turn for a lock: ``submit`` returns at once (the event loop
queues a Create without a thread of its own), and ``run`` sleeps on its future. Each
group wakes each of its callers once, and only after it is decided.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from disksnap.meta.errors import MetaUnavailable

if TYPE_CHECKING:
    from disksnap.meta.store import Transaction

log = logging.getLogger(__name__)
T = TypeVar("T")
Hook = Callable[[], None]


class _Piece(Generic[T]):
    """One caller's work in a group, and the future its outcome goes to."""

    def __init__(
        self, work: Callable[[Transaction], T], before_commit: Hook | None, undo: Hook | None
    ) -> None:
        self.work = work
        self.before_commit = before_commit
        self.undo = undo
        self.context = contextvars.copy_context()
        self.future: Future[T] = Future()
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self, tx: Transaction) -> None:
        try:
            with tx.savepoint():
                self.result = self.context.run(self.work, tx)
        except BaseException as exc:  # noqa: BLE001 - it goes to the piece's future
            self.error = exc

    def decide(self) -> None:
        if self.error is not None:
            if self.undo is not None:
                try:
                    self.context.run(self.undo)
                except Exception:
                    log.exception("undoing a change that was not committed failed")
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.result)  # type: ignore[arg-type]  # set when no error


class GroupCommit:
    """A queue of pieces and the writer thread that commits them; ``transaction`` opens
    a write transaction (and takes the writer's turn). Thread-safe."""

    def __init__(
        self,
        transaction: Callable[[], contextlib.AbstractContextManager[Transaction]],
        *,
        timeout: float,
    ) -> None:
        self._transaction = transaction
        self._timeout = timeout
        self._queue: list[_Piece[Any]] = []
        self._queue_lock = threading.Lock()  # the queue, and whether the writer is on it
        self._writing = False
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="meta-writer")

    @property
    def queued(self) -> int:
        """How many pieces wait for the writer."""
        with self._queue_lock:
            return len(self._queue)

    def submit(
        self,
        work: Callable[[Transaction], T],
        before_commit: Hook | None = None,
        undo: Hook | None = None,
    ) -> Future[T]:
        """Queue ``work`` for a write transaction shared with other pieces, without
        waiting; its future gets its result once committed, or its error once ``undo``
        ran."""
        piece = _Piece(work, before_commit, undo)
        with self._queue_lock:
            self._queue.append(piece)
            start, self._writing = not self._writing, True
        if start:
            self._writer.submit(self._write)
        return piece.future

    def run(
        self,
        work: Callable[[Transaction], T],
        before_commit: Hook | None = None,
        undo: Hook | None = None,
    ) -> T:
        """``submit``, then wait: the result once committed, or the error
        (``MetaUnavailable`` if the writer took no group with it within the timeout)."""
        future = self.submit(work, before_commit, undo)
        try:
            return future.result(self._timeout)
        except TimeoutError:
            if not future.cancel():  # taken: its group is being decided
                return future.result()
        with self._queue_lock:
            self._queue = [p for p in self._queue if p.future is not future]
        raise MetaUnavailable("metadata database unavailable: database is locked")

    def close(self) -> None:
        """Wait for the groups queued; the writer thread ends."""
        self._writer.shutdown(wait=True)

    def _write(self) -> None:
        """Commit groups until the queue is empty."""
        while True:
            with self._queue_lock:
                if not self._queue:
                    self._writing = False
                    return
            self._commit_group()

    def _commit_group(self) -> None:
        """Run and commit every queued piece in one transaction."""
        pieces: list[_Piece[Any]] = []
        try:
            with self._transaction() as tx:
                pieces = self._take()  # what queued while the writer's turn came
                for piece in pieces:
                    piece.run(tx)
                hooks = [p.before_commit for p in pieces if p.error is None]
                for hook in dict.fromkeys(h for h in hooks if h is not None):
                    hook()
        except BaseException as exc:  # noqa: BLE001 - it goes to each piece's future
            if not pieces:  # nothing began: what waited for it fails
                pieces = self._take()
            for piece in pieces:
                if piece.error is None:
                    piece.result, piece.error = None, exc
        finally:
            for piece in pieces:
                piece.decide()

    def _take(self) -> list[_Piece[Any]]:
        """Empty the queue; its pieces whose futures were not cancelled meanwhile."""
        with self._queue_lock:
            pieces, self._queue = self._queue, []
        return [p for p in pieces if p.future.set_running_or_notify_cancel()]

"""Group commit: the changes of several threads committed in one write transaction.

SQLite has one writer. Under load, a process's write transactions queue for it, and
each pays for its own BEGIN, COMMIT and WAL sync. ``GroupCommit.run`` queues a piece of
work instead; whichever caller gets the writer's turn first runs every piece queued by
then in one transaction, each in a savepoint of its own, and commits once:

* a piece that raises is undone alone (its savepoint); the others go on;
* the ``before_commit`` hooks of the pieces that succeeded run once each, before the
  commit (a hook that raises fails the whole group);
* if the group cannot begin or commit, every piece in it fails with that error;
* each caller gets its own piece's result or error only once the group is decided, so
  a result means committed.

A piece runs in whichever thread leads the group, in the context (``contextvars``) of
the thread that queued it.

One caller leads at a time. The others sleep on their own piece until it is decided,
or until the leader, done with its group, hands the lead to the oldest piece still
queued: one thread woken per group, not every waiting caller taking a leader's lock in
turn only to find its piece decided.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from disksnap.meta.errors import MetaUnavailable

if TYPE_CHECKING:
    from disksnap.meta.store import Transaction

T = TypeVar("T")
Hook = Callable[[], None]


class _Piece(Generic[T]):
    """One caller's work in a group, and its outcome once it is decided. ``wake`` is set
    when it is, or when its caller is to lead the next group (``lead``, set before)."""

    def __init__(self, work: Callable[[Transaction], T], before_commit: Hook | None) -> None:
        self.work = work
        self.before_commit = before_commit
        self.context = contextvars.copy_context()
        self.wake = threading.Event()  # decided, or asked to lead (``lead``)
        self.lead = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self, tx: Transaction) -> None:
        try:
            with tx.savepoint():
                self.result = self.context.run(self.work, tx)
        except BaseException as exc:  # noqa: BLE001 - its caller raises it, in its own thread
            self.error = exc

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set whenever error is None


class GroupCommit:
    """A queue of pieces and the leader that commits them; ``transaction`` opens a
    write transaction (and takes the writer's turn). Thread-safe."""

    def __init__(
        self,
        transaction: Callable[[], contextlib.AbstractContextManager[Transaction]],
        *,
        timeout: float,
    ) -> None:
        self._transaction = transaction
        self._timeout = timeout
        self._queue: list[_Piece[Any]] = []
        self._queue_lock = threading.Lock()  # the queue and who leads
        self._leading = False

    @property
    def queued(self) -> int:
        """How many pieces wait for a leader."""
        with self._queue_lock:
            return len(self._queue)

    def run(self, work: Callable[[Transaction], T], before_commit: Hook | None = None) -> T:
        """Run ``work`` in a write transaction shared with other callers' pieces; its
        result once committed, or its error (``MetaUnavailable`` if no turn came within
        the timeout)."""
        piece = _Piece(work, before_commit)
        with self._queue_lock:
            self._queue.append(piece)
            piece.lead = not self._leading
            self._leading = True
        if not piece.lead:
            if not piece.wake.wait(self._timeout) and self._withdraw(piece):
                raise MetaUnavailable("metadata database unavailable: database is locked")
            piece.wake.wait()  # at once unless a leader has taken it and decides it soon
        if piece.lead:
            try:
                self._lead(piece)
            finally:
                self._pass_the_lead()
        return piece.outcome()

    def _withdraw(self, piece: _Piece[Any], *, leading: bool = False) -> bool:
        """Take ``piece`` out of the queue; False if a leader took it already, or (unless
        its caller is ``leading``) handed it the lead."""
        with self._queue_lock:
            if (piece.lead and not leading) or not any(p is piece for p in self._queue):
                return False
            self._queue = [p for p in self._queue if p is not piece]
            return True

    def _pass_the_lead(self) -> None:
        """Wake the oldest queued piece's caller to lead the next group, if any."""
        with self._queue_lock:
            if not self._queue:
                self._leading = False
                return
            following = self._queue[0]
            following.lead = True
        following.wake.set()

    def _lead(self, mine: _Piece[Any]) -> None:
        """Run and commit every queued piece (``mine`` among them) in one transaction."""
        pieces: list[_Piece[Any]] = []
        try:
            with self._transaction() as tx:
                with self._queue_lock:  # what queued while the writer's turn came
                    pieces, self._queue = self._queue, []
                for piece in pieces:
                    piece.run(tx)
                hooks = [p.before_commit for p in pieces if p.error is None]
                for hook in dict.fromkeys(h for h in hooks if h is not None):
                    hook()
        except BaseException as exc:  # noqa: BLE001 - each caller raises it, in its own thread
            if not pieces:  # nothing began: only the leader's own piece fails
                self._withdraw(mine, leading=True)
                pieces = [mine]
            for piece in pieces:
                if piece.error is None:
                    piece.result, piece.error = None, exc
        finally:
            for piece in pieces:
                piece.wake.set()

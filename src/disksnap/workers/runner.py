"""The worker loop: claim an operation, run its job under a lease, complete it.

A busy worker claims its next operation in the transaction that completes the last one
(one write transaction per operation, not two; on SQLite, shared with other changes
queued for the writer); it gives that claim back when it stops."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping

from disksnap.meta import Operation, Transaction
from disksnap.meta.errors import LeaseLost
from disksnap.service.core import Env
from disksnap.service.operations import error_result
from disksnap.service.status import internal_status
from disksnap.workers.jobs import ABANDON, JOBS, Job
from disksnap.workers.lease import Lease
from disksnap.workers.outcome import Completion, Outcome

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        env: Env,
        owner: str,
        *,
        lease: dt.timedelta = dt.timedelta(seconds=30),
        poll_seconds: float = 0.2,
        jobs: Mapping[str, Job] = JOBS,
    ) -> None:
        self.env = env
        self.owner = owner
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.jobs = jobs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._kinds = list(jobs)
        self._next: Operation | None = None  # claimed when the last one completed

    def run_once(self, *, look_first: bool = True, claim_next: bool = False) -> bool:
        """Claim and run one operation; False when there was none to claim.
        ``look_first``: find out in a read-only transaction whether there is any before
        taking the writer's turn to claim it (an idle worker's poll holds up no writer).
        ``claim_next``: claim the next one in the transaction that completes this one;
        the next call runs it (``give_back`` returns it to the queue)."""
        op, self._next = self._next, None
        if op is None:
            if look_first:
                with self.env.meta.transaction(readonly=True) as tx:
                    if not tx.operations.any_claimable(kinds=self._kinds):
                        return False
            with self.env.meta.transaction() as tx:
                op = tx.operations.claim(self.owner, self.lease, kinds=self._kinds)
            if op is None:
                return False
        lease = Lease(self.env, op, self.owner, self.lease)
        try:
            self._complete(op, self.jobs[op.kind](self.env, lease), claim_next=claim_next)
        except LeaseLost:
            log.warning("operation %s: lease lost before completion", op.id)
        except Exception:
            log.exception("operation %s (%s) failed unexpectedly", op.id, op.kind)
            abandon = ABANDON.get(op.kind)
            if abandon is not None:
                try:
                    abandon(self.env, op)
                except Exception:
                    log.exception("operation %s: cleaning up after the failure failed", op.id)
            try:
                self._complete(op, error_result(internal_status(op.id)))
            except LeaseLost:
                log.warning("operation %s: lease lost before completion", op.id)
        return True

    def _complete(self, op: Operation, outcome: Outcome, *, claim_next: bool = False) -> None:
        """Finish ``op`` with the outcome, or hand it back (None), in one transaction
        (on SQLite shared with other changes queued for the writer: ``Meta.grouped``);
        with ``claim_next``, a finished one's transaction also claims the next."""

        def complete(tx: Transaction) -> Operation | None:
            if outcome is None:
                tx.operations.release(op.id, self.owner)
                return None
            result = outcome.apply(tx) if isinstance(outcome, Completion) else outcome
            tx.operations.finish(op.id, self.owner, result)
            if claim_next and not self._stop.is_set():
                return tx.operations.claim(self.owner, self.lease, kinds=self._kinds)
            return None

        self._next = self.env.meta.grouped(complete)  # only once committed

    def give_back(self) -> None:
        """Return the operation claimed ahead (if any) to the queue at once."""
        op, self._next = self._next, None
        if op is None:
            return
        try:
            with self.env.meta.transaction() as tx:
                tx.operations.release(op.id, self.owner)
        except LeaseLost:
            log.warning("operation %s: lease lost before it was given back", op.id)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"worker-{self.owner}")
        self._thread.start()

    def request_stop(self) -> None:
        """Claim nothing more; the job in hand finishes or is handed back."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        busy = False
        try:
            while not self._stop.is_set():
                try:
                    busy = self.run_once(look_first=not busy, claim_next=True)
                except Exception:
                    log.exception("worker %s: claiming failed", self.owner)
                    busy = False
                if not busy:
                    self._stop.wait(self.poll_seconds)
        finally:
            try:
                self.give_back()
            except Exception:  # its lease runs out: another worker claims it then
                log.exception("worker %s: giving back its next operation failed", self.owner)

"""A claimed operation's lease, kept alive by the job's progress reports."""

from __future__ import annotations

import datetime as dt
import threading

from disksnap.meta import Operation
from disksnap.meta.errors import LeaseLost
from disksnap.service.core import Env


class Lease:
    """``cancel`` is set when the client asked to cancel, or when the lease was lost
    (then ``lost`` is true as well, and the job must leave cleanup to the new owner)."""

    def __init__(self, env: Env, op: Operation, owner: str, duration: dt.timedelta) -> None:
        self.env = env
        self.op = op
        self.owner = owner
        self.duration = duration
        self.cancel = threading.Event()
        self.lost = False
        self._last = env.clock.monotonic()
        if op.cancel_requested:
            self.cancel.set()

    def progress(self, _done: int, _total: int) -> None:
        """A progress callback for engine jobs: heartbeats at a third of the lease."""
        now = self.env.clock.monotonic()
        if now - self._last >= self.duration.total_seconds() / 3:
            self._last = now
            self.heartbeat()

    def heartbeat(self) -> None:
        try:
            with self.env.meta.transaction() as tx:
                self.op = tx.operations.heartbeat(self.op.id, self.owner, self.duration)
        except LeaseLost:
            self.lost = True
            self.cancel.set()
            return
        if self.op.cancel_requested:
            self.cancel.set()

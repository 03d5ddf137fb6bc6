"""Answers of point reads (Get), kept until what they were read from changes.

A Get's answer is the resource's row, rendered, given to a caller whose token and
roles allow reading its folder. So the cache keeps the two halves apart:

* **answers**, by resource (kind and id): the rendered resource and its folder. The
  change log (``meta/db.py`` ``ChangeFeed``: a row per changed resource, written by
  triggers in the committing transaction, whoever commits) drops an answer the moment
  its resource changes, and only that one.
* **access**, by credential (a hash of it: the cache holds no token) and folder: this
  caller may read that folder, until their token expires. A change to tokens, role
  bindings, folders or subjects (the log's ``*``) drops all of it, and every answer
  too: a revoked token or role stops working at once.

An answer computed by a call that started at feed position P is kept only if its
resource has not changed after P (it may be stale already otherwise). The positions of
recent changes are remembered for that check; a put older than what is remembered is
refused.

Answers are also prepared before anyone asks: every resource that changes is queued,
and ``warm`` (run by the transport off its event loop) loads the queued ones without
a caller (``load``) and keeps them rendered - so that the first Get of a snapshot that
just became READY is as fast as the second.

Without a change feed (PostgreSQL: ``Meta.change_feed`` is None) nothing is cached.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from google.protobuf.message import Message

from disksnap.domain.clock import Clock
from disksnap.meta import Meta
from disksnap.meta.db import Changes
from disksnap.service.convert import disk_proto, snapshot_proto
from disksnap.service.operations import operation_proto

T = TypeVar("T")

# The cacheable methods, by the kind of resource each reads (as the change log names it).
KINDS = {
    "yandex.cloud.compute.v1.SnapshotService.Get": "snapshot",
    "yandex.cloud.compute.v1.DiskService.Get": "disk",
    "yandex.cloud.operation.OperationService.Get": "operation",
}
CACHEABLE = frozenset(KINDS)
METHODS = {kind: rpc for rpc, kind in KINDS.items()}
MAX_ENTRIES = 10_000  # answers (about a kilobyte each), and as many access entries
REMEMBERED = 100_000  # positions of recent changes, for the check on a put

Key = tuple[str, str]  # (kind, id)


def credential(authorization: bytes) -> bytes:
    """A caller's credential as the cache knows it, from the ``Authorization`` value it
    sent (REST's header, gRPC's metadata): hashed, so that the cache holds no token."""
    return hashlib.sha256(authorization).digest()


class Feed(Protocol):
    @property
    def position(self) -> int: ...

    def poll(self) -> Changes | None: ...


@dataclass(frozen=True, slots=True)
class Loaded:
    """A resource read without a caller, to be rendered and kept (``warm``)."""

    rpc: str  # the Get that answers with it
    resource_id: str
    folder_id: str
    message: Message


Loader = Callable[[Sequence[Key]], list[Loaded]]


def load(meta: Meta, keys: Sequence[Key]) -> list[Loaded]:
    """The resources ``keys`` name as their Gets answer them, in one read-only
    transaction and one statement per kind; those that no longer exist are left out."""
    ids: dict[str, list[str]] = {kind: [] for kind in METHODS}
    for kind, rid in keys:
        ids[kind].append(rid)
    with meta.transaction(readonly=True) as tx:  # get_many([]) runs no statement
        return [
            *(
                Loaded(METHODS["snapshot"], x.id, x.folder_id, snapshot_proto(x))
                for x in tx.snapshots.get_many(ids["snapshot"])
            ),
            *(
                Loaded(METHODS["disk"], x.id, x.folder_id, disk_proto(x))
                for x in tx.disks.get_many(ids["disk"])
            ),
            *(
                Loaded(METHODS["operation"], x.id, str(x.params["folder_id"]), operation_proto(x))
                for x in tx.operations.get_many(ids["operation"])
            ),
        ]


@dataclass(frozen=True, slots=True)
class _Answer(Generic[T]):
    folder_id: str
    value: T


class ReadCache(Generic[T]):
    """Rendered answers (``T``) of the ``CACHEABLE`` methods, by resource id, and which
    credentials may read which folders. Thread-safe."""

    def __init__(
        self,
        feed: Feed,
        clock: Clock,
        loader: Loader | None = None,
        *,
        max_entries: int = MAX_ENTRIES,
        remembered: int = REMEMBERED,
    ) -> None:
        self._feed = feed
        self._clock = clock
        self._loader = loader
        self._max = max_entries
        self._remembered = remembered
        self._lock = threading.Lock()
        self._answers: dict[Key, _Answer[T]] = {}
        self._access: dict[tuple[bytes, str], dt.datetime | None] = {}
        self._changed: dict[Key, int] = {}  # recent changes' positions, oldest first
        self._refused_before = feed.position  # a put from before this is refused
        self._pending: dict[Key, None] = {}  # changed resources to prepare answers of
        self._preparing = 0  # of them, taken by a ``warm`` still running
        self._looked = False  # ``sync_on_loop`` read the log in this turn of the loop

    def sync(self) -> int:
        """Apply what was committed since the last look; the feed's position. Read it
        before computing an answer to ``put``."""
        with self._lock:
            changes = self._feed.poll()
            if changes is not None and (changes.keys or changes.everything):
                self._apply(changes)
            return self._feed.position

    def _apply(self, changes: Changes) -> None:
        if changes.everything:
            self._answers.clear()
            self._access.clear()
            self._changed.clear()
            self._refused_before = changes.through
        for key in changes.keys:
            self._answers.pop(key, None)
            self._changed.pop(key, None)
            self._changed[key] = changes.through
            if key[0] in METHODS and self._loader is not None and len(self._pending) < self._max:
                self._pending[key] = None
        while len(self._changed) > self._remembered:
            oldest = next(iter(self._changed))
            self._refused_before = max(self._refused_before, self._changed.pop(oldest))

    def sync_on_loop(self) -> int:
        """``sync`` for a transport's event loop (call it from the loop's thread only):
        the log is read once for all the requests the loop runs in one turn, not once
        each (its look is system calls and the GIL let go). Safe: a request is handled
        in a task step scheduled once it arrived, and callbacks run in the order they
        were scheduled; so a request that arrived after this look - and may have been
        sent after a commit it missed - is handled after ``_next_turn``, and looks again.
        The feed's position, as ``sync``."""
        if self._looked:
            return self._feed.position
        position = self.sync()
        self._looked = True
        asyncio.get_running_loop().call_soon(self._next_turn)
        return position

    def _next_turn(self) -> None:
        self._looked = False

    def get(self, rpc: str, resource_id: str, credential: bytes) -> T | None:
        """The answer kept for ``rpc`` of ``resource_id``, if ``credential`` may still
        read its folder."""
        self.sync()
        return self.lookup(rpc, resource_id, credential)

    def lookup(self, rpc: str, resource_id: str, credential: bytes) -> T | None:
        """``get`` without looking for new changes first: for a caller that looked
        after the request it answers was received (``sync_on_loop``)."""
        with self._lock:
            answer = self._answers.get((KINDS[rpc], resource_id))
            if answer is None or (credential, answer.folder_id) not in self._access:
                return None
            valid_until = self._access[credential, answer.folder_id]
        if valid_until is not None and self._clock.now() >= valid_until:
            return None
        return answer.value

    def put(self, rpc: str, resource_id: str, folder_id: str, value: T, position: int) -> bool:
        """Keep an answer computed by a call that started at ``position`` (``sync``),
        unless its resource changed since. Whether it was kept."""
        self.sync()
        with self._lock:
            return self._put(KINDS[rpc], resource_id, folder_id, value, position)

    def _put(self, kind: str, rid: str, folder_id: str, value: T, position: int) -> bool:
        # Under the lock, just after a sync.
        key = (kind, rid)
        if position < self._refused_before or self._changed.get(key, 0) > position:
            return False
        if key not in self._answers and len(self._answers) >= self._max:
            del self._answers[next(iter(self._answers))]  # the oldest
        self._answers[key] = _Answer(folder_id, value)
        return True

    def allow(
        self, credential: bytes, folder_id: str, valid_until: dt.datetime | None, position: int
    ) -> bool:
        """Remember that ``credential`` could read ``folder_id`` in a call that started
        at ``position``, until ``valid_until``. Whether it was kept."""
        self.sync()
        with self._lock:
            if position < self._refused_before:
                return False
            if (credential, folder_id) not in self._access and len(self._access) >= self._max:
                del self._access[next(iter(self._access))]
            self._access[credential, folder_id] = valid_until
            return True

    @property
    def pending(self) -> int:
        """Changed resources whose answers are not prepared yet (queued or being
        prepared)."""
        with self._lock:
            return len(self._pending) + self._preparing

    def warm(self, render: Callable[[str, Message], T]) -> int:
        """Load the changed resources queued so far and keep their answers, rendered by
        ``render(rpc, message)``. Blocking (a database read). How many were kept."""
        if self._loader is None:
            return 0
        with self._lock:
            keys, self._pending = list(self._pending), {}
            self._preparing = len(keys)
        try:
            position = self.sync()
            rendered = [
                (KINDS[x.rpc], x.resource_id, x.folder_id, render(x.rpc, x.message))
                for x in (self._loader(keys) if keys else ())
            ]
            self.sync()  # what changed while they were read
            with self._lock:
                return sum(self._put(*r, position) for r in rendered)
        finally:
            with self._lock:
                self._preparing = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._answers)

"""``Meta``: the metadata store, and ``Transaction``: the unit of work on it.

    meta = Meta.open("sqlite:///data/meta.db", clock)   # or postgresql+psycopg://…
    with meta.transaction() as tx:
        disk = tx.disks.get(disk_id, for_update=True)
        tx.snapshots.insert(snapshot)
        tx.operations.insert(operation)

Every repository method of ``tx`` runs in that one transaction: it commits when the
block ends normally and rolls back when it raises. Expected failures are domain errors
(``disksnap.meta.errors``); an unreachable or locked database is ``MetaUnavailable``.
A transaction that failed with a domain error raised by this layer may go on: only the
failing statement is undone (``integrity.execute_checked``).

Isolation: SQLite serializes write transactions (``BEGIN IMMEDIATE``); read-only ones run
beside them on a WAL snapshot. PostgreSQL runs ``READ COMMITTED``: use ``for_update=True``
on ``get`` to lock a row you decide on (quota checks, "a snapshot in flight" checks).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import TypeVar

import sqlalchemy as sa

from disksnap.domain.clock import Clock
from disksnap.meta import migrate
from disksnap.meta.bookkeeping import IdempotencyKeys, Quotas
from disksnap.meta.db import (
    POOL_SIZE,
    POSTGRESQL,
    SQLITE,
    ChangeFeed,
    create_engine,
    transaction,
)
from disksnap.meta.errors import MetaUnavailable
from disksnap.meta.group import GroupCommit
from disksnap.meta.iam import Folders, Roles, Subjects, TokenReads, Tokens
from disksnap.meta.keys import AuthorizedKeys, ServiceAccounts
from disksnap.meta.operations import Operations
from disksnap.meta.resources import Disks, Snapshots

_UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
T = TypeVar("T")


class Transaction:
    """The repositories, all bound to one database transaction."""

    def __init__(self, connection: sa.Connection, clock: Clock) -> None:
        self._connection = connection
        self._reads = reads = TokenReads()
        self.folders = Folders(connection, clock)
        self.subjects = Subjects(connection, clock)
        self.tokens = Tokens(connection, clock, reads)
        self.roles = Roles(connection, clock, reads)
        self.service_accounts = ServiceAccounts(connection, clock, reads)
        self.keys = AuthorizedKeys(connection, clock, reads)
        self.disks = Disks(connection, clock)
        self.snapshots = Snapshots(connection, clock)
        self.operations = Operations(connection, clock)
        self.idempotency = IdempotencyKeys(connection, clock)
        self.quotas = Quotas(connection, clock)

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """What runs inside is undone alone if it raises; the transaction goes on.

        Plain SQL on the driver's connection rather than ``Connection.begin_nested``
        (80 us here) or SQLAlchemy's ``exec_driver_sql`` (34 us a pair): 3 us, once per
        piece of a group commit. SQLAlchemy keeps no state for savepoints it did not
        make. Both databases stack savepoints of one name; the innermost is undone."""
        execute = self._connection.connection.driver_connection.execute  # type: ignore[union-attr]
        execute("SAVEPOINT piece")
        try:
            yield
        except BaseException:
            self._reads.forget()  # they may be what it changed
            execute("ROLLBACK TO SAVEPOINT piece")
            execute("RELEASE SAVEPOINT piece")
            raise
        execute("RELEASE SAVEPOINT piece")


class Meta:
    """A metadata database at the current schema version. Thread-safe: each
    ``transaction()`` takes its own pooled connection."""

    def __init__(
        self,
        engine: sa.Engine,
        clock: Clock,
        applied: tuple[str, ...],
        *,
        busy_timeout: float = 30.0,
    ) -> None:
        self._engine = engine
        self._clock = clock
        # SQLite has one writer; its busy handler makes waiting writers sleep in growing
        # steps (up to 100 ms), so a queue of this process's writers stretched each wait
        # far beyond the lock holder's work. They queue here instead and only meet
        # SQLite's lock for writers of other processes.
        self._writer = threading.Lock() if engine.dialect.name != POSTGRESQL else None
        # Group commit for the same writers (``grouped``); PostgreSQL runs writers side
        # by side and groups its own log flushes. ``self.transaction`` is looked up per
        # group, so a wrapper set later (tests count transactions) is used.
        self._group = (
            GroupCommit(lambda: self.transaction(), timeout=busy_timeout)  # noqa: PLW0108
            if self._writer
            else None
        )
        self._busy_timeout = busy_timeout
        self._feeds: list[ChangeFeed] = []
        self._feed_lock = threading.Lock()
        self.applied_migrations = applied
        """Revisions ``open`` applied, oldest first; empty if the schema was at head."""

    @classmethod
    def open(
        cls, url: str, clock: Clock, *, busy_timeout: float = 30.0, pool_size: int = POOL_SIZE
    ) -> Meta:
        """Connect to ``url`` and upgrade its schema to head (creating it if empty).

        ``busy_timeout`` bounds waits for SQLite's writer lock and PostgreSQL connects;
        ``pool_size`` is how many transactions may be open at once (more wait for one).
        Raise ``UnsupportedDatabase`` for a URL of another kind, ``MetaUnavailable`` if
        the database cannot be reached.
        """
        engine = create_engine(url, busy_timeout=busy_timeout, pool_size=pool_size)
        try:
            applied = migrate.upgrade(engine)
        except _UNAVAILABLE as exc:
            engine.dispose()
            raise MetaUnavailable(f"metadata database unavailable: {exc}") from exc
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock, applied, busy_timeout=busy_timeout)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    @contextlib.contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[Transaction]:
        """A transaction; ``readonly=True`` promises not to write (PostgreSQL enforces it;
        on SQLite it lets the transaction run beside a writer)."""
        with self._writer_turn(readonly), self._connection(readonly) as tx:
            yield tx

    def grouped(
        self,
        work: Callable[[Transaction], T],
        *,
        before_commit: Callable[[], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> T:
        """``work(tx)`` in a write transaction, committed before this returns its
        result; on SQLite that transaction may be shared with other threads' work (group
        commit, ``meta/group.py``: ``work`` runs in a savepoint of its own, in the
        writer's thread). ``before_commit`` runs before the commit, once per group even
        if several pieces give it. ``undo`` runs if ``work`` raises or its transaction
        does not commit, before the error reaches the caller."""
        if self._group is not None:
            return self._group.run(work, before_commit, undo)
        try:
            with self.transaction() as tx:
                result = work(tx)
                if before_commit is not None:
                    before_commit()
        except BaseException:
            if undo is not None:
                undo()
            raise
        return result

    def submit(
        self,
        work: Callable[[Transaction], T],
        *,
        before_commit: Callable[[], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> Future[T] | None:
        """``grouped`` without waiting, where changes queue for the writer (SQLite):
        ``work``'s future, which gets its result once committed (in the writer's
        thread: keep its callbacks short). None on PostgreSQL, whose changes run in
        their callers' own transactions: call ``grouped`` on a thread of your own."""
        if self._group is None:
            return None
        return self._group.submit(work, before_commit, undo)

    @property
    def queued_changes(self) -> int:
        """How many ``grouped`` changes wait for the writer's turn (0 on PostgreSQL)."""
        return 0 if self._group is None else self._group.queued

    @contextlib.contextmanager
    def _writer_turn(self, readonly: bool) -> Iterator[None]:
        if readonly or self._writer is None:
            yield
            return
        if not self._writer.acquire(timeout=self._busy_timeout):
            raise MetaUnavailable("metadata database unavailable: database is locked")
        try:
            yield
        finally:
            self._writer.release()

    @contextlib.contextmanager
    def _connection(self, readonly: bool) -> Iterator[Transaction]:
        try:
            with transaction(self._engine, readonly=readonly) as connection:
                yield Transaction(connection, self._clock)
        except _UNAVAILABLE as exc:
            raise MetaUnavailable(f"metadata database unavailable: {exc}") from exc

    def change_feed(self) -> ChangeFeed | None:
        """On SQLite, a new reader of what is committed from anywhere, for caches of what
        was read (``ChangeFeed``); None on PostgreSQL, where nothing records changes."""
        if self._engine.dialect.name != SQLITE:
            return None
        path = self._engine.url.database
        assert path is not None  # parse_url refuses SQLite URLs without a file
        feed = ChangeFeed(path, busy_timeout=self._busy_timeout)
        with self._feed_lock:
            self._feeds.append(feed)
        return feed

    def close(self) -> None:
        """Close every pooled connection. Transactions may not be started afterwards."""
        with self._feed_lock:
            for feed in self._feeds:
                feed.close()
            self._feeds.clear()
        if self._group is not None:
            self._group.close()
        self._engine.dispose()

    def __enter__(self) -> Meta:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

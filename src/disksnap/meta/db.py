"""Engines for the two supported databases, with the connection settings they need.

* ``sqlite:///path/to/meta.db`` — the stdlib ``sqlite3`` driver, WAL journal, foreign
  keys on, a busy timeout. ``transaction`` (not the driver) emits ``BEGIN``: write
  transactions start with ``BEGIN IMMEDIATE`` so that SQLite's single writer lock is
  taken up front (a read-then-write can never fail half-way with "database is locked"),
  read-only ones with a plain ``BEGIN`` and run beside the writer thanks to WAL. Not
  from SQLAlchemy's ``begin`` event, as its recipe does: an engine with a connection
  event pays for dispatching events on every statement (7-10 us of 27 here).
* ``postgresql+psycopg://…`` (``postgresql://`` is accepted and means psycopg 3) —
  ``READ COMMITTED``; the queue uses ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event

from disksnap.meta.errors import UnsupportedDatabase

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
# Connections per engine, all kept once opened (no overflow): a server's threads (REST,
# gRPC, workers) beyond the first few used to open and close a connection per
# transaction under load - for SQLite three files and their WAL set-up each time.
POOL_SIZE = 15


def parse_url(url: str) -> sa.URL:
    """Validate ``url`` and pin the driver; raise ``UnsupportedDatabase`` otherwise."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise UnsupportedDatabase(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == SQLITE:
        if parsed.drivername not in ("sqlite", "sqlite+pysqlite"):
            raise UnsupportedDatabase(f"unsupported SQLite driver {parsed.drivername!r}")
        if not parsed.database or parsed.database == ":memory:":
            raise UnsupportedDatabase("SQLite needs a file path: sqlite:///path/to/meta.db")
        return parsed
    if backend == POSTGRESQL:
        if parsed.drivername not in ("postgresql", "postgresql+psycopg"):
            raise UnsupportedDatabase(
                f"unsupported PostgreSQL driver {parsed.drivername!r}: use postgresql+psycopg"
            )
        return parsed.set(drivername="postgresql+psycopg")
    raise UnsupportedDatabase(f"unsupported database {backend!r}: use sqlite or postgresql")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns (labels, product ids, operation params) through orjson: a List page
# decodes four per row, at 0.1 us each rather than json's 1 us.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def create_engine(url: str, *, busy_timeout: float = 30.0, pool_size: int = POOL_SIZE) -> sa.Engine:
    """An engine for ``url`` configured as the module docstring says."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == SQLITE:
        return _sqlite_engine(parsed, busy_timeout=busy_timeout, pool_size=pool_size)
    return sa.create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(1, int(busy_timeout))},
        **_JSON_CODEC,
    )


def _sqlite_engine(url: sa.URL, *, busy_timeout: float, pool_size: int) -> sa.Engine:
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        # Pooled connections move between threads, one thread at a time.
        connect_args={"timeout": busy_timeout, "check_same_thread": False},
        **_JSON_CODEC,
    )
    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: ``transaction`` emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return engine


@contextlib.contextmanager
def transaction(engine: sa.Engine, *, readonly: bool = False) -> Iterator[sa.Connection]:
    """A pooled connection in a transaction that commits when the block ends normally
    and rolls back when it raises. On SQLite, ``BEGIN IMMEDIATE`` (``BEGIN`` if
    ``readonly``); on PostgreSQL, ``readonly`` makes it ``READ ONLY``."""
    with engine.connect() as connection, connection.begin():
        if connection.dialect.name == SQLITE:
            connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
        elif readonly:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        yield connection


@dataclass(frozen=True, slots=True)
class Changes:
    """What was committed between two looks at the feed."""

    through: int  # the position after these changes (the last ``changes.seq`` seen)
    keys: tuple[tuple[str, str], ...]  # (kind, id) of each changed resource, in order
    everything: bool  # something that authorizes reads changed, or rows were missed


class ChangeFeed:
    """What was committed to an SQLite database since the last look, from any
    connection - this process's pool, ``disksnap admin``, a second server.

    Its own connection, which never writes, reads ``PRAGMA data_version`` (it changes
    whenever another connection commits: a few microseconds, no lock a writer holds,
    so an event loop may call it); only when that moved does it read the new rows of
    the ``changes`` log, which triggers write in the committing transaction (migration
    0003). Thread-safe; one reader's position."""

    def __init__(self, path: str, *, busy_timeout: float) -> None:
        self._connection = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()
        self._version = self._data_version()
        row = self._connection.execute("SELECT max(seq) FROM changes").fetchone()
        self._position = int(row[0] or 0)

    @property
    def position(self) -> int:
        """The last change seen."""
        return self._position

    def poll(self) -> Changes | None:
        """The changes committed since the last poll; None when nothing was committed
        anywhere (to any table)."""
        with self._lock:
            version = self._data_version()
            if version == self._version:
                return None
            self._version = version
            rows = self._connection.execute(
                "SELECT seq, kind, id FROM changes WHERE seq > ? ORDER BY seq", (self._position,)
            ).fetchall()
            if not rows:
                return Changes(self._position, (), everything=False)
            # Rows are numbered without gaps (AUTOINCREMENT, one writer): a gap means the
            # log was trimmed past what this reader had seen.
            missed = rows[0][0] != self._position + 1
            self._position = int(rows[-1][0])
            everything = missed or any(kind == "*" for _, kind, _ in rows)
            keys = tuple((kind, rid) for _, kind, rid in rows if kind != "*")
            return Changes(self._position, keys, everything)

    def _data_version(self) -> int:
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()

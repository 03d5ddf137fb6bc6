"""What every repository shares: the transaction's connection and the injected clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from disksnap.domain.clock import Clock
from disksnap.domain.errors import DisksnapError
from disksnap.meta.db import POSTGRESQL
from disksnap.meta.errors import DuplicateId, NameTaken
from disksnap.meta.integrity import Kind, Violation


class Repository:
    """One kind of record, read and written inside the caller's transaction."""

    def __init__(self, connection: sa.Connection, clock: Clock) -> None:
        self._conn = connection
        self._clock = clock

    def _one(
        self,
        query: sa.Select[Any],
        missing: Callable[[], DisksnapError],
        params: Mapping[str, Any] | None = None,
    ) -> sa.RowMapping:
        row = self._conn.execute(query, params).mappings().first()
        if row is None:
            raise missing()
        return row

    def _maybe(
        self, query: sa.Select[Any], params: Mapping[str, Any] | None = None
    ) -> sa.RowMapping | None:
        return self._conn.execute(query, params).mappings().first()


def by_key(table: sa.Table, column: str = "id") -> sa.Select[Any]:
    """``SELECT * FROM table WHERE column = :column``, to build once and run with the
    value bound (``{column: value}``). The hot lookups (a token, a resource by id) use
    such statements: building a statement per call, and SQLAlchemy's cache key for it,
    cost about a fifth of a Get's CPU; a reused one has its key memoized."""
    return sa.select(table).where(table.c[column] == sa.bindparam(column))


# SQLite binds at most 32,766 parameters a statement; PostgreSQL 65,535.
MANY_AT_ONCE = 1000


def by_keys(table: sa.Table, column: str = "id") -> sa.Select[Any]:
    """``SELECT * FROM table WHERE column IN :keys``, built once like ``by_key``; run it
    with at most ``MANY_AT_ONCE`` values (``many_rows`` does)."""
    return sa.select(table).where(table.c[column].in_(sa.bindparam("keys", expanding=True)))


def many_rows(
    connection: sa.Connection, query: sa.Select[Any], keys: Sequence[str]
) -> Iterator[sa.RowMapping]:
    """The rows of a ``by_keys`` query for every key that has one (in no given order)."""
    for start in range(0, len(keys), MANY_AT_ONCE):
        chunk = list(keys[start : start + MANY_AT_ONCE])
        yield from connection.execute(query, {"keys": chunk}).mappings()


def unique_or_reference(
    what: str,
    record_id: str,
    name: str = "",
    on_reference: Callable[[], DisksnapError] | None = None,
) -> Callable[[Violation], DisksnapError | None]:
    """A translator for writing ``what`` (``"disk"``): a taken id, a taken name, or a
    missing referenced record (``on_reference``)."""

    def translate(violation: Violation) -> DisksnapError | None:
        if violation.kind is Kind.UNIQUE and "name" in violation.columns:
            return NameTaken(f"{what} with name {name!r} already exists")
        if violation.kind is Kind.UNIQUE:
            return DuplicateId(f"{what} {record_id} already exists")
        if violation.kind is Kind.FOREIGN_KEY and on_reference is not None:
            return on_reference()
        return None

    return translate


def dialect_insert(connection: sa.Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ``ON CONFLICT`` on the connection's database."""
    if connection.dialect.name == POSTGRESQL:
        return postgresql.insert(table)
    return sqlite.insert(table)

"""Column types that behave the same on SQLite and PostgreSQL.

Migrations import these too, so they must stay backwards compatible: a change here is a
change to every past revision.

* ``UtcDateTime``: timezone-aware UTC ``datetime`` in and out. PostgreSQL stores
  ``timestamptz``; SQLite stores SQLAlchemy's fixed-width ISO text of the UTC value, so
  string order is time order. Naive datetimes are refused (a programming error).
* ``Json``: JSON on SQLite, ``jsonb`` on PostgreSQL; Python ``None`` is SQL ``NULL``.
* ``Text``: text compared byte-wise (``COLLATE "C"`` on PostgreSQL, SQLite's default
  BINARY), so ordering and keyset paging agree on both databases whatever the server's
  locale.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp with microsecond precision."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        utc = value.astimezone(dt.UTC)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON with ``None`` stored as SQL NULL; ``jsonb`` on PostgreSQL."""
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def text_type() -> sa.types.TypeEngine[str]:
    """Text with byte-wise ordering on both databases."""
    return sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")

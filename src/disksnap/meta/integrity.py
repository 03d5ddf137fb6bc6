"""Turn integrity errors of either driver into a small description, and run statements
that may violate a constraint so that the transaction stays usable: on PostgreSQL inside
a savepoint (a failed statement aborts the whole transaction otherwise); on SQLite as
they are, since SQLite undoes just the failing statement and the transaction goes on.

psycopg reports a SQLSTATE and ``Key (folder_id, name)=(…) already exists``; sqlite3
reports ``UNIQUE constraint failed: disks.folder_id, disks.name``. Both name the columns,
which is all the repositories need to pick the domain error.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from disksnap.domain.errors import DisksnapError
from disksnap.meta.db import SQLITE

_PG_KEY = re.compile(r"Key \(([^)]*)\)=")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.*)$")


class Kind(enum.Enum):
    UNIQUE = "unique"
    FOREIGN_KEY = "foreign_key"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Violation:
    kind: Kind
    columns: frozenset[str]


def classify(exc: sa.exc.IntegrityError) -> Violation:
    """What ``exc`` violated: a unique key (and its columns), a foreign key, or other."""
    orig: Any = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return _classify_pg(sqlstate, orig)
    message = str(orig)
    if "FOREIGN KEY constraint failed" in message:
        return Violation(Kind.FOREIGN_KEY, frozenset())
    match = _SQLITE_UNIQUE.search(message)
    if match:
        columns = (part.strip().rsplit(".", 1)[-1] for part in match.group(1).split(","))
        return Violation(Kind.UNIQUE, frozenset(columns))
    return Violation(Kind.OTHER, frozenset())


def _classify_pg(sqlstate: str, orig: Any) -> Violation:
    if sqlstate == "23503":
        return Violation(Kind.FOREIGN_KEY, frozenset())
    if sqlstate == "23505":
        detail = getattr(getattr(orig, "diag", None), "message_detail", None) or ""
        match = _PG_KEY.search(detail)
        columns = match.group(1).split(",") if match else []
        return Violation(Kind.UNIQUE, frozenset(c.strip() for c in columns))
    return Violation(Kind.OTHER, frozenset())


Translate = Callable[[Violation], DisksnapError | None]


def execute_checked(
    connection: sa.Connection,
    statement: sa.Executable,
    translate: Translate,
    params: Mapping[str, Any] | None = None,
) -> sa.CursorResult[Any]:
    """Execute ``statement`` (in a savepoint on PostgreSQL); on an integrity error raise
    what ``translate`` returns for it (re-raise the original when it returns ``None``)."""
    try:
        if connection.dialect.name == SQLITE:
            return connection.execute(statement, params)
        with connection.begin_nested():
            return connection.execute(statement, params)
    except sa.exc.IntegrityError as exc:
        error = translate(classify(exc))
        if error is None:
            raise
        raise error from exc

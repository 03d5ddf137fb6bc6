"""The structured form of List requests: filter conditions, ordering, keyset cursors.

The service parses the text syntax (``name = "a" AND labels.env IN ("x", "y")``); this
layer takes the structure and checks only what it must to build SQL.

Semantics of a condition on a field that may be absent (``labels.KEY`` without that key,
``source_disk_id`` of a snapshot without one): ``=`` and ``IN`` never match it; ``!=``
and ``NOT IN`` always do.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

LABEL_PREFIX = "labels."


class Op(enum.StrEnum):
    EQ = "="
    NE = "!="
    IN = "IN"
    NOT_IN = "NOT IN"


@dataclass(frozen=True, slots=True)
class Condition:
    """``field op values``. ``=``/``!=`` take exactly one value, ``IN``/``NOT IN`` one or more.

    ``field`` is ``name``, ``status``, ``source_disk_id`` (snapshots only) or
    ``labels.KEY``.
    """

    field: str
    op: Op
    values: tuple[str, ...]

    @classmethod
    def eq(cls, name: str, value: str) -> Condition:
        return cls(name, Op.EQ, (value,))

    @classmethod
    def ne(cls, name: str, value: str) -> Condition:
        return cls(name, Op.NE, (value,))

    @classmethod
    def in_(cls, name: str, values: Sequence[str]) -> Condition:
        return cls(name, Op.IN, tuple(values))

    @classmethod
    def not_in(cls, name: str, values: Sequence[str]) -> Condition:
        return cls(name, Op.NOT_IN, tuple(values))


class SortField(enum.StrEnum):
    ID = "id"
    NAME = "name"
    CREATED_AT = "created_at"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Order:
    """Sort by ``field`` then by ``id``, both in the same direction."""

    field: SortField = SortField.ID
    descending: bool = False


ID_ASC = Order()


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after a row: its sort value and its id.

    ``value`` is a ``datetime`` when sorting by ``created_at`` and a ``str`` otherwise
    (the id itself when sorting by id).
    """

    value: str | dt.datetime
    id: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows. ``next`` is the cursor to pass as ``after`` for the next page,
    or ``None`` when no more rows exist."""

    items: tuple[T, ...]
    next: Cursor | None = field(default=None)

    @property
    def more(self) -> bool:
        return self.next is not None

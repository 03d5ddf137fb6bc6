"""SQL for List: filter conditions, ordering with ``id`` as tie-breaker, keyset paging.

Keyset paging: a page ends at the row ``(value, id)``; the next page starts strictly
after it in the sort order. Because ``id`` is unique and the sort is total, no row is
missed or repeated across pages, whatever rows share a sort value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from disksnap.meta.errors import InvalidQuery
from disksnap.meta.query import LABEL_PREFIX, Condition, Cursor, Op, Order, Page, SortField

T = TypeVar("T")
MAX_LIMIT = 1000


def where_clauses(
    table: sa.Table, conditions: Sequence[Condition], fields: Collection[str]
) -> list[sa.ColumnElement[bool]]:
    """One clause per condition; ``fields`` are the plain columns that may be filtered."""
    return [_clause(_operand(table, c.field, fields), c) for c in conditions]


def _operand(
    table: sa.Table, name: str, fields: Collection[str]
) -> tuple[sa.ColumnElement[Any], bool]:
    """The expression a field refers to, and whether it may be NULL."""
    if name.startswith(LABEL_PREFIX):
        key = name.removeprefix(LABEL_PREFIX)
        if not key:
            raise InvalidQuery(f"filter field {name!r} names no label key")
        return table.c.labels[key].as_string(), True
    if name not in fields:
        raise InvalidQuery(f"cannot filter on field {name!r}")
    column = table.c[name]
    return column, bool(column.nullable)


def _clause(operand: tuple[sa.ColumnElement[Any], bool], cond: Condition) -> sa.ColumnElement[bool]:
    expr, nullable = operand
    values = cond.values
    if cond.op in (Op.EQ, Op.NE) and len(values) != 1:
        raise InvalidQuery(f"{cond.field} {cond.op} takes exactly one value")
    if not values:
        raise InvalidQuery(f"{cond.field} {cond.op} needs at least one value")
    match cond.op:
        case Op.EQ:
            return expr == values[0]
        case Op.IN:
            return expr.in_(values)
        case Op.NE:
            positive = expr != values[0]
        case Op.NOT_IN:
            positive = expr.not_in(values)
    # A missing value (absent label, NULL column) is "not equal" to anything.
    return sa.or_(expr.is_(None), positive) if nullable else positive


def _check_cursor(order: Order, after: Cursor) -> None:
    if order.field is SortField.CREATED_AT:
        if not isinstance(after.value, dt.datetime) or after.value.tzinfo is None:
            raise InvalidQuery("a created_at cursor needs a timezone-aware datetime")
    elif not isinstance(after.value, str):
        raise InvalidQuery(f"a {order.field} cursor needs a string value")


def _beyond(
    column: sa.ColumnElement[Any], value: object, descending: bool
) -> sa.ColumnElement[bool]:
    return column < value if descending else column > value


def _after_clause(table: sa.Table, order: Order, after: Cursor) -> sa.ColumnElement[bool]:
    _check_cursor(order, after)
    ident, desc = table.c.id, order.descending
    if order.field is SortField.ID:
        return _beyond(ident, after.id, desc)
    column = table.c[order.field.value]
    return sa.or_(
        _beyond(column, after.value, desc),
        sa.and_(column == after.value, _beyond(ident, after.id, desc)),
    )


def fetch_page(
    connection: sa.Connection,
    query: sa.Select[Any],
    table: sa.Table,
    *,
    order: Order,
    after: Cursor | None,
    limit: int,
    convert: Callable[[sa.RowMapping], T],
) -> Page[T]:
    """Run ``query`` (already filtered) for one page in ``order``, starting after ``after``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery(f"page size must be between 1 and {MAX_LIMIT}, got {limit}")
    column = table.c[order.field.value]
    direction: Callable[[Any], Any] = sa.desc if order.descending else sa.asc
    keys = [direction(column)]
    if order.field is not SortField.ID:
        keys.append(direction(table.c.id))
    if after is not None:
        query = query.where(_after_clause(table, order, after))
    rows = connection.execute(query.order_by(*keys).limit(limit + 1)).mappings().all()
    items = tuple(convert(row) for row in rows[:limit])
    if len(rows) <= limit:
        return Page(items)
    last = rows[limit - 1]
    return Page(items, Cursor(value=last[order.field.value], id=last["id"]))

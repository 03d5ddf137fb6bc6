"""List requests: the domain's checked query (filter, orderBy, signed page token) run
against the metadata store, and the next page's token issued."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from disksnap.domain.filters import Condition as DomainCondition
from disksnap.domain.paging import ListRequest, PageTokens
from disksnap.meta import Condition, Cursor, Op, Order, Page, SortField

T = TypeVar("T")

_OPS = {"=": Op.EQ, "!=": Op.NE, "in": Op.IN, "not_in": Op.NOT_IN}


def conditions(request: ListRequest) -> list[Condition]:
    return [_condition(c) for c in request.query.conditions]


def _condition(c: DomainCondition) -> Condition:
    name = f"labels.{c.label_key}" if c.label_key is not None else c.field
    return Condition(name, _OPS[c.op], tuple(c.values))


def order(request: ListRequest) -> Order:
    o = request.query.order
    return Order(SortField(o.field), o.descending)


def after(request: ListRequest) -> Cursor | None:
    c = request.cursor
    if c is None:
        return None
    value = c.last_id if c.last_value is None else c.last_value
    assert isinstance(value, str | dt.datetime)
    return Cursor(value, c.last_id)


def next_token(
    tokens: PageTokens,
    request: ListRequest,
    page: Page[T],
    key: Callable[[T], tuple[str, str | dt.datetime]],
) -> str:
    """The token of the next page, or "" when this is the last one. ``key`` gives an
    item's (id, sort value)."""
    if not page.more or not page.items:
        return ""
    last_id, value = key(page.items[-1])
    by_id = request.query.order.field == "id"
    return tokens.encode(request.query, last_id=last_id, last_value=None if by_id else value)

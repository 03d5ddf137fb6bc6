"""List requests: the domain's checked query (filter, orderBy, signed page token) run
against the metadata store, and the next page's token issued."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from disksnap.domain.filters import Condition as DomainCondition
from disksnap.domain.paging import Listable, ListRequest, PageTokens, parse_list_request
from disksnap.meta import Condition, Cursor, Op, Operation, Order, Page, SortField, Transaction
from disksnap.service.auth import Access
from disksnap.service.core import Call

T = TypeVar("T")
R = TypeVar("R", bound="Identified")

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


class FolderListRequest(Protocol):
    """What every ``List`` request of a folder's resources carries."""

    folder_id: str
    page_size: int
    page_token: str
    filter: str
    order_by: str


class Listing(Protocol[R]):
    def list(
        self,
        folder_id: str,
        *,
        where: Sequence[Condition] = (),
        order: Order = ...,
        after: Cursor | None = None,
        limit: int = 100,
    ) -> Page[R]: ...


class Identified(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def created_at(self) -> dt.datetime: ...


def list_in_folder(
    call: Call,
    listable: Listable,
    request: FolderListRequest,
    records: Callable[[Transaction], Listing[R]],
) -> tuple[tuple[R, ...], str]:
    """One page of a folder's resources (READ on the folder) and the next page's token."""
    query = parse_list_request(
        call.env.tokens,
        listable,
        parent_field="folderId",
        parent_id=request.folder_id,
        size=request.page_size,
        token=request.page_token,
        filter_text=request.filter,
        order_by=request.order_by,
    )
    with call.reading() as tx:
        call.require(tx, request.folder_id, Access.READ)
        page = records(tx).list(
            request.folder_id,
            where=conditions(query),
            order=order(query),
            after=after(query),
            limit=query.page_size,
        )
    field = query.query.order.field
    token = next_token(call.env.tokens, query, page, lambda r: (r.id, getattr(r, field)))
    return page.items, token


def list_operations(
    call: Call,
    listable: Listable,
    *,
    parent_field: str,
    parent_id: str,
    page_size: int,
    page_token: str,
    folder_of: Callable[[Transaction], str],
) -> tuple[tuple[Operation, ...], str]:
    """One page of a resource's operations, newest first (READ on its folder)."""
    query = parse_list_request(
        call.env.tokens,
        listable,
        parent_field=parent_field,
        parent_id=parent_id,
        size=page_size,
        token=page_token,
        order_by="createdAt desc",
    )
    with call.reading() as tx:
        call.require(tx, folder_of(tx), Access.READ)
        page = tx.operations.list_by_resource(parent_id, after=after(query), limit=query.page_size)
    token = next_token(call.env.tokens, query, page, lambda o: (o.id, o.created_at))
    return page.items, token

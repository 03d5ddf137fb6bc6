"""orderBy, pageSize and whole List requests."""

from __future__ import annotations

import pytest

from disksnap.domain.errors import BadRequest, FieldViolation
from disksnap.domain.filters import Condition
from disksnap.domain.paging import (
    Listable,
    ListQuery,
    PageCursor,
    SortOrder,
    effective_page_size,
    parse_list_request,
    parse_order_by,
)
from tests.domain.paging_values import (
    FOLDER_ID,
    INVALID,
    MISMATCH,
    SNAPSHOT_ID,
    TOKENS,
    WHEN,
)

SNAPSHOTS = Listable(
    "compute.snapshots",
    filter_fields=("name", "status", "sourceDiskId"),
    filter_labels=True,
    order_fields=("name", "createdAt", "status"),
)


# orderBy and pageSize.


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("", SortOrder("id")),
        ("   ", SortOrder("id")),
        ("id", SortOrder("id")),
        ("id desc", SortOrder("id", descending=True)),
        ("createdAt desc", SortOrder("created_at", descending=True)),
        ("createdAt DESC", SortOrder("created_at", descending=True)),
        ("created_at asc", SortOrder("created_at")),
        ("  name   Asc ", SortOrder("name")),
    ],
)
def test_order_by(text: str, order: SortOrder) -> None:
    assert parse_order_by(text, ("name", "createdAt")) == order


def test_order_by_renders_as_users_write_it() -> None:
    assert str(SortOrder("created_at", descending=True)) == "createdAt desc"
    assert str(SortOrder()) == "id asc"


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("size", ['Unknown field "size"; sortable fields: id, name, createdAt']),
        ("CreatedAt", ['Unknown field "CreatedAt"; sortable fields: id, name, createdAt']),
        ("name up", ['Unknown direction "up"; use asc or desc']),
        (
            "size up",
            [
                'Unknown field "size"; sortable fields: id, name, createdAt',
                'Unknown direction "up"; use asc or desc',
            ],
        ),
        ("name desc, id", ['Expected "<field>" or "<field> asc|desc", found "name desc, id"']),
        ("a b c", ['Expected "<field>" or "<field> asc|desc", found "a b c"']),
    ],
)
def test_order_by_errors(text: str, problems: list[str]) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_order_by(text, ("name", "createdAt"))
    assert caught.value.violations == tuple(FieldViolation("orderBy", p) for p in problems)


@pytest.mark.parametrize(("size", "effective"), [(0, 100), (1, 1), (100, 100), (1000, 1000)])
def test_page_size_zero_is_the_default(size: int, effective: int) -> None:
    assert effective_page_size(size) == effective


# A whole List request.


def test_parse_list_request() -> None:
    request = parse_list_request(
        TOKENS,
        SNAPSHOTS,
        parent_field="folderId",
        parent_id=FOLDER_ID,
        filter_text='status = READY AND labels.env IN ("prod")',
        order_by="createdAt desc",
    )
    assert request.query == ListQuery(
        f"compute.snapshots/{FOLDER_ID}",
        (Condition("status", "=", ("READY",)), Condition("labels", "in", ("prod",), "env")),
        SortOrder("created_at", descending=True),
    )
    assert (request.page_size, request.cursor) == (100, None)
    token = TOKENS.encode(request.query, last_id=SNAPSHOT_ID, last_value=WHEN)
    following = parse_list_request(
        TOKENS,
        SNAPSHOTS,
        parent_field="folderId",
        parent_id=FOLDER_ID,
        size=10,
        token=token,
        filter_text="labels.env in (prod) and status = 'READY'",
        order_by="created_at DESC",
    )
    assert following.page_size == 10
    assert following.cursor == PageCursor(request.query.order, SNAPSHOT_ID, WHEN)


def test_a_token_from_another_folder_is_refused() -> None:
    token = TOKENS.encode(ListQuery(f"compute.snapshots/{FOLDER_ID}"), last_id=SNAPSHOT_ID)
    with pytest.raises(BadRequest) as caught:
        parse_list_request(
            TOKENS, SNAPSHOTS, parent_field="folderId", parent_id="b1gother", token=token
        )
    assert caught.value.violations == (FieldViolation("pageToken", MISMATCH),)


def test_parse_list_request_reports_every_problem() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_list_request(
            TOKENS,
            SNAPSHOTS,
            parent_field="folderId",
            parent_id="",
            size=1001,
            token="forged",
            filter_text="size = 1",
            order_by="size",
        )
    assert caught.value.violations == (
        FieldViolation("folderId", "Field is required"),
        FieldViolation("pageSize", "Value must be in the range of 0 to 1000"),
        FieldViolation(
            "filter",
            'Syntax error at column 1: unknown field "size"; '
            "the filter accepts name, status, sourceDiskId, labels.<key>",
        ),
        FieldViolation(
            "orderBy", 'Unknown field "size"; sortable fields: id, name, createdAt, status'
        ),
    )


def test_the_token_is_checked_when_filter_and_order_parse() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_list_request(
            TOKENS, SNAPSHOTS, parent_field="folderId", parent_id=FOLDER_ID, token="forged"
        )
    assert caught.value.violations == (FieldViolation("pageToken", INVALID),)


TOO_LONG = "Length must be less than or equal to"


@pytest.mark.parametrize(
    ("filter_text", "order_by", "violation"),
    [
        ("name = a" + " " * 992, "", None),
        ("name = a" + " " * 993, "", FieldViolation("filter", f"{TOO_LONG} 1000")),
        ("", "name" + " " * 96, None),
        ("", "name" + " " * 97, FieldViolation("orderBy", f"{TOO_LONG} 100")),
    ],
)
def test_filter_and_order_by_lengths(
    filter_text: str, order_by: str, violation: FieldViolation | None
) -> None:
    def call() -> object:
        return parse_list_request(
            TOKENS,
            SNAPSHOTS,
            parent_field="folderId",
            parent_id=FOLDER_ID,
            filter_text=filter_text,
            order_by=order_by,
        )

    if violation is None:
        call()
        return
    with pytest.raises(BadRequest) as caught:
        call()
    assert caught.value.violations == (violation,)


def test_list_operations_has_no_filter_or_order() -> None:
    operations = Listable("compute.snapshot-operations")
    request = parse_list_request(
        TOKENS, operations, parent_field="snapshotId", parent_id=SNAPSHOT_ID, size=5
    )
    assert request.query == ListQuery(f"compute.snapshot-operations/{SNAPSHOT_ID}")
    with pytest.raises(BadRequest, match="unknown field"):
        parse_list_request(
            TOKENS,
            operations,
            parent_field="snapshotId",
            parent_id=SNAPSHOT_ID,
            filter_text="name = x",
        )

"""Contract: List — structured filters, ordering with id tie-breaker, keyset paging."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from disksnap.meta import (
    Condition,
    Cursor,
    DiskStatus,
    Meta,
    Op,
    Order,
    Snapshot,
    SnapshotStatus,
    SortField,
)
from disksnap.meta.errors import InvalidQuery
from tests.meta.factories import FOLDER, OTHER_FOLDER, at, disk, seed, snapshot

R, C, E, D = (
    SnapshotStatus.READY,
    SnapshotStatus.CREATING,
    SnapshotStatus.ERROR,
    SnapshotStatus.DELETING,
)
# Ties on every sort key: several unnamed rows, repeated statuses and timestamps; names
# whose order differs between byte-wise and locale-aware collations.
ROWS = [
    snapshot("fd8a", name="ab", status=R, created_at=at(3), source_disk_id="d1",
             labels={"env": "prod", "tier": "gold"}),
    snapshot("fd8b", name="a-b", status=C, created_at=at(1), source_disk_id="d1",
             labels={"env": "dev"}),
    snapshot("fd8c", name="a_b", status=R, created_at=at(3), source_disk_id="d2",
             labels={"env": "prod"}),
    snapshot("fd8d", name="", status=E, created_at=at(2), labels={"tier": "gold"}),
    snapshot("fd8e", name="", status=R, created_at=at(3), source_disk_id="d2"),
    snapshot("fd8f", name="b", status=D, created_at=at(1), labels={"env": ""}),
    snapshot("fd8g", name="", status=R, created_at=at(2), source_disk_id="d3",
             labels={"env": "qa", "a.b/c@d": "x"}),
    snapshot("fd8h", name="a0", status=C, created_at=at(3)),
    snapshot("fd8i", name="z", status=R, created_at=at(0), source_disk_id="d1"),
    snapshot("fd8j", name="", status=R, created_at=at(3)),
]  # fmt: skip
FOREIGN = snapshot("fd8x", name="ab", folder_id=OTHER_FOLDER, status=R, labels={"env": "prod"})


@pytest.fixture
def listed(meta: Meta) -> Meta:
    with meta.transaction() as tx:
        seed(tx)
        for row in [*ROWS, FOREIGN]:
            tx.snapshots.insert(row)
    return meta


def _ids(meta: Meta, *conditions: Condition) -> list[str]:
    with meta.transaction(readonly=True) as tx:
        page = tx.snapshots.list(FOLDER, where=conditions, limit=1000)
    assert not page.more
    return [s.id for s in page.items]


def _expect(predicate: Callable[[Snapshot], bool]) -> list[str]:
    return sorted(s.id for s in ROWS if predicate(s))


@pytest.mark.parametrize(
    ("condition", "predicate"),
    [
        (Condition.eq("name", "ab"), lambda s: s.name == "ab"),
        (Condition.eq("name", ""), lambda s: s.name == ""),
        (Condition.ne("name", ""), lambda s: s.name != ""),
        (Condition.in_("name", ["a-b", "b", "nope"]), lambda s: s.name in ("a-b", "b")),
        (Condition.not_in("name", ["a-b", "b"]), lambda s: s.name not in ("a-b", "b")),
        (Condition.eq("status", "READY"), lambda s: s.status is R),
        (Condition.ne("status", "READY"), lambda s: s.status is not R),
        (Condition.in_("status", ["CREATING", "ERROR"]), lambda s: s.status in (C, E)),
        (Condition.not_in("status", ["READY", "CREATING"]), lambda s: s.status in (E, D)),
        (Condition.eq("source_disk_id", "d1"), lambda s: s.source_disk_id == "d1"),
        (Condition.ne("source_disk_id", "d1"), lambda s: s.source_disk_id != "d1"),
        (Condition.in_("source_disk_id", ["d2", "d3"]), lambda s: s.source_disk_id in ("d2", "d3")),
        (
            Condition.not_in("source_disk_id", ["d1", "d2"]),
            lambda s: s.source_disk_id not in ("d1", "d2"),
        ),
        (Condition.eq("labels.env", "prod"), lambda s: s.labels.get("env") == "prod"),
        (Condition.eq("labels.env", ""), lambda s: s.labels.get("env") == ""),
        (Condition.ne("labels.env", "prod"), lambda s: s.labels.get("env") != "prod"),
        (
            Condition.in_("labels.env", ["dev", "qa"]),
            lambda s: s.labels.get("env") in ("dev", "qa"),
        ),
        (
            Condition.not_in("labels.env", ["prod", "dev"]),
            lambda s: s.labels.get("env") not in ("prod", "dev"),
        ),
        (Condition.eq("labels.a.b/c@d", "x"), lambda s: s.labels.get("a.b/c@d") == "x"),
        (Condition.eq("labels.missing", "x"), lambda s: False),
        (Condition.ne("labels.missing", "x"), lambda s: True),
    ],
    ids=lambda v: f"{v.field} {v.op} {','.join(v.values)}" if isinstance(v, Condition) else "",
)
def test_filter_operators(
    listed: Meta, condition: Condition, predicate: Callable[[Snapshot], bool]
) -> None:
    assert _ids(listed, condition) == _expect(predicate)


def test_conditions_are_anded(listed: Meta) -> None:
    conditions = [
        Condition.eq("status", "READY"),
        Condition.ne("labels.tier", "gold"),
        Condition.in_("source_disk_id", ["d1", "d2"]),
    ]
    assert _ids(listed, *conditions) == ["fd8c", "fd8e", "fd8i"]


def test_disk_filters(meta: Meta) -> None:
    with meta.transaction() as tx:
        seed(tx)
        tx.disks.insert(disk("epd1", name="a", labels={"env": "prod"}))
        tx.disks.insert(disk("epd2", name="b", status=DiskStatus.CREATING))
        tx.disks.insert(disk("epd3", name="c", labels={"env": "dev"}))
    with meta.transaction(readonly=True) as tx:

        def ids(*conditions: Condition) -> list[str]:
            return [d.id for d in tx.disks.list(FOLDER, where=conditions).items]

        assert ids(Condition.eq("labels.env", "prod")) == ["epd1"]
        assert ids(Condition.ne("labels.env", "prod")) == ["epd2", "epd3"]
        assert ids(Condition.not_in("status", ["READY"])) == ["epd2"]
        assert ids(Condition.in_("name", ["a", "c"]), Condition.eq("status", "READY")) == [
            "epd1",
            "epd3",
        ]
        with pytest.raises(InvalidQuery):
            ids(Condition.eq("source_disk_id", "x"))  # snapshots only


def _sort_key(order: Order) -> Callable[[Snapshot], tuple[str, str]]:
    def key(s: Snapshot) -> tuple[str, str]:
        value = getattr(s, order.field.value)
        return (value.isoformat() if isinstance(value, dt.datetime) else str(value), s.id)

    return key


ORDERS = [Order(field, descending) for field in SortField for descending in (False, True)]


@pytest.mark.parametrize(
    "order", ORDERS, ids=lambda o: f"{o.field}-{'desc' if o.descending else 'asc'}"
)
def test_order_and_paging(listed: Meta, order: Order) -> None:
    expected = [s.id for s in sorted(ROWS, key=_sort_key(order), reverse=order.descending)]
    for limit in (1, 3, 4, len(ROWS), 50):
        seen: list[str] = []
        after: Cursor | None = None
        pages = 0
        while True:
            with listed.transaction(readonly=True) as tx:
                page = tx.snapshots.list(FOLDER, order=order, after=after, limit=limit)
            pages += 1
            assert len(page.items) <= limit
            seen.extend(s.id for s in page.items)
            if not page.more:
                break
            assert len(page.items) == limit
            after = page.next
        assert seen == expected, (limit, order)
        assert pages == -(-len(ROWS) // limit)  # a full last page already says no more


def test_cursor_values(listed: Meta) -> None:
    with listed.transaction(readonly=True) as tx:
        by_time = tx.snapshots.list(FOLDER, order=Order(SortField.CREATED_AT), limit=2)
        by_id = tx.snapshots.list(FOLDER, limit=2)
        by_name = tx.snapshots.list(FOLDER, order=Order(SortField.NAME, True), limit=1)
    assert by_time.next == Cursor(at(1), "fd8b")
    assert isinstance(by_time.next.value, dt.datetime)
    assert by_id.next == Cursor("fd8b", "fd8b")
    assert by_name.next == Cursor("z", "fd8i")


def test_paging_with_filter(listed: Meta) -> None:
    ready = Condition.eq("status", "READY")
    seen: list[str] = []
    after: Cursor | None = None
    while True:
        with listed.transaction(readonly=True) as tx:
            page = tx.snapshots.list(
                FOLDER, where=[ready], order=Order(SortField.CREATED_AT, True), after=after, limit=2
            )
        seen.extend(s.id for s in page.items)
        if page.next is None:
            break
        after = page.next
    assert seen == ["fd8j", "fd8e", "fd8c", "fd8a", "fd8g", "fd8i"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"where": [Condition("zone_id", Op.EQ, ("x",))]},
        {"where": [Condition("labels.", Op.EQ, ("x",))]},
        {"where": [Condition("name", Op.EQ, ("a", "b"))]},
        {"where": [Condition("name", Op.NE, ())]},
        {"where": [Condition("name", Op.IN, ())]},
        {"where": [Condition("name", Op.NOT_IN, ())]},
        {"order": Order(SortField.CREATED_AT), "after": Cursor("2026-01-01", "fd8a")},
        {"order": Order(SortField.CREATED_AT), "after": Cursor(dt.datetime(2026, 1, 1), "fd8a")},
        {"order": Order(SortField.NAME), "after": Cursor(at(1), "fd8a")},
        {"limit": 0},
        {"limit": 1001},
    ],
)
def test_invalid_queries(listed: Meta, kwargs: dict[str, object]) -> None:
    with listed.transaction(readonly=True) as tx, pytest.raises(InvalidQuery) as info:
        tx.snapshots.list(FOLDER, **kwargs)  # type: ignore[arg-type]
    assert info.value.reason == "INVALID_QUERY"

"""List over HTTP: pageSize and opaque page tokens that miss and repeat nothing,
``filter`` (=, !=, IN, NOT IN joined by AND on name, status, sourceDiskId and
labels.KEY), ``orderBy`` (default ``id asc``), and a token that only works for the
query that issued it. (The rules for bad values are in test_rules_validation.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.conftest import Server
from tests.e2e.rules import Caller, error, tenant, violations


@dataclass(frozen=True)
class Shelf:
    """A folder with three disks and six snapshots (made in this order)."""

    folder: str
    reader: Caller
    disks: list[dict[str, Any]]
    snapshots: list[dict[str, Any]]

    def ids(self, names: list[str]) -> list[str]:
        by_name = {s["name"]: s["id"] for s in self.snapshots + self.disks}
        return [by_name[n] for n in names]


SNAPSHOT_LABELS = [
    ("s-1", 0, {"env": "prod"}),
    ("s-2", 0, {"env": "dev"}),
    ("s-3", 1, {"env": "prod"}),
    ("s-4", 1, {}),
    ("s-5", 2, {"env": "dev", "team": "x"}),
    ("s-6", 2, {}),
]


@pytest.fixture(scope="module")
def shelf(live: Server) -> Shelf:
    team = tenant(live, "listing")
    disks = [
        team.editor.disk(team.folder, name=name, labels={"tier": tier})
        for name, tier in (("d-a", "hot"), ("d-b", "cold"), ("d-c", "hot"))
    ]
    snapshots = [
        team.editor.snapshot(team.folder, disks[disk]["id"], name=name, labels=labels)
        for name, disk, labels in SNAPSHOT_LABELS
    ]
    return Shelf(team.folder, team.viewer, disks, snapshots)


def page(shelf: Shelf, kind: str, **params: str | int) -> dict[str, Any]:
    query = "&".join(
        f"{k}={quote(str(v))}" for k, v in {"folderId": shelf.folder, **params}.items()
    )
    body: dict[str, Any] = shelf.reader.ok("GET", f"/compute/v1/{kind}?{query}")
    return body


def walk(shelf: Shelf, kind: str, size: int, **params: str) -> list[dict[str, Any]]:
    """Every item, ``size`` per page, checking each page's length and the last token."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        got = page(shelf, kind, pageSize=size, pageToken=token, **params)
        assert 0 < len(got[kind]) <= size or (not items and not got[kind])
        items += got[kind]
        token = got["nextPageToken"]
        if not token:
            return items


def names(items: list[dict[str, Any]]) -> list[str]:
    return [x["name"] for x in items]


def test_default_order_is_by_id(shelf: Shelf) -> None:
    got = page(shelf, "snapshots")
    assert got["nextPageToken"] == ""
    assert got["snapshots"] == sorted(shelf.snapshots, key=lambda s: s["id"])
    assert page(shelf, "snapshots", pageSize=0) == got  # 0: the default, 100
    assert page(shelf, "snapshots", pageSize=1000) == got
    disks = page(shelf, "disks")
    assert disks["disks"] == sorted(shelf.disks, key=lambda d: d["id"])


@pytest.mark.parametrize("size", [1, 2, 4, 5, 6])
def test_pages_miss_and_repeat_nothing(shelf: Shelf, size: int) -> None:
    assert walk(shelf, "snapshots", size) == page(shelf, "snapshots")["snapshots"]
    assert walk(shelf, "disks", size) == page(shelf, "disks")["disks"]


def test_the_last_full_page_has_no_token(shelf: Shelf) -> None:
    got = page(shelf, "snapshots", pageSize=6)
    assert (len(got["snapshots"]), got["nextPageToken"]) == (6, "")
    got = page(shelf, "snapshots", pageSize=5)
    assert len(got["snapshots"]) == 5
    assert got["nextPageToken"]


ORDERS = [
    ("name", ["s-1", "s-2", "s-3", "s-4", "s-5", "s-6"]),
    ("name desc", ["s-6", "s-5", "s-4", "s-3", "s-2", "s-1"]),
    ("name asc", ["s-1", "s-2", "s-3", "s-4", "s-5", "s-6"]),
    ("createdAt", ["s-1", "s-2", "s-3", "s-4", "s-5", "s-6"]),
    ("createdAt desc", ["s-6", "s-5", "s-4", "s-3", "s-2", "s-1"]),
    ("created_at desc", ["s-6", "s-5", "s-4", "s-3", "s-2", "s-1"]),
]


@pytest.mark.parametrize(("order", "expected"), ORDERS)
def test_order_by(shelf: Shelf, order: str, expected: list[str]) -> None:
    assert names(page(shelf, "snapshots", orderBy=order)["snapshots"]) == expected
    assert names(walk(shelf, "snapshots", 4, orderBy=order)) == expected


def test_order_by_status_breaks_ties_by_id(shelf: Shelf) -> None:
    got = page(shelf, "snapshots", orderBy="status")["snapshots"]
    assert [s["id"] for s in got] == sorted(s["id"] for s in shelf.snapshots)


def snapshot_filters(shelf: Shelf) -> list[tuple[str, list[str]]]:
    a, b, c = (d["id"] for d in shelf.disks)
    return [
        ('name = "s-1"', ["s-1"]),
        ("name = 's-1'", ["s-1"]),
        ("name=s-1", ["s-1"]),
        ('name != "s-1"', ["s-2", "s-3", "s-4", "s-5", "s-6"]),
        ('name IN ("s-1", "s-3")', ["s-1", "s-3"]),
        ('name in ("s-1")', ["s-1"]),
        ('name NOT IN ("s-1", "s-3")', ["s-2", "s-4", "s-5", "s-6"]),
        ('name not in ("s-1","s-2","s-3","s-4","s-5","s-6")', []),
        (f'sourceDiskId = "{a}"', ["s-1", "s-2"]),
        (f'source_disk_id IN ("{b}", "{c}")', ["s-3", "s-4", "s-5", "s-6"]),
        ('labels.env = "prod"', ["s-1", "s-3"]),
        ('labels.env IN ("prod", "dev")', ["s-1", "s-2", "s-3", "s-5"]),
        ('labels.team = "x"', ["s-5"]),
        ('status = "READY"', ["s-1", "s-2", "s-3", "s-4", "s-5", "s-6"]),
        ('status = "CREATING"', []),
        ('status IN ("CREATING", "ERROR")', []),
        (f'labels.env = "dev" AND sourceDiskId = "{c}"', ["s-5"]),
        (
            f'sourceDiskId != "{a}" and name NOT IN ("s-4") AND status = "READY"',
            ["s-3", "s-5", "s-6"],
        ),
        ('name = "s-1" AND name = "s-2"', []),
    ]


def test_snapshot_filters(shelf: Shelf) -> None:
    for text, expected in snapshot_filters(shelf):
        got = page(shelf, "snapshots", filter=text)
        assert sorted(names(got["snapshots"])) == expected, text
        assert got["nextPageToken"] == ""
        assert names(walk(shelf, "snapshots", 1, filter=text, orderBy="name")) == expected, text


DISK_FILTERS = [
    ('name = "d-b"', ["d-b"]),
    ('name NOT IN ("d-b")', ["d-a", "d-c"]),
    ('labels.tier = "hot"', ["d-a", "d-c"]),
    ('labels.tier = "hot" AND name != "d-a"', ["d-c"]),
    ('status = "READY"', ["d-a", "d-b", "d-c"]),
]


@pytest.mark.parametrize(("text", "expected"), DISK_FILTERS)
def test_disk_filters(shelf: Shelf, text: str, expected: list[str]) -> None:
    assert sorted(names(page(shelf, "disks", filter=text)["disks"])) == expected


def test_filter_order_and_paging_together(shelf: Shelf) -> None:
    query = {"filter": 'labels.env IN ("prod", "dev")', "orderBy": "name desc"}
    assert names(walk(shelf, "snapshots", 1, **query)) == ["s-5", "s-3", "s-2", "s-1"]
    assert names(walk(shelf, "disks", 1, orderBy="name desc")) == ["d-c", "d-b", "d-a"]


def test_a_page_token_belongs_to_its_query(live: Server, shelf: Shelf) -> None:
    first = page(shelf, "snapshots", pageSize=2, orderBy="name")
    token = first["nextPageToken"]
    assert page(shelf, "snapshots", pageSize=3, orderBy="name", pageToken=token)["snapshots"]
    for kind, params in (
        ("snapshots", {"orderBy": "name desc"}),
        ("snapshots", {"orderBy": "name", "filter": 'name != "s-1"'}),
        ("snapshots", {}),
        ("disks", {"orderBy": "name"}),
    ):
        query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
        path = f"/compute/v1/{kind}?folderId={shelf.folder}&pageToken={token}&{query}"
        assert "pageToken" in violations(shelf.reader.call("GET", path)), (kind, params)
    other = tenant(live, "listing")
    path = f"/compute/v1/snapshots?folderId={other.folder}&orderBy=name&pageToken={token}"
    assert "pageToken" in violations(other.viewer.call("GET", path))
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    path = f"/compute/v1/snapshots?folderId={shelf.folder}&orderBy=name&pageToken={tampered}"
    assert "pageToken" in violations(shelf.reader.call("GET", path))


def test_lists_are_per_folder(live: Server, shelf: Shelf) -> None:
    other = tenant(live, "listing")
    assert (
        other.viewer.ok("GET", f"/compute/v1/snapshots?folderId={other.folder}")["snapshots"] == []
    )
    assert other.viewer.ok("GET", f"/compute/v1/disks?folderId={other.folder}")["disks"] == []
    resp = other.viewer.call("GET", f"/compute/v1/snapshots?folderId={shelf.folder}")
    error(resp, 403, "PERMISSION_DENIED")

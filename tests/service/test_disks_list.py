"""DiskService.List: filter, orderBy and signed page tokens."""

from __future__ import annotations

from typing import Any

import pytest
from yandex.cloud.compute.v1 import disk_pb2
from yandex.cloud.compute.v1 import disk_service_pb2 as pb

from disksnap.domain.clock import FakeClock
from disksnap.domain.errors import BadRequest, Code
from disksnap.service.bootstrap import Admin
from disksnap.service.core import Env
from tests.service.conftest import Client
from tests.service.test_disks import D, create, disk_id_of, fails, subject_client

NAMES = ["m", "b", "x", "a", "q", "c", "k"]


@pytest.fixture
def disks(clock: FakeClock, admin: Admin, client: Client) -> dict[str, str]:
    """Seven disks by name; the first four READY (made in two batches sharing a
    timestamp each), the rest CREATING; labels env=prod on every other one."""
    made = {}
    for n, name in enumerate(NAMES):
        if n % 2 == 0:
            clock.advance(1)
        labels = {"env": "prod"} if n % 2 == 0 else {"env": "dev", "team": "x"}
        made[name] = disk_id_of(create(client, admin.folder_id, name=name, labels=labels))
        if n == 3:
            assert client.work() == 4
    return made


def list_all(client: Client, folder: str, page_size: int, **fields: str) -> list[disk_pb2.Disk]:
    """Every page, following next_page_token."""
    found: list[disk_pb2.Disk] = []
    token = ""
    while True:
        request = pb.ListDisksRequest(
            folder_id=folder, page_size=page_size, page_token=token, **fields
        )
        page = client(f"{D}.List", request)
        assert isinstance(page, pb.ListDisksResponse)
        assert len(page.disks) <= page_size
        found += page.disks
        token = page.next_page_token
        if not token:
            return found


@pytest.mark.parametrize(
    "order_by", ["", "id desc", "name", "name desc", "createdAt desc", "status"]
)
@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 100])
def test_pages_miss_and_repeat_nothing(
    admin: Admin, client: Client, disks: dict[str, str], order_by: str, page_size: int
) -> None:
    found = list_all(client, admin.folder_id, page_size, order_by=order_by)
    ids = [x.id for x in found]
    assert sorted(ids) == sorted(disks.values())
    field, _, direction = (order_by or "id").partition(" ")
    key = {
        "id": lambda x: (x.id,),
        "name": lambda x: (x.name, x.id),
        "createdAt": lambda x: (x.created_at.ToDatetime(), x.id),
        "status": lambda x: (disk_pb2.Disk.Status.Name(x.status), x.id),
    }[field]
    assert found == sorted(found, key=key, reverse=direction == "desc")


@pytest.mark.parametrize(
    ("filter_", "names"),
    [
        ('name = "q"', ["q"]),
        ("name IN ('a', 'b', 'zz')", ["a", "b"]),
        ('status = "READY"', ["a", "b", "m", "x"]),
        ('status != "READY" AND labels.env = "prod"', ["k", "q"]),
        ('labels.team = "x"', ["a", "b", "c"]),
        ('labels.team != "x"', ["k", "m", "q", "x"]),
        ('labels.env NOT IN ("prod") AND name != "a"', ["b", "c"]),
    ],
)
def test_filters(
    admin: Admin, client: Client, disks: dict[str, str], filter_: str, names: list[str]
) -> None:
    found = list_all(client, admin.folder_id, 2, filter=filter_)
    assert sorted(x.name for x in found) == names


@pytest.mark.parametrize(
    "fields",
    [
        {"filter": 'zoneId = "ru-central1-a"'},
        {"filter": "name ="},
        {"filter": 'status = "BOGUS"'},
        {"filter": "status IN (READY, ready)"},
        {"order_by": "size"},
        {"order_by": "name sideways"},
        {"page_token": "forged"},
        {"page_token": "A" * 40},
    ],
)
def test_bad_list_requests(
    admin: Admin, client: Client, disks: dict[str, str], fields: dict[str, Any]
) -> None:
    request = pb.ListDisksRequest(folder_id=admin.folder_id, **fields)
    fails(Code.INVALID_ARGUMENT, f"{D}.List", client, request)


def test_a_token_belongs_to_its_query(admin: Admin, client: Client, disks: dict[str, str]) -> None:
    request = pb.ListDisksRequest(folder_id=admin.folder_id, page_size=2, order_by="name")
    page = client(f"{D}.List", request)
    assert isinstance(page, pb.ListDisksResponse)
    assert page.next_page_token
    other = pb.ListDisksRequest(
        folder_id=admin.folder_id,
        page_size=2,
        order_by="name desc",
        page_token=page.next_page_token,
    )
    fails(Code.INVALID_ARGUMENT, f"{D}.List", client, other)
    filtered = pb.ListDisksRequest(
        folder_id=admin.folder_id, filter='name != "a"', page_token=page.next_page_token
    )
    fails(Code.INVALID_ARGUMENT, f"{D}.List", client, filtered)
    tampered = page.next_page_token[:-2] + ("AA" if page.next_page_token[-2:] != "AA" else "BB")
    request.page_token = tampered
    fails(Code.INVALID_ARGUMENT, f"{D}.List", client, request)


def test_list_needs_a_folder_and_a_role(
    env: Env, admin: Admin, client: Client, disks: dict[str, str]
) -> None:
    fails(Code.INVALID_ARGUMENT, f"{D}.List", client, pb.ListDisksRequest())
    big = pb.ListDisksRequest(folder_id=admin.folder_id, page_size=1001)
    fails(Code.INVALID_ARGUMENT, f"{D}.List", client, big)
    viewer = subject_client(env, admin.folder_id, "compute.viewer", "viewer")
    assert len(list_all(viewer, admin.folder_id, 100)) == len(NAMES)
    stranger = subject_client(env, admin.folder_id, None, "stranger")
    fails(
        Code.PERMISSION_DENIED,
        f"{D}.List",
        stranger,
        pb.ListDisksRequest(folder_id=admin.folder_id),
    )
    fails(
        Code.UNAUTHENTICATED,
        f"{D}.List",
        Client(env, None),
        pb.ListDisksRequest(folder_id=admin.folder_id),
    )


def test_an_empty_folder_lists_nothing(admin: Admin, client: Client) -> None:
    page = client(f"{D}.List", pb.ListDisksRequest(folder_id=admin.folder_id))
    assert page == pb.ListDisksResponse()


def test_an_unknown_status_in_a_filter_is_named(
    admin: Admin, client: Client, disks: dict[str, str]
) -> None:
    request = pb.ListDisksRequest(folder_id=admin.folder_id, filter='status != "done"')
    error = fails(Code.INVALID_ARGUMENT, f"{D}.List", client, request)
    assert isinstance(error, BadRequest)
    [violation] = error.violations
    assert violation.field == "filter"
    assert "'done'" in violation.description
    assert "CREATING, READY, ERROR, DELETING" in violation.description

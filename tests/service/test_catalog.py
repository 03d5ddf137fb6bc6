"""DiskTypeService and ZoneService: the catalog, its paging, and who may read it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from google.protobuf.message import Message
from yandex.cloud.compute.v1 import disk_pb2, disk_type_pb2, zone_pb2
from yandex.cloud.compute.v1 import disk_service_pb2 as dpb
from yandex.cloud.compute.v1 import disk_type_service_pb2 as tpb
from yandex.cloud.compute.v1 import zone_service_pb2 as zpb
from yandex.cloud.operation import operation_pb2

from disksnap.domain.errors import Code
from disksnap.service.bootstrap import Admin
from disksnap.service.core import Env, Settings
from tests.service.conftest import Client, MiB
from tests.service.test_disks import D, disk_id_of, fails, get, subject_client

T = "yandex.cloud.compute.v1.DiskTypeService"
Z = "yandex.cloud.compute.v1.ZoneService"
TYPES = ["network-hdd", "network-ssd", "network-ssd-nonreplicated"]
DEFAULT_ZONES = ["ru-central1-a", "ru-central1-b", "ru-central1-d"]


def list_pages(client: Client, method: str, request: Message, items: str) -> list[Any]:
    found: list[Any] = []
    while True:
        page = client(method, request)
        found += getattr(page, items)
        if not page.next_page_token:
            return found
        request.page_token = page.next_page_token


def test_disk_types(client: Client) -> None:
    types = list_pages(client, f"{T}.List", tpb.ListDiskTypesRequest(), "disk_types")
    assert [t.id for t in types] == TYPES
    for t in types:
        assert t.description
        assert list(t.zone_ids) == DEFAULT_ZONES
        assert client(f"{T}.Get", tpb.GetDiskTypeRequest(disk_type_id=t.id)) == t
    assert isinstance(types[0], disk_type_pb2.DiskType)


def test_zones(client: Client) -> None:
    zones = list_pages(client, f"{Z}.List", zpb.ListZonesRequest(), "zones")
    assert [(z.id, z.region_id, z.status) for z in zones] == [
        (zone, "ru-central1", zone_pb2.Zone.UP) for zone in DEFAULT_ZONES
    ]
    for z in zones:
        assert client(f"{Z}.Get", zpb.GetZoneRequest(zone_id=z.id)) == z


@pytest.mark.parametrize(
    ("method", "request_", "code"),
    [
        (f"{T}.Get", tpb.GetDiskTypeRequest(disk_type_id="network-floppy"), Code.NOT_FOUND),
        (f"{T}.Get", tpb.GetDiskTypeRequest(), Code.INVALID_ARGUMENT),
        (f"{T}.Get", tpb.GetDiskTypeRequest(disk_type_id="x" * 51), Code.INVALID_ARGUMENT),
        (f"{Z}.Get", zpb.GetZoneRequest(zone_id="ru-central1-c"), Code.NOT_FOUND),
        (f"{Z}.Get", zpb.GetZoneRequest(), Code.INVALID_ARGUMENT),
        (f"{T}.List", tpb.ListDiskTypesRequest(page_size=1001), Code.INVALID_ARGUMENT),
        (f"{Z}.List", zpb.ListZonesRequest(page_size=-1), Code.INVALID_ARGUMENT),
        (f"{Z}.List", zpb.ListZonesRequest(page_token="forged"), Code.INVALID_ARGUMENT),
    ],
)
def test_bad_requests(client: Client, method: str, request_: Message, code: Code) -> None:
    fails(code, method, client, request_)


def test_not_found_names_the_id(client: Client) -> None:
    error = fails(Code.NOT_FOUND, f"{Z}.Get", client, zpb.GetZoneRequest(zone_id="mars-1"))
    assert error.message == "Zone mars-1 not found"
    request = tpb.GetDiskTypeRequest(disk_type_id="tape")
    assert fails(Code.NOT_FOUND, f"{T}.Get", client, request).message == "Disk type tape not found"


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_paging_returns_each_item_once(client: Client, size: int) -> None:
    types = list_pages(client, f"{T}.List", tpb.ListDiskTypesRequest(page_size=size), "disk_types")
    assert [t.id for t in types] == TYPES
    zones = list_pages(client, f"{Z}.List", zpb.ListZonesRequest(page_size=size), "zones")
    assert [z.id for z in zones] == DEFAULT_ZONES


def test_a_token_of_one_list_is_refused_by_the_other(client: Client) -> None:
    page = client(f"{Z}.List", zpb.ListZonesRequest(page_size=1))
    assert isinstance(page, zpb.ListZonesResponse)
    assert len(page.zones) == 1
    request = tpb.ListDiskTypesRequest(page_token=page.next_page_token)
    fails(Code.INVALID_ARGUMENT, f"{T}.List", client, request)


def test_any_authenticated_subject_reads_the_catalog(env: Env, admin: Admin) -> None:
    nobody = subject_client(env, admin.folder_id, None, "nobody")  # no role anywhere
    assert nobody(f"{Z}.Get", zpb.GetZoneRequest(zone_id="ru-central1-a"))
    assert nobody(f"{T}.List", tpb.ListDiskTypesRequest())
    anonymous = Client(env, None)
    fails(Code.UNAUTHENTICATED, f"{Z}.List", anonymous, zpb.ListZonesRequest())
    fails(Code.UNAUTHENTICATED, f"{T}.Get", anonymous, tpb.GetDiskTypeRequest(disk_type_id="x"))
    fails(Code.UNAUTHENTICATED, f"{Z}.Get", Client(env, "forged"), zpb.GetZoneRequest(zone_id="a"))


def test_configured_zones_are_the_catalog_and_where_disks_go(env: Env, admin: Admin) -> None:
    configured = dataclasses.replace(env, settings=Settings(zones=("ru-central1-c", "kz1-a")))
    client = Client(configured, admin.token)
    zones = list_pages(client, f"{Z}.List", zpb.ListZonesRequest(), "zones")
    assert [z.id for z in zones] == ["kz1-a", "ru-central1-c"]
    disk_type = client(f"{T}.Get", tpb.GetDiskTypeRequest(disk_type_id="network-ssd"))
    assert isinstance(disk_type, disk_type_pb2.DiskType)
    assert list(disk_type.zone_ids) == ["ru-central1-c", "kz1-a"]
    request = dpb.CreateDiskRequest(
        folder_id=admin.folder_id, zone_id="ru-central1-a", size=4 * MiB
    )
    fails(Code.INVALID_ARGUMENT, f"{D}.Create", client, request)
    request.zone_id = "ru-central1-c"
    op = client(f"{D}.Create", request)
    assert isinstance(op, operation_pb2.Operation)
    assert disk_id_of(op)[:3] == "ef3"
    assert client.work() == 1
    disk = get(client, disk_id_of(op))
    assert (disk.zone_id, disk.status) == ("ru-central1-c", disk_pb2.Disk.READY)

"""DiskTypeService and ZoneService: Get and List over the configured catalog.

The catalog is fixed (three disk types) or configured (``Settings.zones``), so it is
read from memory, not from the metadata store. Any authenticated caller may read it;
no role on a folder is needed. Lists are in id order and page with the same signed
tokens as every other List (a token carries the last id returned).

It also says what a disk may be, for ``DiskService``: a configured zone, a known type,
a size the engine can hold, an offered block size (``*_violations``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from google.protobuf.message import Message
from yandex.cloud.compute.v1 import disk_type_pb2, disk_type_service_pb2, zone_pb2, zone_service_pb2

from disksnap.domain import errors as d
from disksnap.domain.errors import FieldViolation
from disksnap.domain.paging import ListQuery, PageTokens, effective_page_size
from disksnap.domain.validation import check_id, page_size, raise_if_any
from disksnap.service.core import Call, Env

DISK_TYPES = "yandex.cloud.compute.v1.DiskTypeService"
ZONES = "yandex.cloud.compute.v1.ZoneService"
REGION = "ru-central1"
DEFAULT_DISK_TYPE = "network-hdd"
DEFAULT_BLOCK_SIZE = 4096
# The block sizes Yandex Cloud offers: powers of two from 4 KiB to 128 KiB.
BLOCK_SIZES = tuple(DEFAULT_BLOCK_SIZE << n for n in range(6))

# id -> description, as Yandex Cloud describes them.
DISK_TYPE_DESCRIPTIONS = {
    "network-hdd": "Network storage with HDD backend",
    "network-ssd": "Network storage with SSD backend",
    "network-ssd-nonreplicated": "Non-replicated network storage with SSD backend",
}

T = TypeVar("T")


class DiskTypeNotFound(d.NotFound):
    reason = "DISK_TYPE_NOT_FOUND"


class ZoneNotFound(d.NotFound):
    reason = "ZONE_NOT_FOUND"


def disk_types(env: Env) -> list[disk_type_pb2.DiskType]:
    """Every disk type, by id, each available in every configured zone."""
    return [
        disk_type_pb2.DiskType(id=type_id, description=text, zone_ids=list(env.settings.zones))
        for type_id, text in sorted(DISK_TYPE_DESCRIPTIONS.items())
    ]


def zones(env: Env) -> list[zone_pb2.Zone]:
    """Every configured zone, by id."""
    return [
        zone_pb2.Zone(id=zone_id, region_id=REGION, status=zone_pb2.Zone.UP)
        for zone_id in sorted(set(env.settings.zones))
    ]


def placement_violations(env: Env, zone_id: str, type_id: str) -> list[FieldViolation]:
    """Where a new disk may go: a configured zone and a known disk type (``""`` is the
    default type)."""
    found = []
    if zone_id not in env.settings.zones:
        listed = ", ".join(sorted(env.settings.zones))
        found.append(FieldViolation("zoneId", f'Unknown zone "{zone_id}"; zones: {listed}'))
    if type_id and type_id not in DISK_TYPE_DESCRIPTIONS:
        listed = ", ".join(sorted(DISK_TYPE_DESCRIPTIONS))
        found.append(
            FieldViolation("typeId", f'Unknown disk type "{type_id}"; disk types: {listed}')
        )
    return found


def size_violations(env: Env, size: int) -> list[FieldViolation]:
    """A disk size the engine can hold: whole chunks (4 MiB by default, the unit it
    allocates, snapshots and restores in), at most its maximum."""
    chunk, most = env.engine.config.chunk_size, env.engine.config.max_disk_size
    if size % chunk:
        text = f"Value must be a multiple of {chunk} bytes ({chunk >> 20} MiB)"
        return [FieldViolation("size", text)]
    if size > most:
        return [FieldViolation("size", f"Value must be less than or equal to {most}")]
    return []


def block_size_violations(block_size: int) -> list[FieldViolation]:
    """``blockSize``: 0 (the default, 4096) or one of :data:`BLOCK_SIZES`."""
    if block_size == 0 or block_size in BLOCK_SIZES:
        return []
    listed = ", ".join(str(b) for b in BLOCK_SIZES)
    return [FieldViolation("blockSize", f"Value must be one of {listed}")]


def _page(
    tokens: PageTokens,
    *,
    scope: str,
    items: Sequence[T],
    key: Callable[[T], str],
    size: int,
    token: str,
) -> tuple[list[T], str]:
    """One page of ``items`` (sorted by ``key``) after the id in ``token``, and the next
    page's token ("" on the last page)."""
    raise_if_any(page_size("pageSize", size))
    query = ListQuery(scope)
    cursor = tokens.decode(token, query)
    rest = [item for item in items if cursor is None or key(item) > cursor.last_id]
    limit = effective_page_size(size)
    page = rest[:limit]
    more = len(rest) > limit
    return page, tokens.encode(query, last_id=key(page[-1])) if more else ""


def get_disk_type(request: Message, call: Call) -> Message:
    assert isinstance(request, disk_type_service_pb2.GetDiskTypeRequest)
    call.authenticate()  # whoever it is: the catalog needs no role
    check_id("diskTypeId", request.disk_type_id)
    for disk_type in disk_types(call.env):
        if disk_type.id == request.disk_type_id:
            return disk_type
    raise DiskTypeNotFound(f"Disk type {request.disk_type_id} not found")


def list_disk_types(request: Message, call: Call) -> Message:
    assert isinstance(request, disk_type_service_pb2.ListDiskTypesRequest)
    call.authenticate()
    page, token = _page(
        call.env.tokens,
        scope="disk-types",
        items=disk_types(call.env),
        key=lambda t: t.id,
        size=request.page_size,
        token=request.page_token,
    )
    return disk_type_service_pb2.ListDiskTypesResponse(disk_types=page, next_page_token=token)


def get_zone(request: Message, call: Call) -> Message:
    assert isinstance(request, zone_service_pb2.GetZoneRequest)
    call.authenticate()
    check_id("zoneId", request.zone_id)
    for zone in zones(call.env):
        if zone.id == request.zone_id:
            return zone
    raise ZoneNotFound(f"Zone {request.zone_id} not found")


def list_zones(request: Message, call: Call) -> Message:
    assert isinstance(request, zone_service_pb2.ListZonesRequest)
    call.authenticate()
    page, token = _page(
        call.env.tokens,
        scope="zones",
        items=zones(call.env),
        key=lambda z: z.id,
        size=request.page_size,
        token=request.page_token,
    )
    return zone_service_pb2.ListZonesResponse(zones=page, next_page_token=token)


HANDLERS: dict[str, Callable[[Message, Call], Message]] = {
    f"{DISK_TYPES}.Get": get_disk_type,
    f"{DISK_TYPES}.List": list_disk_types,
    f"{ZONES}.Get": get_zone,
    f"{ZONES}.List": list_zones,
}

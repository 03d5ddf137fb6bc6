"""DiskService: Get, List, Create, Update, Delete, ListOperations.

Create checks everything and records the disk (CREATING) and its operation in one
transaction; a worker (``disksnap.workers.disk_jobs``) makes the engine disk - empty, or
lazily restored from the snapshot - and completes the operation. Update (name,
description, labels, growing the size) and Delete are done within the call. Move,
Relocate, ListSnapshotSchedules and the access-binding methods are not registered:
they answer UNIMPLEMENTED.

Sizes are whole engine chunks (4 MiB by default), the granularity the engine allocates,
snapshots and restores in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from google.protobuf import empty_pb2
from google.protobuf.message import Message
from yandex.cloud.compute.v1 import disk_pb2
from yandex.cloud.compute.v1 import disk_service_pb2 as pb

from disksnap.domain import errors as d
from disksnap.domain.errors import BadRequest
from disksnap.domain.filters import snake_to_camel
from disksnap.domain.paging import Listable
from disksnap.domain.validation import (
    check_create_disk,
    check_id,
    check_list_operations,
    check_update_disk,
    raise_if_any,
)
from disksnap.engine.errors import DiskBusy as EngineDiskBusy
from disksnap.engine.errors import DiskNotFound as EngineDiskNotFound
from disksnap.meta import (
    Disk,
    DiskStatus,
    DiskUpdate,
    Operation,
    Snapshot,
    SnapshotStatus,
    Transaction,
)
from disksnap.service import catalog, listing
from disksnap.service.auth import Access
from disksnap.service.convert import disk_proto, to_json
from disksnap.service.core import Call, Env, QuotaExceeded
from disksnap.service.operations import (
    DISK_CREATE,
    new_operation,
    operation_proto,
    replay,
    store_operation,
)

log = logging.getLogger(__name__)
BUSY_WAIT_SECONDS = 10.0  # for a Create's checkpoint to be dropped (see _delete_engine_disk)
SERVICE = "yandex.cloud.compute.v1.DiskService"
LISTABLE = Listable(
    "disks",
    filter_fields=("name", "status"),
    filter_labels=True,
    order_fields=("id", "name", "createdAt", "status"),
    filter_enums={"status": tuple(disk_pb2.Disk.Status.keys())},
)
OPERATIONS = Listable("disk-operations", order_fields=("createdAt",))


class ImageNotFound(d.NotFound):
    reason = "IMAGE_NOT_FOUND"


def get(request: Message, call: Call) -> Message:
    assert isinstance(request, pb.GetDiskRequest)
    check_id("diskId", request.disk_id)
    with call.reading() as tx:
        disk = tx.disks.get(request.disk_id)
        call.require(tx, disk.folder_id, Access.READ)
    return disk_proto(disk)


def list_(request: Message, call: Call) -> Message:
    assert isinstance(request, pb.ListDisksRequest)
    items, token = listing.list_in_folder(call, LISTABLE, request, lambda tx: tx.disks)
    return pb.ListDisksResponse(disks=[disk_proto(x) for x in items], next_page_token=token)


# --- Create --------------------------------------------------------------------------


def create(request: Message, call: Call) -> Message:
    assert isinstance(request, pb.CreateDiskRequest)
    env = call.env
    _check_create(request, env)
    prefix = env.disk_prefix(request.zone_id)
    disk_id, op_id = env.ids.new(prefix), env.ids.new(prefix)
    with env.meta.transaction() as tx:
        previous = replay(tx, call, f"{SERVICE}.Create", request)
        if previous is not None:
            return operation_proto(previous)
        call.require(tx, request.folder_id, Access.WRITE)
        tx.folders.lock(request.folder_id)  # serialises quota checks
        _check_references(request)
        source = _source_snapshot(tx, call, request)
        _check_quota(tx, call, request.folder_id, count=1, size=request.size)
        tx.disks.insert(_new_disk(request, call, disk_id, source))
        op = new_operation(
            call,
            op_id=op_id,
            description="Create disk",
            metadata=pb.CreateDiskMetadata(disk_id=disk_id),
            kind=DISK_CREATE,
            resource_id=disk_id,
            folder_id=request.folder_id,
            params={
                "disk_id": disk_id,
                "size": request.size,
                "snapshot_id": source.id if source is not None else None,
            },
        )
        store_operation(tx, call, f"{SERVICE}.Create", request, op)
    return operation_proto(op)


def _hardware_generation_names(request: pb.CreateDiskRequest) -> list[str] | None:
    if not request.HasField("hardware_generation"):
        return None
    features = request.hardware_generation.WhichOneof("features")
    return [snake_to_camel(features)] if features else []


def _check_create(request: pb.CreateDiskRequest, env: Env) -> None:
    """Everything that needs no lookup: the proto's rules first, then the catalog."""
    check_create_disk(
        folder_id=request.folder_id,
        zone_id=request.zone_id,
        size=request.size,
        name=request.name,
        description=request.description,
        labels=dict(request.labels),
        type_id=request.type_id,
        image_id=request.image_id,
        snapshot_id=request.snapshot_id,
        kms_key_id=request.kms_key_id,
        hardware_generation=_hardware_generation_names(request),
    )
    raise_if_any(
        catalog.placement_violations(env, request.zone_id, request.type_id),
        catalog.size_violations(env, request.size),
        catalog.block_size_violations(request.block_size),
    )


def _check_references(request: pb.CreateDiskRequest) -> None:
    """References to resources this service does not have are NOT_FOUND, as unknown
    ids are: images, KMS keys, snapshot schedules, placement groups."""
    if request.image_id:
        raise ImageNotFound(f"Image {request.image_id} not found")
    if request.kms_key_id:
        raise d.NotFound(f"KMS key {request.kms_key_id} not found")
    if request.snapshot_schedule_ids:
        raise d.NotFound(f"Snapshot schedule {request.snapshot_schedule_ids[0]} not found")
    group = request.disk_placement_policy.placement_group_id
    if group:
        raise d.NotFound(f"Disk placement group {group} not found")


def _source_snapshot(tx: Transaction, call: Call, request: pb.CreateDiskRequest) -> Snapshot | None:
    """The snapshot to restore from, if any: READY, readable by the caller, and no larger
    than the disk asked for."""
    if not request.snapshot_id:
        return None
    snapshot = tx.snapshots.get(request.snapshot_id)
    if snapshot.folder_id != request.folder_id:
        call.require(tx, snapshot.folder_id, Access.READ)
    if snapshot.status is not SnapshotStatus.READY:
        raise d.FailedPrecondition(f"Snapshot {snapshot.id} is {snapshot.status}, not READY")
    if request.size < snapshot.disk_size:
        raise BadRequest.single(
            "size",
            f"Value must be at least the size of snapshot {snapshot.id} ({snapshot.disk_size})",
        )
    return snapshot


def _check_quota(tx: Transaction, call: Call, folder_id: str, *, count: int, size: int) -> None:
    """Adding ``count`` disks and ``size`` bytes stays within the folder's limits."""
    usage, limits = tx.disks.usage_within(folder_id, call.env.settings.quotas)
    if count and usage.count + count > limits["compute.disks.count"]:
        raise QuotaExceeded("compute.disks.count")
    if usage.size + size > limits["compute.disks.size"]:
        raise QuotaExceeded("compute.disks.size")


def _new_disk(
    request: pb.CreateDiskRequest, call: Call, disk_id: str, source: Snapshot | None
) -> Disk:
    """The CREATING record. From a snapshot the disk inherits its products, hardware
    generation (unless the request overrides it) and KMS key."""
    hw = to_json(request.hardware_generation) if request.HasField("hardware_generation") else None
    return Disk(
        id=disk_id,
        folder_id=request.folder_id,
        name=request.name,
        description=request.description,
        labels=dict(request.labels),
        type_id=request.type_id or catalog.DEFAULT_DISK_TYPE,
        zone_id=request.zone_id,
        size=request.size,
        block_size=request.block_size or catalog.DEFAULT_BLOCK_SIZE,
        product_ids=source.product_ids if source is not None else (),
        status=DiskStatus.CREATING,
        created_at=call.now(),
        source_snapshot_id=source.id if source is not None else None,
        hardware_generation=hw or (source.hardware_generation if source is not None else None),
        kms_key=source.kms_key if source is not None else None,
    )


# --- Update and Delete -----------------------------------------------------------------


def update(request: Message, call: Call) -> Message:
    """Name, description, labels (replaced as a whole) and size (grow only), done at once.
    Without an ``updateMask`` every one of them is set, the size only when given."""
    assert isinstance(request, pb.UpdateDiskRequest)
    paths = list(request.update_mask.paths)
    check_update_disk(
        disk_id=request.disk_id,
        update_mask=paths,
        name=request.name,
        description=request.description,
        labels=dict(request.labels),
        size=request.size,
    )
    changes, new_size = _changes(request, paths)
    env = call.env
    if new_size is not None:
        raise_if_any(catalog.size_violations(env, new_size))
    with env.meta.transaction() as tx:
        previous = replay(tx, call, f"{SERVICE}.Update", request)
        if previous is not None:
            return operation_proto(previous)
        disk = tx.disks.get(request.disk_id)
        call.require(tx, disk.folder_id, Access.WRITE)
        if new_size is not None:  # a quota check: the folder first, as Create locks it
            tx.folders.lock(disk.folder_id)
        disk = tx.disks.get(disk.id, for_update=True)
        growth = _growth(disk, new_size)
        if growth:
            _check_quota(tx, call, disk.folder_id, count=0, size=growth)
            changes["size"] = disk.size + growth
        updated = tx.disks.update(disk.id, changes)
        op = _done_operation(
            call, updated, verb="update", metadata=pb.UpdateDiskMetadata(disk_id=disk.id)
        )
        store_operation(tx, call, f"{SERVICE}.Update", request, op)
        if growth:  # last, inside the transaction: if it fails, nothing is recorded
            env.engine.disk(disk.id).grow(updated.size)
    return operation_proto(op)


def _changes(request: pb.UpdateDiskRequest, paths: list[str]) -> tuple[DiskUpdate, int | None]:
    """The metadata changes the request asks for, and the new size (None: unchanged)."""
    fields = paths or ["name", "description", "labels"]
    changes: DiskUpdate = {}
    if "name" in fields:
        changes["name"] = request.name
    if "description" in fields:
        changes["description"] = request.description
    if "labels" in fields:
        changes["labels"] = dict(request.labels)
    if "size" in paths and not request.size:
        raise BadRequest.single("size", "Field is required")
    asked = "size" in paths or (not paths and request.size != 0)
    return changes, request.size if asked else None


def _growth(disk: Disk, new_size: int | None) -> int:
    """By how many bytes the disk grows (0: it keeps its size)."""
    if new_size is None or new_size == disk.size:
        return 0
    if new_size < disk.size:
        raise BadRequest.single(
            "size", f"A disk can only grow: {new_size} is less than its size {disk.size}"
        )
    if disk.status is not DiskStatus.READY:
        raise d.FailedPrecondition(f"Disk {disk.id} is {disk.status}; only a READY disk grows")
    return new_size - disk.size


def delete(request: Message, call: Call) -> Message:
    """Remove the record (committed first), then the engine disk. A disk still being
    created, or with a snapshot of it being created, is FAILED_PRECONDITION."""
    assert isinstance(request, pb.DeleteDiskRequest)
    check_id("diskId", request.disk_id)
    env = call.env
    with env.meta.transaction() as tx:
        previous = replay(tx, call, f"{SERVICE}.Delete", request)
        if previous is not None:
            return operation_proto(previous)
        disk = tx.disks.get(request.disk_id, for_update=True)
        call.require(tx, disk.folder_id, Access.WRITE)
        if disk.status is DiskStatus.CREATING:
            raise d.FailedPrecondition(f"Disk {disk.id} is still being created")
        if tx.snapshots.count_by_disk(disk.id, [SnapshotStatus.CREATING]):
            raise d.FailedPrecondition(f"A snapshot of disk {disk.id} is being created")
        tx.disks.delete(disk.id)
        op = _done_operation(
            call, disk, verb="delete", metadata=pb.DeleteDiskMetadata(disk_id=disk.id)
        )
        store_operation(tx, call, f"{SERVICE}.Delete", request, op)
    # After the commit: a crash here leaves an engine disk no record points at, never a
    # record that points at nothing.
    _delete_engine_disk(env, disk.id)
    return operation_proto(op)


def _delete_engine_disk(env: Env, disk_id: str) -> None:
    """Delete the engine's disk. A Snapshot.Create that checked the disk before this
    delete committed may hold a checkpoint on it for a moment (snapshots.create takes it
    between its read check and its write transaction, which then fails and drops it):
    wait for that, rather than leave the disk behind."""
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        try:
            env.engine.delete_disk(disk_id)
            return
        except EngineDiskNotFound:
            return
        except EngineDiskBusy:
            if time.monotonic() > deadline:
                log.warning("disk %s: a snapshot still holds it; its files stay", disk_id)
                return
            time.sleep(0.01)


def _done_operation(call: Call, disk: Disk, *, verb: str, metadata: Message) -> Operation:
    """An operation on ``disk`` done within the call (``verb`` "update" or "delete"),
    with the Disk as its response, or Empty once deleted."""
    return new_operation(
        call,
        op_id=call.env.ids.new(call.env.disk_prefix(disk.zone_id)),
        description=f"{verb.capitalize()} disk",
        metadata=metadata,
        kind=f"compute.disks.{verb}",
        resource_id=disk.id,
        folder_id=disk.folder_id,
        response=empty_pb2.Empty() if verb == "delete" else disk_proto(disk),
    )


def list_operations(request: Message, call: Call) -> Message:
    assert isinstance(request, pb.ListDiskOperationsRequest)
    check_list_operations("diskId", request.disk_id, request.page_size)
    items, token = listing.list_operations(
        call,
        OPERATIONS,
        parent_field="diskId",
        parent_id=request.disk_id,
        page_size=request.page_size,
        page_token=request.page_token,
        folder_of=lambda tx: tx.disks.get(request.disk_id).folder_id,
    )
    return pb.ListDiskOperationsResponse(
        operations=[operation_proto(o) for o in items], next_page_token=token
    )


# Served in one read-only transaction with the caller's authentication (``Services``).
READ_ONLY = frozenset({f"{SERVICE}.Get", f"{SERVICE}.List", f"{SERVICE}.ListOperations"})

HANDLERS: dict[str, Callable[[Message, Call], Message]] = {
    f"{SERVICE}.Get": get,
    f"{SERVICE}.List": list_,
    f"{SERVICE}.Create": create,
    f"{SERVICE}.Update": update,
    f"{SERVICE}.Delete": delete,
    f"{SERVICE}.ListOperations": list_operations,
}

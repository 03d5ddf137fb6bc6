"""SnapshotService: Get, List, Create, Update, Delete, ListOperations.

Create checks the request, takes the engine checkpoint (the point in time: frozen in
memory and made durable by one record in the engine's checkpoint log) and records the
snapshot (CREATING) and its operation, all in one write transaction. Under load that
transaction is shared with other Creates (group commit, ``Call.grouped``): each Create
in a savepoint of its own, their checkpoints' records synced once, just before the
commit. If a Create fails or its transaction does not commit, its checkpoint is
dropped again; if the process dies before the commit, start-up drops the checkpoint
that no snapshot owns (``bootstrap.reconcile``). A worker builds the snapshot and
completes the operation.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future

from google.protobuf import empty_pb2
from google.protobuf.message import Message
from yandex.cloud.compute.v1 import snapshot_pb2
from yandex.cloud.compute.v1 import snapshot_service_pb2 as pb

from disksnap.domain import errors as d
from disksnap.domain.filters import snake_to_camel
from disksnap.domain.paging import Listable
from disksnap.domain.validation import (
    check_create_snapshot,
    check_id,
    check_list_operations,
    check_update_snapshot,
)
from disksnap.engine.errors import CheckpointNotFound as EngineCheckpointNotFound
from disksnap.engine.errors import DiskBusy as EngineDiskBusy
from disksnap.engine.errors import SnapshotNotFound as EngineSnapshotNotFound
from disksnap.meta import (
    Disk,
    DiskStatus,
    Operation,
    Snapshot,
    SnapshotStatus,
    SnapshotUpdate,
    Transaction,
)
from disksnap.service import listing
from disksnap.service.auth import Access
from disksnap.service.convert import snapshot_proto, to_json
from disksnap.service.core import Call, Change, QuotaExceeded
from disksnap.service.operations import (
    SNAPSHOT_CREATE,
    new_operation,
    operation_proto,
    replay,
    store_operation,
)

SERVICE = "yandex.cloud.compute.v1.SnapshotService"
PREFIX = "fd8"
LISTABLE = Listable(
    "snapshots",
    filter_fields=("name", "status", "sourceDiskId"),
    filter_labels=True,
    order_fields=("id", "name", "createdAt", "status"),
    filter_enums={"status": tuple(snapshot_pb2.Snapshot.Status.keys())},
)
OPERATIONS = Listable("snapshot-operations", order_fields=("createdAt",))


def get(request: Message, call: Call) -> Message:
    assert isinstance(request, pb.GetSnapshotRequest)
    check_id("snapshotId", request.snapshot_id)
    with call.reading() as tx:
        snapshot = tx.snapshots.get(request.snapshot_id)
        call.require(tx, snapshot.folder_id, Access.READ)
    return snapshot_proto(snapshot)


def list_(request: Message, call: Call) -> Message:
    assert isinstance(request, pb.ListSnapshotsRequest)
    items, token = listing.list_in_folder(call, LISTABLE, request, lambda tx: tx.snapshots)
    return pb.ListSnapshotsResponse(
        snapshots=[snapshot_proto(x) for x in items], next_page_token=token
    )


def create(request: Message, call: Call) -> Message:
    assert isinstance(request, pb.CreateSnapshotRequest)
    return call.grouped(_creating(request, call))


def start_create(request: Message, call: Call) -> Future[Message] | None:
    """``create`` queued for the writer without waiting (``Call.submit``): its future,
    or None where changes do not queue (then ``create`` it on a thread)."""
    assert isinstance(request, pb.CreateSnapshotRequest)
    return call.submit(_creating(request, call))


def _creating(request: pb.CreateSnapshotRequest, call: Call) -> Change[Message]:
    """A Create as a change for ``Call.grouped``: its checkpoint is synced before the
    commit, and dropped again if the snapshot is not committed."""
    taken: list[str] = []  # the checkpoint this call took

    def undo() -> None:
        for snapshot_id in taken:
            with contextlib.suppress(EngineCheckpointNotFound):
                call.env.engine.abort_checkpoint(snapshot_id)

    return Change(
        work=lambda tx: operation_proto(_create(tx, call, request, taken)),
        before_commit=call.env.engine.sync_checkpoints,  # the checkpoints, then records
        undo=undo,
        folder_id=request.folder_id,
    )


def _create(
    tx: Transaction, call: Call, request: pb.CreateSnapshotRequest, taken: list[str]
) -> Operation:
    """Check the request, take the checkpoint and record the snapshot and its operation
    (or find the operation an earlier request with the same key started)."""
    hw = request.hardware_generation if request.HasField("hardware_generation") else None
    env = call.env
    features = hw.WhichOneof("features") if hw is not None else None
    check_create_snapshot(
        folder_id=request.folder_id,
        disk_id=request.disk_id,
        name=request.name,
        description=request.description,
        labels=dict(request.labels),
        hardware_generation=None
        if hw is None
        else ([snake_to_camel(features)] if features else []),
    )
    call.require(tx, request.folder_id, Access.WRITE)
    # Serialises the Creates of a folder (its quota; on PostgreSQL, a retry racing its
    # original finds the original's key below once that commits).
    tx.folders.lock(request.folder_id)
    previous = replay(tx, call, f"{SERVICE}.Create", request)
    if previous is not None:
        return previous
    disk = _disk_to_snapshot(tx, call, request)
    _check_quota(tx, call, request.folder_id)
    snapshot_id, op_id = env.ids.new(PREFIX), env.ids.new(PREFIX)
    try:
        # The point in time; durable before the commit (``create``'s before_commit).
        env.engine.create_checkpoint(disk.id, snapshot_id, durable=False)
    except EngineDiskBusy:
        raise d.FailedPrecondition(f"Another snapshot of disk {disk.id} is being created") from None
    taken.append(snapshot_id)
    record = Snapshot(
        id=snapshot_id,
        folder_id=request.folder_id,
        name=request.name,
        description=request.description,
        labels=dict(request.labels),
        storage_size=0,
        disk_size=disk.size,
        product_ids=disk.product_ids,
        status=SnapshotStatus.CREATING,
        source_disk_id=disk.id,
        created_at=call.now(),
        hardware_generation=to_json(hw) if hw is not None else disk.hardware_generation,
        kms_key=disk.kms_key,
    )
    tx.snapshots.insert(record)
    op = new_operation(
        call,
        op_id=op_id,
        description="Create snapshot",
        metadata=pb.CreateSnapshotMetadata(snapshot_id=snapshot_id, disk_id=disk.id),
        kind=SNAPSHOT_CREATE,
        resource_id=snapshot_id,
        folder_id=request.folder_id,
        params={"snapshot_id": snapshot_id, "disk_id": disk.id},
    )
    store_operation(tx, call, f"{SERVICE}.Create", request, op)
    return op


def _disk_to_snapshot(tx: Transaction, call: Call, request: pb.CreateSnapshotRequest) -> Disk:
    """The disk ``request`` names, if the caller (who may write the folder) may read it
    and it is READY with no snapshot in flight."""
    disk, in_flight = tx.disks.get_locked_counting(request.disk_id, [SnapshotStatus.CREATING])
    if disk.folder_id != request.folder_id:
        call.require(tx, disk.folder_id, Access.READ)
    if disk.status is not DiskStatus.READY:
        raise d.FailedPrecondition(f"Disk {disk.id} is {disk.status.value}, not READY")
    if in_flight:
        raise d.FailedPrecondition(f"Another snapshot of disk {disk.id} is being created")
    return disk


def _check_quota(tx: Transaction, call: Call, folder_id: str) -> None:
    usage, limits = tx.snapshots.usage_within(folder_id, call.env.settings.quotas)
    if usage.count + 1 > limits["compute.snapshots.count"]:
        raise QuotaExceeded("compute.snapshots.count")
    if usage.size >= limits["compute.snapshots.size"]:
        raise QuotaExceeded("compute.snapshots.size")


def update(request: Message, call: Call) -> Message:
    assert isinstance(request, pb.UpdateSnapshotRequest)
    paths = list(request.update_mask.paths)
    check_update_snapshot(
        snapshot_id=request.snapshot_id,
        update_mask=paths,
        name=request.name,
        description=request.description,
        labels=dict(request.labels),
    )
    fields = paths or ["name", "description", "labels"]
    changes: SnapshotUpdate = {}
    if "name" in fields:
        changes["name"] = request.name
    if "description" in fields:
        changes["description"] = request.description
    if "labels" in fields:
        changes["labels"] = dict(request.labels)
    env = call.env
    with env.meta.transaction() as tx:
        previous = replay(tx, call, f"{SERVICE}.Update", request)
        if previous is not None:
            return operation_proto(previous)
        snapshot = tx.snapshots.get(request.snapshot_id, for_update=True)
        call.require(tx, snapshot.folder_id, Access.WRITE)
        updated = tx.snapshots.update(snapshot.id, changes)
        op = new_operation(
            call,
            op_id=env.ids.new(PREFIX),
            description="Update snapshot",
            metadata=pb.UpdateSnapshotMetadata(snapshot_id=snapshot.id),
            kind="compute.snapshots.update",
            resource_id=snapshot.id,
            folder_id=snapshot.folder_id,
            response=snapshot_proto(updated),
        )
        store_operation(tx, call, f"{SERVICE}.Update", request, op)
    return operation_proto(op)


def delete(request: Message, call: Call) -> Message:
    """Unpublish the snapshot. Its chunks go with the next GC; the next snapshot of the
    same disk takes over the storage it no longer shares."""
    assert isinstance(request, pb.DeleteSnapshotRequest)
    check_id("snapshotId", request.snapshot_id)
    env = call.env
    with env.meta.transaction() as tx:
        previous = replay(tx, call, f"{SERVICE}.Delete", request)
        if previous is not None:
            return operation_proto(previous)
        snapshot = tx.snapshots.get(request.snapshot_id, for_update=True)
        call.require(tx, snapshot.folder_id, Access.WRITE)
        if snapshot.status is SnapshotStatus.CREATING:
            raise d.FailedPrecondition(f"Snapshot {snapshot.id} is still being created")
        if tx.disks.count_by_snapshot(snapshot.id, [DiskStatus.CREATING]):
            raise d.FailedPrecondition(f"A disk is being created from snapshot {snapshot.id}")
        tx.snapshots.delete(snapshot.id)
        op = new_operation(
            call,
            op_id=env.ids.new(PREFIX),
            description="Delete snapshot",
            metadata=pb.DeleteSnapshotMetadata(snapshot_id=snapshot.id),
            kind="compute.snapshots.delete",
            resource_id=snapshot.id,
            folder_id=snapshot.folder_id,
            response=empty_pb2.Empty(),
        )
        store_operation(tx, call, f"{SERVICE}.Delete", request, op)
    # After the commit: a crash here leaves an unreferenced manifest, never a record
    # that points at nothing.
    with contextlib.suppress(EngineSnapshotNotFound):
        env.engine.delete_snapshot(snapshot.id)
    if snapshot.source_disk_id:
        refresh_storage_sizes(call, snapshot.source_disk_id)
    return operation_proto(op)


def refresh_storage_sizes(call: Call, disk_id: str) -> None:
    """storageSize is the delta from the previous snapshot of the same disk; record what
    the engine now computes for each READY snapshot of the disk."""
    sizes = call.env.engine.storage_sizes(disk_id)
    with call.env.meta.transaction() as tx:
        for snapshot_id, size in sizes.items():
            try:
                current = tx.snapshots.get(snapshot_id)
            except d.NotFound:
                continue
            if current.storage_size != size and current.status is SnapshotStatus.READY:
                tx.snapshots.update(snapshot_id, {"storage_size": size})


def list_operations(request: Message, call: Call) -> Message:
    assert isinstance(request, pb.ListSnapshotOperationsRequest)
    check_list_operations("snapshotId", request.snapshot_id, request.page_size)
    items, token = listing.list_operations(
        call,
        OPERATIONS,
        parent_field="snapshotId",
        parent_id=request.snapshot_id,
        page_size=request.page_size,
        page_token=request.page_token,
        folder_of=lambda tx: tx.snapshots.get(request.snapshot_id).folder_id,
    )
    return pb.ListSnapshotOperationsResponse(
        operations=[operation_proto(o) for o in items], next_page_token=token
    )


# Served in one read-only transaction with the caller's authentication (``Services``).
READ_ONLY = frozenset({f"{SERVICE}.Get", f"{SERVICE}.List", f"{SERVICE}.ListOperations"})
CHECKS_FIRST = frozenset({f"{SERVICE}.Create"})  # authenticated in ``Call.grouped``
# Queued for the writer from the event loop, where changes queue (``Services.start``).
STARTERS = {f"{SERVICE}.Create": start_create}

HANDLERS = {
    f"{SERVICE}.Get": get,
    f"{SERVICE}.List": list_,
    f"{SERVICE}.Create": create,
    f"{SERVICE}.Update": update,
    f"{SERVICE}.Delete": delete,
    f"{SERVICE}.ListOperations": list_operations,
}

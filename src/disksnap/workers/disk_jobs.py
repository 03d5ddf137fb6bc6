"""The job behind ``DiskService.Create``: make the engine disk, mark the record READY.

An empty disk is ``Engine.create_disk``; a disk from a snapshot is
``Engine.restore_lazy``: usable at once, its extents read through from the snapshot
until copied in. The disk keeps its own copy of the snapshot's manifest (a GC root), so
the snapshot may be deleted meanwhile. Hydration (``Engine.hydrate``) is not part of
this job: the operation is done when the disk is usable, not after a copy of its whole
content, and a cancel can never remove a disk the client already saw READY.

Resumable: a job that runs again after a crash finds the engine disk it made before and
goes on from there. Cancelled before the disk is READY, it removes the engine disk and
the record and ends CANCELLED.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from disksnap.domain import errors as d
from disksnap.engine.errors import DiskNotFound, EngineClosing
from disksnap.meta import Disk, DiskStatus, OperationResult, Transaction
from disksnap.meta.errors import DiskNotFound as DiskRecordNotFound
from disksnap.service.convert import disk_proto
from disksnap.service.core import Env
from disksnap.service.operations import DISK_CREATE, error_result, response_result
from disksnap.service.status import simple_status, status_of
from disksnap.workers.lease import Lease
from disksnap.workers.outcome import Completion, Outcome


def create_disk(env: Env, lease: Lease) -> Outcome:
    disk_id = str(lease.op.params["disk_id"])
    record = _record(env, disk_id)
    if record is not None and record.status is DiskStatus.READY:  # done before a restart
        return response_result(disk_proto(record))
    if record is None or lease.cancel.is_set():  # None: cancelled before a restart
        return _cancelled(env, lease, disk_id)
    try:
        _make_engine_disk(env, lease, disk_id)
    except EngineClosing:
        return None
    except d.DisksnapError as e:
        _remove_engine_disk(env, disk_id)
        with env.meta.transaction() as tx:
            tx.disks.update(disk_id, {"status": DiskStatus.ERROR})
        return error_result(status_of(e, lease.op.id))
    return _ready(env, lease, disk_id)


def _record(env: Env, disk_id: str) -> Disk | None:
    with env.meta.transaction(readonly=True) as tx:
        try:
            return tx.disks.get(disk_id)
        except DiskRecordNotFound:
            return None


def _ready(env: Env, lease: Lease, disk_id: str) -> Outcome:
    lease.heartbeat()  # picks up a cancel asked for while the disk was made
    if lease.cancel.is_set():
        return _cancelled(env, lease, disk_id)

    def ready(tx: Transaction) -> OperationResult:
        return response_result(disk_proto(tx.disks.update(disk_id, {"status": DiskStatus.READY})))

    return Completion(ready)


def _make_engine_disk(env: Env, lease: Lease, disk_id: str) -> None:
    """Create the engine disk, unless an earlier run of this operation did."""
    with contextlib.suppress(DiskNotFound):
        env.engine.disk(disk_id)
        return
    size, snapshot_id = lease.op.params["size"], lease.op.params.get("snapshot_id")
    assert isinstance(size, int)
    if isinstance(snapshot_id, str):
        env.engine.restore_lazy(snapshot_id, disk_id, size=size)
    else:
        env.engine.create_disk(disk_id, size)


def _cancelled(env: Env, lease: Lease, disk_id: str) -> OperationResult | None:
    if lease.lost:
        return None  # the new owner cleans up
    _remove_engine_disk(env, disk_id)
    with env.meta.transaction() as tx, contextlib.suppress(DiskRecordNotFound):
        tx.disks.delete(disk_id)
    return error_result(simple_status(d.Code.CANCELLED, "Operation was cancelled", lease.op.id))


def _remove_engine_disk(env: Env, disk_id: str) -> None:
    with contextlib.suppress(DiskNotFound):
        env.engine.delete_disk(disk_id)


DISK_JOBS: Mapping[str, Callable[[Env, Lease], Outcome]] = {DISK_CREATE: create_disk}

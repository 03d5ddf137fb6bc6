"""The jobs behind long-running operations, by operation kind.

A job returns the operation's result (``outcome.py``), or None to hand the operation
back unfinished (the engine is shutting down, or the lease was lost): it will be claimed
again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from disksnap.domain import errors as d
from disksnap.engine.errors import BuildCancelled, CheckpointNotFound, EngineClosing
from disksnap.meta import (
    DiskStatus,
    Operation,
    OperationResult,
    SnapshotStatus,
    SnapshotUpdate,
    Transaction,
)
from disksnap.service.convert import snapshot_proto
from disksnap.service.core import Env
from disksnap.service.operations import (
    DISK_CREATE,
    SNAPSHOT_CREATE,
    error_result,
    response_result,
)
from disksnap.service.status import simple_status, status_of
from disksnap.workers.disk_jobs import DISK_JOBS
from disksnap.workers.lease import Lease
from disksnap.workers.outcome import Completion, Outcome

Job = Callable[[Env, Lease], Outcome]


def build_snapshot(env: Env, lease: Lease) -> Outcome:
    snapshot_id = str(lease.op.params["snapshot_id"])
    disk_id = str(lease.op.params["disk_id"])
    try:
        try:
            env.engine.build_snapshot(snapshot_id, progress=lease.progress, cancel=lease.cancel)
        except CheckpointNotFound:
            if not env.engine.has_snapshot(snapshot_id):  # else published before a restart
                raise d.DataLoss(
                    f"Snapshot {snapshot_id} lost its point in time: its checkpoint is gone"
                ) from None
    except EngineClosing:
        return None
    except BuildCancelled:
        if lease.lost:
            return None
        _drop_checkpoint(env, snapshot_id)
        with env.meta.transaction() as tx:
            tx.snapshots.delete(snapshot_id)
        return error_result(simple_status(d.Code.CANCELLED, "Operation was cancelled", lease.op.id))
    except d.DisksnapError as e:
        _drop_checkpoint(env, snapshot_id)
        with env.meta.transaction() as tx:
            tx.snapshots.update(snapshot_id, {"status": SnapshotStatus.ERROR})
        return error_result(status_of(e, lease.op.id))
    storage_size = env.engine.storage_sizes(disk_id).get(snapshot_id, 0)

    def ready(tx: Transaction) -> OperationResult:
        changes: SnapshotUpdate = {"status": SnapshotStatus.READY, "storage_size": storage_size}
        return response_result(snapshot_proto(tx.snapshots.update(snapshot_id, changes)))

    return Completion(ready)


def abandon_snapshot(env: Env, op: Operation) -> None:
    """After a job crashed: the snapshot cannot be trusted, say so and free the disk."""
    snapshot_id = str(op.params["snapshot_id"])
    _drop_checkpoint(env, snapshot_id)
    with env.meta.transaction() as tx, contextlib.suppress(d.NotFound):
        tx.snapshots.update(snapshot_id, {"status": SnapshotStatus.ERROR})


def _drop_checkpoint(env: Env, snapshot_id: str) -> None:
    with contextlib.suppress(CheckpointNotFound):
        env.engine.abort_checkpoint(snapshot_id)


def abandon_disk(env: Env, op: Operation) -> None:
    with env.meta.transaction() as tx, contextlib.suppress(d.NotFound):
        tx.disks.update(str(op.params["disk_id"]), {"status": DiskStatus.ERROR})


JOBS: Mapping[str, Job] = {SNAPSHOT_CREATE: build_snapshot, **DISK_JOBS}

# What to do with an operation's resource when its job raised unexpectedly (a bug):
# mark it ERROR, so that it can be seen and deleted rather than stay CREATING.
ABANDON: Mapping[str, Callable[[Env, Operation], None]] = {
    SNAPSHOT_CREATE: abandon_snapshot,
    DISK_CREATE: abandon_disk,
}

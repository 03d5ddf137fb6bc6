"""The worker loop: a job's last change commits with its operation's completion or not at
all; a job or completion that raises ends the operation INTERNAL and its resource ERROR."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from google.rpc import status_pb2

from disksnap.domain import errors as d
from disksnap.engine.errors import CheckpointNotFound
from disksnap.meta import Operation, OperationResult, SnapshotStatus, Transaction
from disksnap.service.bootstrap import Admin
from disksnap.service.core import Env
from disksnap.service.operations import SNAPSHOT_CREATE
from disksnap.workers.jobs import build_snapshot
from disksnap.workers.lease import Lease
from disksnap.workers.outcome import Completion, Outcome
from disksnap.workers.runner import Worker
from tests.meta.counting import count_transactions
from tests.service.conftest import Client, add_disk
from tests.service.test_snapshots import create, meta_of

LEASE = dt.timedelta(seconds=30)


def _started(env: Env, admin: Admin, client: Client) -> tuple[str, str]:
    """A Snapshot.Create accepted and not yet worked on: (operation id, snapshot id)."""
    add_disk(env, admin.folder_id, "disk1")
    op = create(client, admin.folder_id, "disk1")
    return op.id, meta_of(op).snapshot_id


def _snapshot_status(env: Env, snapshot_id: str) -> SnapshotStatus:
    with env.meta.transaction(readonly=True) as tx:
        return tx.snapshots.get(snapshot_id).status


def _error_code(env: Env, op_id: str) -> int:
    with env.meta.transaction(readonly=True) as tx:
        op = tx.operations.get(op_id)
    assert op.done
    assert op.result is not None
    assert op.result.kind == "error"
    return int(status_pb2.Status.FromString(op.result.payload).code)


def test_a_completion_commits_with_the_operation(env: Env, admin: Admin, client: Client) -> None:
    op_id, snapshot_id = _started(env, admin, client)
    assert Worker(env, "w").run_once()
    assert _snapshot_status(env, snapshot_id) is SnapshotStatus.READY
    with env.meta.transaction(readonly=True) as tx:
        op = tx.operations.get(op_id)
    assert op.done
    assert op.lease_owner is None
    assert op.result is not None
    assert op.result.kind == "response"


def test_a_lost_lease_rolls_the_completion_back(env: Env, admin: Admin, client: Client) -> None:
    op_id, snapshot_id = _started(env, admin, client)

    def build_then_lose_the_lease(env: Env, lease: Lease) -> Outcome:
        outcome = build_snapshot(env, lease)
        with env.meta.transaction() as tx:  # another worker takes the operation over
            tx.operations.release(op_id, "w")
            taken = tx.operations.claim("other", LEASE)
        assert taken is not None
        assert taken.id == op_id
        return outcome

    worker = Worker(env, "w", jobs={SNAPSHOT_CREATE: build_then_lose_the_lease})
    assert worker.run_once()
    # The READY status was to commit with the completion, which the lease loss refused.
    assert _snapshot_status(env, snapshot_id) is SnapshotStatus.CREATING
    with env.meta.transaction(readonly=True) as tx:
        op = tx.operations.get(op_id)
    assert not op.done
    assert op.lease_owner == "other"


def test_a_job_that_raises_ends_internal_and_the_snapshot_error(
    env: Env, admin: Admin, client: Client
) -> None:
    op_id, snapshot_id = _started(env, admin, client)

    def broken(env: Env, lease: Lease) -> Outcome:
        raise RuntimeError("a bug")

    assert Worker(env, "w", jobs={SNAPSHOT_CREATE: broken}).run_once()
    assert _error_code(env, op_id) == d.Code.INTERNAL
    assert _snapshot_status(env, snapshot_id) is SnapshotStatus.ERROR
    with pytest.raises(CheckpointNotFound):  # the checkpoint was dropped
        env.engine.checkpoint_usage(snapshot_id)


def test_a_completion_that_raises_changes_nothing_of_its_own(
    env: Env, admin: Admin, client: Client
) -> None:
    op_id, snapshot_id = _started(env, admin, client)

    def completes_badly(env: Env, lease: Lease) -> Outcome:
        def apply(tx: Transaction) -> OperationResult:
            tx.snapshots.update(snapshot_id, {"name": "half-done"})
            raise RuntimeError("a bug after a change")

        return Completion(apply)

    assert Worker(env, "w", jobs={SNAPSHOT_CREATE: completes_badly}).run_once()
    assert _error_code(env, op_id) == d.Code.INTERNAL
    with env.meta.transaction(readonly=True) as tx:
        snapshot = tx.snapshots.get(snapshot_id)
    assert (snapshot.status, snapshot.name) == (SnapshotStatus.ERROR, "")


def test_a_worker_may_claim_without_looking_first(env: Env, admin: Admin, client: Client) -> None:
    _started(env, admin, client)
    worker = Worker(env, "w")
    assert worker.run_once(look_first=False)
    assert not worker.run_once(look_first=False)  # the claim itself finds nothing
    assert not worker.run_once()


def _two_started(env: Env, admin: Admin, client: Client) -> set[str]:
    """Two Snapshot.Creates (of two disks) accepted and not yet worked on: their ids."""
    add_disk(env, admin.folder_id, "disk1")
    add_disk(env, admin.folder_id, "disk2")
    return {create(client, admin.folder_id, d).id for d in ("disk1", "disk2")}


def _states(env: Env, op_ids: set[str]) -> list[tuple[bool, str | None]]:
    """(done, lease owner) of each operation, sorted: done ones last."""
    with env.meta.transaction(readonly=True) as tx:
        ops = [tx.operations.get(op_id) for op_id in op_ids]
    return sorted((op.done, op.lease_owner) for op in ops)


def test_a_busy_worker_claims_the_next_operation_as_it_completes_one(
    env: Env, admin: Admin, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = _two_started(env, admin, client)
    worker = Worker(env, "w")
    begun = count_transactions(env.meta, monkeypatch)
    assert worker.run_once(look_first=False, claim_next=True)
    assert begun == [False, False]  # claim; finish one and claim the other
    assert _states(env, ops) == [(False, "w"), (True, None)]
    begun.clear()
    assert worker.run_once(look_first=False, claim_next=True)  # runs the one it holds
    assert begun == [False]  # finish (nothing left to claim)
    assert _states(env, ops) == [(True, None), (True, None)]
    assert not worker.run_once(claim_next=True)


def test_a_worker_gives_back_the_operation_it_claimed_ahead(
    env: Env, admin: Admin, client: Client
) -> None:
    ops = _two_started(env, admin, client)
    worker = Worker(env, "w")
    assert worker.run_once(claim_next=True)
    assert _states(env, ops) == [(False, "w"), (True, None)]
    worker.give_back()
    assert _states(env, ops) == [(False, None), (True, None)]
    assert Worker(env, "other").run_once()  # at once, not after the lease
    assert _states(env, ops) == [(True, None), (True, None)]


def test_a_stopped_worker_gives_back_what_it_claimed_ahead(
    env: Env, admin: Admin, client: Client
) -> None:
    ops = _two_started(env, admin, client)
    worker = Worker(env, "w", poll_seconds=0.01)

    def build_then_stop(env: Env, lease: Lease) -> Outcome:
        worker.request_stop()  # before the completion: nothing more is claimed
        return build_snapshot(env, lease)

    worker.jobs = {SNAPSHOT_CREATE: build_then_stop}
    worker.start()
    worker.stop()
    assert _states(env, ops) == [(False, None), (True, None)]


def test_a_worker_loop_gives_back_its_next_operation_when_it_stops(
    env: Env, admin: Admin, client: Client
) -> None:
    ops = _two_started(env, admin, client)
    held: list[Operation | None] = []
    stopping = threading.Event()

    class StopsAfterOne(Worker):
        def _complete(self, op: Operation, outcome: Outcome, *, claim_next: bool = False) -> None:
            super()._complete(op, outcome, claim_next=claim_next)
            held.append(self._next)  # the other one, claimed with the completion
            self.request_stop()
            stopping.set()

    worker = StopsAfterOne(env, "w", poll_seconds=0.01)
    worker.start()
    assert stopping.wait(30)
    worker.stop()
    assert len(held) == 1
    assert held[0] is not None
    assert held[0].id in ops
    assert _states(env, ops) == [(False, None), (True, None)]

"""Contract: operations and the work queue (claim, lease, heartbeat, finish, cancel)."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest

from disksnap.domain.clock import FakeClock
from disksnap.meta import Cursor, Meta, OperationResult
from disksnap.meta.base import MANY_AT_ONCE
from disksnap.meta.errors import DuplicateId, LeaseLost, OperationNotFound
from tests.meta.conftest import MetaFactory
from tests.meta.factories import T0, at, operation, seed

LEASE = dt.timedelta(seconds=30)
RESPONSE = OperationResult("response", b"\x0a\x05snap!")
ERROR = OperationResult("error", b"\x08\x01")


@pytest.fixture
def queue(meta: Meta) -> Meta:
    with meta.transaction() as tx:
        seed(tx)
    return meta


def test_insert_get(queue: Meta) -> None:
    pending = operation("op1", params={"diskId": "d", "nested": {"n": [1, 2.5, None, True]}})
    done = operation("op2", done=True, result=ERROR, metadata=b"")
    with queue.transaction() as tx:
        tx.operations.insert(pending)
        tx.operations.insert(done)
        with pytest.raises(DuplicateId):
            tx.operations.insert(operation("op1"))
        with pytest.raises(ValueError, match="exactly when"):
            tx.operations.insert(operation("op3", done=True))
    with queue.transaction(readonly=True) as tx:
        assert tx.operations.get("op1") == pending
        assert tx.operations.get("op2") == done
        with pytest.raises(OperationNotFound) as info:
            tx.operations.get("missing")
        assert info.value.reason == "OPERATION_NOT_FOUND"


def test_get_many(queue: Meta) -> None:
    ops = [operation(f"op{i}") for i in range(MANY_AT_ONCE + 5)]  # two statements
    with queue.transaction() as tx:
        for op in ops:
            tx.operations.insert(op)
    with queue.transaction(readonly=True) as tx:
        asked = [op.id for op in ops] + ["missing"]
        assert sorted(tx.operations.get_many(asked), key=lambda o: o.id) == sorted(
            ops, key=lambda o: o.id
        )
        assert tx.operations.get_many(["op3", "missing"]) == [ops[3]]
        assert tx.operations.get_many([]) == []


def test_list_by_resource_newest_first(queue: Meta) -> None:
    times = [0, 5, 5, 5, 9, 1, 5]
    with queue.transaction() as tx:
        for n, seconds in enumerate(times):
            tx.operations.insert(operation(f"op{n}", resource_id="res", created_at=at(seconds)))
        tx.operations.insert(operation("other", resource_id="res2", created_at=at(100)))
    expected = [f"op{n}" for n, s in sorted(enumerate(times), key=lambda p: (p[1], f"op{p[0]}"))]
    expected.reverse()
    seen: list[str] = []
    after: Cursor | None = None
    while True:
        with queue.transaction(readonly=True) as tx:
            page = tx.operations.list_by_resource("res", after=after, limit=2)
        seen.extend(op.id for op in page.items)
        if page.next is None:
            break
        after = page.next
    assert seen == expected
    with queue.transaction(readonly=True) as tx:
        assert tx.operations.list_by_resource("nothing").items == ()


def test_request_cancel(queue: Meta, clock: FakeClock) -> None:
    with queue.transaction() as tx:
        tx.operations.insert(operation("op1"))
        tx.operations.insert(operation("op2", done=True, result=RESPONSE))
    clock.advance(7)
    with queue.transaction() as tx:
        flagged = tx.operations.request_cancel("op1")
        assert flagged.cancel_requested
        assert flagged.modified_at == clock.now()
        finished = tx.operations.request_cancel("op2")  # no-op once done
        assert not finished.cancel_requested
        assert finished.modified_at == T0
        with pytest.raises(OperationNotFound):
            tx.operations.request_cancel("missing")


def test_claim_oldest_first_and_lease(queue: Meta, clock: FakeClock) -> None:
    with queue.transaction() as tx:
        tx.operations.insert(operation("late", created_at=at(-1)))
        tx.operations.insert(operation("early", created_at=at(-2)))
        tx.operations.insert(operation("finished", created_at=at(-3), done=True, result=ERROR))
    with queue.transaction() as tx:
        first = tx.operations.claim("w1", LEASE)
        second = tx.operations.claim("w2", LEASE)
        assert tx.operations.claim("w3", LEASE) is None
    assert first is not None
    assert second is not None
    assert (first.id, second.id) == ("early", "late")
    assert first.lease_owner == "w1"
    assert first.lease_expires_at == clock.now() + LEASE
    assert first.attempts == 1
    assert first.modified_at == clock.now()


def test_expired_lease_is_reclaimed(queue: Meta, clock: FakeClock) -> None:
    with queue.transaction() as tx:
        tx.operations.insert(operation("op1"))
        assert tx.operations.claim("w1", LEASE) is not None
    clock.advance(29.9)
    with queue.transaction() as tx:
        assert tx.operations.claim("w2", LEASE) is None
    clock.advance(0.1)  # exactly at expiry
    with queue.transaction() as tx:
        taken = tx.operations.claim("w2", LEASE)
    assert taken is not None
    assert (taken.lease_owner, taken.attempts) == ("w2", 2)
    with queue.transaction() as tx:
        with pytest.raises(LeaseLost) as info:
            tx.operations.heartbeat("op1", "w1", LEASE)
        assert info.value.reason == "LEASE_LOST"
        with pytest.raises(LeaseLost):
            tx.operations.finish("op1", "w1", RESPONSE)
        assert tx.operations.get("op1").lease_owner == "w2"


def test_any_claimable_says_what_claim_would_find(queue: Meta, clock: FakeClock) -> None:
    # A read-only transaction answers it (PostgreSQL enforces read-only).
    def any_claimable(kinds: list[str] | None = None) -> bool:
        with queue.transaction(readonly=True) as tx:
            return tx.operations.any_claimable(kinds=kinds)

    assert not any_claimable()
    with queue.transaction() as tx:
        tx.operations.insert(operation("done", done=True, result=ERROR))
    assert not any_claimable()
    with queue.transaction() as tx:
        tx.operations.insert(operation("op1"))
    assert any_claimable()
    assert not any_claimable(kinds=["no-such-kind"])
    with queue.transaction() as tx:
        assert tx.operations.claim("w1", LEASE) is not None
    assert not any_claimable()  # leased
    clock.advance(LEASE.total_seconds())
    assert any_claimable()  # the lease expired


def test_heartbeat(queue: Meta, clock: FakeClock) -> None:
    with queue.transaction() as tx:
        tx.operations.insert(operation("op1"))
        tx.operations.claim("w1", LEASE)
    clock.advance(20)
    with queue.transaction() as tx:
        beat = tx.operations.heartbeat("op1", "w1", LEASE)
        assert beat.lease_expires_at == clock.now() + LEASE
        assert not beat.cancel_requested
        tx.operations.request_cancel("op1")
        assert tx.operations.heartbeat("op1", "w1", LEASE).cancel_requested
    clock.advance(40)  # expired, but nobody took it: still held
    with queue.transaction() as tx:
        assert tx.operations.heartbeat("op1", "w1", LEASE).lease_owner == "w1"
        with pytest.raises(LeaseLost):
            tx.operations.heartbeat("op1", "w2", LEASE)
        with pytest.raises(OperationNotFound):
            tx.operations.heartbeat("missing", "w1", LEASE)


def test_finish(queue: Meta, clock: FakeClock) -> None:
    with queue.transaction() as tx:
        tx.operations.insert(operation("op1"))
        tx.operations.insert(operation("op2", created_at=at(1)))
        tx.operations.claim("w1", LEASE)
        tx.operations.claim("w1", LEASE)
    clock.advance(3)
    with queue.transaction() as tx:
        with pytest.raises(LeaseLost):
            tx.operations.finish("op1", "intruder", RESPONSE)
        done = tx.operations.finish("op1", "w1", RESPONSE)
        failed = tx.operations.finish("op2", "w1", ERROR)
        with pytest.raises(LeaseLost, match="done"):
            tx.operations.finish("op1", "w1", ERROR)
        with pytest.raises(OperationNotFound):
            tx.operations.finish("missing", "w1", ERROR)
    assert (done.done, done.result, done.lease_owner, done.lease_expires_at) == (
        True,
        RESPONSE,
        None,
        None,
    )
    assert done.modified_at == clock.now()
    assert failed.result == ERROR
    clock.advance(3600)
    with queue.transaction() as tx:
        assert tx.operations.claim("w2", LEASE) is None
        assert tx.operations.get("op1") == done


def test_release_and_kinds(queue: Meta) -> None:
    with queue.transaction() as tx:
        tx.operations.insert(operation("snap", kind="compute.snapshots.create"))
        tx.operations.insert(operation("disk", kind="compute.disks.create", created_at=at(1)))
        claimed = tx.operations.claim("w1", LEASE, kinds=["compute.disks.create"])
        assert claimed is not None
        assert claimed.id == "disk"
        assert tx.operations.claim("w1", LEASE, kinds=["compute.disks.create"]) is None
        released = tx.operations.release("disk", "w1")
        assert (released.lease_owner, released.lease_expires_at) == (None, None)
        with pytest.raises(LeaseLost):
            tx.operations.release("disk", "w1")
        again = tx.operations.claim("w2", LEASE, kinds=["compute.disks.create"])
        assert again is not None
        assert (again.id, again.attempts) == ("disk", 2)


def test_concurrent_claims_never_share(open_meta: MetaFactory) -> None:
    """Four workers, each with its own connections, drain the queue: each operation is
    claimed exactly once."""
    meta = open_meta()
    with meta.transaction() as tx:
        seed(tx)
        for n in range(40):
            tx.operations.insert(operation(f"op{n:02d}", created_at=at(n % 7)))
    claims: list[tuple[str, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        own = open_meta()
        start.wait()
        while True:
            with own.transaction() as tx:
                op = tx.operations.claim(name, LEASE)
            if op is None:
                return
            with lock:
                claims.append((op.id, name))

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    counts = Counter(op_id for op_id, _ in claims)
    assert sorted(counts) == [f"op{n:02d}" for n in range(40)]
    assert set(counts.values()) == {1}
    with meta.transaction(readonly=True) as tx:
        for op_id, owner in claims:
            current = tx.operations.get(op_id)
            assert (current.lease_owner, current.attempts) == (owner, 1)


def test_counts_by_kind_and_state(queue: Meta) -> None:
    with queue.transaction() as tx:
        tx.operations.insert(operation("op1"))
        tx.operations.insert(operation("op2"))
        tx.operations.insert(operation("op3", kind="compute.disks.create"))
        tx.operations.insert(operation("op4", done=True, result=RESPONSE))
        assert tx.operations.claim("w1", LEASE) is not None
    with queue.transaction(readonly=True) as tx:
        assert tx.operations.counts() == {
            ("compute.snapshots.create", "done"): 1,
            ("compute.snapshots.create", "running"): 1,
            ("compute.snapshots.create", "pending"): 1,
            ("compute.disks.create", "pending"): 1,
        }

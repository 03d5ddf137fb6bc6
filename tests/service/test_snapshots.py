"""SnapshotService through the dispatcher, with real metadata, engine and worker."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from google.protobuf import field_mask_pb2
from yandex.cloud.compute.v1 import snapshot_pb2
from yandex.cloud.compute.v1 import snapshot_service_pb2 as pb
from yandex.cloud.operation import operation_pb2, operation_service_pb2

from disksnap.domain import errors as d
from disksnap.domain.clock import FakeClock
from disksnap.meta import Subject, SubjectKind
from disksnap.service.auth import PermissionDenied, Unauthenticated
from disksnap.service.bootstrap import Admin, bootstrap
from disksnap.service.core import Env
from tests.meta.counting import count_transactions, wait_queued
from tests.service.conftest import (
    Client,
    MiB,
    add_disk,
    close_env,
    make_env,
)

S = "yandex.cloud.compute.v1.SnapshotService"
OPS = "yandex.cloud.operation.OperationService"


def create(
    client: Client,
    folder: str,
    disk: str,
    name: str = "",
    labels: dict[str, str] | None = None,
) -> operation_pb2.Operation:
    request = pb.CreateSnapshotRequest(folder_id=folder, disk_id=disk, name=name, labels=labels)
    op = client(f"{S}.Create", request)
    assert isinstance(op, operation_pb2.Operation)
    return op


def get(client: Client, snapshot_id: str) -> snapshot_pb2.Snapshot:
    s = client(f"{S}.Get", pb.GetSnapshotRequest(snapshot_id=snapshot_id))
    assert isinstance(s, snapshot_pb2.Snapshot)
    return s


def meta_of(op: operation_pb2.Operation) -> pb.CreateSnapshotMetadata:
    m = pb.CreateSnapshotMetadata()
    assert op.metadata.Unpack(m)
    return m


def op_get(client: Client, op_id: str) -> operation_pb2.Operation:
    op = client(f"{OPS}.Get", operation_service_pb2.GetOperationRequest(operation_id=op_id))
    assert isinstance(op, operation_pb2.Operation)
    return op


def test_create_returns_an_operation_then_the_worker_builds_the_snapshot(
    env: Env, admin: Admin, client: Client
) -> None:
    add_disk(env, admin.folder_id, "disk1")
    data = random.Random(3).randbytes(8 * MiB)
    env.engine.disk("disk1").write(0, data)
    op = create(client, admin.folder_id, "disk1", name="nightly", labels={"env": "test"})
    assert not op.done
    assert op.description == "Create snapshot"
    assert op.created_by == admin.subject_id
    snapshot_id = meta_of(op).snapshot_id
    assert (meta_of(op).disk_id, snapshot_id[:3], len(snapshot_id)) == ("disk1", "fd8", 20)
    assert get(client, snapshot_id).status == snapshot_pb2.Snapshot.CREATING
    env.engine.disk("disk1").write(0, b"after the call was accepted")
    assert client.work() == 1
    done = op_get(client, op.id)
    assert done.done
    assert done.WhichOneof("result") == "response"
    snap = snapshot_pb2.Snapshot()
    assert done.response.Unpack(snap)
    assert snap.status == snapshot_pb2.Snapshot.READY
    assert (snap.name, dict(snap.labels), snap.disk_size) == ("nightly", {"env": "test"}, 16 * MiB)
    assert snap.source_disk_id == "disk1"
    assert list(snap.product_ids) == ["f2e1"]
    assert snap.storage_size > 8 * MiB  # two random 4 MiB chunks plus headers
    env.engine.restore(snapshot_id, "check")
    assert env.engine.disk("check").read(0, 8 * MiB) == data  # the moment of the call


def test_second_snapshot_while_one_is_creating_and_deleting_a_creating_one(
    env: Env, admin: Admin, client: Client
) -> None:
    add_disk(env, admin.folder_id, "disk1")
    op = create(client, admin.folder_id, "disk1")
    with pytest.raises(d.FailedPrecondition):
        create(client, admin.folder_id, "disk1")
    with pytest.raises(d.FailedPrecondition):
        client(f"{S}.Delete", pb.DeleteSnapshotRequest(snapshot_id=meta_of(op).snapshot_id))
    client.work()
    create(client, admin.folder_id, "disk1")  # fine once the first is READY


def test_the_record_of_a_snapshot_in_flight_refuses_a_second_one(
    env: Env, admin: Admin, client: Client
) -> None:
    """Once its build has published, the engine no longer holds the first snapshot's
    checkpoint; until a worker records it READY, the database still says CREATING, and
    that refuses a second snapshot of the disk."""
    add_disk(env, admin.folder_id, "disk1")
    first = meta_of(create(client, admin.folder_id, "disk1")).snapshot_id
    env.engine.build_snapshot(first)
    assert env.engine.pending_checkpoints() == []
    with pytest.raises(d.FailedPrecondition, match="being created"):
        create(client, admin.folder_id, "disk1")
    assert env.engine.pending_checkpoints() == []  # the refused one took none
    client.work()
    listed = client(f"{S}.List", pb.ListSnapshotsRequest(folder_id=admin.folder_id))
    assert isinstance(listed, pb.ListSnapshotsResponse)
    assert [(x.id, x.status) for x in listed.snapshots] == [(first, snapshot_pb2.Snapshot.READY)]
    create(client, admin.folder_id, "disk1")


def test_storage_size_is_the_delta_and_moves_on_delete(
    env: Env, admin: Admin, client: Client
) -> None:
    add_disk(env, admin.folder_id, "disk1")
    rng = random.Random(5)
    disk = env.engine.disk("disk1")
    disk.write(0, rng.randbytes(8 * MiB))
    first = meta_of(create(client, admin.folder_id, "disk1")).snapshot_id
    client.work()
    disk.write(0, rng.randbytes(4 * MiB))
    second = meta_of(create(client, admin.folder_id, "disk1")).snapshot_id
    client.work()
    chunk = get(client, second).storage_size
    assert 4 * MiB < chunk < 4 * MiB + 4096
    assert get(client, first).storage_size == 2 * chunk
    op = client(f"{S}.Delete", pb.DeleteSnapshotRequest(snapshot_id=first))
    assert isinstance(op, operation_pb2.Operation)
    assert op.done
    assert op.WhichOneof("result") == "response"
    assert get(client, second).storage_size == 2 * chunk  # it now pays for both chunks
    with pytest.raises(d.NotFound):
        get(client, first)


def test_bad_requests_change_nothing(env: Env, admin: Admin, client: Client) -> None:
    add_disk(env, admin.folder_id, "disk1")
    with pytest.raises(d.BadRequest) as err:
        create(client, admin.folder_id, "disk1", name="Bad_Name", labels={"A": "x"})
    assert {v.field for v in err.value.violations} == {"name", "labels[A]"}
    with pytest.raises(d.NotFound):
        create(client, admin.folder_id, "nodisk")
    listed = client(f"{S}.List", pb.ListSnapshotsRequest(folder_id=admin.folder_id))
    assert isinstance(listed, pb.ListSnapshotsResponse)
    assert list(listed.snapshots) == []
    assert env.engine.pending_checkpoints() == []


def test_auth_roles_and_names(env: Env, admin: Admin, client: Client) -> None:
    add_disk(env, admin.folder_id, "disk1")
    add_disk(env, admin.folder_id, "disk2")
    with pytest.raises(Unauthenticated):
        Client(env, None)(f"{S}.Get", pb.GetSnapshotRequest(snapshot_id="x"))
    with pytest.raises(Unauthenticated):
        Client(env, "forged")(f"{S}.Get", pb.GetSnapshotRequest(snapshot_id="x"))
    viewer = _subject_with_role(env, admin.folder_id, "compute.viewer")
    with pytest.raises(PermissionDenied):
        create(viewer, admin.folder_id, "disk1")
    snapshot_id = meta_of(create(client, admin.folder_id, "disk1", name="same")).snapshot_id
    client.work()
    assert get(viewer, snapshot_id).name == "same"
    with pytest.raises(d.AlreadyExists):
        create(client, admin.folder_id, "disk2", name="same")


def test_a_create_refused_after_its_checkpoint_drops_the_checkpoint(
    env: Env, admin: Admin, client: Client
) -> None:
    add_disk(env, admin.folder_id, "disk1")
    add_disk(env, admin.folder_id, "disk2")
    first = meta_of(create(client, admin.folder_id, "disk1", name="same")).snapshot_id
    with pytest.raises(d.AlreadyExists):  # found by the insert, after the checkpoint
        create(client, admin.folder_id, "disk2", name="same")
    assert [c.snapshot_id for c in env.engine.pending_checkpoints()] == [first]
    second = meta_of(create(client, admin.folder_id, "disk2", name="other")).snapshot_id
    assert client.work() == 2
    assert get(client, second).status == snapshot_pb2.Snapshot.Status.READY


def test_retries_racing_their_original_get_its_operation(
    env: Env, admin: Admin, client: Client
) -> None:
    add_disk(env, admin.folder_id, "disk1")
    request = pb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="disk1")
    start = threading.Barrier(4)

    def send(_: int) -> str:
        start.wait()
        op = client(f"{S}.Create", request, key="raced")
        assert isinstance(op, operation_pb2.Operation)
        return op.id

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(4)))
    assert len(set(answers)) == 1
    assert [c.snapshot_id for c in env.engine.pending_checkpoints()] == [
        meta_of(op_get(client, answers[0])).snapshot_id
    ]


def test_creates_queued_behind_the_writer_commit_together(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit (SQLite): Creates that queue while the writer is busy commit in one
    transaction; one refused after its checkpoint (its name is taken by another Create
    of the group) drops that checkpoint, the others are unaffected."""
    env = make_env(tmp_path, clock)
    try:
        admin = bootstrap(env)
        assert admin is not None
        client = Client(env, admin.token)
        for disk_id in ("disk1", "disk2", "disk3"):
            add_disk(env, admin.folder_id, disk_id)
        answers: dict[str, operation_pb2.Operation | BaseException] = {}

        def send(disk_id: str, name: str) -> None:
            try:
                answers[disk_id] = create(client, admin.folder_id, disk_id, name=name)
            except BaseException as exc:  # noqa: BLE001 - looked at below
                answers[disk_id] = exc

        requests = [("disk1", "same"), ("disk2", "same"), ("disk3", "other")]
        threads = [threading.Thread(target=send, args=r) for r in requests]
        with env.meta.transaction():  # the writer is busy: the Creates queue
            begun = count_transactions(env.meta, monkeypatch)
            for t in threads:
                t.start()
            wait_queued(env.meta, len(threads))
        for t in threads:
            t.join(10)
        assert begun == [False]  # authentication, checks and inserts of all three
        refused = [k for k, v in answers.items() if isinstance(v, d.AlreadyExists)]
        assert len(refused) == 1
        assert refused[0] in ("disk1", "disk2")
        made = sorted(
            meta_of(v).snapshot_id
            for v in answers.values()
            if isinstance(v, operation_pb2.Operation)
        )
        assert len(made) == 2
        assert sorted(c.snapshot_id for c in env.engine.pending_checkpoints()) == made
        assert client.work() == 2
        assert {get(client, s).status for s in made} == {snapshot_pb2.Snapshot.Status.READY}
    finally:
        close_env(env)


def test_quota_is_resource_exhausted(env: Env, admin: Admin, client: Client) -> None:
    add_disk(env, admin.folder_id, "disk1")
    with env.meta.transaction() as tx:
        tx.quotas.set(admin.folder_id, "compute.snapshots.count", 1)
    create(client, admin.folder_id, "disk1")
    client.work()
    with pytest.raises(d.ResourceExhausted, match=r"^Limit compute.snapshots.count exceeded$"):
        create(client, admin.folder_id, "disk1")


def test_creates_racing_for_the_last_quota_get_one_snapshot(
    env: Env, admin: Admin, client: Client
) -> None:
    """Creates in one folder check its quota one at a time (the folder's lock on
    PostgreSQL, the single writer on SQLite): of 4 racing for 1 snapshot, 1 gets it."""
    disks = [f"disk{i}" for i in range(4)]
    for disk_id in disks:
        add_disk(env, admin.folder_id, disk_id)
    with env.meta.transaction() as tx:
        tx.quotas.set(admin.folder_id, "compute.snapshots.count", 1)
    start = threading.Barrier(len(disks))

    def send(disk_id: str) -> str:
        start.wait()
        try:
            return meta_of(create(client, admin.folder_id, disk_id)).snapshot_id
        except d.ResourceExhausted as exc:
            return str(exc)

    with ThreadPoolExecutor(len(disks)) as pool:
        answers = list(pool.map(send, disks))
    made = [a for a in answers if not a.startswith("Limit")]
    assert len(made) == 1
    assert answers.count("Limit compute.snapshots.count exceeded") == 3
    assert [c.snapshot_id for c in env.engine.pending_checkpoints()] == made


def test_idempotency_key(env: Env, admin: Admin, client: Client) -> None:
    add_disk(env, admin.folder_id, "disk1")
    request = pb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="disk1", name="b")
    first = client(f"{S}.Create", request, key="k1")
    assert isinstance(first, operation_pb2.Operation)
    again = client(f"{S}.Create", request, key="k1")  # not a second snapshot: the same call
    assert isinstance(again, operation_pb2.Operation)
    assert again.id == first.id
    client.work()
    done = client(f"{S}.Create", request, key="k1")
    assert isinstance(done, operation_pb2.Operation)
    assert (done.id, done.done) == (first.id, True)
    other = pb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="disk1", name="c")
    with pytest.raises(d.InvalidArgument, match="different request"):
        client(f"{S}.Create", other, key="k1")
    listed = client(f"{S}.List", pb.ListSnapshotsRequest(folder_id=admin.folder_id))
    assert isinstance(listed, pb.ListSnapshotsResponse)
    assert len(listed.snapshots) == 1


def test_cancel_in_flight_removes_the_snapshot(env: Env, admin: Admin, client: Client) -> None:
    add_disk(env, admin.folder_id, "disk1")
    op = create(client, admin.folder_id, "disk1")
    cancel = operation_service_pb2.CancelOperationRequest(operation_id=op.id)
    client(f"{OPS}.Cancel", cancel)
    client.work()
    done = op_get(client, op.id)
    assert done.done
    assert done.error.code == d.Code.CANCELLED
    with pytest.raises(d.NotFound):
        get(client, meta_of(op).snapshot_id)
    assert env.engine.pending_checkpoints() == []
    again = client(f"{OPS}.Cancel", cancel)  # a finished operation: no change
    assert isinstance(again, operation_pb2.Operation)
    assert again.error.code == d.Code.CANCELLED


def test_update_list_and_operations(env: Env, admin: Admin, client: Client) -> None:
    add_disk(env, admin.folder_id, "disk1")
    ids = []
    for name in ("c", "a", "b"):
        ids.append(meta_of(create(client, admin.folder_id, "disk1", name=name)).snapshot_id)
        client.work()
    op = client(
        f"{S}.Update",
        pb.UpdateSnapshotRequest(
            snapshot_id=ids[0],
            update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
            name="ignored",
            labels={"tier": "gold"},
        ),
    )
    assert isinstance(op, operation_pb2.Operation)
    assert op.done
    updated = get(client, ids[0])
    assert (updated.name, dict(updated.labels)) == ("c", {"tier": "gold"})
    names: list[str] = []
    token = ""
    while True:
        page = client(
            f"{S}.List",
            pb.ListSnapshotsRequest(
                folder_id=admin.folder_id, page_size=2, page_token=token, order_by="name desc"
            ),
        )
        assert isinstance(page, pb.ListSnapshotsResponse)
        names += [s.name for s in page.snapshots]
        token = page.next_page_token
        if not token:
            break
    assert names == ["c", "b", "a"]
    gold = client(
        f"{S}.List", pb.ListSnapshotsRequest(folder_id=admin.folder_id, filter='labels.tier="gold"')
    )
    assert isinstance(gold, pb.ListSnapshotsResponse)
    assert [s.id for s in gold.snapshots] == [ids[0]]
    with pytest.raises(d.InvalidArgument):
        client(f"{S}.List", pb.ListSnapshotsRequest(folder_id=admin.folder_id, page_token="forged"))
    ops = client(f"{S}.ListOperations", pb.ListSnapshotOperationsRequest(snapshot_id=ids[0]))
    assert isinstance(ops, pb.ListSnapshotOperationsResponse)
    assert [o.description for o in ops.operations] == ["Update snapshot", "Create snapshot"]


def test_restart_with_an_operation_in_flight(tmp_path: Path, clock: FakeClock) -> None:
    env = make_env(tmp_path, clock)
    from disksnap.service.bootstrap import bootstrap  # noqa: PLC0415

    admin = bootstrap(env)
    assert admin is not None
    add_disk(env, admin.folder_id, "disk1")
    data = random.Random(9).randbytes(16 * MiB)
    env.engine.disk("disk1").write(0, data)
    op = create(Client(env, admin.token), admin.folder_id, "disk1")
    env.engine.disk("disk1").write(0, bytes(4096))  # after the accepted moment
    close_env(env)
    env = make_env(tmp_path, clock, seed=2)
    try:
        client = Client(env, admin.token)
        assert client.work() == 1
        done = op_get(client, op.id)
        assert done.done
        assert done.WhichOneof("result") == "response"
        env.engine.restore(meta_of(op).snapshot_id, "check")
        assert env.engine.disk("check").read(0, 16 * MiB) == data
    finally:
        close_env(env)


def _subject_with_role(env: Env, folder_id: str, role: str) -> Client:
    from disksnap.service.auth import new_token  # noqa: PLC0415

    token = new_token()
    with env.meta.transaction() as tx:
        tx.subjects.insert(Subject("ajeviewer", "viewer", SubjectKind.USER, None, env.clock.now()))
        tx.roles.grant(folder_id, "ajeviewer", role)
        tx.tokens.insert(token, subject_id="ajeviewer", created_at=env.clock.now())
    return Client(env, token)

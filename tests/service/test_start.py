"""``Services.start``: a Snapshot.Create queued for the metadata writer without waiting
(the event loop's path on SQLite), with the same outcomes as ``dispatch``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from google.protobuf.message import Message
from yandex.cloud.compute.v1 import snapshot_pb2
from yandex.cloud.compute.v1 import snapshot_service_pb2 as pb
from yandex.cloud.operation import operation_pb2

from disksnap.domain import errors as d
from disksnap.domain.clock import FakeClock
from disksnap.service.auth import Unauthenticated
from disksnap.service.bootstrap import Admin, bootstrap
from disksnap.service.context import CallContext
from disksnap.service.core import Env
from disksnap.service.pools import CallPools
from disksnap.service.services import Services
from tests.service.conftest import Client, add_disk, close_env, make_env

CREATE = "yandex.cloud.compute.v1.SnapshotService.Create"


@pytest.fixture
def env(tmp_path: Path, clock: FakeClock) -> Iterator[Env]:
    """SQLite: the database whose changes queue for one writer."""
    e = make_env(tmp_path, clock)
    yield e
    close_env(e)


def start(env: Env, token: str | None, request: Message) -> Future[Message] | None:
    ctx = CallContext(
        request_id="req-start", authorization=None if token is None else f"Bearer {token}"
    )
    return Services(env).start(CREATE, request, ctx)


def started(env: Env, token: str | None, request: Message) -> Future[Message]:
    future = start(env, token, request)
    assert future is not None
    return future


def test_on_postgresql_nothing_starts(
    tmp_path: Path, clock: FakeClock, pg_url: str, pg_cleaner: Callable[[], None]
) -> None:
    """PostgreSQL runs writers side by side: a Create is dispatched on a thread."""
    pg_cleaner()
    env = make_env(tmp_path, clock, db_url=pg_url)
    try:
        admin = bootstrap(env)
        assert admin is not None
        add_disk(env, admin.folder_id, "disk1")
        request = pb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="disk1")
        assert start(env, admin.token, request) is None
        assert env.engine.pending_checkpoints() == []
    finally:
        close_env(env)


def test_a_started_create_is_the_create_dispatch_makes(
    env: Env, admin: Admin, client: Client
) -> None:
    add_disk(env, admin.folder_id, "disk1")
    request = pb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="disk1", name="s")
    op = started(env, admin.token, request).result(10)
    assert isinstance(op, operation_pb2.Operation)
    metadata = pb.CreateSnapshotMetadata()
    assert op.metadata.Unpack(metadata)
    assert metadata.disk_id == "disk1"
    assert [c.snapshot_id for c in env.engine.pending_checkpoints()] == [metadata.snapshot_id]
    assert client.work() == 1
    snapshot = client(f"{CREATE[:-6]}Get", pb.GetSnapshotRequest(snapshot_id=metadata.snapshot_id))
    assert isinstance(snapshot, snapshot_pb2.Snapshot)
    assert (snapshot.name, snapshot.status) == ("s", snapshot_pb2.Snapshot.Status.READY)


def test_a_started_create_refused_after_its_checkpoint_drops_it(
    env: Env, admin: Admin, client: Client
) -> None:
    add_disk(env, admin.folder_id, "disk1")
    add_disk(env, admin.folder_id, "disk2")
    first = started(
        env,
        admin.token,
        pb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="disk1", name="same"),
    ).result(10)
    refused = started(
        env,
        admin.token,
        pb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="disk2", name="same"),
    )
    with pytest.raises(d.AlreadyExists):  # found by the insert, after the checkpoint
        refused.result(10)
    metadata = pb.CreateSnapshotMetadata()
    assert isinstance(first, operation_pb2.Operation)
    assert first.metadata.Unpack(metadata)
    assert [c.snapshot_id for c in env.engine.pending_checkpoints()] == [metadata.snapshot_id]


def test_a_started_create_authenticates_its_caller(env: Env, admin: Admin) -> None:
    add_disk(env, admin.folder_id, "disk1")
    request = pb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="disk1")
    with pytest.raises(Unauthenticated):
        started(env, "not-a-token", request).result(10)
    assert env.engine.pending_checkpoints() == []


def test_only_a_create_starts(env: Env, admin: Admin) -> None:
    ctx = CallContext(request_id="req-get", authorization=f"Bearer {admin.token}")
    get = pb.GetSnapshotRequest(snapshot_id="fd8nothere")
    assert Services(env).start(f"{CREATE[:-6]}Get", get, ctx) is None


def test_a_started_create_takes_no_change_thread(env: Env, admin: Admin) -> None:
    """With the only change thread held, a Create queued from the event loop still
    completes: it never needed the thread."""
    add_disk(env, admin.folder_id, "disk1")
    services = Services(env)
    pools = CallPools(services.read_only, start=services.start, change_threads=1)
    held, release = threading.Event(), threading.Event()

    def hold(_method: str, _request: Message, _ctx: CallContext) -> Message:
        held.set()
        assert release.wait(10)
        return pb.CreateSnapshotRequest()

    async def both() -> Message:
        ctx = CallContext(request_id="req-1", authorization=f"Bearer {admin.token}")
        holding = asyncio.ensure_future(
            pools.run(hold, "held.Change", pb.CreateSnapshotRequest(), ctx)
        )
        await asyncio.get_running_loop().run_in_executor(None, held.wait, 10)
        request = pb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="disk1")
        op = await asyncio.wait_for(pools.run(services.dispatch, CREATE, request, ctx), 10)
        release.set()
        await holding
        return op

    try:
        assert isinstance(asyncio.run(both()), operation_pb2.Operation)
    finally:
        release.set()
        pools.shutdown()


def test_a_started_create_given_up_before_its_turn_changes_nothing(
    env: Env, admin: Admin, client: Client
) -> None:
    """A caller gone while its Create still queues (a gRPC deadline cancels the task):
    the writer skips it, so no snapshot, operation or checkpoint is left behind."""
    add_disk(env, admin.folder_id, "disk1")
    services = Services(env)
    pools = CallPools(services.read_only, start=services.start)
    request = pb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id="disk1")
    ctx = CallContext(request_id="req-1", authorization=f"Bearer {admin.token}")

    async def give_up() -> None:
        task = asyncio.ensure_future(pools.run(services.dispatch, CREATE, request, ctx))
        await asyncio.sleep(0.05)  # queued behind the writer held below
        assert env.meta.queued_changes == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        with env.meta.transaction():  # the writer is busy
            asyncio.run(give_up())
        assert env.meta.grouped(lambda _tx: "after") == "after"  # the writer went past it
        assert client.work() == 0
        listed = client(f"{CREATE[:-6]}List", pb.ListSnapshotsRequest(folder_id=admin.folder_id))
        assert isinstance(listed, pb.ListSnapshotsResponse)
        assert list(listed.snapshots) == []
        assert env.engine.pending_checkpoints() == []
        assert env.meta.queued_changes == 0
    finally:
        pools.shutdown()

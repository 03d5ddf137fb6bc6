"""The dispatcher's transactions: a read-only method is authenticated and served in one
read-only transaction, a changing one authenticates in its own before writing in
another (Snapshot.Create: all in one write transaction); either way the token is
checked first, against the database, on every call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.message import Message
from yandex.cloud.compute.v1 import disk_service_pb2 as dpb
from yandex.cloud.compute.v1 import snapshot_service_pb2 as spb
from yandex.cloud.iam.v1 import iam_token_service_pb2
from yandex.cloud.operation import operation_service_pb2 as opb

from disksnap.domain.clock import FakeClock
from disksnap.domain.errors import Code
from disksnap.meta import hash_token
from disksnap.service.bootstrap import Admin, bootstrap
from disksnap.service.context import CallContext
from disksnap.service.core import Env
from disksnap.service.iam import CREATE as IAM_CREATE
from disksnap.service.services import Services
from tests.meta.counting import count_transactions
from tests.service.conftest import Client, close_env, make_env
from tests.service.test_disks import create, disk_id_of, fails

D = "yandex.cloud.compute.v1.DiskService"
S = "yandex.cloud.compute.v1.SnapshotService"
OPS = "yandex.cloud.operation.OperationService"


@pytest.fixture
def counted(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Env, list[bool]]]:
    """An Env on SQLite, and each transaction it begins (True: read-only)."""
    env = make_env(tmp_path, clock)
    yield env, count_transactions(env.meta, monkeypatch)
    close_env(env)


@pytest.fixture
def setup(counted: tuple[Env, list[bool]]) -> tuple[Env, list[bool], Admin, str, str]:
    """An admin, one disk made by the worker, and its create operation."""
    env, begun = counted
    admin = bootstrap(env)
    assert admin is not None
    client = Client(env, admin.token)
    op = create(client, admin.folder_id)
    assert client.work() == 1
    return env, begun, admin, disk_id_of(op), op.id


def reads(disk_id: str, op_id: str, folder_id: str) -> list[tuple[str, Message]]:
    return [
        (f"{D}.Get", dpb.GetDiskRequest(disk_id=disk_id)),
        (f"{D}.List", dpb.ListDisksRequest(folder_id=folder_id)),
        (f"{D}.ListOperations", dpb.ListDiskOperationsRequest(disk_id=disk_id)),
        (f"{S}.List", spb.ListSnapshotsRequest(folder_id=folder_id)),
        (f"{OPS}.Get", opb.GetOperationRequest(operation_id=op_id)),
    ]


def test_a_read_is_authenticated_and_served_in_one_read_only_transaction(
    setup: tuple[Env, list[bool], Admin, str, str],
) -> None:
    env, begun, admin, disk_id, op_id = setup
    client = Client(env, admin.token)
    for method, request in reads(disk_id, op_id, admin.folder_id):
        begun.clear()
        client(method, request)
        assert begun == [True], method


def test_a_read_that_fails_after_authentication_still_used_one_transaction(
    setup: tuple[Env, list[bool], Admin, str, str],
) -> None:
    env, begun, admin, _, _ = setup
    begun.clear()
    fails(
        Code.NOT_FOUND,
        f"{S}.Get",
        Client(env, admin.token),
        spb.GetSnapshotRequest(snapshot_id="fd8nosuchsnapshot000"),
    )
    assert begun == [True]


def test_a_change_authenticates_before_its_write_transaction(
    setup: tuple[Env, list[bool], Admin, str, str],
) -> None:
    env, begun, admin, disk_id, _ = setup
    begun.clear()
    update = dpb.UpdateDiskRequest(disk_id=disk_id, description="x")
    update.update_mask.paths.append("description")
    Client(env, admin.token)(f"{D}.Update", update)
    assert begun == [True, False]


@pytest.mark.parametrize(
    "request_",
    [
        dpb.GetDiskRequest(disk_id=""),  # invalid: but the missing token is told first
        dpb.GetDiskRequest(disk_id="fhmnosuchdisk0000000"),
    ],
)
def test_a_read_without_a_valid_token_is_unauthenticated_before_anything_else(
    setup: tuple[Env, list[bool], Admin, str, str], request_: dpb.GetDiskRequest
) -> None:
    env, _, _, _, _ = setup
    for token in (None, "forged"):
        fails(Code.UNAUTHENTICATED, f"{D}.Get", Client(env, token), request_)
    bad_list = dpb.ListDisksRequest(folder_id="", page_size=-1)
    fails(Code.UNAUTHENTICATED, f"{D}.List", Client(env, "forged"), bad_list)


def test_a_revoked_token_is_refused_by_the_next_read(
    setup: tuple[Env, list[bool], Admin, str, str],
) -> None:
    env, _, admin, disk_id, _ = setup
    client = Client(env, admin.token)
    client(f"{D}.Get", dpb.GetDiskRequest(disk_id=disk_id))
    with env.meta.transaction() as tx:
        tx.tokens.revoke(hash_token(admin.token), at=env.clock.now())
    fails(Code.UNAUTHENTICATED, f"{D}.Get", client, dpb.GetDiskRequest(disk_id=disk_id))


def test_read_only_methods_are_reads_the_dispatcher_serves(
    counted: tuple[Env, list[bool]],
) -> None:
    services = Services(counted[0])
    assert services.read_only <= set(services.handlers)
    assert {m.rsplit(".", 1)[1] for m in services.read_only} == {"Get", "List", "ListOperations"}


def test_snapshot_create_authenticates_checks_and_writes_in_one_transaction(
    setup: tuple[Env, list[bool], Admin, str, str],
) -> None:
    env, begun, admin, disk_id, _ = setup
    begun.clear()
    request = spb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id=disk_id)
    Client(env, admin.token)(f"{S}.Create", request)
    assert begun == [False]  # token, checks, checkpoint and records: one write


@pytest.mark.parametrize("token", [None, "forged"])
def test_snapshot_create_without_a_valid_token_is_unauthenticated_before_anything_else(
    setup: tuple[Env, list[bool], Admin, str, str], token: str | None
) -> None:
    env, _, admin, disk_id, _ = setup
    invalid = spb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id=disk_id, name="BAD")
    fails(Code.UNAUTHENTICATED, f"{S}.Create", Client(env, token), invalid)
    valid = spb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id=disk_id)
    fails(Code.UNAUTHENTICATED, f"{S}.Create", Client(env, token), valid, key="k" * 129)
    with env.meta.transaction(readonly=True) as tx:
        assert tx.snapshots.list(admin.folder_id).items == ()
    assert env.engine.pending_checkpoints() == []


def test_snapshot_create_refuses_a_long_idempotency_key_once_authenticated(
    setup: tuple[Env, list[bool], Admin, str, str],
) -> None:
    env, _, admin, disk_id, _ = setup
    request = spb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id=disk_id)
    error = fails(
        Code.INVALID_ARGUMENT, f"{S}.Create", Client(env, admin.token), request, key="k" * 129
    )
    assert "Idempotency-Key" in error.message
    assert env.engine.pending_checkpoints() == []


def test_a_checks_first_method_that_does_not_authenticate_is_an_error(
    setup: tuple[Env, list[bool], Admin, str, str],
) -> None:
    env, _, admin, _, _ = setup
    services = Services(env)
    method = next(iter(services.checks_first))
    services.handlers = {method: lambda request, call: request}
    ctx = CallContext(request_id="r", authorization=f"Bearer {admin.token}")
    with pytest.raises(RuntimeError, match="without authenticating"):
        services.dispatch(method, spb.CreateSnapshotRequest(), ctx)


def test_checks_first_methods_are_changes_the_dispatcher_serves(
    counted: tuple[Env, list[bool]],
) -> None:
    services = Services(counted[0])
    assert services.checks_first <= set(services.handlers) - services.read_only


def test_an_anonymous_method_still_refuses_a_long_idempotency_key(
    counted: tuple[Env, list[bool]],
) -> None:
    request = iam_token_service_pb2.CreateIamTokenRequest(jwt="not.a.jwt")
    error = fails(
        Code.INVALID_ARGUMENT, IAM_CREATE, Client(counted[0], None), request, key="k" * 129
    )
    assert "Idempotency-Key" in error.message

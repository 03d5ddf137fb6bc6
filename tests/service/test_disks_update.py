"""DiskService.Update (updateMask, labels, growing), Delete and ListOperations."""

from __future__ import annotations

import random
from typing import Any

import pytest
from google.protobuf import empty_pb2, field_mask_pb2
from yandex.cloud.compute.v1 import disk_pb2
from yandex.cloud.compute.v1 import disk_service_pb2 as pb
from yandex.cloud.compute.v1 import snapshot_service_pb2 as spb
from yandex.cloud.operation import operation_pb2

from disksnap.domain.clock import FakeClock
from disksnap.domain.errors import BadRequest, Code
from disksnap.service.bootstrap import Admin
from disksnap.service.core import Env
from tests.service.conftest import Client, MiB
from tests.service.test_disks import (
    D,
    create,
    disk_id_of,
    fails,
    get,
    ready_disk,
    response_disk,
    subject_client,
)


def update(client: Client, disk_id: str, *paths: str, key: str | None = None, **fields: Any) -> Any:
    op = client(f"{D}.Update", update_request(disk_id, *paths, **fields), key=key)
    assert isinstance(op, operation_pb2.Operation)
    return op


def update_request(disk_id: str, *paths: str, **fields: Any) -> pb.UpdateDiskRequest:
    mask = field_mask_pb2.FieldMask(paths=list(paths)) if paths else None
    return pb.UpdateDiskRequest(disk_id=disk_id, update_mask=mask, **fields)


def delete(client: Client, disk_id: str, key: str | None = None) -> operation_pb2.Operation:
    op = client(f"{D}.Delete", pb.DeleteDiskRequest(disk_id=disk_id), key=key)
    assert isinstance(op, operation_pb2.Operation)
    return op


@pytest.fixture
def disk_id(admin: Admin, client: Client) -> str:
    return ready_disk(
        client, admin.folder_id, name="data", description="old", labels={"a": "1", "b": "2"}
    )


def test_update_honours_the_mask(client: Client, disk_id: str) -> None:
    op = update(client, disk_id, "description", name="ignored", description="new")
    assert (op.done, op.description) == (True, "Update disk")
    m = pb.UpdateDiskMetadata()
    assert op.metadata.Unpack(m)
    assert m.disk_id == disk_id
    disk = response_disk(op)
    assert (disk.name, disk.description, dict(disk.labels)) == ("data", "new", {"a": "1", "b": "2"})
    assert get(client, disk_id) == disk


def test_labels_replace_the_whole_set(client: Client, disk_id: str) -> None:
    update(client, disk_id, "labels", labels={"c": "3"})
    assert dict(get(client, disk_id).labels) == {"c": "3"}
    update(client, disk_id, "labels")
    assert dict(get(client, disk_id).labels) == {}


def test_without_a_mask_every_field_is_set_but_the_size_only_when_given(
    client: Client, disk_id: str
) -> None:
    disk = response_disk(update(client, disk_id, name="renamed"))
    assert (disk.name, disk.description, dict(disk.labels), disk.size) == (
        "renamed",
        "",
        {},
        8 * MiB,
    )
    assert response_disk(update(client, disk_id, size=12 * MiB)).size == 12 * MiB


def test_grow_keeps_the_data_and_adds_zeroes(env: Env, client: Client, disk_id: str) -> None:
    data = random.Random(1).randbytes(8 * MiB)
    env.engine.disk(disk_id).write(0, data)
    disk = response_disk(update(client, disk_id, "size", size=16 * MiB))
    assert disk.size == 16 * MiB
    engine_disk = env.engine.disk(disk_id)
    assert engine_disk.size == 16 * MiB
    assert engine_disk.read(0, 8 * MiB) == data
    assert engine_disk.read(8 * MiB, 8 * MiB) == bytes(8 * MiB)
    assert response_disk(update(client, disk_id, "size", size=16 * MiB)).size == 16 * MiB


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ((("size",), {"size": 4 * MiB}), "size"),  # shrinking
        ((("size",), {"size": 10 * MiB}), "size"),  # not whole chunks
        ((("size",), {"size": 5 << 40}), "size"),  # beyond the update maximum
        ((("size",), {}), "size"),  # in the mask, not given
        ((("zone_id",), {}), "updateMask"),
        ((("name",), {"name": "Nope"}), "name"),
        ((("labels",), {"labels": {"k": "V"}}), "labels[k]"),
        (((), {"description": "x" * 257}), "description"),
    ],
)
def test_invalid_updates_name_the_field_and_change_nothing(
    env: Env,
    client: Client,
    disk_id: str,
    case: tuple[tuple[str, ...], dict[str, Any]],
    field: str,
) -> None:
    before = get(client, disk_id)
    paths, fields = case
    request = update_request(disk_id, *paths, **fields)
    error = fails(Code.INVALID_ARGUMENT, f"{D}.Update", client, request)
    assert isinstance(error, BadRequest)
    assert field in [v.field for v in error.violations]
    assert get(client, disk_id) == before
    assert env.engine.disk(disk_id).size == 8 * MiB


def test_growth_counts_against_the_size_quota(
    env: Env, admin: Admin, client: Client, disk_id: str
) -> None:
    with env.meta.transaction() as tx:
        tx.quotas.set(admin.folder_id, "compute.disks.size", 12 * MiB)
    update(client, disk_id, "size", size=12 * MiB)
    request = update_request(disk_id, "size", "name", size=16 * MiB, name="other")
    error = fails(Code.RESOURCE_EXHAUSTED, f"{D}.Update", client, request)
    assert error.message == "Limit compute.disks.size exceeded"
    disk = get(client, disk_id)
    assert (disk.size, disk.name) == (12 * MiB, "data")
    assert env.engine.disk(disk_id).size == 12 * MiB


def test_update_conflicts_and_state(env: Env, admin: Admin, client: Client, disk_id: str) -> None:
    ready_disk(client, admin.folder_id, name="taken")
    fails(Code.ALREADY_EXISTS, f"{D}.Update", client, update_request(disk_id, "name", name="taken"))
    creating = disk_id_of(create(client, admin.folder_id))
    renamed = response_disk(update(client, creating, "name", name="early"))
    assert (renamed.name, renamed.status) == ("early", disk_pb2.Disk.CREATING)
    grow = update_request(creating, "size", size=12 * MiB)
    fails(Code.FAILED_PRECONDITION, f"{D}.Update", client, grow)
    missing = update_request("fhmnosuchdisk0000000", "name", name="x")
    fails(Code.NOT_FOUND, f"{D}.Update", client, missing)
    viewer = subject_client(env, admin.folder_id, "viewer", "viewer")
    fails(Code.PERMISSION_DENIED, f"{D}.Update", viewer, update_request(disk_id, "name", name="v"))
    assert get(client, disk_id).name == "data"


def test_update_idempotency(client: Client, disk_id: str) -> None:
    first = update(client, disk_id, "size", size=12 * MiB, key="grow-1")
    again = update(client, disk_id, "size", size=12 * MiB, key="grow-1")
    assert again.id == first.id
    other = update_request(disk_id, "size", size=16 * MiB)
    fails(Code.INVALID_ARGUMENT, f"{D}.Update", client, other, key="grow-1")
    assert get(client, disk_id).size == 12 * MiB


# --- Delete -------------------------------------------------------------------------------


def test_delete_removes_record_and_engine_disk(env: Env, client: Client, disk_id: str) -> None:
    op = delete(client, disk_id)
    assert (op.done, op.description, op.id[:3]) == (True, "Delete disk", "fhm")
    m = pb.DeleteDiskMetadata()
    assert op.metadata.Unpack(m)
    assert m.disk_id == disk_id
    assert op.response.Unpack(empty_pb2.Empty())
    fails(Code.NOT_FOUND, f"{D}.Get", client, pb.GetDiskRequest(disk_id=disk_id))
    assert env.engine.list_disks() == []
    fails(Code.NOT_FOUND, f"{D}.Delete", client, pb.DeleteDiskRequest(disk_id=disk_id))


def test_delete_refuses_creating_disks_and_disks_being_snapshotted(
    env: Env, admin: Admin, client: Client, disk_id: str
) -> None:
    creating = disk_id_of(create(client, admin.folder_id))
    fails(Code.FAILED_PRECONDITION, f"{D}.Delete", client, pb.DeleteDiskRequest(disk_id=creating))
    snap = spb.CreateSnapshotRequest(folder_id=admin.folder_id, disk_id=disk_id)
    client("yandex.cloud.compute.v1.SnapshotService.Create", snap)
    fails(Code.FAILED_PRECONDITION, f"{D}.Delete", client, pb.DeleteDiskRequest(disk_id=disk_id))
    assert get(client, disk_id).status == disk_pb2.Disk.READY
    assert client.work() == 2
    delete(client, disk_id)
    delete(client, creating)
    assert env.engine.list_disks() == []


def test_delete_auth_idempotency_and_a_missing_engine_disk(
    env: Env, admin: Admin, client: Client, disk_id: str
) -> None:
    viewer = subject_client(env, admin.folder_id, "compute.viewer", "viewer")
    fails(Code.PERMISSION_DENIED, f"{D}.Delete", viewer, pb.DeleteDiskRequest(disk_id=disk_id))
    fails(Code.INVALID_ARGUMENT, f"{D}.Delete", client, pb.DeleteDiskRequest(disk_id=""))
    env.engine.delete_disk(disk_id)  # gone underneath: the record still goes
    first = delete(client, disk_id, key="del-1")
    assert delete(client, disk_id, key="del-1").id == first.id


# --- ListOperations --------------------------------------------------------------------------


def test_list_operations_newest_first_with_paging(
    env: Env, clock: FakeClock, admin: Admin, client: Client, disk_id: str
) -> None:
    for n in range(3):
        clock.advance(1)
        update(client, disk_id, "description", description=f"v{n}")
    seen: list[str] = []
    token = ""
    while True:
        request = pb.ListDiskOperationsRequest(disk_id=disk_id, page_size=3, page_token=token)
        page = client(f"{D}.ListOperations", request)
        assert isinstance(page, pb.ListDiskOperationsResponse)
        seen += [o.description for o in page.operations]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["Update disk"] * 3 + ["Create disk"]
    stranger = subject_client(env, admin.folder_id, None, "stranger")
    request = pb.ListDiskOperationsRequest(disk_id=disk_id)
    fails(Code.PERMISSION_DENIED, f"{D}.ListOperations", stranger, request)
    fails(Code.INVALID_ARGUMENT, f"{D}.ListOperations", client, pb.ListDiskOperationsRequest())
    forged = pb.ListDiskOperationsRequest(disk_id=disk_id, page_token="forged")
    fails(Code.INVALID_ARGUMENT, f"{D}.ListOperations", client, forged)
    missing = pb.ListDiskOperationsRequest(disk_id="fhmnosuchdisk0000000")
    fails(Code.NOT_FOUND, f"{D}.ListOperations", client, missing)

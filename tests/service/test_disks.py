"""DiskService.Create and Get through the dispatcher: validation, auth, references,
names, quotas, idempotency, and the worker that makes the disk. Real metadata (SQLite),
a real engine and a real worker, run in this thread."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from google.protobuf.message import Message
from yandex.cloud.compute.v1 import disk_pb2, hardware_generation_pb2
from yandex.cloud.compute.v1 import disk_service_pb2 as pb
from yandex.cloud.operation import operation_pb2, operation_service_pb2

from disksnap.domain.errors import BadRequest, Code, DisksnapError
from disksnap.meta import Subject, SubjectKind
from disksnap.service.bootstrap import Admin
from disksnap.service.core import Env
from tests.service.conftest import Client, MiB, add_disk

D = "yandex.cloud.compute.v1.DiskService"
OPS = "yandex.cloud.operation.OperationService"
ZONE = "ru-central1-a"


# --- helpers, shared by the other test_disks_* modules ----------------------------------


def create(client: Client, folder: str, *, key: str | None = None, **fields: Any) -> Any:
    fields.setdefault("zone_id", ZONE)
    fields.setdefault("size", 8 * MiB)
    op = client(f"{D}.Create", pb.CreateDiskRequest(folder_id=folder, **fields), key=key)
    assert isinstance(op, operation_pb2.Operation)
    return op


def disk_id_of(op: operation_pb2.Operation) -> str:
    m = pb.CreateDiskMetadata()
    assert op.metadata.Unpack(m)
    return str(m.disk_id)


def ready_disk(client: Client, folder: str, **fields: Any) -> str:
    """A disk created through the API and made by the worker; its id."""
    op = create(client, folder, **fields)
    assert client.work() == 1
    return disk_id_of(op)


def get(client: Client, disk_id: str) -> disk_pb2.Disk:
    disk = client(f"{D}.Get", pb.GetDiskRequest(disk_id=disk_id))
    assert isinstance(disk, disk_pb2.Disk)
    return disk


def op_get(client: Client, op_id: str) -> operation_pb2.Operation:
    op = client(f"{OPS}.Get", operation_service_pb2.GetOperationRequest(operation_id=op_id))
    assert isinstance(op, operation_pb2.Operation)
    return op


def response_disk(op: operation_pb2.Operation) -> disk_pb2.Disk:
    assert op.done
    assert op.WhichOneof("result") == "response", op.error
    disk = disk_pb2.Disk()
    assert op.response.Unpack(disk)
    return disk


def fails(code: Code, method: str, client: Client, request: Message, **kw: Any) -> DisksnapError:
    with pytest.raises(DisksnapError) as caught:
        client(method, request, **kw)
    assert caught.value.code is code, caught.value.message
    return caught.value


def subject_client(env: Env, folder_id: str, role: str | None, name: str = "someone") -> Client:
    """A new subject with ``role`` on the folder (or none) and a client with its token."""
    token = f"token-of-{name}"
    with env.meta.transaction() as tx:
        subject_id = f"aje{name}"
        tx.subjects.insert(Subject(subject_id, name, SubjectKind.USER, None, env.clock.now()))
        tx.tokens.insert(token, subject_id=subject_id, created_at=env.clock.now())
        if role is not None:
            tx.roles.grant(folder_id, subject_id, role)
    return Client(env, token)


def nothing_recorded(env: Env, folder: str) -> None:
    """No disk record, no queued operation, no engine disk."""
    with env.meta.transaction(readonly=True) as tx:
        assert tx.disks.usage(folder).count == 0
    assert Client(env, None).work() == 0
    assert env.engine.list_disks() == []


# --- Create and the worker -----------------------------------------------------------------


def test_create_is_creating_then_the_worker_makes_it_ready(
    env: Env, admin: Admin, client: Client
) -> None:
    op = create(client, admin.folder_id, name="data", description="d", labels={"env": "ci"})
    assert (op.done, op.description, op.created_by) == (False, "Create disk", admin.subject_id)
    disk_id = disk_id_of(op)
    assert (len(disk_id), disk_id[:3], op.id[:3]) == (20, "fhm", "fhm")
    disk = get(client, disk_id)
    assert disk.status == disk_pb2.Disk.CREATING
    assert env.engine.list_disks() == []
    assert client.work() == 1
    done = op_get(client, op.id)
    made = response_disk(done)
    assert made == get(client, disk_id)
    assert made.status == disk_pb2.Disk.READY
    assert (made.name, made.description, dict(made.labels)) == ("data", "d", {"env": "ci"})
    assert (made.type_id, made.zone_id, made.size, made.block_size) == (
        "network-hdd",
        ZONE,
        8 * MiB,
        4096,
    )
    assert (made.folder_id, made.WhichOneof("source")) == (admin.folder_id, None)
    assert env.engine.disk(disk_id).size == 8 * MiB
    assert env.engine.disk(disk_id).read(0, 4096) == bytes(4096)


@pytest.mark.parametrize(
    ("zone", "prefix"),
    [("ru-central1-a", "fhm"), ("ru-central1-b", "epd"), ("ru-central1-d", "fv4")],
)
def test_disk_and_operation_ids_carry_the_zone_prefix(
    admin: Admin, client: Client, zone: str, prefix: str
) -> None:
    op = create(client, admin.folder_id, zone_id=zone)
    assert disk_id_of(op)[:3] == prefix
    assert op.id[:3] == prefix


def test_type_block_size_and_hardware_generation_are_recorded(admin: Admin, client: Client) -> None:
    hw = hardware_generation_pb2.HardwareGeneration(
        generation2_features=hardware_generation_pb2.Generation2HardwareFeatures()
    )
    disk_id = ready_disk(
        client,
        admin.folder_id,
        type_id="network-ssd-nonreplicated",
        block_size=8192,
        hardware_generation=hw,
    )
    disk = get(client, disk_id)
    assert (disk.type_id, disk.block_size) == ("network-ssd-nonreplicated", 8192)
    assert disk.hardware_generation.WhichOneof("features") == "generation2_features"


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"folder_id": ""}, "folderId"),
    ({"name": "Bad_Name"}, "name"),
    ({"description": "x" * 257}, "description"),
    ({"labels": {"Env": "x"}}, "labels[Env]"),
    ({"zone_id": ""}, "zoneId"),
    ({"zone_id": "ru-central1-c"}, "zoneId"),  # not configured by default
    ({"type_id": "network-floppy"}, "typeId"),
    ({"size": 0}, "size"),
    ({"size": 2 * MiB}, "size"),
    ({"size": 6 * MiB}, "size"),  # not a multiple of 4 MiB
    ({"size": 9 << 40}, "size"),  # more than the engine holds
    ({"block_size": 1000}, "blockSize"),
    ({"hardware_generation": hardware_generation_pb2.HardwareGeneration()}, "hardwareGeneration"),
    ({"image_id": "x" * 51}, "imageId"),
    ({"snapshot_id": "x" * 51}, "snapshotId"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_CREATES)
def test_invalid_creates_name_the_field_and_change_nothing(
    env: Env, admin: Admin, client: Client, fields: dict[str, Any], field: str
) -> None:
    fields = {"zone_id": ZONE, "size": 8 * MiB, "folder_id": admin.folder_id, **fields}
    error = fails(Code.INVALID_ARGUMENT, f"{D}.Create", client, pb.CreateDiskRequest(**fields))
    assert isinstance(error, BadRequest)
    assert field in [v.field for v in error.violations]
    nothing_recorded(env, admin.folder_id)


def test_size_must_be_whole_chunks(admin: Admin, client: Client) -> None:
    request = pb.CreateDiskRequest(folder_id=admin.folder_id, zone_id=ZONE, size=6 * MiB)
    error = fails(Code.INVALID_ARGUMENT, f"{D}.Create", client, request)
    assert "multiple of 4194304 bytes (4 MiB)" in error.message


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image_id": "fd8image"}, "Image fd8image not found"),
        ({"kms_key_id": "abjkey"}, "KMS key abjkey not found"),
        ({"snapshot_id": "fd8nosuchsnapshot000"}, "not found"),
        ({"snapshot_schedule_ids": ["fd8sched"]}, "Snapshot schedule fd8sched not found"),
    ],
)
def test_unknown_references_are_not_found(
    env: Env, admin: Admin, client: Client, fields: dict[str, Any], message: str
) -> None:
    request = pb.CreateDiskRequest(folder_id=admin.folder_id, zone_id=ZONE, size=8 * MiB, **fields)
    error = fails(Code.NOT_FOUND, f"{D}.Create", client, request)
    assert message in error.message
    nothing_recorded(env, admin.folder_id)


def test_get_unknown_and_invalid_ids(client: Client) -> None:
    fails(Code.NOT_FOUND, f"{D}.Get", client, pb.GetDiskRequest(disk_id="fhmnosuchdisk0000000"))
    fails(Code.INVALID_ARGUMENT, f"{D}.Get", client, pb.GetDiskRequest(disk_id=""))
    fails(Code.INVALID_ARGUMENT, f"{D}.Get", client, pb.GetDiskRequest(disk_id="x" * 51))


def test_auth_token_and_roles(env: Env, admin: Admin, client: Client) -> None:
    disk_id = ready_disk(client, admin.folder_id)
    request = pb.CreateDiskRequest(folder_id=admin.folder_id, zone_id=ZONE, size=8 * MiB)
    fails(Code.UNAUTHENTICATED, f"{D}.Create", Client(env, None), request)
    fails(
        Code.UNAUTHENTICATED, f"{D}.Get", Client(env, "forged"), pb.GetDiskRequest(disk_id=disk_id)
    )
    viewer = subject_client(env, admin.folder_id, "compute.viewer", "viewer")
    assert get(viewer, disk_id).id == disk_id
    fails(Code.PERMISSION_DENIED, f"{D}.Create", viewer, request)
    stranger = subject_client(env, admin.folder_id, None, "stranger")
    fails(Code.PERMISSION_DENIED, f"{D}.Get", stranger, pb.GetDiskRequest(disk_id=disk_id))
    editor = subject_client(env, admin.folder_id, "editor", "editor")
    assert create(editor, admin.folder_id).created_by == "ajeeditor"
    unknown_folder = pb.CreateDiskRequest(
        folder_id="b1gnosuchfolder00000", zone_id=ZONE, size=8 * MiB
    )
    fails(Code.PERMISSION_DENIED, f"{D}.Create", client, unknown_folder)


def test_names_are_unique_per_folder(env: Env, admin: Admin, client: Client) -> None:
    create(client, admin.folder_id, name="boot")
    request = pb.CreateDiskRequest(
        folder_id=admin.folder_id, zone_id=ZONE, size=8 * MiB, name="boot"
    )
    fails(Code.ALREADY_EXISTS, f"{D}.Create", client, request)
    create(client, admin.folder_id)
    create(client, admin.folder_id)  # empty names never clash
    with env.meta.transaction(readonly=True) as tx:
        assert tx.disks.usage(admin.folder_id).count == 3


def test_quota_on_the_number_of_disks(env: Env, admin: Admin, client: Client) -> None:
    with env.meta.transaction() as tx:
        tx.quotas.set(admin.folder_id, "compute.disks.count", 2)
    create(client, admin.folder_id)
    create(client, admin.folder_id)
    request = pb.CreateDiskRequest(folder_id=admin.folder_id, zone_id=ZONE, size=8 * MiB)
    error = fails(Code.RESOURCE_EXHAUSTED, f"{D}.Create", client, request)
    assert error.message == "Limit compute.disks.count exceeded"


def test_quota_on_the_total_size(env: Env, admin: Admin, client: Client) -> None:
    with env.meta.transaction() as tx:
        tx.quotas.set(admin.folder_id, "compute.disks.size", 20 * MiB)
    create(client, admin.folder_id, size=12 * MiB)
    create(client, admin.folder_id, size=8 * MiB)  # exactly at the limit
    request = pb.CreateDiskRequest(folder_id=admin.folder_id, zone_id=ZONE, size=4 * MiB)
    error = fails(Code.RESOURCE_EXHAUSTED, f"{D}.Create", client, request)
    assert error.message == "Limit compute.disks.size exceeded"
    with env.meta.transaction(readonly=True) as tx:
        assert tx.disks.usage(admin.folder_id).count == 2


def test_idempotency_key(env: Env, admin: Admin, client: Client) -> None:
    first = create(client, admin.folder_id, name="once", key="k-1")
    again = create(client, admin.folder_id, name="once", key="k-1")
    assert again.id == first.id
    assert disk_id_of(again) == disk_id_of(first)
    request = pb.CreateDiskRequest(folder_id=admin.folder_id, zone_id=ZONE, size=12 * MiB)
    fails(Code.INVALID_ARGUMENT, f"{D}.Create", client, request, key="k-1")
    with env.meta.transaction(readonly=True) as tx:
        assert tx.disks.usage(admin.folder_id).count == 1
    assert client.work() == 1
    replayed = create(client, admin.folder_id, name="once", key="k-1")
    assert response_disk(replayed).status == disk_pb2.Disk.READY


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("Move", pb.MoveDiskRequest(disk_id="d", destination_folder_id="f")),
        ("Relocate", pb.RelocateDiskRequest(disk_id="d", destination_zone_id="z")),
        ("ListSnapshotSchedules", pb.ListDiskSnapshotSchedulesRequest(disk_id="d")),
    ],
)
def test_other_methods_are_unimplemented(client: Client, method: str, request_: Message) -> None:
    fails(Code.UNIMPLEMENTED, f"{D}.{method}", client, request_)


def test_delete_waits_for_a_create_between_its_checks_to_drop_its_checkpoint(
    env: Env, admin: Admin, client: Client
) -> None:
    """Snapshot.Create takes its checkpoint between a read check and its write
    transaction; a Delete committed in that window finds the engine disk busy for a
    moment, and deletes it once the Create has failed and dropped the checkpoint."""
    add_disk(env, admin.folder_id, "disk1")
    env.engine.create_checkpoint("disk1", "fd8racing")  # as that Create holds it
    threading.Timer(0.2, env.engine.abort_checkpoint, ("fd8racing",)).start()
    client(f"{D}.Delete", pb.DeleteDiskRequest(disk_id="disk1"))
    assert "disk1" not in env.engine.list_disks()

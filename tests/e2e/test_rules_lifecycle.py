"""The life of snapshots and disks over HTTP: the Operation that Create returns, what a
snapshot inherits from its disk, Update with an updateMask, Delete, the operations of a
resource, Operation Get and Cancel (GET and POST).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from google.rpc import code_pb2

from tests.e2e.conftest import Server
from tests.e2e.rules import (
    ANY,
    HW_V2,
    INHERIT_DISK,
    KMS_KEY,
    MiB,
    caller,
    disksnap,
    error,
    frozen_disk,
    random_bytes,
    restarted,
    subject_of,
    tenant,
    unpacked,
    violations,
)

SNAPSHOTS = "/compute/v1/snapshots"
DISKS = "/compute/v1/disks"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
OPERATION_FIELDS = {"id", "description", "createdAt", "createdBy", "modifiedAt", "done", "metadata"}
GEN2: dict[str, Any] = {"generation2Features": {}}
# As rendered: every field without presence is printed (grpc-gateway's EmitUnpopulated).
GEN2_SHOWN = {"generation2Features": {"secureBootTemplateId": "", "vtpmEnabled": False}}


def test_create_returns_the_operation_the_spec_describes(live: Server) -> None:
    team = tenant(live, "shape")
    editor = team.editor
    disk = editor.disk(team.folder, size=8 * MiB)
    body = {
        "folderId": team.folder,
        "diskId": disk["id"],
        "name": "nightly",
        "description": "the nightly one",
        "labels": {"env": "test"},
    }
    resp = editor.call("POST", SNAPSHOTS, body)
    assert resp.status == 200
    assert resp.headers["content-type"] == "application/json"
    op = resp.body
    assert set(op) == OPERATION_FIELDS  # neither error nor response while running
    assert op["done"] is False
    assert op["description"] == "Create snapshot"
    assert op["createdBy"] == subject_of(live, editor.token)
    assert op["createdBy"] != live.info["subjectId"]
    assert RFC3339.fullmatch(op["createdAt"])
    assert RFC3339.fullmatch(op["modifiedAt"])
    assert re.fullmatch(r"fd8[a-z0-9]{17}", op["id"])
    snapshot_id = op["metadata"]["snapshotId"]
    assert op["metadata"] == {
        "@type": ANY + "yandex.cloud.compute.v1.CreateSnapshotMetadata",
        "snapshotId": snapshot_id,
        "diskId": disk["id"],
    }
    assert re.fullmatch(r"fd8[a-z0-9]{17}", snapshot_id)
    assert snapshot_id != op["id"]
    assert editor.ok("GET", f"{SNAPSHOTS}/{snapshot_id}")["status"] in ("CREATING", "READY")

    done = editor.wait(op)
    assert set(done) == OPERATION_FIELDS | {"response"}
    assert done["done"] is True
    assert {k: done[k] for k in ("id", "description", "createdBy", "createdAt", "metadata")} == {
        k: op[k] for k in ("id", "description", "createdBy", "createdAt", "metadata")
    }
    snapshot = unpacked(done["response"], "compute.v1.Snapshot")
    assert snapshot == editor.ok("GET", f"{SNAPSHOTS}/{snapshot_id}")
    assert RFC3339.fullmatch(snapshot.pop("createdAt"))
    assert snapshot == {
        "id": snapshot_id,
        "folderId": team.folder,
        "name": "nightly",
        "description": "the nightly one",
        "labels": {"env": "test"},
        "storageSize": "0",  # an empty disk stores nothing
        "diskSize": str(8 * MiB),
        "productIds": [],
        "status": "READY",
        "sourceDiskId": disk["id"],
    }


def test_disk_create_returns_its_operation_with_zone_prefixed_ids(live: Server) -> None:
    team = tenant(live, "zones")
    for zone, prefix in (
        ("ru-central1-a", "fhm"),
        ("ru-central1-b", "epd"),
        ("ru-central1-d", "fv4"),
    ):
        body = {"folderId": team.folder, "zoneId": zone, "size": str(4 * MiB), "name": prefix}
        op = team.editor.ok("POST", DISKS, body)
        assert set(op) == OPERATION_FIELDS
        assert (op["description"], op["done"]) == ("Create disk", False)
        assert op["metadata"]["@type"] == ANY + "yandex.cloud.compute.v1.CreateDiskMetadata"
        disk_id = op["metadata"]["diskId"]
        assert re.fullmatch(prefix + r"[a-z0-9]{17}", disk_id)
        assert op["id"].startswith(prefix)
        disk = unpacked(team.editor.wait(op)["response"], "compute.v1.Disk")
        assert disk == team.editor.ok("GET", f"{DISKS}/{disk_id}")
        assert (disk["zoneId"], disk["status"], disk["size"]) == (zone, "READY", str(4 * MiB))
        assert (disk["typeId"], disk["blockSize"]) == ("network-hdd", "4096")


def test_snapshots_inherit_from_their_disk(live: Server, tmp_path: Path) -> None:
    """productIds, hardwareGeneration (unless the request overrides it) and kmsKey from
    the disk; diskSize is the disk's size at the time; storageSize the delta from the
    previous snapshot of the disk. A disk made from a snapshot inherits in turn."""
    admin = caller(live)
    disk_id = INHERIT_DISK.id
    first = admin.snapshot(live.folder, disk_id)
    assert first["productIds"] == ["f2e1", "f2e2"]
    assert (first["hardwareGeneration"], first["kmsKey"]) == (HW_V2, KMS_KEY)
    assert first["diskSize"] == str(16 * MiB)
    stored = int(first["storageSize"])
    assert 8 * MiB < stored < 9 * MiB  # two random 4 MiB chunks, compressed not at all

    second = admin.snapshot(live.folder, disk_id, hardwareGeneration=GEN2)
    assert second["hardwareGeneration"] == GEN2_SHOWN
    assert (second["productIds"], second["kmsKey"]) == (["f2e1", "f2e2"], KMS_KEY)
    assert second["storageSize"] == "0"  # nothing changed since the first

    grown = admin.done("PATCH", f"{DISKS}/{disk_id}", {"updateMask": "size", "size": str(32 * MiB)})
    assert grown["size"] == str(32 * MiB)
    third = admin.snapshot(live.folder, disk_id)
    assert (third["diskSize"], third["storageSize"]) == (str(32 * MiB), "0")
    assert admin.ok("GET", f"{SNAPSHOTS}/{second['id']}")["diskSize"] == str(16 * MiB)
    assert third["hardwareGeneration"] == HW_V2

    image = tmp_path / "chunk.raw"  # a new first chunk, written over NBD
    image.write_bytes(random_bytes(2, 4 * MiB))
    disksnap(live, "compute", "disk", "import", disk_id, str(image))
    fourth = admin.snapshot(live.folder, disk_id)
    assert 4 * MiB < int(fourth["storageSize"]) < 4 * MiB + 4096

    admin.done("DELETE", f"{SNAPSHOTS}/{first['id']}")
    assert admin.ok("GET", f"{SNAPSHOTS}/{second['id']}")["storageSize"] == str(stored)
    assert admin.ok("GET", f"{SNAPSHOTS}/{third['id']}")["storageSize"] == "0"
    assert admin.ok("GET", f"{SNAPSHOTS}/{fourth['id']}") == fourth

    made = admin.disk(live.folder, size=16 * MiB, snapshotId=second["id"])
    assert made["sourceSnapshotId"] == second["id"]
    assert (made["productIds"], made["hardwareGeneration"]) == (["f2e1", "f2e2"], GEN2_SHOWN)
    again = admin.snapshot(live.folder, made["id"])
    assert (again["productIds"], again["hardwareGeneration"]) == (["f2e1", "f2e2"], GEN2_SHOWN)
    assert again["sourceDiskId"] == made["id"]

    small = {"folderId": live.folder, "zoneId": "ru-central1-a", "size": str(4 * MiB)}
    resp = admin.call("POST", DISKS, {**small, "snapshotId": second["id"]})
    assert "size" in violations(resp)


def test_update_honours_the_mask_and_labels_replace_the_set(live: Server) -> None:
    team = tenant(live, "update")
    editor = team.editor
    disk = editor.disk(team.folder)
    snap = editor.snapshot(
        team.folder, disk["id"], name="a", description="d", labels={"x": "1", "y": "2"}
    )
    path = f"{SNAPSHOTS}/{snap['id']}"

    op = editor.ok(
        "PATCH", path, {"updateMask": "description", "name": "ignored", "description": "new"}
    )
    assert (op["done"], op["description"], set(op)) == (
        True,
        "Update snapshot",
        OPERATION_FIELDS | {"response"},
    )
    assert op["metadata"] == {
        "@type": ANY + "yandex.cloud.compute.v1.UpdateSnapshotMetadata",
        "snapshotId": snap["id"],
    }
    updated = unpacked(op["response"], "compute.v1.Snapshot")
    assert (updated["name"], updated["description"]) == ("a", "new")
    assert updated == editor.ok("GET", path)

    def patched(body: dict[str, Any]) -> dict[str, Any]:
        return unpacked(editor.ok("PATCH", path, body)["response"], "compute.v1.Snapshot")

    assert patched({"updateMask": "labels", "labels": {"z": "3"}})["labels"] == {"z": "3"}
    assert patched({"updateMask": "labels"})["labels"] == {}
    both = patched(
        {"updateMask": "name,description", "name": "b", "description": "", "labels": {"q": "r"}}
    )
    assert (both["name"], both["description"], both["labels"]) == ("b", "", {})
    everything = patched({"name": "c", "labels": {"k": "v"}})  # no mask: every field
    assert (everything["name"], everything["description"], everything["labels"]) == (
        "c",
        "",
        {"k": "v"},
    )
    assert everything["status"] == "READY"
    assert everything["diskSize"] == snap["diskSize"]

    disk_path = f"{DISKS}/{disk['id']}"
    op = editor.ok(
        "PATCH", disk_path, {"updateMask": "name,labels", "name": "data", "size": str(8 * MiB)}
    )
    assert (op["done"], op["description"]) == (True, "Update disk")
    assert op["metadata"]["@type"] == ANY + "yandex.cloud.compute.v1.UpdateDiskMetadata"
    renamed = unpacked(op["response"], "compute.v1.Disk")
    assert (renamed["name"], renamed["labels"], renamed["size"]) == ("data", {}, str(4 * MiB))
    grown = unpacked(
        editor.ok("PATCH", disk_path, {"updateMask": "size", "size": str(12 * MiB)})["response"],
        "compute.v1.Disk",
    )
    assert (grown["name"], grown["size"]) == ("data", str(12 * MiB))
    assert editor.ok("GET", disk_path) == grown


def test_delete_returns_a_done_operation_with_empty(live: Server) -> None:
    team = tenant(live, "delete")
    editor = team.editor
    disk = editor.disk(team.folder)
    snap = editor.snapshot(team.folder, disk["id"])
    for path, what in (
        (f"{SNAPSHOTS}/{snap['id']}", "Snapshot"),
        (f"{DISKS}/{disk['id']}", "Disk"),
    ):
        op = editor.ok("DELETE", path)
        assert (op["done"], op["description"]) == (True, f"Delete {what.lower()}")
        assert op["metadata"]["@type"] == ANY + f"yandex.cloud.compute.v1.Delete{what}Metadata"
        assert op["response"] == {"@type": ANY + "google.protobuf.Empty"}
        assert "error" not in op
        error(editor.call("GET", path), 404, "NOT_FOUND")
        assert editor.ok("GET", f"/operations/{op['id']}") == op
        error(editor.call("DELETE", path), 404, "NOT_FOUND")


def test_a_snapshot_outlives_its_disk(live: Server) -> None:
    team = tenant(live, "outlive")
    editor = team.editor
    disk = editor.disk(team.folder, size=8 * MiB)
    snap = editor.snapshot(team.folder, disk["id"], name="kept")
    editor.done("DELETE", f"{DISKS}/{disk['id']}")
    assert editor.ok("GET", f"{SNAPSHOTS}/{snap['id']}") == snap
    restored = editor.disk(team.folder, size=8 * MiB, snapshotId=snap["id"])
    assert (restored["sourceSnapshotId"], restored["size"]) == (snap["id"], str(8 * MiB))


def test_list_operations_newest_first_with_paging(live: Server) -> None:
    team = tenant(live, "history")
    editor = team.editor
    disk = editor.disk(team.folder)
    snap = editor.snapshot(team.folder, disk["id"])
    for text in ("one", "two"):
        editor.ok(
            "PATCH", f"{SNAPSHOTS}/{snap['id']}", {"updateMask": "description", "description": text}
        )
    path = f"{SNAPSHOTS}/{snap['id']}/operations"
    every = editor.ok("GET", path)
    assert every["nextPageToken"] == ""
    ops = every["operations"]
    assert [o["description"] for o in ops] == [
        "Update snapshot",
        "Update snapshot",
        "Create snapshot",
    ]
    assert [unpacked(o["response"], "compute.v1.Snapshot")["description"] for o in ops[:2]] == [
        "two",
        "one",
    ]
    first = editor.ok("GET", f"{path}?pageSize=2")
    assert first["operations"] == ops[:2]
    assert first["nextPageToken"]
    rest = editor.ok("GET", f"{path}?pageSize=2&pageToken={first['nextPageToken']}")
    assert (rest["operations"], rest["nextPageToken"]) == (ops[2:], "")
    assert team.viewer.ok("GET", path) == every

    editor.ok("PATCH", f"{DISKS}/{disk['id']}", {"updateMask": "name", "name": "n"})
    disk_ops = editor.ok("GET", f"{DISKS}/{disk['id']}/operations")["operations"]
    assert [o["description"] for o in disk_ops] == ["Update disk", "Create disk"]


def test_cancel_and_failure_end_operations_with_an_error(frozen: Server) -> None:
    """Cancel (GET or POST) asks; the worker that picks the operation up ends it
    CANCELLED and removes the half-made resource. A build that fails ends its operation
    with an error and leaves the snapshot ERROR, to be seen and deleted. On a finished
    operation Cancel changes nothing."""
    admin = caller(frozen)
    snap_op = admin.ok("POST", SNAPSHOTS, {"folderId": frozen.folder, "diskId": frozen_disk(8)})
    disk_body = {"folderId": frozen.folder, "zoneId": "ru-central1-a", "size": str(4 * MiB)}
    disk_op = admin.ok("POST", DISKS, disk_body)
    kept_op = admin.ok("POST", SNAPSHOTS, {"folderId": frozen.folder, "diskId": frozen_disk(9)})
    broken_op = admin.ok("POST", SNAPSHOTS, {"folderId": frozen.folder, "diskId": frozen_disk(10)})
    asked = [
        admin.ok("GET", f"/operations/{snap_op['id']}:cancel"),
        admin.ok("POST", f"/operations/{disk_op['id']}:cancel", {}),
    ]
    for before, after in zip((snap_op, disk_op), asked, strict=True):
        assert after["id"] == before["id"]
        assert after["done"] is False
        assert admin.ok("GET", f"/operations/{before['id']}") == after
    snapshot_path = f"{SNAPSHOTS}/{snap_op['metadata']['snapshotId']}"
    assert admin.ok("GET", snapshot_path)["status"] == "CREATING"
    broken = broken_op["metadata"]["snapshotId"]

    def lose_the_checkpoint(data: Path) -> None:  # docs/formats.md: checkpoints/<id>/
        shutil.rmtree(data / "engine" / "checkpoints" / broken)

    with restarted(frozen, workers=2, while_stopped=lose_the_checkpoint):
        for op in (snap_op, disk_op):
            done = admin.wait(op)
            assert set(done) == OPERATION_FIELDS | {"error"}
            assert done["error"]["code"] == code_pb2.CANCELLED
        error(admin.call("GET", snapshot_path), 404, "NOT_FOUND")
        error(admin.call("GET", f"{DISKS}/{disk_op['metadata']['diskId']}"), 404, "NOT_FOUND")

        failed = admin.wait(broken_op)
        assert set(failed) == OPERATION_FIELDS | {"error"}
        assert failed["error"]["code"] == code_pb2.DATA_LOSS
        assert "checkpoint" in failed["error"]["message"]
        assert admin.ok("GET", f"{SNAPSHOTS}/{broken}")["status"] == "ERROR"
        assert admin.ok("DELETE", f"{SNAPSHOTS}/{broken}")["done"] is True
        error(admin.call("GET", f"{SNAPSHOTS}/{broken}"), 404, "NOT_FOUND")

        finished = admin.wait(kept_op)
        assert set(finished) == OPERATION_FIELDS | {"response"}
        for method, body in (("GET", None), ("POST", {})):
            again = admin.ok(method, f"/operations/{finished['id']}:cancel", body)
            assert again == finished  # a no-op
        kept = kept_op["metadata"]["snapshotId"]
        assert admin.ok("GET", f"{SNAPSHOTS}/{kept}")["status"] == "READY"

"""Conflicts and missing things over HTTP: names unique per folder and kind (409
ALREADY_EXISTS); work in flight that forbids a change (400 FAILED_PRECONDITION); unknown
ids (404 NOT_FOUND). A refused request leaves everything as it was.

Work in flight is held still by the ``frozen`` server, which has no workers: a snapshot
stays CREATING, a disk stays CREATING, for as long as the test needs.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.e2e.conftest import Server
from tests.e2e.rules import READY_ON_FROZEN, Caller, Reply, caller, error, frozen_disk, tenant

SNAPSHOTS = "/compute/v1/snapshots"
DISKS = "/compute/v1/disks"
UNKNOWN_SNAPSHOT = "fd8" + "0" * 17
UNKNOWN_DISK = "fhm" + "0" * 17
UNKNOWN_OPERATION = "fd8" + "1" * 17


def start_snapshot(c: Caller, disk_id: str) -> dict[str, Any]:
    """A snapshot of ``disk_id`` left CREATING (on the frozen server); its operation."""
    op: dict[str, Any] = c.ok("POST", SNAPSHOTS, {"folderId": c.server.folder, "diskId": disk_id})
    assert op["done"] is False
    return op


def snapshots_of(c: Caller, disk_id: str) -> list[dict[str, Any]]:
    query = f"folderId={c.server.folder}&filter=sourceDiskId%3D%22{disk_id}%22"
    items: list[dict[str, Any]] = c.ok("GET", f"{SNAPSHOTS}?{query}")["snapshots"]
    return items


# --- work in flight ---------------------------------------------------------------------


def test_a_second_snapshot_while_one_is_creating(frozen: Server) -> None:
    admin = caller(frozen)
    disk = frozen_disk(0)
    op = start_snapshot(admin, disk)
    snapshot_id = op["metadata"]["snapshotId"]
    assert admin.ok("GET", f"{SNAPSHOTS}/{snapshot_id}")["status"] == "CREATING"
    before = snapshots_of(admin, disk)
    assert [s["id"] for s in before] == [snapshot_id]
    resp = admin.call("POST", SNAPSHOTS, {"folderId": frozen.folder, "diskId": disk, "name": "x"})
    status = error(resp, 400, "FAILED_PRECONDITION")
    assert disk in status["message"]
    assert snapshots_of(admin, disk) == before


def test_deleting_a_creating_snapshot(frozen: Server) -> None:
    admin = caller(frozen)
    op = start_snapshot(admin, frozen_disk(1))
    path = f"{SNAPSHOTS}/{op['metadata']['snapshotId']}"
    before = admin.ok("GET", path)
    error(admin.call("DELETE", path), 400, "FAILED_PRECONDITION")
    assert admin.ok("GET", path) == before
    assert admin.ok("GET", f"/operations/{op['id']}")["done"] is False


def test_deleting_a_disk_with_a_snapshot_in_flight(frozen: Server) -> None:
    admin = caller(frozen)
    disk = frozen_disk(2)
    start_snapshot(admin, disk)
    before = admin.ok("GET", f"{DISKS}/{disk}")
    status = error(admin.call("DELETE", f"{DISKS}/{disk}"), 400, "FAILED_PRECONDITION")
    assert "snapshot" in status["message"]
    assert admin.ok("GET", f"{DISKS}/{disk}") == before
    assert before["status"] == "READY"


def test_a_disk_from_a_creating_snapshot(frozen: Server) -> None:
    admin = caller(frozen)
    op = start_snapshot(admin, frozen_disk(3))
    body = {
        "folderId": frozen.folder,
        "zoneId": "ru-central1-a",
        "size": str(16 << 20),
        "snapshotId": op["metadata"]["snapshotId"],
    }
    before = admin.ok("GET", f"{DISKS}?folderId={frozen.folder}")
    error(admin.call("POST", DISKS, body), 400, "FAILED_PRECONDITION")
    assert admin.ok("GET", f"{DISKS}?folderId={frozen.folder}") == before


def test_a_snapshot_a_disk_is_being_made_from_cannot_be_deleted(frozen: Server) -> None:
    admin = caller(frozen)
    query = f"{SNAPSHOTS}?folderId={frozen.folder}&filter=name%3D%22{READY_ON_FROZEN}%22"
    (ready,) = admin.ok("GET", query)["snapshots"]
    assert ready["status"] == "READY"
    body = {
        "folderId": frozen.folder,
        "zoneId": "ru-central1-a",
        "size": ready["diskSize"],
        "snapshotId": ready["id"],
    }
    op = admin.ok("POST", DISKS, body)
    assert admin.ok("GET", f"{DISKS}/{op['metadata']['diskId']}")["status"] == "CREATING"
    path = f"{SNAPSHOTS}/{ready['id']}"
    status = error(admin.call("DELETE", path), 400, "FAILED_PRECONDITION")
    assert "disk is being created" in status["message"]
    assert admin.ok("GET", path) == ready


def test_a_disk_being_created_can_be_neither_deleted_snapshotted_nor_grown(
    frozen: Server,
) -> None:
    admin = caller(frozen)
    body = {"folderId": frozen.folder, "zoneId": "ru-central1-b", "size": str(4 << 20)}
    op = admin.ok("POST", DISKS, body)
    disk = op["metadata"]["diskId"]
    path = f"{DISKS}/{disk}"
    assert admin.ok("GET", path)["status"] == "CREATING"
    error(admin.call("DELETE", path), 400, "FAILED_PRECONDITION")
    snap = {"folderId": frozen.folder, "diskId": disk}
    error(admin.call("POST", SNAPSHOTS, snap), 400, "FAILED_PRECONDITION")
    grow = {"updateMask": "size", "size": str(8 << 20)}
    error(admin.call("PATCH", path, grow), 400, "FAILED_PRECONDITION")
    got = admin.ok("GET", path)
    assert (got["status"], got["size"]) == ("CREATING", str(4 << 20))
    assert snapshots_of(admin, disk) == []


def at_once(c: Caller, n: int, method: str, path: str, body: Any, *, key: str = "") -> list[Reply]:
    """``n`` copies of one request, sent side by side."""
    headers = {"Idempotency-Key": key} if key else {}
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: c.call(method, path, body, headers=headers), range(n)))


def test_racing_requests_have_one_winner(frozen: Server) -> None:
    """Side by side: one snapshot of a disk, one holder of a name, one operation per
    Idempotency-Key; the losers get the error a late request gets."""
    admin = caller(frozen)
    disk = frozen_disk(5)
    answers = at_once(admin, 8, "POST", SNAPSHOTS, {"folderId": frozen.folder, "diskId": disk})
    assert sorted(r.status for r in answers) == [200] + [400] * 7
    for lost in (r for r in answers if r.status != 200):
        error(lost, 400, "FAILED_PRECONDITION")
    assert len(snapshots_of(admin, disk)) == 1

    body = {"folderId": frozen.folder, "zoneId": "ru-central1-a", "size": str(4 << 20)}
    named = at_once(admin, 8, "POST", DISKS, {**body, "name": "raced"})
    assert sorted(r.status for r in named) == [200] + [409] * 7
    for lost in (r for r in named if r.status != 200):
        error(lost, 409, "ALREADY_EXISTS")

    listing = f"{DISKS}?folderId={frozen.folder}"
    before = {d["id"] for d in admin.ok("GET", listing)["disks"]}
    keyed = at_once(admin, 8, "POST", DISKS, body, key="raced-key")
    assert Counter(r.status for r in keyed) == {200: 8}
    assert len({r.body["id"] for r in keyed}) == 1
    after = {d["id"] for d in admin.ok("GET", listing)["disks"]}
    assert after - before == {keyed[0].body["metadata"]["diskId"]}


# --- names ------------------------------------------------------------------------------


def test_names_are_unique_per_folder_and_kind(live: Server) -> None:
    team = tenant(live, "names")
    editor, folder = team.editor, team.folder
    first, second = editor.disk(folder, name="dup"), editor.disk(folder)
    resp = editor.call(
        "POST",
        DISKS,
        {"folderId": folder, "zoneId": "ru-central1-a", "size": str(4 << 20), "name": "dup"},
    )
    error(resp, 409, "ALREADY_EXISTS")
    taken = editor.snapshot(folder, first["id"], name="dup")  # a snapshot: another kind
    body = {"folderId": folder, "diskId": second["id"], "name": "dup"}
    status = error(editor.call("POST", SNAPSHOTS, body), 409, "ALREADY_EXISTS")
    assert "dup" in status["message"]
    other = editor.snapshot(folder, second["id"], name="other")
    rename = {"updateMask": "name", "name": "dup"}
    error(editor.call("PATCH", f"{SNAPSHOTS}/{other['id']}", rename), 409, "ALREADY_EXISTS")
    error(editor.call("PATCH", f"{DISKS}/{second['id']}", rename), 409, "ALREADY_EXISTS")
    assert editor.ok("GET", f"{SNAPSHOTS}/{other['id']}") == other
    listed = editor.ok("GET", f"{SNAPSHOTS}?folderId={folder}")["snapshots"]
    assert sorted(s["name"] for s in listed) == ["dup", "other"]

    elsewhere = tenant(live, "names")  # another folder: the name is free there
    theirs = elsewhere.editor.disk(elsewhere.folder, name="dup")
    assert elsewhere.editor.snapshot(elsewhere.folder, theirs["id"], name="dup")["name"] == "dup"

    unnamed = [editor.snapshot(folder, first["id"]), editor.snapshot(folder, first["id"])]
    assert [s["name"] for s in unnamed] == ["", ""]  # the empty name never conflicts

    editor.done("DELETE", f"{SNAPSHOTS}/{taken['id']}")  # a deleted name is free again
    assert editor.done("PATCH", f"{SNAPSHOTS}/{other['id']}", rename)["name"] == "dup"


# --- unknown ids ------------------------------------------------------------------------

NOT_FOUND = [
    ("GET", f"{SNAPSHOTS}/{UNKNOWN_SNAPSHOT}", None),
    ("PATCH", f"{SNAPSHOTS}/{UNKNOWN_SNAPSHOT}", {"updateMask": "name", "name": "x"}),
    ("DELETE", f"{SNAPSHOTS}/{UNKNOWN_SNAPSHOT}", None),
    ("GET", f"{SNAPSHOTS}/{UNKNOWN_SNAPSHOT}/operations", None),
    ("GET", f"{SNAPSHOTS}/not-even-an-id", None),
    ("GET", f"{DISKS}/{UNKNOWN_DISK}", None),
    ("PATCH", f"{DISKS}/{UNKNOWN_DISK}", {"updateMask": "name", "name": "x"}),
    ("DELETE", f"{DISKS}/{UNKNOWN_DISK}", None),
    ("GET", f"{DISKS}/{UNKNOWN_DISK}/operations", None),
    ("GET", f"/operations/{UNKNOWN_OPERATION}", None),
    ("GET", f"/operations/{UNKNOWN_OPERATION}:cancel", None),
    ("POST", f"/operations/{UNKNOWN_OPERATION}:cancel", {}),
    ("GET", "/compute/v1/diskTypes/network-floppy", None),
    ("GET", "/compute/v1/zones/ru-central1-c", None),
]


@pytest.mark.parametrize(("method", "path", "body"), NOT_FOUND)
def test_unknown_ids_are_not_found(live: Server, method: str, path: str, body: Any) -> None:
    error(caller(live).call(method, path, body), 404, "NOT_FOUND")


REFERENCES = [
    ("snapshot of an unknown disk", SNAPSHOTS, {"diskId": UNKNOWN_DISK}),
    ("disk from an unknown snapshot", DISKS, {"snapshotId": UNKNOWN_SNAPSHOT}),
    ("disk from an image", DISKS, {"imageId": "fd8image0000000000001"}),
]


@pytest.mark.parametrize(("what", "path", "fields"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_unknown_references_are_not_found_and_change_nothing(
    live: Server, what: str, path: str, fields: dict[str, Any]
) -> None:
    admin = caller(live)
    body = {"folderId": live.folder, "zoneId": "ru-central1-a", "size": str(16 << 20), **fields}
    if path == SNAPSHOTS:
        body = {"folderId": live.folder, **fields}
    listing = f"{path}?folderId={live.folder}"
    before = admin.ok("GET", listing)
    status = error(admin.call("POST", path, body), 404, "NOT_FOUND")
    assert next(iter(fields.values())) in status["message"], what
    assert admin.ok("GET", listing) == before


def test_an_unknown_folder_is_like_one_without_a_role(live: Server) -> None:
    admin = caller(live)
    folder = "b1g" + "0" * 17
    error(admin.call("GET", f"{SNAPSHOTS}?folderId={folder}"), 403, "PERMISSION_DENIED")
    body = {"folderId": folder, "zoneId": "ru-central1-a", "size": str(4 << 20)}
    error(admin.call("POST", DISKS, body), 403, "PERMISSION_DENIED")

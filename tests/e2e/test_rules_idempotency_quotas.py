"""Idempotency-Key and quotas over HTTP.

The same key with the same request returns the same Operation (and does the work
once); with a different request it is 400 INVALID_ARGUMENT; keys belong to the subject,
not to the token or the folder. Quotas set with ``disksnap admin quota set`` on the
running server: exceeding one is 429 RESOURCE_EXHAUSTED, ``Limit <metric> exceeded``,
and creates nothing.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Server
from tests.e2e.rules import Caller, MiB, Reply, caller, error, quota, tenant, token, unique

SNAPSHOTS = "/compute/v1/snapshots"
DISKS = "/compute/v1/disks"


def keyed(c: Caller, method: str, path: str, body: Any, key: str) -> Reply:
    return c.call(method, path, body, headers={"Idempotency-Key": key})


def count(c: Caller, folder: str, kind: str) -> int:
    return len(c.ok("GET", f"/compute/v1/{kind}?folderId={folder}")[kind])


def disk_body(folder: str, size: int = 4 * MiB, **fields: Any) -> dict[str, Any]:
    return {"folderId": folder, "zoneId": "ru-central1-a", "size": str(size), **fields}


# --- Idempotency-Key ---------------------------------------------------------------------


def test_the_same_key_and_request_return_the_same_operation(live: Server) -> None:
    team = tenant(live, "idem")
    editor, folder = team.editor, team.folder
    disk = editor.disk(folder)
    body = {"folderId": folder, "diskId": disk["id"], "name": "once"}
    first = keyed(editor, "POST", SNAPSHOTS, body, "create-1").body
    again = keyed(editor, "POST", SNAPSHOTS, body, "create-1").body
    assert again["id"] == first["id"]
    assert again["metadata"] == first["metadata"]
    done = editor.wait(first)
    after = keyed(editor, "POST", SNAPSHOTS, body, "create-1")
    assert after.status == 200
    assert after.body == done  # the operation as it is now: done, with its response
    assert count(editor, folder, "snapshots") == 1

    made = keyed(editor, "POST", DISKS, disk_body(folder), "disk-1").body
    assert keyed(editor, "POST", DISKS, disk_body(folder), "disk-1").body["id"] == made["id"]
    editor.wait(made)
    assert count(editor, folder, "disks") == 2
    editor.disk(folder)  # without a key, the same request makes another disk
    assert count(editor, folder, "disks") == 3


def test_update_and_delete_replay_too(live: Server) -> None:
    team = tenant(live, "idem")
    editor = team.editor
    disk = editor.disk(team.folder)
    snap = editor.snapshot(team.folder, disk["id"])
    path = f"{SNAPSHOTS}/{snap['id']}"
    change = {"updateMask": "description", "description": "x"}
    update = keyed(editor, "PATCH", path, change, "update-1").body
    assert keyed(editor, "PATCH", path, change, "update-1").body == update
    ops = editor.ok("GET", f"{path}/operations")["operations"]
    assert [o["description"] for o in ops] == ["Update snapshot", "Create snapshot"]

    gone = keyed(editor, "DELETE", path, None, "delete-1").body
    assert gone["done"] is True
    assert keyed(editor, "DELETE", path, None, "delete-1").body == gone  # not 404
    error(editor.call("DELETE", path), 404, "NOT_FOUND")


def test_the_same_key_with_another_request_is_invalid(live: Server) -> None:
    team = tenant(live, "idem")
    editor, folder = team.editor, team.folder
    made = keyed(editor, "POST", DISKS, disk_body(folder, name="a"), "key-1").body
    for method, path, body in (
        ("POST", DISKS, disk_body(folder, name="b")),
        ("POST", DISKS, disk_body(folder, 8 * MiB, name="a")),
        ("POST", SNAPSHOTS, {"folderId": folder, "diskId": made["metadata"]["diskId"]}),
    ):
        status = error(keyed(editor, method, path, body, "key-1"), 400, "INVALID_ARGUMENT")
        assert "key-1" in status["message"]
    editor.wait(made)
    assert count(editor, folder, "disks") == 1
    assert count(editor, folder, "snapshots") == 0


def test_a_rejected_request_does_not_use_up_its_key(live: Server) -> None:
    team = tenant(live, "idem")
    editor, folder = team.editor, team.folder
    bad = keyed(editor, "POST", DISKS, disk_body(folder, name="Bad"), "key-2")
    error(bad, 400, "INVALID_ARGUMENT")
    good = keyed(editor, "POST", DISKS, disk_body(folder, name="good"), "key-2")
    assert good.status == 200
    assert editor.wait(good.body)["response"]["name"] == "good"


def test_a_key_longer_than_128_characters_is_refused(live: Server) -> None:
    team = tenant(live, "idem")
    editor, folder = team.editor, team.folder
    long = keyed(editor, "POST", DISKS, disk_body(folder), "k" * 129)
    assert "128" in error(long, 400, "INVALID_ARGUMENT")["message"]
    assert count(editor, folder, "disks") == 0
    longest = keyed(editor, "POST", DISKS, disk_body(folder), "k" * 128)
    assert longest.status == 200
    editor.wait(longest.body)


def test_keys_belong_to_the_subject(live: Server) -> None:
    team = tenant(live, "idem")
    folder = team.folder
    alice = unique("alice")
    first = caller(live, token(live, folder, "editor", alice))
    same_subject = caller(live, token(live, folder, "editor", alice))  # another token
    someone_else = caller(live, token(live, folder, "editor"))
    body = disk_body(folder)
    op = keyed(first, "POST", DISKS, body, "shared-key").body
    assert keyed(same_subject, "POST", DISKS, body, "shared-key").body["id"] == op["id"]
    other = keyed(someone_else, "POST", DISKS, body, "shared-key").body
    assert other["id"] != op["id"]
    assert other["createdBy"] != op["createdBy"]
    first.wait(op)
    first.wait(other)
    assert count(first, folder, "disks") == 2


# --- quotas --------------------------------------------------------------------------------


def exceeded(resp: Reply, metric: str) -> None:
    status = error(resp, 429, "RESOURCE_EXHAUSTED")
    assert status["message"] == f"Limit {metric} exceeded"


def test_snapshot_count(live: Server) -> None:
    team = tenant(live, "quota")
    editor, folder = team.editor, team.folder
    quota(live, folder, "compute.snapshots.count", "2")
    disk = editor.disk(folder)
    kept = [editor.snapshot(folder, disk["id"]) for _ in range(2)]
    body = {"folderId": folder, "diskId": disk["id"]}
    exceeded(editor.call("POST", SNAPSHOTS, body), "compute.snapshots.count")
    assert count(editor, folder, "snapshots") == 2
    editor.done("DELETE", f"{SNAPSHOTS}/{kept[0]['id']}")
    editor.snapshot(folder, disk["id"])  # room again
    exceeded(editor.call("POST", SNAPSHOTS, body), "compute.snapshots.count")


def test_snapshot_size(live: Server) -> None:
    team = tenant(live, "quota")
    quota(live, team.folder, "compute.snapshots.size", "0")
    disk = team.editor.disk(team.folder)
    body = {"folderId": team.folder, "diskId": disk["id"]}
    exceeded(team.editor.call("POST", SNAPSHOTS, body), "compute.snapshots.size")
    assert count(team.editor, team.folder, "snapshots") == 0


def test_disk_count_and_size(live: Server) -> None:
    team = tenant(live, "quota")
    editor, folder = team.editor, team.folder
    quota(live, folder, "compute.disks.count", "2")
    quota(live, folder, "compute.disks.size", "12MiB")
    disk = editor.disk(folder, size=4 * MiB)
    exceeded(editor.call("POST", DISKS, disk_body(folder, 12 * MiB)), "compute.disks.size")
    editor.disk(folder, size=4 * MiB)
    exceeded(editor.call("POST", DISKS, disk_body(folder)), "compute.disks.count")
    assert count(editor, folder, "disks") == 2
    path = f"{DISKS}/{disk['id']}"
    assert editor.done("PATCH", path, {"updateMask": "size", "size": str(8 * MiB)})["size"] == str(
        8 * MiB
    )
    grow = editor.call("PATCH", path, {"updateMask": "size", "size": str(12 * MiB)})
    exceeded(grow, "compute.disks.size")
    assert editor.ok("GET", path)["size"] == str(8 * MiB)


def test_quotas_are_per_folder_and_a_replay_is_not_counted(live: Server) -> None:
    team = tenant(live, "quota")
    quota(live, team.folder, "compute.disks.count", "1")
    body = disk_body(team.folder)
    op = keyed(team.editor, "POST", DISKS, body, "only-one").body
    assert keyed(team.editor, "POST", DISKS, body, "only-one").body["id"] == op["id"]
    exceeded(team.editor.call("POST", DISKS, body), "compute.disks.count")
    free = tenant(live, "quota")
    free.editor.disk(free.folder)
    free.editor.disk(free.folder)
    assert count(free.editor, free.folder, "disks") == 2

"""Authentication and roles over HTTP: no, malformed or unknown token -> 401
UNAUTHENTICATED whatever else the request holds; a subject without a role on the folder
-> 403 PERMISSION_DENIED; a viewer reads but cannot change anything. The extra subjects
are made with ``disksnap admin token create`` on the running server's data directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Server
from tests.e2e.rules import Caller, Tenant, caller, error, tenant, token


@dataclass(frozen=True)
class World:
    """A folder with a disk, a snapshot and an operation; an outsider with an editor
    role on another folder only."""

    team: Tenant
    disk: dict[str, Any]
    snapshot: dict[str, Any]
    operation: dict[str, Any]
    outsider: Caller
    outsider_folder: str


@pytest.fixture(scope="module")
def world(live: Server) -> World:
    team = tenant(live, "auth")
    disk = team.editor.disk(team.folder)
    snapshot = team.editor.snapshot(team.folder, disk["id"], name="base")
    op = team.editor.ok(
        "PATCH", f"/compute/v1/snapshots/{snapshot['id']}", {"updateMask": "labels"}
    )
    other = tenant(live, "elsewhere")
    return World(team, disk, snapshot, op, other.editor, other.folder)


def calls(w: World) -> list[tuple[str, str, Any]]:
    """A call of every method on the folder's resources (method, path, body)."""
    f, d, s, o = w.team.folder, w.disk["id"], w.snapshot["id"], w.operation["id"]
    return [
        ("GET", f"/compute/v1/snapshots?folderId={f}", None),
        ("GET", f"/compute/v1/snapshots/{s}", None),
        ("GET", f"/compute/v1/snapshots/{s}/operations", None),
        ("POST", "/compute/v1/snapshots", {"folderId": f, "diskId": d, "name": "new"}),
        ("PATCH", f"/compute/v1/snapshots/{s}", {"updateMask": "name", "name": "renamed"}),
        ("DELETE", f"/compute/v1/snapshots/{s}", None),
        ("GET", f"/compute/v1/disks?folderId={f}", None),
        ("GET", f"/compute/v1/disks/{d}", None),
        ("GET", f"/compute/v1/disks/{d}/operations", None),
        (
            "POST",
            "/compute/v1/disks",
            {"folderId": f, "zoneId": "ru-central1-a", "size": "4194304"},
        ),
        ("PATCH", f"/compute/v1/disks/{d}", {"updateMask": "description", "description": "x"}),
        ("DELETE", f"/compute/v1/disks/{d}", None),
        ("GET", f"/operations/{o}", None),
        ("GET", f"/operations/{o}:cancel", None),
        ("POST", f"/operations/{o}:cancel", {}),
    ]


WRITES = {"POST", "PATCH", "DELETE"}


def is_write(method: str, path: str) -> bool:
    return method in WRITES or path.endswith(":cancel")


def unchanged(w: World) -> None:
    """The folder still holds exactly what the fixture made."""
    viewer, f = w.team.viewer, w.team.folder
    assert viewer.ok("GET", f"/compute/v1/snapshots?folderId={f}")["snapshots"] == [w.snapshot]
    assert viewer.ok("GET", f"/compute/v1/disks?folderId={f}")["disks"] == [w.disk]


UNAUTHENTICATED = [
    None,  # no Authorization header
    "",
    "Bearer",
    "Bearer    ",
    "Basic dXNlcjpwYXNz",
    "Token ds1.abc",
    "ds1.abc",
    "Bearer ds1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # well-formed, unknown
    "Bearer not-a-token-at-all",
]


@pytest.mark.parametrize("authorization", UNAUTHENTICATED)
def test_no_malformed_or_unknown_token_is_unauthenticated(
    world: World, authorization: str | None
) -> None:
    anonymous = caller(world.team.viewer.server, None)
    for method, path, body in calls(world):
        resp = anonymous.call(method, path, body, authorization=authorization)
        error(resp, 401, "UNAUTHENTICATED")
    unchanged(world)


def test_a_token_with_a_character_changed_is_unknown(world: World) -> None:
    real = world.team.editor.token
    assert real is not None
    forged = real[:-1] + ("A" if real[-1] != "A" else "B")
    resp = caller(world.team.editor.server, forged).call(
        "GET", f"/compute/v1/disks/{world.disk['id']}"
    )
    error(resp, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/compute/v1/snapshots", {"name": "BAD", "folderId": "x" * 60}),
        ("GET", "/compute/v1/snapshots?pageSize=5000", None),
        ("GET", "/compute/v1/zones/nowhere", None),
        ("GET", "/operations/unknown", None),
        ("POST", "/compute/v1/disks/fhm00000000000000000:move", {}),
    ],
)
def test_authentication_comes_before_validation_and_lookups(
    live: Server, method: str, path: str, body: Any
) -> None:
    error(caller(live, None).call(method, path, body), 401, "UNAUTHENTICATED")


def test_no_role_on_the_folder_is_permission_denied(world: World) -> None:
    for method, path, body in calls(world):
        status = error(world.outsider.call(method, path, body), 403, "PERMISSION_DENIED")
        needed = "compute.editor" if is_write(method, path) else "compute.viewer"
        assert needed in status["message"], (method, path, status)
        assert world.team.folder in status["message"]
    unchanged(world)


def test_a_disk_in_a_folder_without_a_role_cannot_be_snapshotted(world: World) -> None:
    body = {"folderId": world.outsider_folder, "diskId": world.disk["id"]}
    error(world.outsider.call("POST", "/compute/v1/snapshots", body), 403, "PERMISSION_DENIED")
    listed = world.outsider.ok("GET", f"/compute/v1/snapshots?folderId={world.outsider_folder}")
    assert listed["snapshots"] == []


def test_a_viewer_reads_but_cannot_change_anything(world: World) -> None:
    for method, path, body in calls(world):
        resp = world.team.viewer.call(method, path, body)
        if is_write(method, path):
            status = error(resp, 403, "PERMISSION_DENIED")
            assert "compute.editor" in status["message"]
        else:
            assert resp.status == 200, (method, path, resp.body)
    unchanged(world)


ROLES = [
    ("viewer", False),
    ("compute.viewer", False),
    ("editor", True),
    ("compute.editor", True),
    ("admin", True),
    ("compute.admin", True),
]


@pytest.mark.parametrize(("role", "writes"), ROLES)
def test_each_role_reads_and_the_editors_and_admins_write(
    live: Server, world: World, role: str, writes: bool
) -> None:
    who = caller(live, token(live, world.team.folder, role))
    path = f"/compute/v1/snapshots/{world.snapshot['id']}"
    assert who.ok("GET", path) == world.snapshot
    resp = who.call("PATCH", path, {"updateMask": "description", "description": role})
    if writes:
        assert resp.status == 200, resp.body
        assert who.wait(resp.body)["response"]["description"] == role
        who.done("PATCH", path, {"updateMask": "description", "description": ""})
    else:
        error(resp, 403, "PERMISSION_DENIED")
    assert who.ok("GET", path) == world.snapshot


def test_roles_are_per_folder(live: Server, world: World) -> None:
    """The same subject, editor on one folder and viewer on another."""
    subject = "per-folder-subject"
    token(live, world.outsider_folder, "editor", subject)
    both = caller(live, token(live, world.team.folder, "viewer", subject))
    assert both.ok("GET", f"/compute/v1/disks?folderId={world.outsider_folder}")["disks"] == []
    made = both.disk(world.outsider_folder)
    assert made["folderId"] == world.outsider_folder
    body = {"folderId": world.team.folder, "zoneId": "ru-central1-a", "size": "4194304"}
    error(both.call("POST", "/compute/v1/disks", body), 403, "PERMISSION_DENIED")
    # Reading the disk is enough to snapshot it into a folder one may write to.
    copy = both.snapshot(world.outsider_folder, world.disk["id"])
    assert (copy["folderId"], copy["sourceDiskId"]) == (world.outsider_folder, world.disk["id"])
    unchanged(world)


def test_the_catalog_needs_a_token_but_no_role(world: World) -> None:
    for path in (
        "/compute/v1/diskTypes",
        "/compute/v1/diskTypes/network-ssd",
        "/compute/v1/zones",
        "/compute/v1/zones/ru-central1-a",
    ):
        assert world.outsider.call("GET", path).status == 200
        error(caller(world.outsider.server, None).call("GET", path), 401, "UNAUTHENTICATED")


def test_tokens_are_neither_stored_nor_logged_in_clear(live: Server, world: World) -> None:
    secrets = [live.token, world.team.editor.token, world.team.viewer.token, world.outsider.token]
    stored = b"".join(p.read_bytes() for p in live.data.glob("meta.db*"))
    log = (live.data.parent / "server.log").read_bytes()
    for secret in secrets:
        assert secret is not None
        assert secret.encode() not in stored
        assert secret.encode() not in log

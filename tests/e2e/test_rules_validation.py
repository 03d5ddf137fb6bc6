"""Every validation rule over HTTP: a bad request is 400 INVALID_ARGUMENT with a
``google.rpc.BadRequest`` naming exactly the offending fields, and changes nothing.

The cases are tables: (request, {field: a fragment of its description}). The rules
themselves are ``disksnap.domain.validation`` and the REST parser's; here they are seen
from a real client of a real ``disksnap serve``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Server
from tests.e2e.rules import Caller, MiB, Tenant, caller, error, tenant, violations

NAME_RULE = "Field does not match the pattern /|[a-z]([-_a-z0-9]{0,61}[a-z0-9])?/"
ID_RULE = "Length must be less than or equal to 50"
KEY_RULE = r"Key does not match the pattern /[a-z][-_./\@0-9a-z]*/"
VALUE_RULE = r"Value does not match the pattern /[-_./\@0-9a-z]*/"
ONE_GENERATION = "Exactly one of the fields must be set: legacyFeatures, generation2Features"
UNKNOWN = "unknown field"
LONG_ID = "x" * 51
DROP = object()  # a field left out of the request


@pytest.fixture(scope="module")
def team(live: Server) -> Tenant:
    return tenant(live, "validation")


@pytest.fixture(scope="module")
def disk(team: Tenant) -> dict[str, Any]:
    return team.editor.disk(team.folder)


@pytest.fixture(scope="module")
def snapshot(team: Tenant, disk: dict[str, Any]) -> dict[str, Any]:
    return team.editor.snapshot(team.folder, disk["id"], name="kept")


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    body = {**base, **changes}
    return {k: v for k, v in body.items() if v is not DROP}


def check(got: dict[str, str], expected: dict[str, str]) -> None:
    """Exactly the expected fields, each described with the expected words."""
    assert set(got) == set(expected), got
    for field, words in expected.items():
        assert words in got[field], (field, got[field])


def listed(c: Caller, path: str) -> list[dict[str, Any]]:
    body = c.ok("GET", path)
    items = body["snapshots"] if "snapshots" in body else body["disks"]
    assert isinstance(items, list)
    return items


# --- SnapshotService.Create ------------------------------------------------------------

CREATE_SNAPSHOT_CASES = [
    ({"folderId": DROP}, {"folderId": "Field is required"}),
    ({"folderId": "b" * 51}, {"folderId": ID_RULE}),
    ({"diskId": ""}, {"diskId": "Field is required"}),
    ({"diskId": LONG_ID}, {"diskId": ID_RULE}),
    ({"name": "Nightly"}, {"name": NAME_RULE}),
    ({"name": "1st"}, {"name": NAME_RULE}),
    ({"name": "nightly-"}, {"name": NAME_RULE}),
    ({"name": "a" * 64}, {"name": NAME_RULE}),
    ({"name": "ночь"}, {"name": NAME_RULE}),
    ({"name": "a b"}, {"name": NAME_RULE}),
    ({"description": "d" * 257}, {"description": "Length must be less than or equal to 256"}),
    (
        {"labels": {f"k{i}": "v" for i in range(65)}},
        {"labels": "Number of elements must be less than or equal to 64"},
    ),
    ({"labels": {"Env": "x"}}, {"labels[Env]": KEY_RULE}),
    ({"labels": {"1env": "x"}}, {"labels[1env]": KEY_RULE}),
    (
        {"labels": {"k" * 64: "x"}},
        {f"labels[{'k' * 64}]": "Key length must be in the range of 1 to 63"},
    ),
    ({"labels": {"": "x"}}, {"labels[]": "Key length must be in the range of 1 to 63"}),
    ({"labels": {"env": "Prod"}}, {"labels[env]": VALUE_RULE}),
    ({"labels": {"env": "a b"}}, {"labels[env]": VALUE_RULE}),
    (
        {"labels": {"env": "v" * 64}},
        {"labels[env]": "Value length must be less than or equal to 63"},
    ),
    ({"hardwareGeneration": {}}, {"hardwareGeneration": ONE_GENERATION}),
    (
        {"hardwareGeneration": {"legacyFeatures": {}, "generation2Features": {}}},
        {"hardwareGeneration.generation2Features": "only one of"},
    ),
    (
        {"hardwareGeneration": {"legacyFeatures": {"pciTopology": "PCI_TOPOLOGY_V9"}}},
        {"hardwareGeneration.legacyFeatures.pciTopology": "PCI_TOPOLOGY_V9"},
    ),
    ({"size": "4194304"}, {"size": UNKNOWN}),
    ({"snapshot_name": "x"}, {"snapshot_name": UNKNOWN}),
    (
        {"hardwareGeneration": {"legacyFeatures": {"bus": "pci"}}},
        {"hardwareGeneration.legacyFeatures.bus": UNKNOWN},
    ),
    ({"name": 5}, {"name": ""}),
    ({"labels": ["env"]}, {"labels": "expected a JSON object"}),
    (
        {"name": "Bad", "description": "d" * 300, "labels": {"Env": "x"}},
        {"name": NAME_RULE, "description": "256", "labels[Env]": KEY_RULE},
    ),
]


@pytest.mark.parametrize(("changes", "expected"), CREATE_SNAPSHOT_CASES)
def test_create_snapshot_rules(
    team: Tenant, disk: dict[str, Any], changes: dict[str, Any], expected: dict[str, str]
) -> None:
    body = merged({"folderId": team.folder, "diskId": disk["id"], "name": "ok"}, changes)
    check(violations(team.editor.call("POST", "/compute/v1/snapshots", body)), expected)
    assert (
        listed(team.editor, f"/compute/v1/snapshots?folderId={team.folder}&filter=name!='kept'")
        == []
    )


MALFORMED_BODIES = [
    (b"{", "malformed JSON"),
    (b'{"name": "a",}', "malformed JSON"),
    (b'{"name": "a", "name": "b"}', 'duplicate key "name"'),
    (b'{"folderId": NaN}', "NaN is not a JSON value"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[]", "expected a JSON object, got an array"),
    (b'"folder"', "expected a JSON object, got a string"),
]


@pytest.mark.parametrize(("raw", "words"), MALFORMED_BODIES)
def test_malformed_json_is_invalid_argument(team: Tenant, raw: bytes, words: str) -> None:
    resp = team.editor.call(
        "POST", "/compute/v1/snapshots", raw=raw, headers={"Content-Type": "application/json"}
    )
    check(violations(resp), {"": words})


def test_create_takes_no_query_parameters(team: Tenant, disk: dict[str, Any]) -> None:
    body = {"folderId": team.folder, "diskId": disk["id"]}
    resp = team.editor.call("POST", "/compute/v1/snapshots?name=x", body)
    check(violations(resp), {"name": "query parameters are not accepted"})


# --- SnapshotService.Update ------------------------------------------------------------

UPDATE_SNAPSHOT_CASES = [
    (
        {"updateMask": "status"},
        {"updateMask": 'Unknown field "status" in the mask; allowed fields: name, description'},
    ),
    ({"updateMask": "name,diskSize"}, {"updateMask": 'Unknown field "disk_size"'}),
    ({"updateMask": "name", "name": "Kept"}, {"name": NAME_RULE}),
    ({"updateMask": "description", "description": "d" * 257}, {"description": "256"}),
    ({"updateMask": "labels", "labels": {"a": "B"}}, {"labels[a]": VALUE_RULE}),
    ({"updateMask": 7}, {"updateMask": ""}),
    ({"status": "READY"}, {"status": UNKNOWN}),
]


@pytest.mark.parametrize(("body", "expected"), UPDATE_SNAPSHOT_CASES)
def test_update_snapshot_rules(
    team: Tenant, snapshot: dict[str, Any], body: dict[str, Any], expected: dict[str, str]
) -> None:
    path = f"/compute/v1/snapshots/{snapshot['id']}"
    check(violations(team.editor.call("PATCH", path, body)), expected)
    assert team.editor.ok("GET", path) == snapshot  # unchanged


def test_update_body_may_not_contradict_the_path(team: Tenant, snapshot: dict[str, Any]) -> None:
    path = f"/compute/v1/snapshots/{snapshot['id']}"
    resp = team.editor.call("PATCH", path, {"snapshotId": "fd8other", "name": "x"})
    check(violations(resp), {"snapshotId": "the body disagrees with the URL path"})


BOUNDARY_VALUES = [
    {"name": "a"},
    {"name": "a" * 63},
    {"name": "a-_9"},
    {"name": ""},
    {"description": "d" * 256},
    {"description": "ü" * 256},  # code points, not bytes
    {"labels": {f"k{i}": "v" for i in range(64)}},
    {"labels": {"k" * 63: "v" * 63}},
    {"labels": {"a-_./\\@0z": "-_./\\@0z"}},
    {"labels": {"empty": ""}},
]


@pytest.mark.parametrize("values", BOUNDARY_VALUES)
def test_values_on_the_boundary_are_accepted(
    team: Tenant, disk: dict[str, Any], values: dict[str, Any]
) -> None:
    made = team.editor.snapshot(team.folder, disk["id"], **values)
    for key, value in values.items():
        assert made[key] == value
    mask = ",".join(values)
    path = f"/compute/v1/snapshots/{made['id']}"
    updated = team.editor.done("PATCH", path, {"updateMask": mask, **values})
    assert {k: updated[k] for k in values} == values
    team.editor.done("DELETE", path)


# --- DiskService.Create and Update -----------------------------------------------------

CREATE_DISK_CASES = [
    ({"size": DROP}, {"size": "Field is required"}),
    ({"size": "1048576"}, {"size": "Value must be in the range of 4194304 to 28587302322176"}),
    ({"size": str(6 * MiB)}, {"size": "Value must be a multiple of 4194304 bytes"}),
    ({"size": "big"}, {"size": ""}),
    ({"zoneId": DROP}, {"zoneId": "Field is required"}),
    ({"zoneId": "mars-1"}, {"zoneId": 'Unknown zone "mars-1"; zones: ru-central1-a'}),
    ({"typeId": "network-floppy"}, {"typeId": 'Unknown disk type "network-floppy"'}),
    ({"typeId": LONG_ID}, {"typeId": ID_RULE}),
    ({"blockSize": "1000"}, {"blockSize": "Value must be one of 4096, 8192"}),
    ({"snapshotId": LONG_ID}, {"snapshotId": ID_RULE}),
    ({"imageId": LONG_ID}, {"imageId": ID_RULE}),
    ({"name": "Data"}, {"name": NAME_RULE}),
    ({"labels": {"Env": "x"}}, {"labels[Env]": KEY_RULE}),
    ({"hardwareGeneration": {}}, {"hardwareGeneration": ONE_GENERATION}),
    ({"folderId": LONG_ID}, {"folderId": ID_RULE}),
    ({"diskSize": "4194304"}, {"diskSize": UNKNOWN}),
]


@pytest.mark.parametrize(("changes", "expected"), CREATE_DISK_CASES)
def test_create_disk_rules(
    team: Tenant, disk: dict[str, Any], changes: dict[str, Any], expected: dict[str, str]
) -> None:
    base = {"folderId": team.folder, "zoneId": "ru-central1-a", "size": str(4 * MiB)}
    resp = team.editor.call("POST", "/compute/v1/disks", merged(base, changes))
    check(violations(resp), expected)
    assert listed(team.editor, f"/compute/v1/disks?folderId={team.folder}") == [disk]


UPDATE_DISK_CASES = [
    ({"updateMask": "zoneId", "zoneId": "x"}, {"zoneId": UNKNOWN}),
    ({"updateMask": "typeId"}, {"updateMask": 'Unknown field "type_id" in the mask'}),
    ({"updateMask": "size"}, {"size": "Field is required"}),
    ({"updateMask": "size", "size": str(2 * MiB)}, {"size": "in the range of 4194304"}),
    ({"updateMask": "size", "size": str(6 * MiB)}, {"size": "a multiple of 4194304"}),
    ({"updateMask": "name", "name": "-x"}, {"name": NAME_RULE}),
]


@pytest.mark.parametrize(("body", "expected"), UPDATE_DISK_CASES)
def test_update_disk_rules(
    team: Tenant, disk: dict[str, Any], body: dict[str, Any], expected: dict[str, str]
) -> None:
    path = f"/compute/v1/disks/{disk['id']}"
    check(violations(team.editor.call("PATCH", path, body)), expected)
    assert team.editor.ok("GET", path) == disk


def test_a_disk_only_grows(live: Server) -> None:
    team = tenant(live, "grow")
    made = team.editor.disk(team.folder, size=8 * MiB)
    path = f"/compute/v1/disks/{made['id']}"
    resp = team.editor.call("PATCH", path, {"updateMask": "size", "size": str(4 * MiB)})
    check(violations(resp), {"size": "A disk can only grow: 4194304 is less than its size"})
    assert team.editor.ok("GET", path)["size"] == str(8 * MiB)


# --- ids in the path -------------------------------------------------------------------

ID_PATHS = [
    ("GET", "/compute/v1/snapshots/{}", "snapshotId"),
    ("DELETE", "/compute/v1/snapshots/{}", "snapshotId"),
    ("PATCH", "/compute/v1/snapshots/{}", "snapshotId"),
    ("GET", "/compute/v1/snapshots/{}/operations", "snapshotId"),
    ("GET", "/compute/v1/disks/{}", "diskId"),
    ("DELETE", "/compute/v1/disks/{}", "diskId"),
    ("PATCH", "/compute/v1/disks/{}", "diskId"),
    ("GET", "/compute/v1/disks/{}/operations", "diskId"),
    ("GET", "/operations/{}", "operationId"),
    ("GET", "/operations/{}:cancel", "operationId"),
    ("POST", "/operations/{}:cancel", "operationId"),
    ("GET", "/compute/v1/diskTypes/{}", "diskTypeId"),
    ("GET", "/compute/v1/zones/{}", "zoneId"),
]


@pytest.mark.parametrize(("method", "template", "field"), ID_PATHS)
def test_ids_longer_than_50_are_invalid_and_50_is_not_found(
    live: Server, method: str, template: str, field: str
) -> None:
    admin = caller(live)
    body: dict[str, Any] | None = {} if method in ("PATCH", "POST") else None
    resp = admin.call(method, template.format(LONG_ID), body)
    check(violations(resp), {field: ID_RULE})
    error(admin.call(method, template.format("x" * 50), body), 404, "NOT_FOUND")
    error(admin.call(method, template.format("a%0Ab"), body), 404, "NOT_FOUND")


# --- List parameters -------------------------------------------------------------------

LIST_CASES = [
    ("pageSize=1001", {"pageSize": "Value must be in the range of 0 to 1000"}),
    ("pageSize=-1", {"pageSize": "Value must be in the range of 0 to 1000"}),
    ("pageSize=ten", {"pageSize": ""}),
    ("pageSize=1&pageSize=2", {"pageSize": "given 2 times"}),
    ("pageToken=forged", {"pageToken": "Invalid page token"}),
    ("pageToken=" + "A" * 600, {"pageToken": ""}),
    ("filter=name%20%3D", {"filter": ""}),
    ("filter=size%3D%221%22", {"filter": "size"}),
    ("filter=name%20~%20%22a%22", {"filter": ""}),
    ("filter=labels.Env%3D%22x%22", {"filter": ""}),
    ("filter=name%3D%22a%22%20OR%20name%3D%22b%22", {"filter": ""}),
    ("filter=" + "x" * 1001, {"filter": "Length must be less than or equal to 1000"}),
    ("orderBy=size%20desc", {"orderBy": "size"}),
    ("orderBy=name%20sideways", {"orderBy": ""}),
    ("pagesize=10", {"pagesize": "query parameter: unknown field"}),
    ("pageSize=1001&orderBy=size", {"pageSize": "1000", "orderBy": "size"}),
]


@pytest.mark.parametrize("kind", ["snapshots", "disks"])
@pytest.mark.parametrize(("query", "expected"), LIST_CASES)
def test_list_parameter_rules(
    team: Tenant, kind: str, query: str, expected: dict[str, str]
) -> None:
    resp = team.viewer.call("GET", f"/compute/v1/{kind}?folderId={team.folder}&{query}")
    check(violations(resp), expected)


def test_list_needs_a_folder(team: Tenant) -> None:
    check(violations(team.viewer.call("GET", "/compute/v1/snapshots")), {"folderId": "required"})
    check(violations(team.viewer.call("GET", "/compute/v1/disks")), {"folderId": "required"})


@pytest.mark.parametrize(
    "path",
    [
        "/compute/v1/snapshots/{snapshot}/operations?pageSize=1001",
        "/compute/v1/disks/{disk}/operations?pageSize=1001",
        "/compute/v1/diskTypes?pageSize=1001",
        "/compute/v1/zones?pageSize=1001",
    ],
)
def test_other_lists_check_the_page_size(
    team: Tenant, disk: dict[str, Any], snapshot: dict[str, Any], path: str
) -> None:
    resp = team.viewer.call("GET", path.format(snapshot=snapshot["id"], disk=disk["id"]))
    check(violations(resp), {"pageSize": "Value must be in the range of 0 to 1000"})


@pytest.mark.parametrize("path", ["/compute/v1/diskTypes", "/compute/v1/zones"])
def test_catalog_page_tokens_are_checked(team: Tenant, path: str) -> None:
    check(violations(team.viewer.call("GET", f"{path}?pageToken=forged")), {"pageToken": ""})

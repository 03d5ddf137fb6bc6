"""Requests of the compute surface: path + query + JSON body into the official messages."""

from __future__ import annotations

from typing import Any

import pytest
from yandex.cloud.compute.v1 import disk_service_pb2, hardware_generation_pb2, snapshot_service_pb2

from disksnap.api.rest.errors import FieldViolation, RequestInvalid
from disksnap.api.rest.routes import Match, RouteTable
from disksnap.api.rest.transcode import parse_query, transcode
from disksnap.domain.errors import Code, InvalidArgument


def request(
    table: RouteTable,
    method: str,
    path: str,
    query: str = "",
    body: bytes | str = b"",
    **options: Any,
) -> Any:
    result = table.match(method, path)
    assert isinstance(result, Match), result
    return transcode(result.route, result.variables, parse_query(query), body, **options)


def violations(
    table: RouteTable, method: str, path: str, query: str = "", body: bytes | str = b""
) -> list[FieldViolation]:
    with pytest.raises(RequestInvalid) as caught:
        request(table, method, path, query, body)
    return list(caught.value.violations)


def fields(found: list[FieldViolation]) -> list[str]:
    return [v.field for v in found]


CREATE_BODY = b"""{
  "folderId": "b1gfolder",
  "diskId": "epddisk",
  "name": "nightly-1",
  "description": "before the upgrade",
  "labels": {"env": "prod", "team": "storage"},
  "hardwareGeneration": {"legacyFeatures": {"pciTopology": "PCI_TOPOLOGY_V2"}}
}"""


def test_snapshot_create_parses_the_whole_body(table: RouteTable) -> None:
    message = request(table, "POST", "/compute/v1/snapshots", body=CREATE_BODY)
    expected = snapshot_service_pb2.CreateSnapshotRequest(
        folder_id="b1gfolder",
        disk_id="epddisk",
        name="nightly-1",
        description="before the upgrade",
        labels={"env": "prod", "team": "storage"},
    )
    expected.hardware_generation.legacy_features.pci_topology = (
        hardware_generation_pb2.PCI_TOPOLOGY_V2
    )
    assert message == expected


def test_proto_field_names_are_accepted_as_well(table: RouteTable) -> None:
    message = request(
        table, "POST", "/compute/v1/snapshots", body='{"folder_id": "f", "disk_id": "d"}'
    )
    assert (message.folder_id, message.disk_id) == ("f", "d")


def test_an_empty_body_is_an_empty_message(table: RouteTable) -> None:
    message = request(table, "POST", "/compute/v1/snapshots", body=b"  \n")
    assert message == snapshot_service_pb2.CreateSnapshotRequest()


def test_snapshot_list_takes_query_parameters(table: RouteTable) -> None:
    query = (
        "folderId=b1gfolder&pageSize=50&pageToken=abc&filter=name%3D%22x%22&orderBy=createdAt+desc"
    )
    message = request(table, "GET", "/compute/v1/snapshots", query)
    assert message == snapshot_service_pb2.ListSnapshotsRequest(
        folder_id="b1gfolder",
        page_size=50,
        page_token="abc",
        filter='name="x"',
        order_by="createdAt desc",
    )


def test_query_parameters_accept_proto_names(table: RouteTable) -> None:
    message = request(table, "GET", "/compute/v1/snapshots", "folder_id=f&page_size=7")
    assert (message.folder_id, message.page_size) == ("f", 7)


def test_snapshot_update_combines_path_and_body_with_update_mask(table: RouteTable) -> None:
    body = b'{"updateMask": "name,labels", "name": "renamed", "labels": {"a": "b"}}'
    message = request(table, "PATCH", "/compute/v1/snapshots/fd8snap", body=body)
    assert message.snapshot_id == "fd8snap"
    assert list(message.update_mask.paths) == ["name", "labels"]
    assert message.name == "renamed"
    assert dict(message.labels) == {"a": "b"}


def test_update_mask_paths_are_camel_case_in_json(table: RouteTable) -> None:
    message = request(
        table, "PATCH", "/compute/v1/disks/d1", body='{"updateMask": "diskPlacementPolicy"}'
    )
    assert list(message.update_mask.paths) == ["disk_placement_policy"]


def test_disk_get_takes_its_id_from_the_path(table: RouteTable) -> None:
    message = request(table, "GET", "/compute/v1/disks/epd%20x")
    assert message == disk_service_pb2.GetDiskRequest(disk_id="epd x")


def test_string_path_and_query_values_are_set_as_given(table: RouteTable) -> None:
    message = request(table, "GET", "/compute/v1/disks/%C3%A9pd")
    assert message == disk_service_pb2.GetDiskRequest(disk_id="\u00e9pd")
    listed = request(table, "GET", "/compute/v1/snapshots", "folderId=b1g&filter=name%3D%22a%22")
    assert listed.folder_id == "b1g"
    assert listed.filter == 'name="a"'


def test_text_that_is_not_utf8_is_a_violation_of_its_field(table: RouteTable) -> None:
    """Not reachable from HTTP (paths and queries are decoded strictly), but a string
    set without json_format must still refuse what json_format refuses."""
    result = table.match("GET", "/compute/v1/disks/x")
    assert isinstance(result, Match)
    with pytest.raises(RequestInvalid) as caught:
        transcode(result.route, {"disk_id": "\ud800"})
    assert fields(list(caught.value.violations)) == ["diskId"]
    listing = table.match("GET", "/compute/v1/snapshots")
    assert isinstance(listing, Match)
    with pytest.raises(RequestInvalid) as caught:
        transcode(listing.route, {}, [("folderId", "\udfff")])
    assert fields(list(caught.value.violations)) == ["folderId"]


@pytest.mark.parametrize("size", ['"10737418240"', "10737418240", '"1e3"'])
def test_int64_accepts_strings_and_numbers(table: RouteTable, size: str) -> None:
    message = request(table, "POST", "/compute/v1/disks", body=f'{{"size": {size}}}')
    assert message.size == (1000 if size == '"1e3"' else 10737418240)


def test_path_value_repeated_in_the_body_is_fine_if_equal(table: RouteTable) -> None:
    body = b'{"snapshotId": "fd8snap", "name": "x"}'
    message = request(table, "PATCH", "/compute/v1/snapshots/fd8snap", body=body)
    assert message.snapshot_id == "fd8snap"


def test_post_cancel_accepts_no_body_or_an_empty_object(table: RouteTable) -> None:
    for body in (b"", b"{}"):
        message = request(table, "POST", "/operations/op1:cancel", body=body)
        assert message.operation_id == "op1"


# --- rejections -----------------------------------------------------------------------


def test_malformed_json_is_invalid_argument(table: RouteTable) -> None:
    with pytest.raises(InvalidArgument) as caught:
        request(table, "POST", "/compute/v1/snapshots", body=b'{"folderId": ')
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert isinstance(caught.value, RequestInvalid)
    (violation,) = caught.value.violations
    assert violation.field == ""
    assert violation.description.startswith("malformed JSON: Expecting value at line 1 column")


@pytest.mark.parametrize(
    ("body", "description"),
    [
        (b'{"a": 1, "a": 2}', 'malformed JSON: duplicate key "a"'),
        (b'{"size": NaN}', "malformed JSON: NaN is not a JSON value"),
        (b"\xff{}", "the body is not UTF-8 (byte 0)"),
        (b"[]", "expected a JSON object, got an array"),
        (b'"x"', "expected a JSON object, got a string"),
        (b"{} {}", "malformed JSON: Extra data at line 1 column 4"),
    ],
)
def test_bodies_that_are_not_a_json_object(
    table: RouteTable, body: bytes, description: str
) -> None:
    assert violations(table, "POST", "/compute/v1/disks", body=body) == [
        FieldViolation("", description)
    ]


def test_unknown_fields_are_rejected_with_their_path(table: RouteTable) -> None:
    body = b'{"folderId": "f", "diskID": "d", "hardwareGeneration": {"legacy": {}}}'
    found = violations(table, "POST", "/compute/v1/snapshots", body=body)
    assert fields(found) == ["diskID", "hardwareGeneration.legacy"]
    assert found[0].description.startswith("unknown field (known fields: folderId, diskId,")


@pytest.mark.parametrize(
    ("body", "field", "description"),
    [
        ('{"folderId": 5}', "folderId", "invalid value 5: expected a string"),
        ('{"labels": {"env": 1}}', "labels[env]", "invalid value 1: expected a string"),
        ('{"labels": ["env"]}', "labels", "expected a JSON object (a map), got an array"),
        (
            '{"hardwareGeneration": {"legacyFeatures": {"pciTopology": "PCI_TOPOLOGY_V9"}}}',
            "hardwareGeneration.legacyFeatures.pciTopology",
            'invalid value "PCI_TOPOLOGY_V9": expected one of PCI_TOPOLOGY_UNSPECIFIED, '
            "PCI_TOPOLOGY_V1, PCI_TOPOLOGY_V2",
        ),
        ('{"hardwareGeneration": 3}', "hardwareGeneration", "expected a JSON object, got a number"),
        (
            '{"hardwareGeneration": {"legacyFeatures": {}, "generation2Features": {}}}',
            "hardwareGeneration.generation2Features",
            "only one of legacyFeatures, generation2Features may be set",
        ),
        ('{"diskId": "a", "disk_id": "b"}', "disk_id", "set twice, as diskId and disk_id"),
    ],
)
def test_wrong_values_name_the_field(
    table: RouteTable, body: str, field: str, description: str
) -> None:
    assert violations(table, "POST", "/compute/v1/snapshots", body=body) == [
        FieldViolation(field, description)
    ]


@pytest.mark.parametrize(
    ("body", "field", "description"),
    [
        (
            '{"size": "99999999999999999999"}',
            "size",
            '"99999999999999999999" is out of range for a 64-bit integer '
            "[-9223372036854775808, 9223372036854775807]",
        ),
        (
            '{"size": 1.5}',
            "size",
            "invalid value 1.5: expected a 64-bit integer (a JSON number or a decimal string)",
        ),
        (
            '{"size": true}',
            "size",
            "invalid value true: expected a 64-bit integer (a JSON number or a decimal string)",
        ),
        (
            '{"snapshotScheduleIds": ["a", 3]}',
            "snapshotScheduleIds[1]",
            "invalid value 3: expected a string",
        ),
        (
            '{"snapshotScheduleIds": "a"}',
            "snapshotScheduleIds",
            "expected a JSON array, got a string",
        ),
    ],
)
def test_wrong_numbers_and_arrays(
    table: RouteTable, body: str, field: str, description: str
) -> None:
    assert violations(table, "POST", "/compute/v1/disks", body=body) == [
        FieldViolation(field, description)
    ]


def test_every_problem_is_reported_at_once(table: RouteTable) -> None:
    body = b'{"folderId": 1, "nope": true, "labels": {"a": 2}, "diskId": []}'
    found = violations(table, "POST", "/compute/v1/snapshots", body=body)
    assert fields(found) == ["folderId", "nope", "labels[a]", "diskId"]


def test_null_means_not_set(table: RouteTable) -> None:
    message = request(table, "POST", "/compute/v1/snapshots", body='{"name": null, "labels": null}')
    assert message == snapshot_service_pb2.CreateSnapshotRequest()


def test_a_body_that_disagrees_with_the_path_is_rejected(table: RouteTable) -> None:
    body = b'{"snapshotId": "other", "name": "x"}'
    assert violations(table, "PATCH", "/compute/v1/snapshots/fd8snap", body=body) == [
        FieldViolation("snapshotId", "the body disagrees with the URL path")
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/compute/v1/disks/d1"), ("DELETE", "/compute/v1/snapshots/s1")],
)
def test_methods_without_body_refuse_one(table: RouteTable, method: str, path: str) -> None:
    assert violations(table, method, path, body=b'{"diskId": "d2"}') == [
        FieldViolation("", "this method takes no request body")
    ]


def test_body_star_routes_take_no_query_parameters(table: RouteTable) -> None:
    found = violations(table, "POST", "/compute/v1/snapshots", "folderId=f", b"{}")
    assert found == [
        FieldViolation(
            "folderId", "query parameters are not accepted: the body carries every field"
        )
    ]


@pytest.mark.parametrize(
    ("query", "field", "description"),
    [
        ("pageSiz=5", "pageSiz", "query parameter: unknown field"),
        (
            "pageSize=ten",
            "pageSize",
            'invalid value "ten": expected a 64-bit integer (a JSON number or a decimal string)',
        ),
        ("pageSize=1&pageSize=2", "pageSize", "given 2 times, but takes one value"),
        (
            "pageSize=",
            "pageSize",
            'invalid value "": expected a 64-bit integer (a JSON number or a decimal string)',
        ),
    ],
)
def test_bad_query_parameters(table: RouteTable, query: str, field: str, description: str) -> None:
    assert violations(table, "GET", "/compute/v1/snapshots", query) == [
        FieldViolation(field, description)
    ]


def test_path_fields_cannot_come_from_the_query(table: RouteTable) -> None:
    assert violations(table, "GET", "/compute/v1/disks/d1", "diskId=d2") == [
        FieldViolation("diskId", "already set by the URL path")
    ]


def test_unknown_query_parameters_can_be_ignored(table: RouteTable) -> None:
    message = request(
        table, "GET", "/compute/v1/zones", "pageSize=5&_=123", ignore_unknown_query=True
    )
    assert message.page_size == 5


def test_query_string_must_be_utf8() -> None:
    with pytest.raises(RequestInvalid, match="not valid UTF-8"):
        parse_query("name=%ff")


def test_query_string_keeps_blank_values_and_order() -> None:
    assert parse_query("a=1&b=&a=2&c") == [("a", "1"), ("b", ""), ("a", "2"), ("c", "")]

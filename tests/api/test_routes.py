from __future__ import annotations

import pytest
from google.api import http_pb2

from disksnap.api.rest.errors import RequestInvalid
from disksnap.api.rest.registry import resolve_type_url, type_url
from disksnap.api.rest.routes import (
    Match,
    MethodNotAllowed,
    NoRoute,
    RouteTable,
    build_route_table,
    http_rules,
)
from disksnap.service.descriptors import SERVICES

SNAPSHOTS = "yandex.cloud.compute.v1.SnapshotService"
DISKS = "yandex.cloud.compute.v1.DiskService"
DISK_TYPES = "yandex.cloud.compute.v1.DiskTypeService"
ZONES = "yandex.cloud.compute.v1.ZoneService"
OPERATIONS = "yandex.cloud.operation.OperationService"
IAM_TOKENS = "yandex.cloud.iam.v1.IamTokenService"

# (HTTP method, path, RPC, path variables): one request for every route of the surface.
REQUESTS = [
    ("GET", "/compute/v1/snapshots/fd8abc", f"{SNAPSHOTS}.Get", {"snapshot_id": "fd8abc"}),
    ("GET", "/compute/v1/snapshots", f"{SNAPSHOTS}.List", {}),
    ("POST", "/compute/v1/snapshots", f"{SNAPSHOTS}.Create", {}),
    ("PATCH", "/compute/v1/snapshots/fd8abc", f"{SNAPSHOTS}.Update", {"snapshot_id": "fd8abc"}),
    ("DELETE", "/compute/v1/snapshots/fd8abc", f"{SNAPSHOTS}.Delete", {"snapshot_id": "fd8abc"}),
    (
        "GET",
        "/compute/v1/snapshots/fd8abc/operations",
        f"{SNAPSHOTS}.ListOperations",
        {"snapshot_id": "fd8abc"},
    ),
    (
        "GET",
        "/compute/v1/snapshots/fd8abc:listAccessBindings",
        f"{SNAPSHOTS}.ListAccessBindings",
        {"resource_id": "fd8abc"},
    ),
    (
        "POST",
        "/compute/v1/snapshots/fd8abc:setAccessBindings",
        f"{SNAPSHOTS}.SetAccessBindings",
        {"resource_id": "fd8abc"},
    ),
    (
        "POST",
        "/compute/v1/snapshots/fd8abc:updateAccessBindings",
        f"{SNAPSHOTS}.UpdateAccessBindings",
        {"resource_id": "fd8abc"},
    ),
    ("GET", "/compute/v1/disks/epd1", f"{DISKS}.Get", {"disk_id": "epd1"}),
    ("GET", "/compute/v1/disks", f"{DISKS}.List", {}),
    ("POST", "/compute/v1/disks", f"{DISKS}.Create", {}),
    ("PATCH", "/compute/v1/disks/epd1", f"{DISKS}.Update", {"disk_id": "epd1"}),
    ("DELETE", "/compute/v1/disks/epd1", f"{DISKS}.Delete", {"disk_id": "epd1"}),
    ("GET", "/compute/v1/disks/epd1/operations", f"{DISKS}.ListOperations", {"disk_id": "epd1"}),
    ("POST", "/compute/v1/disks/epd1:move", f"{DISKS}.Move", {"disk_id": "epd1"}),
    ("POST", "/compute/v1/disks/epd1:relocate", f"{DISKS}.Relocate", {"disk_id": "epd1"}),
    (
        "GET",
        "/compute/v1/disks/epd1:listAccessBindings",
        f"{DISKS}.ListAccessBindings",
        {"resource_id": "epd1"},
    ),
    (
        "POST",
        "/compute/v1/disks/epd1:setAccessBindings",
        f"{DISKS}.SetAccessBindings",
        {"resource_id": "epd1"},
    ),
    (
        "POST",
        "/compute/v1/disks/epd1:updateAccessBindings",
        f"{DISKS}.UpdateAccessBindings",
        {"resource_id": "epd1"},
    ),
    (
        "GET",
        "/compute/v1/diskTypes/network-ssd",
        f"{DISK_TYPES}.Get",
        {"disk_type_id": "network-ssd"},
    ),
    ("GET", "/compute/v1/diskTypes", f"{DISK_TYPES}.List", {}),
    ("GET", "/compute/v1/zones/ru-central1-a", f"{ZONES}.Get", {"zone_id": "ru-central1-a"}),
    ("GET", "/compute/v1/zones", f"{ZONES}.List", {}),
    ("GET", "/operations/op1", f"{OPERATIONS}.Get", {"operation_id": "op1"}),
    ("GET", "/operations/op1:cancel", f"{OPERATIONS}.Cancel", {"operation_id": "op1"}),
    ("POST", "/operations/op1:cancel", f"{OPERATIONS}.Cancel", {"operation_id": "op1"}),
    ("POST", "/iam/v1/tokens", f"{IAM_TOKENS}.Create", {}),
    (
        "POST",
        "/iam/v1/tokens:createForServiceAccount",
        f"{IAM_TOKENS}.CreateForServiceAccount",
        {},
    ),
    ("POST", "/iam/v1/tokens:revoke", f"{IAM_TOKENS}.Revoke", {}),
]


@pytest.mark.parametrize(("method", "path", "rpc", "variables"), REQUESTS)
def test_every_route_matches(
    table: RouteTable, method: str, path: str, rpc: str, variables: dict[str, str]
) -> None:
    result = table.match(method, path)
    assert isinstance(result, Match)
    assert result.route.method.full_name == rpc
    assert dict(result.variables) == variables


def test_every_http_rule_of_the_served_services_is_a_route(table: RouteTable) -> None:
    expected = {
        (m.full_name, rule.WhichOneof("pattern"), getattr(rule, rule.WhichOneof("pattern")))
        for service in SERVICES
        for m in service.methods
        for rule, _ in http_rules(m)
    }
    from_table = {
        (r.method.full_name, r.http_method.lower(), r.template.text)
        for r in table.routes
        if r.origin != "supplementary"
    }
    assert from_table == expected
    requested = {(m, p) for m, p, _, _ in REQUESTS}
    assert len(requested) == len(table.routes)  # REQUESTS covers each route once


def test_methods_without_a_rule_have_no_route(table: RouteTable) -> None:
    disk_service = next(s for s in SERVICES if s.full_name == DISKS)
    schedules = disk_service.methods_by_name["ListSnapshotSchedules"]
    assert http_rules(schedules) == []
    assert table.for_rpc(schedules.full_name) == ()


@pytest.mark.parametrize(
    ("method", "path", "rpc", "body"),
    [
        ("POST", "/compute/v1/snapshots", f"{SNAPSHOTS}.Create", "*"),
        ("PATCH", "/compute/v1/snapshots/x", f"{SNAPSHOTS}.Update", "*"),
        ("GET", "/compute/v1/snapshots", f"{SNAPSHOTS}.List", ""),
        ("DELETE", "/compute/v1/disks/x", f"{DISKS}.Delete", ""),
    ],
)
def test_body_specs_come_from_the_rule(
    table: RouteTable, method: str, path: str, rpc: str, body: str
) -> None:
    result = table.match(method, path)
    assert isinstance(result, Match)
    assert result.route.body == body


@pytest.mark.parametrize(
    ("rpc", "metadata", "response"),
    [
        (f"{SNAPSHOTS}.Create", "compute.v1.CreateSnapshotMetadata", "compute.v1.Snapshot"),
        (f"{SNAPSHOTS}.Update", "compute.v1.UpdateSnapshotMetadata", "compute.v1.Snapshot"),
        (f"{SNAPSHOTS}.Delete", "compute.v1.DeleteSnapshotMetadata", "google.protobuf.Empty"),
        (f"{DISKS}.Create", "compute.v1.CreateDiskMetadata", "compute.v1.Disk"),
        (f"{DISKS}.Update", "compute.v1.UpdateDiskMetadata", "compute.v1.Disk"),
        (f"{DISKS}.Delete", "compute.v1.DeleteDiskMetadata", "google.protobuf.Empty"),
        (
            f"{SNAPSHOTS}.SetAccessBindings",
            "access.SetAccessBindingsMetadata",
            "access.AccessBindingsOperationResult",
        ),
    ],
)
def test_operation_options_resolve_to_descriptors(
    table: RouteTable, rpc: str, metadata: str, response: str
) -> None:
    (route,) = table.for_rpc(rpc)
    assert route.operation is not None
    assert route.operation.metadata.full_name == qualify(metadata)
    assert route.operation.response.full_name == qualify(response)


def qualify(name: str) -> str:
    return name if name.startswith("google.") else f"yandex.cloud.{name}"


def test_every_operation_type_is_in_the_any_registry(table: RouteTable) -> None:
    for route in table.routes:
        if route.operation is None:
            assert route.method.output_type.full_name != "yandex.cloud.operation.Operation" or (
                route.method.full_name.startswith(OPERATIONS)
            )
            continue
        for descriptor in (route.operation.metadata, route.operation.response):
            assert resolve_type_url(type_url(descriptor)) is descriptor


def test_reads_carry_no_operation_option(table: RouteTable) -> None:
    for rpc in (f"{SNAPSHOTS}.Get", f"{SNAPSHOTS}.List", f"{OPERATIONS}.Get"):
        assert all(r.operation is None for r in table.for_rpc(rpc))


def test_cancel_descriptor_has_only_get_and_the_post_is_supplementary(table: RouteTable) -> None:
    cancel = next(s for s in SERVICES if s.full_name == OPERATIONS).methods_by_name["Cancel"]
    ((rule, origin),) = http_rules(cancel)
    assert origin == "rule"
    assert rule.WhichOneof("pattern") == "get"
    assert rule.get == "/operations/{operation_id}:cancel"
    assert not rule.additional_bindings
    routes = {r.http_method: r.origin for r in table.for_rpc(cancel.full_name)}
    assert routes == {"GET": "rule", "POST": "supplementary"}


def test_without_supplementary_bindings_post_cancel_is_405() -> None:
    strict = build_route_table(supplementary={})
    assert strict.match("POST", "/operations/op1:cancel") == MethodNotAllowed(("GET",))


@pytest.mark.parametrize(
    "path",
    [
        "/compute/v1/nothing",
        "/compute/v1/snapshots/",  # trailing slash: an empty segment
        "/compute/v1/snapshots/a/b",
        "compute/v1/snapshots",  # not absolute
        "/",
        "",
        "/operations/:cancel",
    ],
)
def test_unknown_paths_are_no_route(table: RouteTable, path: str) -> None:
    assert table.match("GET", path) == NoRoute()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/compute/v1/snapshots", ("GET", "POST")),
        ("DELETE", "/compute/v1/snapshots", ("GET", "POST")),
        ("POST", "/compute/v1/snapshots/x", ("DELETE", "GET", "PATCH")),
        ("PUT", "/operations/op1:cancel", ("GET", "POST")),
        ("POST", "/operations/op1", ("GET",)),
        ("DELETE", "/compute/v1/zones", ("GET",)),
        ("HEAD", "/compute/v1/diskTypes/x", ("GET",)),
    ],
)
def test_known_paths_under_other_methods_are_method_not_allowed(
    table: RouteTable, method: str, path: str, allowed: tuple[str, ...]
) -> None:
    assert table.match(method, path) == MethodNotAllowed(allowed)


def test_verb_routes_win_over_plain_variables(table: RouteTable) -> None:
    result = table.match("GET", "/operations/op1:cancel")
    assert isinstance(result, Match)
    assert result.route.method.name == "Cancel"


def test_an_unknown_verb_is_part_of_the_id(table: RouteTable) -> None:
    # grpc-gateway's ServeMux: a template without a verb takes the segment as it is.
    result = table.match("GET", "/operations/op1:frobnicate")
    assert isinstance(result, Match)
    assert result.route.method.name == "Get"
    assert result.variables == {"operation_id": "op1:frobnicate"}


def test_http_method_is_case_insensitive(table: RouteTable) -> None:
    assert isinstance(table.match("get", "/compute/v1/zones"), Match)


def test_path_variables_are_percent_decoded(table: RouteTable) -> None:
    result = table.match("GET", "/compute/v1/snapshots/a%20b")
    assert isinstance(result, Match)
    assert result.variables == {"snapshot_id": "a b"}


def test_undecodable_path_variable_is_invalid_argument(table: RouteTable) -> None:
    with pytest.raises(RequestInvalid) as caught:
        table.match("GET", "/compute/v1/snapshots/%ff%fe")
    assert caught.value.violations[0].field == "snapshotId"


def test_route_exposes_grpc_path(table: RouteTable) -> None:
    result = table.match("POST", "/compute/v1/snapshots")
    assert isinstance(result, Match)
    assert result.route.grpc_path == "/yandex.cloud.compute.v1.SnapshotService/Create"
    assert result.route.service == SNAPSHOTS
    assert str(result.route) == (
        "POST /compute/v1/snapshots -> /yandex.cloud.compute.v1.SnapshotService/Create"
    )


def test_colliding_bindings_are_refused() -> None:
    clash = http_pb2.HttpRule(get="/operations/{operation_id}")
    with pytest.raises(ValueError, match="collide"):
        build_route_table(supplementary={f"{OPERATIONS}.Cancel": (clash,)})


def test_bindings_to_missing_fields_are_refused() -> None:
    bad = http_pb2.HttpRule(get="/operations/{nope}:peek")
    with pytest.raises(ValueError, match="no field 'nope'"):
        build_route_table(supplementary={f"{OPERATIONS}.Get": (bad,)})


def test_bindings_to_missing_body_fields_are_refused() -> None:
    bad = http_pb2.HttpRule(post="/operations/{operation_id}:peek", body="nope")
    with pytest.raises(ValueError, match="no body field 'nope'"):
        build_route_table(supplementary={f"{OPERATIONS}.Get": (bad,)})


def test_synthetic_routes_cover_nested_additional_and_custom_rules(things: RouteTable) -> None:
    got = table_summary(things)
    assert ("GET", "/v1/{parent.name=folders/*}/things/{thing_id}", "rule") in got
    assert ("PUT", "/v1/things/{thing_id}", "rule") in got
    assert ("POST", "/v1/things/{thing_id}:put", "additional_binding") in got
    assert ("REPORT", "/v1/parts", "rule") in got
    result = things.match("GET", "/v1/folders/f1/things/t1")
    assert isinstance(result, Match)
    assert result.variables == {"parent.name": "folders/f1", "thing_id": "t1"}
    assert result.route.json_paths == {"parent.name": "parent.name", "thing_id": "thingId"}
    assert things.match("GET", "/v1/projects/f1/things/t1") == NoRoute()


def table_summary(table: RouteTable) -> set[tuple[str, str, str]]:
    return {(r.http_method, r.template.text, r.origin) for r in table.routes}

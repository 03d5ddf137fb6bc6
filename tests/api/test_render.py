"""Responses in the proto3 JSON mapping: Operations with typed Any metadata, resources, errors."""

from __future__ import annotations

import functools
import json
import math
import random
from typing import Any

import pytest
from google.protobuf import (
    descriptor,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    json_format,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from yandex.cloud.compute.v1 import disk_pb2, disk_service_pb2, snapshot_pb2, snapshot_service_pb2
from yandex.cloud.operation import operation_pb2

from disksnap.api.rest.jsonplan import has_plan, planned
from disksnap.api.rest.registry import POOL
from disksnap.api.rest.transcode import render, render_json
from disksnap.service.descriptors import SERVICES, message_class
from tests.api.synthetic import add_field

CREATED = timestamp_pb2.Timestamp(seconds=1714564800, nanos=250_000_000)  # 2024-05-01T12:00:00.25Z


def creating_operation() -> operation_pb2.Operation:
    op = operation_pb2.Operation(
        id="fd8op",
        description="Create snapshot",
        created_at=CREATED,
        created_by="ajeadmin",
        modified_at=CREATED,
    )
    op.metadata.Pack(
        snapshot_service_pb2.CreateSnapshotMetadata(snapshot_id="fd8snap", disk_id="epddisk")
    )
    return op


def test_operation_in_flight_renders_done_false_and_typed_metadata() -> None:
    assert render(creating_operation()) == {
        "id": "fd8op",
        "description": "Create snapshot",
        "createdAt": "2024-05-01T12:00:00.250Z",
        "createdBy": "ajeadmin",
        "modifiedAt": "2024-05-01T12:00:00.250Z",
        "done": False,
        "metadata": {
            "@type": "type.googleapis.com/yandex.cloud.compute.v1.CreateSnapshotMetadata",
            "snapshotId": "fd8snap",
            "diskId": "epddisk",
        },
    }


def test_done_operation_carries_the_snapshot_as_response() -> None:
    op = creating_operation()
    op.done = True
    snapshot = snapshot_pb2.Snapshot(
        id="fd8snap",
        folder_id="b1gfolder",
        created_at=CREATED,
        name="nightly",
        labels={"env": "prod"},
        storage_size=1 << 30,
        disk_size=10 << 30,
        status=snapshot_pb2.Snapshot.READY,
        source_disk_id="epddisk",
    )
    op.response.Pack(snapshot)
    rendered = render(op)
    assert rendered["done"] is True
    assert "error" not in rendered
    assert rendered["response"] == {
        "@type": "type.googleapis.com/yandex.cloud.compute.v1.Snapshot",
        "id": "fd8snap",
        "folderId": "b1gfolder",
        "createdAt": "2024-05-01T12:00:00.250Z",
        "name": "nightly",
        "description": "",
        "labels": {"env": "prod"},
        "storageSize": "1073741824",
        "diskSize": "10737418240",
        "productIds": [],
        "status": "READY",
        "sourceDiskId": "epddisk",
    }


def test_failed_operation_carries_a_status_with_typed_details() -> None:
    op = creating_operation()
    op.done = True
    op.error.code = code_pb2.INVALID_ARGUMENT
    op.error.message = "Illegal argument name"
    bad = error_details_pb2.BadRequest()
    bad.field_violations.add(field="name", description="does not match the pattern")
    op.error.details.add().Pack(bad)
    rendered = render(op)
    assert "response" not in rendered
    assert rendered["error"] == {
        "code": 3,
        "message": "Illegal argument name",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": "name", "description": "does not match the pattern", "reason": ""}
                ],
            }
        ],
    }


def test_delete_response_is_empty_with_only_its_type() -> None:
    op = operation_pb2.Operation(id="op", done=True)
    op.response.Pack(empty_pb2.Empty())
    assert render(op)["response"] == {"@type": "type.googleapis.com/google.protobuf.Empty"}


def test_unset_message_fields_stay_absent_and_scalars_print_defaults() -> None:
    rendered = render(snapshot_pb2.Snapshot(id="fd8snap"))
    assert "createdAt" not in rendered
    assert "hardwareGeneration" not in rendered
    assert rendered["storageSize"] == "0"
    assert rendered["status"] == "STATUS_UNSPECIFIED"
    assert rendered["labels"] == {}


def test_render_json_is_compact_utf8_and_round_trips() -> None:
    op = creating_operation()
    op.description = "Снимок"
    data = render_json(op)
    assert "Снимок".encode() in data
    assert b": " not in data
    back = json_format.Parse(data, operation_pb2.Operation(), descriptor_pool=POOL)
    assert back == op
    assert json.loads(data)["done"] is False


# Equivalence with json_format.MessageToDict -------------------------------------------
#
# render() must give exactly what MessageToDict gives with the REST options: the same
# keys in the same order, values of the same types, the same JSON bytes. The messages
# are every request and response of the served methods, Operations with each Any
# content, Status with details, and a synthetic file with every field kind, each filled
# by a seeded random walk of its descriptor.

SEEDS = range(8)
TIMESTAMP_SECONDS = (0, -1, 1, 951782400, 1714564800, -62135596800, 253402300799)
TIMESTAMP_NANOS = (0, 1, 5_000_000, 250_000_000, 123_456_000, 7_000, 123_456_789, 999_999_999)
STRINGS = ("", "fd8abc", "Снимок диска", "emoji 🚀 ok", 'q " \\ / \n\t', "\x00\x7f\u2028", "€")
INT32 = (0, 1, -1, 2**31 - 1, -(2**31), 42)
UINT32 = (0, 1, 2**32 - 1, 42)
INT64 = (0, 1, -1, 2**63 - 1, -(2**63), 2**53 + 1, -(2**40))
UINT64 = (0, 1, 2**64 - 1, 2**53 + 1)
FLOATS = (0.0, -0.0, 1.5, 0.1, 1e300, -2.5e-300, math.inf, -math.inf, math.nan, 3.4e38)

FD = descriptor.FieldDescriptor
_SIGNED32 = (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32)
_SIGNED64 = (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64)
_UNSIGNED32 = (FD.TYPE_UINT32, FD.TYPE_FIXED32)
_UNSIGNED64 = (FD.TYPE_UINT64, FD.TYPE_FIXED64)


def options_reference(message: Message) -> object:
    """MessageToDict as transcode.render called it before it had a renderer of its own."""
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=False,
        use_integers_for_enums=False,
        descriptor_pool=POOL,
    )


def assert_same(actual: object, expected: object, path: str = "$") -> None:
    """Equal, with the same types and the same key order all the way down."""
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    if isinstance(expected, dict):
        assert isinstance(actual, dict)
        assert list(actual) == list(expected), path
        for key, value in expected.items():
            assert_same(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list)
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{i}]")
    elif isinstance(expected, float) and math.isnan(expected):
        assert isinstance(actual, float)
        assert math.isnan(actual), path
    else:
        assert actual == expected, path


def assert_renders_as_json_format(message: Message) -> None:
    expected = options_reference(message)
    actual = render(message)
    assert_same(actual, expected)
    assert (
        render_json(message)
        == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
    )


def api_message_types() -> list[descriptor.Descriptor]:
    found = {}
    for service in SERVICES:
        for method in service.methods:
            found[method.input_type.full_name] = method.input_type
            found[method.output_type.full_name] = method.output_type
    for extra in (operation_pb2.Operation, status_pb2.Status):
        found[extra.DESCRIPTOR.full_name] = extra.DESCRIPTOR
    return [found[name] for name in sorted(found)]


# What the service packs into Any: operation metadata and responses, error details.
ANY_CONTENTS: tuple[type[Message], ...] = (
    snapshot_service_pb2.CreateSnapshotMetadata,
    snapshot_service_pb2.UpdateSnapshotMetadata,
    snapshot_service_pb2.DeleteSnapshotMetadata,
    disk_service_pb2.CreateDiskMetadata,
    disk_service_pb2.UpdateDiskMetadata,
    disk_service_pb2.DeleteDiskMetadata,
    snapshot_pb2.Snapshot,
    disk_pb2.Disk,
    empty_pb2.Empty,
    error_details_pb2.BadRequest,
    error_details_pb2.RequestInfo,
)
# Any contents json_format puts under "value" (render hands them to json_format).
ANY_WELL_KNOWN: tuple[type[Message], ...] = (
    timestamp_pb2.Timestamp,
    duration_pb2.Duration,
    wrappers_pb2.StringValue,
    struct_pb2.Struct,
)


class Filler:
    """Sets a message's fields from a seeded walk of its descriptor: defaults and extremes,
    empty and full repeated and map fields, unknown enum numbers, nested messages."""

    def __init__(self, seed: int, *, max_depth: int = 3) -> None:
        self.rng = random.Random(seed)
        self.max_depth = max_depth

    def fill(self, message: Message, depth: int = 0) -> Message:
        for field in message.DESCRIPTOR.fields:
            if field.is_extension or self.rng.random() < 0.3:
                continue
            if _is_map(field):
                self._fill_map(message, field, depth)
            elif field.is_repeated:
                self._fill_repeated(message, field, depth)
            elif field.cpp_type == FD.CPPTYPE_MESSAGE:
                if depth < self.max_depth:
                    sub = getattr(message, field.name)
                    sub.SetInParent()
                    self.message(sub, depth + 1)
            else:
                setattr(message, field.name, self.scalar(field))
        return message

    def _count(self) -> int:
        return self.rng.choice((0, 1, 3))

    def _fill_repeated(self, message: Message, field: Any, depth: int) -> None:
        values = getattr(message, field.name)
        if field.cpp_type != FD.CPPTYPE_MESSAGE:
            values.extend(self.scalar(field) for _ in range(self._count()))
        elif depth < self.max_depth:
            for _ in range(self._count()):
                self.message(values.add(), depth + 1)

    def _fill_map(self, message: Message, field: Any, depth: int) -> None:
        entries = getattr(message, field.name)
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        for _ in range(self._count() * 2):
            key = self.scalar(key_field)
            if value_field.cpp_type != FD.CPPTYPE_MESSAGE:
                entries[key] = self.scalar(value_field)
            elif depth < self.max_depth:
                self.message(entries[key], depth + 1)

    def message(self, message: Message, depth: int) -> None:
        name = message.DESCRIPTOR.full_name
        if name == "google.protobuf.Timestamp":
            message.seconds = self.rng.choice(
                (*TIMESTAMP_SECONDS, self.rng.randint(-62135596800, 253402300799))
            )
            message.nanos = self.rng.choice(TIMESTAMP_NANOS)
        elif name == "google.protobuf.Duration":
            seconds = self.rng.randint(-(10**6), 10**6)
            message.seconds = seconds
            message.nanos = self.rng.choice(TIMESTAMP_NANOS) * (-1 if seconds < 0 else 1)
        elif name == "google.protobuf.FieldMask":
            message.paths.extend(self.rng.sample(["name", "labels", "disk_size", "a.b_c"], 2))
        elif name == "google.protobuf.Any":
            content = self.rng.choice(ANY_CONTENTS + ANY_WELL_KNOWN)()
            if depth < self.max_depth:
                self.message(content, depth + 1)
            message.Pack(content)
        elif name == "google.protobuf.Struct":
            message.update({"a": 1.5, "b": [True, None, "x"], "c": {"d": "é"}})
        elif name == "google.protobuf.Value":
            message.string_value = self.rng.choice(STRINGS)
        elif name == "google.protobuf.ListValue":
            message.extend([1, "two", None])
        else:
            self.fill(message, depth)

    def scalar(self, field: Any) -> Any:  # noqa: PLR0911 - one branch per kind
        choice = self.rng.choice
        if field.type in _SIGNED32:
            return choice(INT32)
        if field.type in _UNSIGNED32:
            return choice(UINT32)
        if field.type in _SIGNED64:
            return choice(INT64)
        if field.type in _UNSIGNED64:
            return choice(UINT64)
        if field.type == FD.TYPE_BOOL:
            return choice((True, False))
        if field.type == FD.TYPE_STRING:
            return choice(STRINGS)
        if field.type == FD.TYPE_BYTES:
            return self.rng.randbytes(choice((0, 1, 2, 3, 17)))
        if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
            return choice(FLOATS)
        assert field.type == FD.TYPE_ENUM, field.full_name
        numbers = list(field.enum_type.values_by_number)
        if not field.enum_type.is_closed:
            numbers += [99, -7]  # unknown to the enum: json_format prints the number
        return choice(numbers)


def _is_map(field: Any) -> bool:
    return bool(field.message_type is not None and field.message_type.GetOptions().map_entry)


@pytest.mark.parametrize("message_type", api_message_types(), ids=lambda d: d.full_name)
def test_every_api_message_renders_as_json_format(message_type: Any) -> None:
    cls = message_class(message_type)
    assert has_plan(message_type)
    assert_renders_as_json_format(cls())
    for seed in SEEDS:
        message = Filler(seed).fill(cls())
        assert_renders_as_json_format(message)


@pytest.mark.parametrize("content", ANY_CONTENTS + ANY_WELL_KNOWN, ids=lambda c: c.__name__)
def test_operations_render_each_any_content_as_json_format(content: type[Message]) -> None:
    for seed in SEEDS:
        filler = Filler(seed)
        op = filler.fill(operation_pb2.Operation())
        metadata, response = content(), content()
        filler.message(response, 0)
        op.metadata.Pack(metadata)
        op.response.Pack(response)
        assert_renders_as_json_format(op)
        op.error.code = code_pb2.INVALID_ARGUMENT
        op.error.details.add().Pack(filler.fill(error_details_pb2.BadRequest()))
        op.error.details.add().Pack(filler.fill(error_details_pb2.RequestInfo()))
        assert_renders_as_json_format(op)


def test_hot_types_render_from_their_plan_without_json_format() -> None:
    response = snapshot_service_pb2.ListSnapshotsResponse(next_page_token="t")
    for seed in SEEDS:
        Filler(seed).fill(response.snapshots.add())
    assert_same(planned(response), options_reference(response))
    op = creating_operation()
    op.response.Pack(response.snapshots[0])
    assert_same(planned(op), options_reference(op))
    assert has_plan(snapshot_pb2.Snapshot.DESCRIPTOR)
    assert not has_plan(duration_pb2.Duration.DESCRIPTOR)


# A file with what the API's messages lack: every scalar type, maps of every key type,
# proto3 optional, oneofs, recursion, floats, NullValue, wrappers and Struct, proto2.

KINDS_FILE = "disksnap/test/render_kinds.proto"
KINDS = "disksnap.test.render"
FDP = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "double": FDP.TYPE_DOUBLE, "float": FDP.TYPE_FLOAT, "int64": FDP.TYPE_INT64,
    "uint64": FDP.TYPE_UINT64, "int32": FDP.TYPE_INT32, "fixed64": FDP.TYPE_FIXED64,
    "fixed32": FDP.TYPE_FIXED32, "bool": FDP.TYPE_BOOL, "string": FDP.TYPE_STRING,
    "bytes": FDP.TYPE_BYTES, "uint32": FDP.TYPE_UINT32, "sfixed32": FDP.TYPE_SFIXED32,
    "sfixed64": FDP.TYPE_SFIXED64, "sint32": FDP.TYPE_SINT32, "sint64": FDP.TYPE_SINT64,
}  # fmt: skip
WELL_KNOWN = {
    "at": "Timestamp", "took": "Duration", "mask": "FieldMask", "any": "Any",
    "struct": "Struct", "value": "Value", "list": "ListValue", "nothing": "Empty",
    "count": "Int64Value", "label": "StringValue", "flag": "BoolValue", "ratio": "DoubleValue",
}  # fmt: skip
INTEGER_KEYS = ("int64", "uint64", "int32", "uint32", "sint32", "sint64", "fixed32", "sfixed64")


class Proto:
    """Builds one message of the synthetic file."""

    def __init__(self, message: Any) -> None:
        self.message = message
        self.number = 0

    def field(
        self, name: str, kind: str, *, repeated: bool = False, oneof: int = -1, number: int = 0
    ) -> Any:
        self.number += 1
        field = add_field(
            self.message, name, number or self.number, kind, repeated=repeated, scalars=SCALARS
        )
        if oneof >= 0:
            field.oneof_index = oneof
        return field

    def optional(self, name: str, kind: str) -> None:
        self.message.oneof_decl.add(name=f"_{name}")
        field = self.field(name, kind, oneof=len(self.message.oneof_decl) - 1)
        field.proto3_optional = True

    def map(self, name: str, key: str, value: str) -> None:
        entry_name = "".join(p.capitalize() for p in name.split("_")) + "Entry"
        entry = Proto(self.message.nested_type.add(name=entry_name))
        entry.message.options.map_entry = True
        entry.field("key", key)
        entry.field("value", value)
        self.field(name, f".{KINDS}.{self.message.name}.{entry_name}", repeated=True)


def _kinds_file() -> Any:
    fdp = descriptor_pb2.FileDescriptorProto(name=KINDS_FILE, package=KINDS, syntax="proto3")
    fdp.dependency.extend(
        f"google/protobuf/{name}.proto"
        for name in ("timestamp", "duration", "field_mask", "any", "struct", "empty", "wrappers")
    )
    color = fdp.enum_type.add(name="Color")
    for number, name in enumerate(["COLOR_UNSPECIFIED", "RED", "GREEN"]):
        color.value.add(name=name, number=number)
    color_type = f"enum:.{KINDS}.Color"

    kinds = Proto(fdp.message_type.add(name="Kinds"))
    kinds.message.oneof_decl.add(name="choice")  # real oneofs before proto3 optional's
    choice = 0
    for kind in SCALARS:
        if kind not in ("double", "float"):
            kinds.field(f"{kind}_value", kind)
            kinds.field(f"{kind}_list", kind, repeated=True)
    kinds.field("color", color_type)
    kinds.field("colors", color_type, repeated=True)
    kinds.field("null", "enum:.google.protobuf.NullValue")
    kinds.field("odd__json_name_2x", "string")
    kinds.optional("maybe_count", "int64")
    kinds.optional("maybe_color", color_type)
    kinds.optional("maybe_text", "string")
    kinds.field("text", "string", oneof=choice)
    kinds.field("child", f".{KINDS}.Kinds", oneof=choice)
    kinds.field("shade", color_type, oneof=choice)
    kinds.field("when", ".google.protobuf.Timestamp", oneof=choice)
    kinds.field("nested", f".{KINDS}.Kinds")
    kinds.field("children", f".{KINDS}.Kinds", repeated=True)
    kinds.field("floats", f".{KINDS}.Floats")
    kinds.field("many_floats", f".{KINDS}.Floats", repeated=True)
    for name, wkt in WELL_KNOWN.items():
        kinds.field(name, f".google.protobuf.{wkt}")
        kinds.field(f"{name}_list", f".google.protobuf.{wkt}", repeated=True)
    for key in INTEGER_KEYS:
        kinds.map(f"by_{key}", key, "string")
    kinds.map("by_bool", "bool", color_type)
    kinds.map("by_string", "string", "bytes")
    kinds.map("kinds_by_name", "string", f".{KINDS}.Kinds")
    kinds.map("times_by_id", "int64", ".google.protobuf.Timestamp")
    kinds.map("anys_by_name", "string", ".google.protobuf.Any")

    # Declared out of number order: set fields print by number, defaults by declaration.
    shuffled = Proto(fdp.message_type.add(name="Shuffled"))
    for number, (name, kind) in zip(
        (7, 2, 5, 1, 6, 3, 4),
        (("g", "string"), ("b", "int64"), ("e", color_type), ("a", "bool"),
         ("f", ".google.protobuf.Timestamp"), ("c", "bytes"), ("d", f".{KINDS}.Shuffled")),
        strict=True,
    ):  # fmt: skip
        shuffled.field(name, kind, number=number)
    shuffled.field("h", "string", repeated=True, number=8)
    shuffled.map("i", "string", "string")  # number 9

    floats = Proto(fdp.message_type.add(name="Floats"))
    floats.field("double_value", "double")
    floats.field("float_value", "float")
    floats.field("doubles", "double", repeated=True)
    floats.field("label", "string")
    floats.map("floats_by_name", "string", "float")
    return fdp


def _legacy_file() -> Any:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="disksnap/test/render_legacy.proto", package=KINDS, syntax="proto2"
    )
    closed = fdp.enum_type.add(name="Closed")
    closed.value.add(name="ONE", number=1)
    closed.value.add(name="TWO", number=2)
    for message_name, with_enum in (("Legacy", True), ("Extendable", False)):
        legacy = Proto(fdp.message_type.add(name=message_name))
        legacy.field("count", "int32").default_value = "7"
        legacy.field("text", "string").default_value = "hi"
        legacy.field("ids", "int64", repeated=True)
        if with_enum:
            legacy.field("closed", f"enum:.{KINDS}.Closed")
    fdp.message_type[1].extension_range.add(start=100, end=200)
    note = fdp.extension.add(name="note", number=100, type=FDP.TYPE_STRING)
    note.label, note.extendee = FDP.LABEL_OPTIONAL, f".{KINDS}.Extendable"
    return fdp


@functools.cache
def synthetic(name: str) -> type[Message]:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(KINDS_FILE)
    except KeyError:
        pool.Add(_kinds_file())
        pool.Add(_legacy_file())
    return message_class(pool.FindMessageTypeByName(f"{KINDS}.{name}"))


@pytest.mark.parametrize("seed", range(40))
def test_every_field_kind_renders_as_json_format(seed: int) -> None:
    kinds = synthetic("Kinds")
    assert has_plan(kinds.DESCRIPTOR)
    assert not has_plan(synthetic("Floats").DESCRIPTOR)
    message = Filler(seed, max_depth=2).fill(kinds())
    assert_renders_as_json_format(message)
    assert_same(planned(message), options_reference(message))  # the plan, no last resort
    if seed == 0:
        assert_renders_as_json_format(kinds())


@pytest.mark.parametrize("seed", range(16))
def test_fields_declared_out_of_number_order_render_as_json_format(seed: int) -> None:
    message = Filler(seed).fill(synthetic("Shuffled")())
    assert_renders_as_json_format(message)
    assert_same(planned(message), options_reference(message))


@pytest.mark.parametrize("seed", range(8))
def test_proto2_defaults_closed_enums_and_extensions_render_as_json_format(seed: int) -> None:
    legacy = Filler(seed).fill(synthetic("Legacy")())
    assert_renders_as_json_format(legacy)
    extendable = Filler(seed).fill(synthetic("Extendable")())
    assert_renders_as_json_format(extendable)
    note = descriptor_pool.Default().FindExtensionByName(f"{KINDS}.note")
    extendable.Extensions[note] = "Примечание"
    assert "[disksnap.test.render.note]" in render(extendable)
    assert_renders_as_json_format(extendable)


def json_format_error(message: Message) -> tuple[type[BaseException], str]:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whichever json_format raises
        options_reference(message)
    return caught.type, str(caught.value)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda op: setattr(op.created_at, "seconds", 253402300800), id="after-9999"),
        pytest.param(lambda op: setattr(op.modified_at, "seconds", -62135596801), id="before-1"),
        pytest.param(lambda op: setattr(op.created_at, "nanos", -1), id="negative-nanos"),
        pytest.param(lambda op: setattr(op.metadata, "type_url", "x/no.Such"), id="unknown-type"),
        pytest.param(lambda op: setattr(op.metadata, "value", b"\xff\xff"), id="bad-bytes"),
        pytest.param(lambda op: setattr(op.metadata, "type_url", ""), id="no-type-url"),
    ],
)
def test_what_json_format_refuses_render_refuses_alike(spoil: Any) -> None:
    op = creating_operation()
    spoil(op)
    kind, text = json_format_error(op)
    with pytest.raises(kind) as caught:
        render(op)
    assert str(caught.value) == text


def test_timestamps_render_as_to_json_string_across_their_range() -> None:
    rng = random.Random(0)
    day = 86_400
    seconds = [*TIMESTAMP_SECONDS, *(rng.randint(-62135596800, 253402300799) for _ in range(3000))]
    seconds += [s + d for s in (951782400, 4107542400, -2208988800) for d in (-1, 0, day - 1, day)]
    for second in seconds:
        for nanos in TIMESTAMP_NANOS:
            stamp = timestamp_pb2.Timestamp(seconds=second, nanos=nanos)
            assert render(stamp) == stamp.ToJsonString() == options_reference(stamp)

"""A small proto file, built in the test, that exercises what the compute protos do not.

The official compute descriptors bind only top-level single-segment path variables,
use ``body: "*"`` or no body, and (in the yandexcloud versions disksnap pins) carry
no validation options. ``disksnap.test.ThingService`` adds nested and multi-segment
path variables, a body bound to one field, ``additional_bindings``, ``**``, query
parameters of every shape, and every ``yandex.cloud`` validation option. It is added
to protobuf's default pool once, like a generated ``_pb2`` module would be.
"""

from __future__ import annotations

import functools
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    field_mask_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from yandex.cloud import validation_pb2

# Imported for their side effect: the files this one depends on are in the default pool.
DEPENDENCIES = (annotations_pb2, field_mask_pb2, timestamp_pb2, wrappers_pb2, validation_pb2)

FILE_NAME = "disksnap/test/thing_service.proto"
PACKAGE = "disksnap.test"

FDP = descriptor_pb2.FieldDescriptorProto
_SCALAR = {
    "string": FDP.TYPE_STRING,
    "int64": FDP.TYPE_INT64,
    "int32": FDP.TYPE_INT32,
    "bool": FDP.TYPE_BOOL,
    "bytes": FDP.TYPE_BYTES,
    "double": FDP.TYPE_DOUBLE,
}


def add_field(
    message: Any,
    name: str,
    number: int,
    kind: str,
    *,
    repeated: bool = False,
    scalars: dict[str, int] = _SCALAR,
) -> Any:
    """A field of ``kind``: a name in ``scalars``, ``enum:TYPE`` or a message type."""
    field = message.field.add(name=name, number=number)
    field.label = FDP.LABEL_REPEATED if repeated else FDP.LABEL_OPTIONAL
    if kind in scalars:
        field.type = scalars[kind]
    elif kind.startswith("enum:"):
        field.type, field.type_name = FDP.TYPE_ENUM, kind[5:]
    else:
        field.type, field.type_name = FDP.TYPE_MESSAGE, kind
    return field


def _map(message: Any, name: str, number: int, key: str, value: str) -> Any:
    entry_name = "".join(p.capitalize() for p in name.split("_")) + "Entry"
    entry = message.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    add_field(entry, "key", 1, key)
    add_field(entry, "value", 2, value)
    return add_field(
        message, name, number, f".{PACKAGE}.{message.name}.{entry_name}", repeated=True
    )


def _messages(fdp: Any) -> None:
    kind = fdp.enum_type.add(name="Kind")
    for number, name in enumerate(["KIND_UNSPECIFIED", "SMALL", "LARGE"]):
        kind.value.add(name=name, number=number)

    parent = fdp.message_type.add(name="Parent")
    add_field(parent, "name", 1, "string")

    thing = fdp.message_type.add(name="Thing")
    add_field(thing, "thing_id", 1, "string")
    add_field(thing, "size", 2, "int64")
    add_field(thing, "kind", 3, f"enum:.{PACKAGE}.Kind")
    add_field(thing, "created_at", 4, ".google.protobuf.Timestamp")
    _map(thing, "labels", 5, "string", "string")
    add_field(thing, "parts", 6, f".{PACKAGE}.Parent", repeated=True)
    _map(thing, "counts", 7, "int64", "int32")

    get = fdp.message_type.add(name="GetThingRequest")
    add_field(get, "parent", 1, f".{PACKAGE}.Parent")
    add_field(get, "thing_id", 2, "string")
    add_field(get, "verbose", 3, "bool")

    put = fdp.message_type.add(name="PutThingRequest")
    add_field(put, "thing_id", 1, "string")
    add_field(put, "thing", 2, f".{PACKAGE}.Thing")
    add_field(put, "update_mask", 3, ".google.protobuf.FieldMask")

    search = fdp.message_type.add(name="SearchRequest")
    add_field(search, "ids", 1, "string", repeated=True)
    add_field(search, "exact", 2, "bool")
    add_field(search, "since", 3, ".google.protobuf.Timestamp")
    add_field(search, "fields", 4, ".google.protobuf.FieldMask")
    add_field(search, "limit", 5, ".google.protobuf.Int64Value")
    add_field(search, "kind", 6, f"enum:.{PACKAGE}.Kind")
    _map(search, "labels", 7, "string", "string")
    add_field(search, "parent", 8, f".{PACKAGE}.Parent")
    add_field(search, "sizes", 9, "int64", repeated=True)
    add_field(search, "only", 10, ".google.protobuf.BoolValue")
    add_field(search, "score", 11, "double")
    add_field(search, "data", 12, "bytes")
    add_field(search, "scale", 13, "int32")

    files = fdp.message_type.add(name="GetFileRequest")
    add_field(files, "path", 1, "string")

    _validated(fdp.message_type.add(name="Validated"))


def _validated(message: Any) -> None:
    folder = add_field(message, "folder_id", 1, "string")
    folder.options.Extensions[validation_pb2.required] = True
    folder.options.Extensions[validation_pb2.length] = "<=50"
    name = add_field(message, "name", 2, "string")
    name.options.Extensions[validation_pb2.pattern] = "|[a-z]([-_a-z0-9]{0,61}[a-z0-9])?"
    labels = _map(message, "labels", 3, "string", "string")
    labels.options.Extensions[validation_pb2.size] = "<=64"
    labels.options.Extensions[validation_pb2.length] = "<=63"
    labels.options.Extensions[validation_pb2.pattern] = "[-_./\\@0-9a-z]*"
    labels.options.Extensions[validation_pb2.map_key].length = "1-63"
    labels.options.Extensions[validation_pb2.map_key].pattern = "[a-z][-_./\\@0-9a-z]*"
    page = add_field(message, "page_size", 4, "int64")
    page.options.Extensions[validation_pb2.value] = "<=1000"
    count = add_field(message, "count", 5, "int32")
    count.options.Extensions[validation_pb2.value] = "0-100"
    ids = add_field(message, "ids", 6, "string", repeated=True)
    ids.options.Extensions[validation_pb2.size] = "1-10"
    message.oneof_decl.add(name="source")
    message.oneof_decl[0].options.Extensions[validation_pb2.exactly_one] = True
    for number, name in ((7, "image_id"), (8, "snapshot_id")):
        add_field(message, name, number, "string").oneof_index = 0


def _rule(method: Any, **pattern: Any) -> http_pb2.HttpRule:
    rule = method.options.Extensions[annotations_pb2.http]
    for key, value in pattern.items():
        setattr(rule, key, value)
    return rule


def _service(fdp: Any) -> None:
    service = fdp.service.add(name="ThingService")

    def rpc(name: str, request: str, response: str) -> Any:
        return service.method.add(
            name=name, input_type=f".{PACKAGE}.{request}", output_type=f".{PACKAGE}.{response}"
        )

    _rule(
        rpc("Get", "GetThingRequest", "Thing"),
        get="/v1/{parent.name=folders/*}/things/{thing_id}",
    )
    put = _rule(rpc("Put", "PutThingRequest", "Thing"), put="/v1/things/{thing_id}", body="thing")
    put.additional_bindings.add(post="/v1/things/{thing_id}:put", body="thing")
    _rule(rpc("Search", "SearchRequest", "Thing"), get="/v1/things:search")
    _rule(rpc("GetFile", "GetFileRequest", "Thing"), get="/v1/files/{path=**}")
    _rule(rpc("Check", "Validated", "Thing"), post="/v1/validated", body="*")
    rule = _rule(rpc("Parts", "Thing", "Thing"), response_body="parts")
    rule.custom.kind = "REPORT"
    rule.custom.path = "/v1/parts"


@functools.cache
def thing_service() -> Any:
    """The ServiceDescriptor of ``disksnap.test.ThingService`` (added to the default pool once)."""
    pool = descriptor_pool.Default()
    fdp = descriptor_pb2.FileDescriptorProto(name=FILE_NAME, package=PACKAGE, syntax="proto3")
    fdp.dependency.extend(
        [
            "google/api/annotations.proto",
            "google/protobuf/field_mask.proto",
            "google/protobuf/timestamp.proto",
            "google/protobuf/wrappers.proto",
            "yandex/cloud/validation.proto",
        ]
    )
    _messages(fdp)
    _service(fdp)
    pool.Add(fdp)
    return pool.FindServiceByName(f"{PACKAGE}.ThingService")


def message(name: str) -> Any:
    """The descriptor of a message of the synthetic file."""
    thing_service()
    return descriptor_pool.Default().FindMessageTypeByName(f"{PACKAGE}.{name}")

"""Field lookup and the wording of "this value does not fit this field".

The proto3 JSON mapping (https://protobuf.dev/programming-guides/json/) names fields by
their ``json_name`` (lowerCamelCase) and, on input, also accepts the proto name; it
gives well-known types a JSON form of their own (a Timestamp is an RFC 3339 string, a
FieldMask a comma-separated string, a wrapper its bare value). Everything here works on
descriptors, so the same rules hold for every message the REST layer sees.
"""

from __future__ import annotations

import functools
import json
from types import MappingProxyType

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from disksnap.api.rest.registry import POOL
from disksnap.service.descriptors import message_class

F = FieldDescriptor

# What json_format raises for input it rejects (it wraps most problems in ParseError).
PARSE_ERRORS = (json_format.ParseError, ValueError, TypeError)

WRAPPERS = frozenset(
    f"google.protobuf.{n}Value"
    for n in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
# Message types whose JSON form is not a plain object of their fields.
WELL_KNOWN = WRAPPERS | {
    "google.protobuf.Any",
    "google.protobuf.Duration",
    "google.protobuf.Empty",
    "google.protobuf.FieldMask",
    "google.protobuf.ListValue",
    "google.protobuf.Struct",
    "google.protobuf.Timestamp",
    "google.protobuf.Value",
}

_INT32 = frozenset({F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32})
_UINT32 = frozenset({F.TYPE_UINT32, F.TYPE_FIXED32})
_INT64 = frozenset({F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64})
_UINT64 = frozenset({F.TYPE_UINT64, F.TYPE_FIXED64})
INTEGER_TYPES = _INT32 | _UINT32 | _INT64 | _UINT64
INT64_TYPES = _INT64 | _UINT64
_INT_RANGES = {
    **dict.fromkeys(_INT32, (-(2**31), 2**31 - 1)),
    **dict.fromkeys(_UINT32, (0, 2**32 - 1)),
    **dict.fromkeys(_INT64, (-(2**63), 2**63 - 1)),
    **dict.fromkeys(_UINT64, (0, 2**64 - 1)),
}

_WKT_EXPECTATIONS = {
    "google.protobuf.Any": 'a JSON object with an "@type"',
    "google.protobuf.Duration": 'a duration in seconds such as "1.5s"',
    "google.protobuf.Empty": "an empty JSON object",
    "google.protobuf.FieldMask": 'comma-separated field paths such as "name,labels"',
    "google.protobuf.ListValue": "a JSON array",
    "google.protobuf.Struct": "a JSON object",
    "google.protobuf.Timestamp": 'an RFC 3339 timestamp such as "2024-05-01T12:00:00Z"',
    "google.protobuf.Value": "a JSON value",
}


def is_map(field: FieldDescriptor) -> bool:
    """A ``map<K, V>`` field (a repeated field of a synthetic map-entry message)."""
    return bool(field.message_type is not None and field.message_type.GetOptions().map_entry)


def is_plain_message(field: FieldDescriptor) -> bool:
    """A message field whose JSON form is an object of its fields (not a map, not a WKT)."""
    return (
        field.message_type is not None
        and not is_map(field)
        and field.message_type.full_name not in WELL_KNOWN
    )


@functools.cache
def field_names(descriptor: Descriptor) -> MappingProxyType[str, FieldDescriptor]:
    """Every accepted name of every field, ``json_name`` and proto name alike."""
    names: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        names[field.name] = field
        names[field.json_name] = field
    return MappingProxyType(names)


def lookup(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    """The field called ``name`` (json_name or proto name) in ``descriptor``, or None."""
    return field_names(descriptor).get(name)


def join(path: str, name: str) -> str:
    """Extend a JSON field path by one field name."""
    return f"{path}.{name}" if path else name


def parses(field: FieldDescriptor, item: object) -> bool:
    """Whether json_format accepts ``item`` as the JSON value of ``field`` on its own."""
    container = message_class(field.containing_type)()
    try:
        json_format.ParseDict({field.json_name: item}, container, descriptor_pool=POOL)
    except PARSE_ERRORS:
        return False
    return True


def expectation(field: FieldDescriptor) -> str:
    """What the proto3 JSON mapping accepts for one value of ``field`` (an element, if repeated)."""
    if field.message_type is not None:
        full_name = field.message_type.full_name
        if full_name in WRAPPERS:
            return expectation(field.message_type.fields_by_name["value"]) + " or null"
        return _WKT_EXPECTATIONS.get(full_name, "a JSON object")
    if field.type == F.TYPE_ENUM:
        names = ", ".join(v.name for v in field.enum_type.values)
        return f"one of {names}"
    if field.type in INTEGER_TYPES:
        return f"{_integer_kind(field)} (a JSON number or a decimal string)"
    return {
        F.TYPE_BOOL: "true or false",
        F.TYPE_STRING: "a string",
        F.TYPE_BYTES: "base64-encoded bytes",
        F.TYPE_DOUBLE: "a number",
        F.TYPE_FLOAT: "a number",
    }.get(field.type, "a value of the field's type")


def invalid_value(field: FieldDescriptor, value: object) -> str:
    """A violation description for ``value`` that does not parse as ``field``."""
    if field.type in INTEGER_TYPES and _is_integral(value):
        low, high = _INT_RANGES[field.type]
        return f"{_show(value)} is out of range for {_integer_kind(field)} [{low}, {high}]"
    return f"invalid value {_show(value)}: expected {expectation(field)}"


def _integer_kind(field: FieldDescriptor) -> str:
    bits = 64 if field.type in INT64_TYPES else 32
    if field.type in _UINT32 or field.type in _UINT64:
        return f"an unsigned {bits}-bit integer"
    return f"a {bits}-bit integer"


def _is_integral(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def _show(value: object, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if _is_json(value) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_json(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)

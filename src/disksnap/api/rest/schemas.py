"""OpenAPI 3.0 schemas of protobuf messages in their proto3 JSON form.

The schema says what :mod:`disksnap.api.rest.transcode` sends and accepts, derived
from the descriptors alone (https://protobuf.dev/programming-guides/json/):

- an object per message, properties named by ``json_name``, no other properties
  (unknown fields are refused); ``required`` from ``(yandex.cloud.required)``;
- 64-bit integers are strings (``format: int64``), 32-bit ones integers, enums their
  value names, bytes base64 (``format: byte``);
- repeated fields are arrays, ``map<K, V>`` objects whose values are ``V``;
- well-known types in their own JSON form: Timestamp an RFC 3339 ``date-time``,
  Duration ``"1.5s"``, FieldMask a string, wrappers their nullable value, Struct any
  object, Any an object with ``@type``;
- ``(yandex.cloud.pattern)`` becomes an anchored ``pattern`` (the option means a
  whole-value match, a JSON Schema pattern a search), ``length`` min/maxLength, ``size``
  min/maxItems or min/maxProperties, ``value`` minimum/maximum (in the description for
  int64, whose JSON form is a string).

Message schemas live in ``components/schemas`` under their full names and are
referenced with ``$ref``; a oneof's "at most one of" is stated in the description.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from disksnap.api.rest.constraints import Bound, FieldConstraints, exactly_one, field_constraints
from disksnap.api.rest.fields import WRAPPERS, is_map

REF_PREFIX = "#/components/schemas/"

Schema = dict[str, Any]

F = FieldDescriptor
_SCALARS: dict[int, Schema] = {
    F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    F.TYPE_FLOAT: {"type": "number", "format": "float"},
    F.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    F.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    F.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "format": "byte"},
}

_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated field paths in camelCase, e.g. `name,labels`.",
    },
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"nullable": True},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
}


class SchemaSet:
    """Schemas of message types, collected into ``components`` as they are referenced."""

    def __init__(self) -> None:
        self.components: dict[str, Schema] = {}

    def ref(self, descriptor: Descriptor) -> Schema:
        """A ``$ref`` to the component schema of a message type, adding it if new."""
        name = str(descriptor.full_name)
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive types refer back here
            self.components[name] = self.object_schema(descriptor)
        return {"$ref": REF_PREFIX + name}

    def message(self, descriptor: Descriptor) -> Schema:
        """The schema of a message type: its JSON form if well-known, else a ``$ref``."""
        full_name = str(descriptor.full_name)
        if full_name in WRAPPERS:
            return {**self.single(descriptor.fields_by_name["value"]), "nullable": True}
        if full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[full_name])
        return self.ref(descriptor)

    def object_schema(self, descriptor: Descriptor, exclude: Collection[str] = ()) -> Schema:
        """The object schema of a message, leaving out the fields named in ``exclude``."""
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for field in descriptor.fields:
            if field.name in exclude:
                continue
            properties[field.json_name] = self.field(field)
            if field_constraints(field).required:
                required.append(field.json_name)
        schema: Schema = {"type": "object", "properties": properties}
        schema["additionalProperties"] = False
        if required:
            schema["required"] = required
        notes = _oneof_notes(descriptor, exclude)
        if notes:
            schema["description"] = " ".join(notes)
        return schema

    def field(self, field: FieldDescriptor) -> Schema:
        """The schema of a field's JSON value, with its validation options applied."""
        constraints = field_constraints(field)
        if is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            schema: Schema = {
                "type": "object",
                "additionalProperties": _constrain(self.single(value_field), constraints),
            }
            _apply_count(schema, constraints.size, "Properties")
            key_note = _map_key_note(constraints)
            if key_note:
                schema["description"] = key_note
            return schema
        if field.is_repeated:
            schema = {"type": "array", "items": _constrain(self.single(field), constraints)}
            _apply_count(schema, constraints.size, "Items")
            return schema
        return _constrain(self.single(field), constraints)

    def single(self, field: FieldDescriptor) -> Schema:
        """The schema of one value of ``field`` (one element, if repeated)."""
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.type == F.TYPE_ENUM:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        return dict(_SCALARS[field.type])


def _constrain(schema: Schema, constraints: FieldConstraints) -> Schema:
    """Apply pattern/length/value options to one value's schema (never to a ``$ref``)."""
    if "$ref" in schema or constraints.empty:
        return schema
    result = dict(schema)
    if constraints.pattern is not None and result.get("type") == "string":
        result["pattern"] = f"^(?:{constraints.pattern})$"
    if constraints.length is not None and result.get("type") == "string":
        low, high = constraints.length.integer_limits()
        if low is not None:
            result["minLength"] = max(low, 0)
        if high is not None:
            result["maxLength"] = high
    if constraints.value is not None:
        _apply_value(result, constraints.value)
    return result


def _apply_value(schema: Schema, bound: Bound) -> None:
    if schema.get("type") in ("integer", "number"):
        if bound.minimum is not None:
            schema["minimum"] = bound.minimum
            if bound.exclusive_minimum:
                schema["exclusiveMinimum"] = True
        if bound.maximum is not None:
            schema["maximum"] = bound.maximum
            if bound.exclusive_maximum:
                schema["exclusiveMaximum"] = True
        return
    low, high = bound.integer_limits()
    parts = [
        f"at least {low}" if low is not None else "",
        f"at most {high}" if high is not None else "",
    ]
    schema["description"] = "The value is " + " and ".join(p for p in parts if p) + "."


def _apply_count(schema: Schema, bound: Bound | None, suffix: str) -> None:
    if bound is None:
        return
    low, high = bound.integer_limits()
    if low is not None:
        schema[f"min{suffix}"] = max(low, 0)
    if high is not None:
        schema[f"max{suffix}"] = high


def _map_key_note(constraints: FieldConstraints) -> str:
    notes = []
    if constraints.map_key_pattern is not None:
        notes.append(f"Keys match `{constraints.map_key_pattern}`.")
    if constraints.map_key_length is not None:
        low, high = constraints.map_key_length.integer_limits()
        notes.append(f"Key length is between {low or 0} and {high}.")
    return " ".join(notes)


def _oneof_notes(descriptor: Descriptor, exclude: Collection[str]) -> list[str]:
    notes = []
    for oneof in descriptor.oneofs:
        names = [f.json_name for f in oneof.fields if f.name not in exclude]
        if len(names) < 2:  # proto3 `optional` fields sit in single-field synthetic oneofs
            continue
        listed = ", ".join(f"`{n}`" for n in names)
        rule = "must" if exactly_one(oneof) else "may"
        notes.append(
            f"{'Exactly' if exactly_one(oneof) else 'At most'} one of {listed} {rule} be set."
        )
    return notes

"""Path variables and query parameters: strings into request fields, as grpc-gateway does.

``google/api/http.proto``: path variables set the fields their template names; when
the body is not ``"*"``, every field bound neither by the path nor by the body "automatically
becomes an HTTP query parameter". A parameter name is a field path, ``a.b.c``, in proto
or JSON spelling, through singular message fields down to a leaf; a repeated field
repeats the parameter (``?ids=a&ids=b``); a map entry is ``name[key]=value``
(grpc-gateway v2). A message-typed leaf cannot be set from a string: set its fields.

Values are converted by field type, to the proto3 JSON form that ``json_format`` then
parses: numbers and int64 from their decimal strings, enums by name (or number), bytes
as base64, Timestamp/Duration in their JSON strings; booleans accept the spellings of
Go's ``strconv.ParseBool`` (``true``, ``1``, ``t``, …) as grpc-gateway does; a FieldMask
is comma-separated paths (``updateMask=name,labels``), camelCase or snake_case; a
Struct/Value/ListValue is a JSON text.

Unknown parameter names are an error here, where grpc-gateway skips them: a typo in
``pageSize`` should not silently list with the default page size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from disksnap.api.rest.errors import FieldViolation
from disksnap.api.rest.fields import (
    PARSE_ERRORS,
    WRAPPERS,
    invalid_value,
    is_map,
    is_plain_message,
    lookup,
    parses,
)
from disksnap.api.rest.registry import POOL
from disksnap.service.descriptors import message_class

_MAP_ENTRY = re.compile(r"(?P<name>[^\[\]]+)\[(?P<key>[^\[\]]*)\]")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_JSON_TEXT = frozenset(
    {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"}
)


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A resolved parameter: the fields from the request down to the leaf."""

    fields: tuple[FieldDescriptor, ...]
    json_path: str
    map_key: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def leaf(self) -> FieldDescriptor:
        return self.fields[-1]


class Unresolvable(LookupError):
    """A parameter name that does not lead to a settable field; the text says why."""


def resolve(descriptor: Descriptor, name: str) -> FieldRef:
    """Resolve ``a.b.c`` or ``name[key]`` against a request type (Unresolvable if not a leaf)."""
    entry = _MAP_ENTRY.fullmatch(name)
    dotted, key = (entry["name"], entry["key"]) if entry else (name, None)
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for part in dotted.split("."):
        if current is None:
            raise Unresolvable(f"{fields[-1].json_name} has no fields")
        field = lookup(current, part)
        if field is None:
            raise Unresolvable("unknown field")
        fields.append(field)
        singular_message = is_plain_message(field) and not field.is_repeated
        current = field.message_type if singular_message else None
    leaf = fields[-1]
    json_path = ".".join(f.json_name for f in fields)
    if key is not None:
        if not is_map(leaf):
            raise Unresolvable(f"{json_path} is not a map")
        return FieldRef(tuple(fields), f"{json_path}[{key}]", key)
    if is_map(leaf):
        raise Unresolvable(f"{json_path} is a map: set entries as {json_path}[key]=value")
    if is_plain_message(leaf):
        raise Unresolvable(f"{json_path} is a message: set its fields, as {json_path}.<field>")
    return FieldRef(tuple(fields), json_path)


def assign(message: Message, ref: FieldRef, values: Sequence[str]) -> FieldViolation | None:
    """Set the field ``ref`` names from its string value(s); a violation if they do not fit."""
    leaf = ref.leaf
    if ref.map_key is not None:
        value_field = leaf.message_type.fields_by_name["value"]
        item: object = {ref.map_key: to_json(value_field, values[-1])}
    elif leaf.is_repeated:
        item = [to_json(leaf, v) for v in values]
    else:
        item = to_json(leaf, values[-1])
    container = message_class(leaf.containing_type)()
    try:
        if leaf.type == FieldDescriptor.TYPE_STRING and isinstance(item, str):
            # A string's JSON form is the string: set it as ParseDict would, without
            # its generic walk (most of a Get's transcoding). Text that is not valid
            # UTF-8 (a lone surrogate) raises UnicodeEncodeError, a ValueError.
            setattr(container, leaf.name, item)
        else:
            json_format.ParseDict({leaf.json_name: item}, container, descriptor_pool=POOL)
    except PARSE_ERRORS:
        return FieldViolation(ref.json_path, _describe(ref, values))
    target = message
    for field in ref.fields[:-1]:
        target = getattr(target, field.name)
        target.SetInParent()
    target.MergeFrom(container)
    return None


def read(message: Message, ref: FieldRef) -> object:
    """The current value of a singular leaf (without marking anything present)."""
    target = message
    for field in ref.fields:
        target = getattr(target, field.name)
    return target


def to_json(field: FieldDescriptor, raw: str) -> object:
    """The proto3 JSON value a query-string value stands for (unchanged when unsure)."""
    if field.message_type is None:
        if field.type == FieldDescriptor.TYPE_BOOL:
            return True if raw in _TRUE else False if raw in _FALSE else raw
        return raw
    full_name = field.message_type.full_name
    if full_name in WRAPPERS:
        return to_json(field.message_type.fields_by_name["value"], raw)
    if full_name == "google.protobuf.FieldMask":
        return ",".join(_camel_path(p.strip()) for p in raw.split(",") if p.strip())
    if full_name in _JSON_TEXT:
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw


def group(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Query pairs by name, names in first-seen order, values in order."""
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def apply_query(
    message: Message,
    pairs: Sequence[tuple[str, str]],
    bound: Mapping[tuple[str, ...], str],
    *,
    ignore_unknown: bool = False,
) -> list[FieldViolation]:
    """Set fields from query parameters; returns the violations (empty when all went in).

    ``bound`` maps the proto field paths the path or the body already set to where
    they came from ("the URL path", "the body"); a parameter overlapping one of them
    is refused, as grpc-gateway filters them out of the query.
    """
    violations: list[FieldViolation] = []
    for name, values in group(pairs).items():
        try:
            ref = resolve(message.DESCRIPTOR, name)
        except Unresolvable as exc:
            if not (ignore_unknown and str(exc) == "unknown field"):
                violations.append(FieldViolation(name, f"query parameter: {exc}"))
            continue
        source = _overlap(ref.names, bound)
        if source is not None:
            violations.append(FieldViolation(ref.json_path, f"already set by {source}"))
        elif len(values) > 1 and not (ref.leaf.is_repeated and ref.map_key is None):
            violations.append(
                FieldViolation(ref.json_path, f"given {len(values)} times, but takes one value")
            )
        else:
            problem = assign(message, ref, values)
            if problem is not None:
                violations.append(problem)
    return violations


def _overlap(names: tuple[str, ...], bound: Mapping[tuple[str, ...], str]) -> str | None:
    for path, source in bound.items():
        shorter = min(len(path), len(names))
        if path[:shorter] == names[:shorter]:
            return source
    return None


def _describe(ref: FieldRef, values: Sequence[str]) -> str:
    leaf = ref.leaf
    if ref.map_key is not None:
        return invalid_value(leaf.message_type.fields_by_name["value"], values[-1])
    if leaf.is_repeated:
        bad = next((v for v in values if not parses(leaf, [to_json(leaf, v)])), values[0])
        return invalid_value(leaf, bad)
    return invalid_value(leaf, values[-1])


def _camel_path(path: str) -> str:
    """``hardware_generation.legacy_features`` → ``hardwareGeneration.legacyFeatures``."""
    return ".".join(re.sub(r"_([a-z0-9])", lambda m: m[1].upper(), p) for p in path.split("."))

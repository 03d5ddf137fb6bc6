"""Request bodies: strict JSON, parsed by the proto3 JSON mapping, errors with field paths.

``google.protobuf.json_format.ParseDict`` does the actual conversion, with unknown
fields rejected (``ignore_unknown_fields=False``), so the REST layer accepts exactly
what the mapping accepts: camelCase or proto names, int64 as a string or a number,
enums by name (or number), RFC 3339 timestamps, ``null`` for "not set". Its errors name
the field only in prose, so every request also gets a structural walk over the
descriptor that finds unknown and duplicated fields, conflicting oneof members and
wrongly shaped objects and arrays; and when ParseDict still fails, a second walk parses
each leaf value on its own to say which one is wrong and what it should be. The result
is one :class:`RequestInvalid` listing every problem with its JSON path.

Stricter than ``json.loads``: the body must be UTF-8, keys may not repeat within an
object and ``NaN``/``Infinity`` are not JSON (Go's protojson, behind grpc-gateway,
rejects all three as well).
"""

from __future__ import annotations

import json

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from disksnap.api.rest.errors import FieldViolation, RequestInvalid
from disksnap.api.rest.fields import (
    PARSE_ERRORS,
    invalid_value,
    is_map,
    is_plain_message,
    join,
    lookup,
    parses,
)
from disksnap.api.rest.registry import POOL


class _NotJson(ValueError):
    """Raised by the json.loads hooks for input that is not strict JSON."""


def decode_json(data: bytes | str) -> object:
    """Decode a request body into a JSON value; an empty or blank body is ``None``."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestInvalid.single("", f"the body is not UTF-8 (byte {exc.start})") from None
    if not data.strip():
        return None
    try:
        return json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise RequestInvalid.single("", f"malformed JSON: {exc.msg} at {where}") from None
    except _NotJson as exc:
        raise RequestInvalid.single("", f"malformed JSON: {exc}") from None
    except RecursionError:
        raise RequestInvalid.single("", "malformed JSON: nested too deeply") from None


def parse_message(value: object, message: Message, path: str = "") -> None:
    """Merge the JSON object ``value`` into ``message`` (RequestInvalid on any problem).

    ``path`` prefixes the field paths in violations (empty for a whole request body).
    """
    descriptor = message.DESCRIPTOR
    fallback: list[FieldViolation] = []
    _walk_message(value, descriptor, path, fallback, leaves=False)
    if not fallback:
        try:
            json_format.ParseDict(value, message, descriptor_pool=POOL)
        except PARSE_ERRORS as exc:
            fallback = [FieldViolation(path, str(exc))]
        else:
            return
    # The leaf walk finds all the structural walk did and more; json_format's own
    # message stands only if it finds nothing at all.
    violations: list[FieldViolation] = []
    _walk_message(value, descriptor, path, violations, leaves=True)
    raise RequestInvalid(violations or fallback) from None


def parse_field(value: object, message: Message, field: FieldDescriptor) -> None:
    """Set one field of ``message`` from a JSON value (a body bound to ``field``).

    A message-typed body is the message itself, so violations are named relative to
    it, as the body is all the client sent; any other field is parsed as a member.
    """
    if is_plain_message(field) and not field.is_repeated:
        target = getattr(message, field.name)
        target.SetInParent()
        parse_message(value, target)
    else:
        parse_message({field.json_name: value}, message)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _NotJson(f"duplicate key {json.dumps(key, ensure_ascii=False)}")
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise _NotJson(f"{name} is not a JSON value")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def _walk_message(
    value: object, descriptor: Descriptor, path: str, out: list[FieldViolation], leaves: bool
) -> None:
    """Check one JSON object against a (non-well-known) message type."""
    if not isinstance(value, dict):
        out.append(FieldViolation(path, f"expected a JSON object, got {_kind(value)}"))
        return
    used: dict[str, str] = {}
    oneofs: dict[str, list[str]] = {}
    for key, item in value.items():
        field = lookup(descriptor, key)
        field_path = join(path, key)
        if field is None:
            known = ", ".join(f.json_name for f in descriptor.fields)
            out.append(FieldViolation(field_path, f"unknown field (known fields: {known})"))
            continue
        if field.name in used:
            out.append(FieldViolation(field_path, f"set twice, as {used[field.name]} and {key}"))
            continue
        used[field.name] = key
        if field.containing_oneof is not None and item is not None:
            oneofs.setdefault(field.containing_oneof.name, []).append(key)
        _walk_field(item, field, field_path, out, leaves)
    for keys in oneofs.values():
        if len(keys) > 1:
            listed = ", ".join(keys)
            out.append(FieldViolation(join(path, keys[-1]), f"only one of {listed} may be set"))


def _walk_field(
    item: object, field: FieldDescriptor, path: str, out: list[FieldViolation], leaves: bool
) -> None:
    """Check the JSON value of one field; ``null`` always means "not set"."""
    if item is None:
        return
    if is_map(field):
        if not isinstance(item, dict):
            out.append(FieldViolation(path, f"expected a JSON object (a map), got {_kind(item)}"))
            return
        for key, element in item.items():
            _walk_map_entry(field, key, element, path=f"{path}[{key}]", out=out, leaves=leaves)
    elif field.is_repeated:
        if not isinstance(item, list):
            out.append(FieldViolation(path, f"expected a JSON array, got {_kind(item)}"))
            return
        for index, element in enumerate(item):
            element_path = f"{path}[{index}]"
            if is_plain_message(field):
                _walk_message(element, field.message_type, element_path, out, leaves)
            elif leaves and not parses(field, [element]):
                out.append(FieldViolation(element_path, invalid_value(field, element)))
    elif is_plain_message(field):
        _walk_message(item, field.message_type, path, out, leaves)
    elif leaves and not parses(field, item):
        out.append(FieldViolation(path, invalid_value(field, item)))


def _walk_map_entry(
    field: FieldDescriptor,
    key: str,
    element: object,
    *,
    path: str,
    out: list[FieldViolation],
    leaves: bool,
) -> None:
    value_field = field.message_type.fields_by_name["value"]
    if is_plain_message(value_field):
        _walk_message(element, value_field.message_type, path, out, leaves)
    if not leaves or parses(field, {key: element}):
        return
    key_field = field.message_type.fields_by_name["key"]
    if key_field.type != FieldDescriptor.TYPE_STRING and not _parses_key(field, key):
        out.append(FieldViolation(path, f"invalid map key: {invalid_value(key_field, key)}"))
    elif not is_plain_message(value_field):
        out.append(FieldViolation(path, invalid_value(value_field, element)))


def _parses_key(field: FieldDescriptor, key: str) -> bool:
    """Whether ``key`` is a valid key of the map ``field``, tried with a harmless value."""
    value_field = field.message_type.fields_by_name["value"]
    probe: object
    if value_field.message_type is not None:
        probe = {}
    elif value_field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        probe = ""
    else:
        probe = False if value_field.type == FieldDescriptor.TYPE_BOOL else 0
    return parses(field, {key: probe})

"""Response messages → proto3 JSON dicts, exactly as ``json_format.MessageToDict`` gives
them with the REST layer's options, but from a plan made once per message type.

:func:`reference` is the definition: ``MessageToDict`` with
``always_print_fields_with_no_presence=True``, JSON names, enum names and the registry's
pool. :func:`to_dict` returns the same object for every message — the same keys in the
same order, the same values of the same types (``OrderedDict`` for an ``Any``, as
json_format makes it) — without json_format's per-field descriptor inspection.

A plan holds, per field descriptor, its JSON name and a converter chosen once from its
kind, and the defaults of the fields without presence in declaration order. Rendering
a message then mirrors json_format's ``_RegularMessageToJsonObject``:

1. the fields ``ListFields()`` returns (set fields, by field number), converted;
2. then every field without presence that step 1 did not print, in declaration order,
   with its default: ``[]``, ``{}`` or the converted scalar default.

Conversions, as json_format does them: 64-bit integers as decimal strings; 32-bit
integers, bools and strings as they are; bytes as standard base64; enums by value name,
or the number itself when the enum does not know it; map keys as strings
(``"true"``/``"false"`` for bools); ``Timestamp`` in RFC 3339 with 0, 3, 6 or 9
fractional digits; ``Any`` as ``@type`` followed by the unpacked message's fields.

Whatever has a less obvious mapping goes to json_format itself, per message: every
other ``google.protobuf`` type but ``Empty`` (Duration, FieldMask, Struct, Value,
ListValue, the wrappers, and an ``Any`` that holds a ``google.protobuf`` type), message
types with ``float``/``double`` fields (shortest-repr floats, NaN and infinities) or with
closed (proto2) enums. And if a fast rendering meets anything its plan did not foresee
(an extension, an invalid Timestamp, an ``Any`` of an unknown type or with bad bytes),
the whole message is rendered by :func:`reference`, which then gives json_format's
answer or raises json_format's error.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from disksnap.api.rest.registry import POOL

Convert = Callable[[Any], Any]

_TIMESTAMP = "google.protobuf.Timestamp"
_ANY = "google.protobuf.Any"
_EMPTY = "google.protobuf.Empty"
_NULL_VALUE = "google.protobuf.NullValue"
_WELL_KNOWN_FILES = "google/protobuf/"

# Timestamp.ToJsonString's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_SECONDS_MIN = -62135596800
_SECONDS_MAX = 253402300799
_NANOS_PER_SECOND = 1_000_000_000
_SECONDS_PER_DAY = 86_400
_EPOCH = datetime(1970, 1, 1)  # naive, as Timestamp.ToJsonString's: isoformat has no offset

_INT64 = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})
_FLOATS = frozenset({FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE})


class _Unforeseen(Exception):
    """A message the plans do not cover; :func:`to_dict` hands it to :func:`reference`."""


def reference(message: Message) -> Any:
    """``json_format.MessageToDict`` with the REST layer's options: the definition."""
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=False,
        use_integers_for_enums=False,
        descriptor_pool=POOL,
    )


def to_dict(message: Message) -> Any:
    """The proto3 JSON form of ``message``: exactly what :func:`reference` returns."""
    try:
        return planned(message)
    except Exception:  # noqa: BLE001 - unforeseen input: json_format answers, or raises its error
        return reference(message)


def planned(message: Message) -> Any:
    """:func:`to_dict` without its last resort: raises on what the plans did not foresee."""
    convert = _CONVERTERS.get(message.DESCRIPTOR) or _converter(message.DESCRIPTOR)
    return convert(message)


def has_plan(descriptor: Descriptor) -> bool:
    """Whether messages of this type are rendered from a plan, not handed to json_format."""
    if descriptor not in _PLANS:
        _converter(descriptor)
    return _PLANS[descriptor] is not None


class _Plan:
    """How to render one regular message type (see the module docstring)."""

    __slots__ = ("defaults", "fields")

    def __init__(self) -> None:
        # field descriptor -> (JSON name, converter or None for "as it is")
        self.fields: dict[FieldDescriptor, tuple[str, Convert | None]] = {}
        # fields without presence: (JSON name, default, factory of a fresh [] or {})
        self.defaults: tuple[tuple[str, Any, Callable[[], Any] | None], ...] = ()

    def render(self, message: Message, js: dict[str, Any] | None = None) -> dict[str, Any]:
        if js is None:
            js = {}
        fields = self.fields
        for field, value in message.ListFields():
            name, convert = fields[field]  # KeyError (an extension): to_dict falls back
            js[name] = value if convert is None else convert(value)
        for name, default, factory in self.defaults:
            if name not in js:
                js[name] = default if factory is None else factory()
        return js


# Published plans and converters: complete before they are visible to other threads.
_PLANS: dict[Descriptor, _Plan | None] = {}
_CONVERTERS: dict[Descriptor, Convert] = {}
_ANY_TYPES: dict[str, tuple[Callable[[], Message], _Plan | None]] = {}
_BUILDING = threading.Lock()


def _converter(descriptor: Descriptor) -> Convert:
    with _BUILDING:
        building: dict[Descriptor, _Plan | None] = {}
        convert = _message_converter(descriptor, building)
        _PLANS.update(building)
        _CONVERTERS[descriptor] = convert
    return convert


def _message_converter(descriptor: Descriptor, building: dict[Descriptor, _Plan | None]) -> Convert:
    plan = _plan(descriptor, building)
    if plan is not None:
        return plan.render
    if descriptor.full_name == _TIMESTAMP:
        return _timestamp
    if descriptor.full_name == _ANY:
        return _any
    return reference


def _plan(descriptor: Descriptor, building: dict[Descriptor, _Plan | None]) -> _Plan | None:
    """The plan of a regular message type; None for a type json_format must render."""
    if descriptor in _PLANS:
        return _PLANS[descriptor]
    if descriptor in building:
        return building[descriptor]
    if not _is_regular(descriptor):
        building[descriptor] = None
        return None
    plan = _Plan()
    building[descriptor] = plan  # before the fields: a type may contain itself
    defaults: list[tuple[str, Any, Callable[[], Any] | None]] = []
    for field in descriptor.fields:
        plan.fields[field] = (field.json_name, _field_converter(field, building))
        if field.has_presence:
            continue
        if _is_map(field):
            defaults.append((field.json_name, None, dict))
        elif field.is_repeated:
            defaults.append((field.json_name, None, list))
        else:
            convert = _scalar_converter(field)
            value = field.default_value
            defaults.append((field.json_name, value if convert is None else convert(value), None))
    plan.defaults = tuple(defaults)
    return plan


def _is_regular(descriptor: Descriptor) -> bool:
    if descriptor.file.name.startswith(_WELL_KNOWN_FILES) and descriptor.full_name != _EMPTY:
        return False
    fields = list(descriptor.fields)
    fields += [f.message_type.fields_by_name["value"] for f in fields if _is_map(f)]
    return not any(
        field.cpp_type in _FLOATS or (field.enum_type is not None and field.enum_type.is_closed)
        for field in fields
    )


def _is_map(field: FieldDescriptor) -> bool:
    return bool(
        field.type == FieldDescriptor.TYPE_MESSAGE
        and field.message_type.has_options
        and field.message_type.GetOptions().map_entry
    )


def _field_converter(
    field: FieldDescriptor, building: dict[Descriptor, _Plan | None]
) -> Convert | None:
    if _is_map(field):
        entry = field.message_type
        return _map_converter(
            _map_key_converter(entry.fields_by_name["key"]),
            _value_converter(entry.fields_by_name["value"], building),
        )
    convert = _value_converter(field, building)
    if not field.is_repeated:
        return convert
    if convert is None:
        return list
    return lambda values: [convert(value) for value in values]


def _value_converter(
    field: FieldDescriptor, building: dict[Descriptor, _Plan | None]
) -> Convert | None:
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        return _message_converter(field.message_type, building)
    return _scalar_converter(field)


def _scalar_converter(field: FieldDescriptor) -> Convert | None:
    """How json_format's ``_FieldToJsonObject`` turns a scalar into JSON; None: as it is."""
    cpp_type = field.cpp_type
    if cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        if field.enum_type.full_name == _NULL_VALUE:
            return _null
        names = _EnumNames(
            {number: v.name for number, v in field.enum_type.values_by_number.items()}
        )
        return names.__getitem__
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _base64
    if cpp_type in _INT64:
        return str
    if cpp_type in _FLOATS:
        raise _Unforeseen(field.full_name)  # _is_regular sends their types to reference
    return None  # strings, bools and 32-bit integers


def _map_key_converter(field: FieldDescriptor) -> Convert | None:
    """json_format's map keys: ``"true"``/``"false"`` for bools, else ``str(key)``."""
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return _bool_key
    if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        return None
    return str


class _EnumNames(dict[int, Any]):
    """Value number -> name; a number the enum does not know stays the number."""

    def __missing__(self, number: int) -> int:
        return number


def _null(_value: object) -> None:
    return None


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


def _bool_key(value: bool) -> str:
    return "true" if value else "false"


def _map_converter(key: Convert | None, value: Convert | None) -> Convert:
    # As json_format: keys in the map's iteration order, each value by lookup (which is
    # also faster than dict(entries) or entries.items() on protobuf's map containers).
    if key is None and value is None:
        return lambda entries: {k: entries[k] for k in entries}
    if key is None:
        assert value is not None
        return lambda entries: {k: value(entries[k]) for k in entries}
    if value is None:
        return lambda entries: {key(k): entries[k] for k in entries}
    return lambda entries: {key(k): value(entries[k]) for k in entries}


def _timestamp(message: Message) -> str:
    """``Timestamp.ToJsonString``: RFC 3339 in UTC, 0/3/6/9 fractional digits.

    The same text as its ``(datetime(1970, 1, 1) + timedelta(...)).isoformat()``, put
    together from a cache of ``date.isoformat`` per day and tables of the times of day.
    """
    seconds: int = message.seconds
    nanos: int = message.nanos
    if not (_SECONDS_MIN <= seconds <= _SECONDS_MAX and 0 <= nanos < _NANOS_PER_SECOND):
        raise _Unforeseen(f"invalid Timestamp {seconds}s {nanos}ns")
    days, rest = divmod(seconds, _SECONDS_PER_DAY)
    minute, second = divmod(rest, 60)
    text = (_DATES.get(days) or _date(days)) + _MINUTES[minute] + _SECONDS[second]
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return text + _MILLIS[nanos // 1_000_000]
    if nanos % 1_000 == 0:
        return f"{text}.{nanos // 1_000:06d}Z"
    return f"{text}.{nanos:09d}Z"


_MINUTES = tuple(f"T{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))
_SECONDS = tuple(f"{second:02d}" for second in range(60))
_MILLIS = tuple(f".{millis:03d}Z" for millis in range(1000))
_DATES: dict[int, str] = {}  # days since 1970-01-01 -> "YYYY-MM-DD"
_DATES_MAX = 1 << 16


def _date(days: int) -> str:
    if len(_DATES) >= _DATES_MAX:
        _DATES.clear()
    text: str = (_EPOCH + timedelta(days=days)).date().isoformat()
    _DATES[days] = text
    return text


def _any(message: Message) -> Any:
    """``Any``: ``@type`` then the fields of the message it holds, in an OrderedDict."""
    if not message.ListFields():
        return {}
    type_url = message.type_url
    held = _ANY_TYPES.get(type_url)
    if held is None:
        held = _any_type(type_url)
    new, plan = held
    if plan is None:  # a google.protobuf type: json_format puts it under "value"
        return reference(message)
    inner = new()
    inner.ParseFromString(message.value)
    js: dict[str, Any] = OrderedDict()
    js["@type"] = type_url
    return plan.render(inner, js)


def _any_type(type_url: str) -> tuple[Callable[[], Message], _Plan | None]:
    descriptor = POOL.FindMessageTypeByName(type_url.rsplit("/", maxsplit=1)[-1])
    if descriptor not in _PLANS:
        _converter(descriptor)
    held = (message_factory.GetMessageClass(descriptor), _PLANS[descriptor])
    _ANY_TYPES[type_url] = held
    return held

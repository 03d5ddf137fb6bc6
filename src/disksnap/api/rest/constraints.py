"""The ``yandex.cloud`` validation options of a field, read from its descriptor.

``yandex/cloud/validation.proto`` extends ``FieldOptions`` with ``required`` (bool),
``pattern`` (a regular expression the whole value must match), ``length`` (string
length), ``size`` (element count of a repeated or map field), ``value`` (numeric
range), ``map_key`` (``length``/``pattern`` of map keys) and ``OneofOptions`` with
``exactly_one``. Ranges are written ``<=50``, ``<100``, ``>=1``, ``>0``, ``1-63`` or a
single number. Descriptors that do not carry an option yield None for it: the compute
v1 descriptors of ``yandexcloud`` ≥ 0.405 carry none (their .proto files state the rules
in comments instead), ``OperationService``'s ``operation_id`` still says ``required``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf.descriptor import FieldDescriptor, OneofDescriptor
from yandex.cloud import validation_pb2

_RANGE = re.compile(r"(?P<low>-?\d+(?:\.\d+)?)-(?P<high>-?\d+(?:\.\d+)?)")
_BOUND = re.compile(r"(?P<op><=|>=|<|>|==)?\s*(?P<num>-?\d+(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class Bound:
    """An interval; exclusive ends come from ``<`` and ``>``."""

    minimum: int | float | None = None
    maximum: int | float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    def integer_limits(self) -> tuple[int | None, int | None]:
        """Inclusive integer limits (for lengths and counts)."""
        low = None if self.minimum is None else int(self.minimum) + int(self.exclusive_minimum)
        high = None if self.maximum is None else int(self.maximum) - int(self.exclusive_maximum)
        return low, high


@dataclass(frozen=True, slots=True)
class FieldConstraints:
    """What the validation options of one field require (None: the option is absent)."""

    required: bool = False
    pattern: str | None = None
    length: Bound | None = None
    size: Bound | None = None
    value: Bound | None = None
    map_key_pattern: str | None = None
    map_key_length: Bound | None = None

    @property
    def empty(self) -> bool:
        return self == FieldConstraints()


def parse_bound(spec: str) -> Bound:
    """Parse ``<=50``, ``<100``, ``>=1``, ``>0``, ``1-63`` or ``5`` (ValueError otherwise)."""
    text = spec.strip()
    span = _RANGE.fullmatch(text)
    if span:
        return Bound(_number(span["low"]), _number(span["high"]))
    one = _BOUND.fullmatch(text)
    if not one:
        raise ValueError(f"not a validation range: {spec!r}")
    number, op = _number(one["num"]), one["op"] or "=="
    return {
        "<=": Bound(maximum=number),
        "<": Bound(maximum=number, exclusive_maximum=True),
        ">=": Bound(minimum=number),
        ">": Bound(minimum=number, exclusive_minimum=True),
        "==": Bound(number, number),
    }[op]


def field_constraints(field: FieldDescriptor) -> FieldConstraints:
    """The validation options of ``field``."""
    options = field.GetOptions()

    def text(extension: object) -> str | None:
        return str(options.Extensions[extension]) if options.HasExtension(extension) else None

    def bound(extension: object) -> Bound | None:
        spec = text(extension)
        return None if spec is None else parse_bound(spec)

    map_key = (
        options.Extensions[validation_pb2.map_key]
        if options.HasExtension(validation_pb2.map_key)
        else None
    )
    return FieldConstraints(
        required=bool(
            options.HasExtension(validation_pb2.required)
            and options.Extensions[validation_pb2.required]
        ),
        pattern=text(validation_pb2.pattern),
        length=bound(validation_pb2.length),
        size=bound(validation_pb2.size),
        value=bound(validation_pb2.value),
        map_key_pattern=(map_key.pattern or None) if map_key is not None else None,
        map_key_length=parse_bound(map_key.length) if map_key and map_key.length else None,
    )


def exactly_one(oneof: OneofDescriptor) -> bool:
    """Whether a oneof carries ``(exactly_one) = true``."""
    options = oneof.GetOptions()
    return bool(
        options.HasExtension(validation_pb2.exactly_one)
        and options.Extensions[validation_pb2.exactly_one]
    )


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)

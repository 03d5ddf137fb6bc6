"""Domain errors carry a canonical google.rpc code and a stable reason.

Layers below the transports raise these (or subclasses); one module in the API layer
turns them into a gRPC status and an HTTP response. Nothing here knows about either
transport: ``Code`` mirrors the numeric values of ``google.rpc.Code``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self


class Code(enum.IntEnum):
    """The canonical error codes of ``google.rpc.Code`` (same numbers)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class DisksnapError(Exception):
    """Base of every expected error. ``reason`` is a stable UPPER_SNAKE identifier."""

    code: Code = Code.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DisksnapError):
    code = Code.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with one value of a request (``google.rpc.BadRequest.FieldViolation``).

    ``field`` is the path of the offending value in the JSON form of the request: camelCase
    names, dots between fields, ``[i]`` / ``[key]`` for repeated and map entries
    (``hardwareGeneration.legacyFeatures``, ``labels[env]``); ``""`` names the request as
    a whole.
    """

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


class BadRequest(InvalidArgument):
    """INVALID_ARGUMENT listing every problem found, as ``google.rpc.BadRequest`` does.

    ``violations`` is never empty. The message reads like Yandex Cloud's request
    validator: ``Validation error:`` and then one ``field: description`` line per
    violation, so logs and plain-text clients see every problem; the transports put the
    violations into a ``google.rpc.BadRequest`` detail unchanged.
    """

    def __init__(self, violations: Iterable[FieldViolation]) -> None:
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        if not self.violations:
            raise ValueError(f"{type(self).__name__} needs at least one violation")
        super().__init__(self.summarize(self.violations))

    @classmethod
    def single(cls, field: str, description: str) -> Self:
        return cls([FieldViolation(field, description)])

    @staticmethod
    def summarize(violations: tuple[FieldViolation, ...]) -> str:
        return "Validation error:\n" + "\n".join(str(v) for v in violations)


class OutOfRange(DisksnapError):
    code = Code.OUT_OF_RANGE
    reason = "OUT_OF_RANGE"


class NotFound(DisksnapError):
    code = Code.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(DisksnapError):
    code = Code.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DisksnapError):
    code = Code.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class ResourceExhausted(DisksnapError):
    code = Code.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class Cancelled(DisksnapError):
    code = Code.CANCELLED
    reason = "CANCELLED"


class Unavailable(DisksnapError):
    code = Code.UNAVAILABLE
    reason = "UNAVAILABLE"


class DataLoss(DisksnapError):
    code = Code.DATA_LOSS
    reason = "DATA_LOSS"

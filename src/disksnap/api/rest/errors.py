"""The typed error every REST parsing problem becomes.

A request that cannot be turned into its protobuf message is INVALID_ARGUMENT
(HTTP 400). The error lists every problem found as a field violation, the shape of
``google.rpc.BadRequest.FieldViolation``: ``field`` is the path of the offending value
in the JSON form of the request, with camelCase names, dots between fields and
``[i]`` / ``[key]`` for repeated and map entries (``hardwareGeneration.legacyFeatures``,
``labels[env]``), as ``google/rpc/error_details.proto`` describes for JSON; ``""``
names the request as a whole (for example a body that is not JSON at all).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from disksnap.domain.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with one value of a request; ``field`` is its JSON path."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


class RequestInvalid(InvalidArgument):
    """The HTTP request does not transcode to its protobuf message.

    ``violations`` is never empty; the message joins them so logs and plain-text
    clients see every problem, and the HTTP layer can put them into a
    ``google.rpc.BadRequest`` detail unchanged.
    """

    reason = "INVALID_REQUEST"

    def __init__(self, violations: Iterable[FieldViolation]) -> None:
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        if not self.violations:
            raise ValueError("RequestInvalid needs at least one violation")
        super().__init__("; ".join(str(v) for v in self.violations))

    @classmethod
    def single(cls, field: str, description: str) -> RequestInvalid:
        return cls([FieldViolation(field, description)])

"""The typed error every REST parsing problem becomes.

A request that cannot be turned into its protobuf message is INVALID_ARGUMENT
(HTTP 400). The error lists every problem found as a field violation, the shape of
``google.rpc.BadRequest.FieldViolation``: ``field`` is the path of the offending value
in the JSON form of the request, with camelCase names, dots between fields and
``[i]`` / ``[key]`` for repeated and map entries (``hardwareGeneration.legacyFeatures``,
``labels[env]``), as ``google/rpc/error_details.proto`` describes for JSON; ``""``
names the request as a whole (for example a body that is not JSON at all).

Both types live in :mod:`disksnap.domain.errors`; :class:`RequestInvalid` is the
:class:`~disksnap.domain.errors.BadRequest` of the transcoding step, so one handler
turns every bad request, whichever layer found it, into the same ``google.rpc.Status``.
"""

from __future__ import annotations

from disksnap.domain.errors import BadRequest, FieldViolation

__all__ = ["FieldViolation", "RequestInvalid"]


class RequestInvalid(BadRequest):
    """The HTTP request does not transcode to its protobuf message.

    ``violations`` is never empty; the message joins them with ``"; "`` so logs and
    plain-text clients see every problem, and the HTTP layer can put them into a
    ``google.rpc.BadRequest`` detail unchanged.
    """

    reason = "INVALID_REQUEST"

    @staticmethod
    def summarize(violations: tuple[FieldViolation, ...]) -> str:
        return "; ".join(str(v) for v in violations)

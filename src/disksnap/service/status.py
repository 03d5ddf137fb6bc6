"""The one place that turns errors into ``google.rpc.Status`` and transport codes.

gRPC status codes are the ``google.rpc.Code`` numbers themselves; HTTP statuses follow
the mapping of ``google/rpc/code.proto`` (as grpc-gateway applies it). Every status
carries a ``google.rpc.RequestInfo`` with the request id; validation errors also carry
a ``google.rpc.BadRequest`` listing every field violation. An unexpected exception
becomes INTERNAL with a message that names only the request id - never a traceback.
"""

from __future__ import annotations

from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from disksnap.domain.errors import Code, DisksnapError

HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def status_of(error: DisksnapError, request_id: str) -> status_pb2.Status:
    details = []
    violations = getattr(error, "violations", ())
    if violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in violations
            ]
        )
        details.append(_pack(bad))
    details.append(_pack(error_details_pb2.RequestInfo(request_id=request_id)))
    return status_pb2.Status(code=int(error.code), message=error.message, details=details)


def internal_status(request_id: str) -> status_pb2.Status:
    return status_pb2.Status(
        code=int(Code.INTERNAL),
        message=f"Internal error (request id {request_id})",
        details=[_pack(error_details_pb2.RequestInfo(request_id=request_id))],
    )


def simple_status(code: Code, message: str, request_id: str) -> status_pb2.Status:
    return status_pb2.Status(
        code=int(code),
        message=message,
        details=[_pack(error_details_pb2.RequestInfo(request_id=request_id))],
    )


def _pack(message: error_details_pb2.BadRequest | error_details_pb2.RequestInfo) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed

"""Operations: records in the metadata queue, rendered as ``yandex.cloud.operation.
Operation``; idempotency keys; and OperationService (Get, Cancel).

Every mutating call returns an Operation at once, with its typed metadata packed in
``metadata``. Work that takes time (building a snapshot, creating a disk) is left
for a worker (``disksnap.workers``); changes that are done within the call (updates,
deletes) return an Operation that is already done.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2
from yandex.cloud.operation import operation_pb2, operation_service_pb2

from disksnap.domain import errors as d
from disksnap.domain.validation import check_id
from disksnap.meta import IdempotencyRecord, Operation, OperationResult, Transaction
from disksnap.service.auth import Access
from disksnap.service.convert import set_timestamp
from disksnap.service.core import Call

SNAPSHOT_CREATE = "compute.snapshots.create"
DISK_CREATE = "compute.disks.create"


class IdempotencyConflict(d.InvalidArgument):
    reason = "IDEMPOTENCY_KEY_REUSED"


def pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def new_operation(
    call: Call,
    *,
    op_id: str,
    description: str,
    metadata: Message,
    kind: str,
    resource_id: str,
    folder_id: str,
    params: Mapping[str, Any] | None = None,
    response: Message | None = None,
) -> Operation:
    """A new operation record; done at once when ``response`` is given."""
    now = call.now()
    return Operation(
        id=op_id,
        description=description,
        created_at=now,
        created_by=call.subject,
        modified_at=now,
        done=response is not None,
        metadata=pack(metadata).SerializeToString(),
        kind=kind,
        resource_id=resource_id,
        params={"folder_id": folder_id, **(params or {})},
        result=None
        if response is None
        else OperationResult("response", pack(response).SerializeToString()),
    )


def error_result(status: status_pb2.Status) -> OperationResult:
    return OperationResult("error", status.SerializeToString())


def response_result(message: Message) -> OperationResult:
    return OperationResult("response", pack(message).SerializeToString())


def operation_proto(op: Operation) -> operation_pb2.Operation:
    p = operation_pb2.Operation(
        id=op.id, description=op.description, created_by=op.created_by, done=op.done
    )
    set_timestamp(p.created_at, op.created_at)
    set_timestamp(p.modified_at, op.modified_at)
    p.metadata.ParseFromString(op.metadata)
    if op.result is not None and op.result.kind == "response":
        p.response.ParseFromString(op.result.payload)
    elif op.result is not None:
        p.error.ParseFromString(op.result.payload)
    return p


# --- idempotency ---------------------------------------------------------------------


def request_hash(method: str, request: Message) -> str:
    digest = hashlib.sha256(method.encode() + b"\0")
    digest.update(request.SerializeToString(deterministic=True))
    return digest.hexdigest()


def replay(
    tx: Transaction, call: Call, method: str, request: Message, *, purge: bool = True
) -> Operation | None:
    """The operation an earlier call with the same Idempotency-Key started, if any.
    The same key with a different request is an error; keys expire after the TTL (and
    are purged then, unless ``purge`` is false: in a read-only transaction). The
    caller must still be allowed to change the operation's folder."""
    key = call.ctx.idempotency_key
    if not key:
        return None
    record = tx.idempotency.get(call.subject, key)
    if record is None:
        return None
    expired = call.now() - call.env.settings.idempotency_ttl
    if record.created_at < expired:
        if purge:
            tx.idempotency.purge(expired)  # rare: only when a key comes back after its TTL
        return None
    if record.request_hash != request_hash(method, request):
        raise IdempotencyConflict(
            f"Idempotency key {key!r} was already used with a different request"
        )
    op = tx.operations.get(record.operation_id)
    call.require(tx, str(op.params["folder_id"]), Access.WRITE)
    return op


def store_operation(
    tx: Transaction, call: Call, method: str, request: Message, op: Operation
) -> None:
    """Store a new operation, and the caller's Idempotency-Key (if any) that points at it."""
    tx.operations.insert(op)
    key = call.ctx.idempotency_key
    if key:
        record = IdempotencyRecord(
            call.subject, key, request_hash(method, request), op.id, call.now()
        )
        tx.idempotency.insert(record)


# --- OperationService ------------------------------------------------------------------


def get_operation(request: Message, call: Call) -> Message:
    assert isinstance(request, operation_service_pb2.GetOperationRequest)
    check_id("operationId", request.operation_id)
    with call.reading() as tx:
        op = tx.operations.get(request.operation_id)
        call.require(tx, str(op.params["folder_id"]), Access.READ)
    return operation_proto(op)


def cancel_operation(request: Message, call: Call) -> Message:
    """Ask for cancellation; the worker running it stops and reports CANCELLED. On a
    finished operation this changes nothing."""
    assert isinstance(request, operation_service_pb2.CancelOperationRequest)
    check_id("operationId", request.operation_id)
    with call.env.meta.transaction() as tx:
        op = tx.operations.get(request.operation_id)
        call.require(tx, str(op.params["folder_id"]), Access.WRITE)
        op = tx.operations.request_cancel(op.id)
    return operation_proto(op)


# Served in one read-only transaction with the caller's authentication (``Services``).
READ_ONLY = frozenset({"yandex.cloud.operation.OperationService.Get"})

HANDLERS = {
    "yandex.cloud.operation.OperationService.Get": get_operation,
    "yandex.cloud.operation.OperationService.Cancel": cancel_operation,
}

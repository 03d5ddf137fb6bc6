"""Unary gRPC methods served generically from the official descriptors.

Each method is one :class:`UnaryRpc`: the request arrives already parsed by the
official message class; the metadata becomes a ``CallContext`` (``authorization``,
``idempotency-key``, a request id); the blocking dispatcher runs on ``CallPools``;
the reply is serialized by its own class. Every answer carries ``x-request-id`` in
its trailing metadata. An error is the ``google.rpc.Status`` that
``disksnap.service.status`` builds (BadRequest field violations, RequestInfo), sent
as the gRPC code and message plus ``grpc-status-details-bin`` - exactly what
``grpc_status.rpc_status.from_call`` reads back on the client.

Deadlines and cancellation: a call whose deadline has already passed when it is
picked up is refused with DEADLINE_EXCEEDED before it touches anything. A call that
the client cancels (or whose deadline expires) while the dispatcher runs is
abandoned by gRPC; the worker thread finishes the service call, whose transaction
either commits as a whole or not at all, so no half-written state is left - a retry
with the same ``idempotency-key`` then finds the committed operation. A Create queued
for the metadata writer without a thread (``CallPools``' ``start``) is dropped if the
writer has not taken it yet, and otherwise committed or refused as a whole all the same.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import grpc
import grpc.aio
from google.protobuf import empty_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from grpc_status import rpc_status

from disksnap.domain.errors import BadRequest, Code, DisksnapError
from disksnap.domain.ids import new_request_id
from disksnap.service.context import REQUEST_ID, CallContext, Dispatcher
from disksnap.service.core import Unimplemented
from disksnap.service.descriptors import message_class
from disksnap.service.logs import log_call
from disksnap.service.metrics import CallMetrics
from disksnap.service.pools import CallPools
from disksnap.service.readcache import CACHEABLE, KINDS, ReadCache, credential
from disksnap.service.status import internal_status, status_of

log = logging.getLogger(__name__)

Context: TypeAlias = grpc.aio.ServicerContext[Message, Message]
Call = Callable[[str, Message, CallContext], Message]

# A client-chosen request id is used only if it looks like one (it ends up in logs).
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
REQUEST_ID_KEYS = ("x-request-id", "x-client-request-id")


class DeadlineExceeded(DisksnapError):
    code = Code.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class UnaryRpc:
    """One unary method: bytes and context in, ``call`` on ``pools`` (inline if None),
    reply out. The request is parsed here rather than by gRPC, so that bytes that are not
    a ``request_class`` message are INVALID_ARGUMENT with a Status like any bad input.

    With a read cache (``service/readcache.py``, SQLite only), a Get (Snapshot, Disk,
    Operation) whose serialized answer is kept for this caller is answered on the event
    loop, without a thread or SQL; a Get that is not is called as any other method and
    its answer kept, until its resource changes (whoever commits the change)."""

    def __init__(
        self,
        full_name: str,
        request_class: type[Message],
        call: Call,
        pools: CallPools | None,
        metrics: CallMetrics | None = None,
        *,
        cache: ReadCache[bytes] | None = None,
    ) -> None:
        self.full_name = full_name
        self.request_class = request_class
        self.call = call
        self.pools = pools
        self.metrics = metrics
        self.cache = cache if full_name in CACHEABLE else None
        # The request's field naming the resource: snapshot_id, disk_id, operation_id.
        self._id_field = f"{KINDS[full_name]}_id" if self.cache is not None else ""

    async def handle(self, payload: bytes, context: Context) -> Message | bytes:
        started = time.perf_counter()
        metadata = _metadata(context.invocation_metadata())
        request_id = _request_id(metadata)
        REQUEST_ID.set(request_id)  # this task's context; copied into the worker thread
        try:
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded("Deadline exceeded before the call started")
            request = self._parse(payload)
            ctx = CallContext(
                request_id=request_id,
                authorization=metadata.get("authorization"),
                idempotency_key=metadata.get("idempotency-key"),
            )
            if self.cache is None:
                reply: Message | bytes = await self._run(request, ctx)
                cached = False
            else:
                reply, cached = await self._cached_or_run(request, ctx)
        except DisksnapError as e:
            status = status_of(e, request_id)
        except asyncio.CancelledError:
            self._log(Code.CANCELLED, started)
            raise
        except Exception:
            log.exception("request %s (%s) failed", request_id, self.full_name)
            status = internal_status(request_id)
        else:
            context.set_trailing_metadata((("x-request-id", request_id),))
            self._log(Code.OK, started, cached=cached)
            return reply
        self._log(Code(status.code), started)
        await abort(context, status, request_id)
        raise AssertionError("abort returned")  # pragma: no cover - abort always raises

    def _parse(self, payload: bytes) -> Message:
        try:
            return self.request_class.FromString(payload)
        except DecodeError:
            name = self.request_class.DESCRIPTOR.full_name
            raise BadRequest.single("", f"the request is not a valid {name} message") from None

    async def _run(self, request: Message, ctx: CallContext) -> Message:
        if self.pools is None:
            return self.call(self.full_name, request, ctx)
        return await self.pools.run(self.call, self.full_name, request, ctx)

    async def _cached_or_run(self, request: Message, ctx: CallContext) -> tuple[bytes, bool]:
        """The answer, serialized, and whether it was kept: the kept one, or the call's,
        kept if the caller could read the resource's folder and the resource did not
        change since the call began."""
        assert self.cache is not None
        resource_id = str(getattr(request, self._id_field))
        key = credential((ctx.authorization or "").encode())
        position = self.cache.sync_on_loop()  # after the request arrived: what it must see
        kept = self.cache.lookup(self.full_name, resource_id, key)
        if kept is not None:
            return kept, True
        reply = (await self._run(request, ctx)).SerializeToString()
        folder = ctx.notes.readable_folder
        if folder is not None:
            self.cache.allow(key, folder, ctx.notes.valid_until, position)
            self.cache.put(self.full_name, resource_id, folder, reply, position)
        return reply, False

    def _log(self, code: Code, started: float, *, cached: bool = False) -> None:
        seconds = time.perf_counter() - started
        extras: dict[str, object] = {"rpc": self.full_name, "seconds": round(seconds, 6)}
        if cached:
            extras["cached"] = True
        log_call(log, f"gRPC {self.full_name} -> {code.name}", extras)
        if self.metrics is not None:
            self.metrics.observe(self.full_name, code, seconds)


async def abort(context: Context, status: status_pb2.Status, request_id: str) -> None:
    """End the call with ``status``: its code and message, the whole Status in
    ``grpc-status-details-bin``, and the request id beside it."""
    converted = rpc_status.to_status(status)
    await context.abort(
        converted.code,
        converted.details,
        (*converted.trailing_metadata, ("x-request-id", request_id)),
    )


def method_handlers(
    service: ServiceDescriptor,
    call: Call,
    pools: CallPools | None,
    metrics: CallMetrics | None = None,
    cache: ReadCache[bytes] | None = None,
) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """A handler for every method of ``service``, all calling ``call`` by full name."""
    return {m.name: unary_handler(m, call, pools, metrics, cache) for m in service.methods}


def unary_handler(
    method: MethodDescriptor,
    call: Call,
    pools: CallPools | None,
    metrics: CallMetrics | None = None,
    cache: ReadCache[bytes] | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    request_class = message_class(method.input_type)
    rpc = UnaryRpc(str(method.full_name), request_class, call, pools, metrics, cache=cache)
    return grpc.unary_unary_rpc_method_handler(
        rpc.handle,  # a bound coroutine method: grpc.aio tells coroutines apart by it
        response_serializer=_serialized,
    )


def _serialized(reply: Message | bytes) -> bytes:
    """A reply's bytes: a cached method's answer is serialized already."""
    return reply if isinstance(reply, bytes) else reply.SerializeToString()


def dispatcher_handlers(
    dispatcher: Dispatcher,
    services: Iterable[ServiceDescriptor],
    pools: CallPools,
    metrics: CallMetrics | None = None,
    cache: ReadCache[bytes] | None = None,
) -> dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]]:
    """Handlers by service full name for every method of ``services``, each running
    ``dispatcher.dispatch`` on ``pools``; Gets answered from ``cache`` while it holds
    them."""
    return {
        str(s.full_name): method_handlers(s, dispatcher.dispatch, pools, metrics, cache)
        for s in services
    }


class UnknownMethods(grpc.GenericRpcHandler):
    """The last resort: a method of no registered service is UNIMPLEMENTED with a Status
    and a request id, like every other error (gRPC alone would send neither)."""

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = str(handler_call_details.method)
        full_name = method.lstrip("/").replace("/", ".")

        def refuse(_method: str, _request: Message, _ctx: CallContext) -> Message:
            raise Unimplemented(f"{full_name} is not implemented")

        rpc = UnaryRpc(full_name, empty_pb2.Empty, refuse, None)  # any request will do
        return grpc.unary_unary_rpc_method_handler(rpc.handle)


def _metadata(items: Iterable[tuple[str, str | bytes]] | None) -> Mapping[str, str]:
    """The first text value of each key (keys arrive lower-cased; ``-bin`` ones are bytes)."""
    found: dict[str, str] = {}
    for key, value in items or ():
        if isinstance(value, str):
            found.setdefault(key, value)
    return found


def _request_id(metadata: Mapping[str, str]) -> str:
    for key in REQUEST_ID_KEYS:
        value = metadata.get(key)
        if value is not None and _CLIENT_REQUEST_ID.fullmatch(value):
            return value
    return new_request_id()

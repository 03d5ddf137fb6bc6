"""What a transport hands the service layer with every call, besides the message."""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf.message import Message

# The request being served, for log records (set by the transport for each call).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


@dataclass(slots=True)
class CallNotes:
    """What the service tells the transport about a call besides its answer."""

    valid_until: dt.datetime | None = None
    """When the caller's token stops being valid (None: never, or not authenticated):
    a transport keeping the answer (``ReadCache``) must not serve it from then on."""

    readable_folder: str | None = None
    """The folder the caller was found allowed to read (a Get: the resource's)."""


@dataclass(frozen=True)
class CallContext:
    """``authorization`` is the raw credential the client sent (``Bearer <token>``), to
    be checked by the service; ``request_id`` identifies the call in logs and errors;
    ``idempotency_key`` is the client's ``Idempotency-Key``, if any; ``notes`` is filled
    in by the service."""

    request_id: str
    authorization: str | None = None
    idempotency_key: str | None = None
    notes: CallNotes = field(default_factory=CallNotes, compare=False)


class Dispatcher(Protocol):
    def dispatch(self, method: str, request: Message, ctx: CallContext) -> Message:
        """Run RPC ``method`` (the method descriptor's full name, e.g.
        ``yandex.cloud.compute.v1.SnapshotService.Create``) and return its response
        message, or raise a ``DisksnapError``. Blocking: transports call it from a
        worker thread."""
        ...

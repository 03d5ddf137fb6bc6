"""The service layer's entry point: every RPC by its full name, behind one dispatcher
that both transports call."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future

from google.protobuf.message import Message

from disksnap.service import catalog, disks, iam, operations, snapshots
from disksnap.service.context import CallContext
from disksnap.service.core import Call, Env, Unimplemented, check_idempotency_key

Handler = Callable[[Message, Call], Message]
Starter = Callable[[Message, Call], Future[Message] | None]


class Services:
    """Implements ``Dispatcher``. Methods without a handler are UNIMPLEMENTED. Every
    call is authenticated first, except the short allow-list ``iam.ANONYMOUS`` (the
    exchange of a signed JWT for a token: its caller has none yet).

    A read-only method (``READ_ONLY`` of its module) is authenticated and served in one
    read-only transaction (``Call.reading``): the hot path of Get and List pays for one
    BEGIN/COMMIT, not two. A changing method is authenticated in a transaction of its
    own, closed before the handler takes the writer's lock in another - except a method
    in ``CHECKS_FIRST``, whose handler authenticates the caller first thing in its
    own write transaction (``Call.grouped``). Such a method may also be ``start``-ed:
    queued for the metadata writer without blocking, where changes queue (SQLite)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.handlers: Mapping[str, Handler] = {
            **snapshots.HANDLERS,
            **disks.HANDLERS,
            **catalog.HANDLERS,
            **operations.HANDLERS,
            **iam.HANDLERS,
        }
        self.read_only = snapshots.READ_ONLY | disks.READ_ONLY | operations.READ_ONLY
        self.checks_first = snapshots.CHECKS_FIRST
        self.starters: Mapping[str, Starter] = snapshots.STARTERS

    def dispatch(self, method: str, request: Message, ctx: CallContext) -> Message:
        call = Call(self.env, ctx)
        scope: contextlib.AbstractContextManager[object] = (
            call.reading() if method in self.read_only else contextlib.nullcontext()
        )
        with scope:
            if method in iam.ANONYMOUS:
                check_idempotency_key(ctx)
            elif method not in self.checks_first:
                call.authenticate()  # before anything else: no token, no information
            handler = self.handlers.get(method)
            if handler is None:
                raise Unimplemented(f"{method} is not implemented")
            answer = handler(request, call)
        if method in self.checks_first and not call.authenticated:
            raise RuntimeError(f"{method} answered without authenticating its caller")
        return answer

    def start(self, method: str, request: Message, ctx: CallContext) -> Future[Message] | None:
        """``dispatch`` begun without blocking, for a method whose whole work queues
        for the metadata writer (a ``STARTERS`` entry, on SQLite): its future. None if
        the method cannot be begun so: then ``dispatch`` it on a thread."""
        starter = self.starters.get(method)
        return None if starter is None else starter(request, Call(self.env, ctx))

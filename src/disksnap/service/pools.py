"""Where the transports run service calls: off the event loop, on two thread pools.

``Dispatcher.dispatch`` blocks (database, engine), so REST and gRPC hand it to a thread.
Reads and changes get a pool each, so that a Get never queues behind Creates waiting
for the database's single writer.

The read pool is small on purpose: every thread beyond what the cores can run only adds
GIL hand-offs, and a List page hands the GIL back and forth for each row it fetches.
Measured with ``bench/api.py`` on this 2-core machine, 50 clients, 1,000 snapshots: 40
threads served about 500 Gets a second, 2-4 threads about 700-800; List passes went
12.7 / 14.8 / 16.8 a second with 4 / 2 / 1 read threads. On SQLite, where Gets are
answered from the read cache on the event loop and a read waits on nothing but the
GIL, one read thread: 200 List passes of 10 pages, two pairs, cost 3.2 ms of CPU and
16 voluntary context switches per page with one thread, 3.7-5.3 ms and 44-48 with two.
On PostgreSQL a read waits on the network, where two overlap.

The change pool is large on purpose: a change waiting for the writer's turn sleeps until
its group is decided and costs nothing, and on SQLite the writer commits every change
queued by then in one group (``meta/group.py``). With 4 change threads, 1,000
Snapshot.Creates at 50 clients ran at 201-287 a second for 3.7-5.2 ms of the server's
CPU each, since a group could only hold as many Creates as there were threads waiting;
with 64, at 354-387 a second for 2.6-2.9 ms (three runs each, alternating). On
PostgreSQL, changes beyond the connection pool wait for a connection.

On SQLite a Snapshot.Create takes no thread at all: ``start`` (``Services.start``)
queues it for the metadata writer from the event loop, and the loop awaits its future.
That saves a thread hand-off each way: 1,500 Creates at 50 clients, four pairs
alternating with the thread path, ran at 580-727 a second against 496-674, with 10.8-12.1
voluntary context switches per Create against 13.8-16.3.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor

from google.protobuf.message import Message

from disksnap.service.context import CallContext

Call = Callable[[str, Message, CallContext], Message]
Start = Callable[[str, Message, CallContext], Future[Message] | None]
READ_THREADS = 2
SQLITE_READ_THREADS = 1
CHANGE_THREADS = 64


class CallPools:
    """``run`` a call on the read pool if its method is in ``read_only``, else on the
    change pool. The caller's context variables (the request id) go with it.

    A change that ``start`` can begin without blocking (``Services.start``: a
    Snapshot.Create queued for the metadata writer) takes no change thread at all."""

    def __init__(
        self,
        read_only: Collection[str],
        *,
        start: Start | None = None,
        read_threads: int = READ_THREADS,
        change_threads: int = CHANGE_THREADS,
    ) -> None:
        self._read_only = frozenset(read_only)
        self._start = start
        self._reads = ThreadPoolExecutor(read_threads, thread_name_prefix="api-read")
        self._changes = ThreadPoolExecutor(change_threads, thread_name_prefix="api-change")

    async def run(self, call: Call, method: str, request: Message, ctx: CallContext) -> Message:
        if method in self._read_only:
            pool = self._reads
        else:
            started = None if self._start is None else self._start(method, request, ctx)
            if started is not None:
                return await asyncio.wrap_future(started)
            pool = self._changes
        run = contextvars.copy_context().run
        loop = asyncio.get_running_loop()
        result: Message = await loop.run_in_executor(pool, run, call, method, request, ctx)
        return result

    def shutdown(self) -> None:
        """Wait for the calls already running; refuse new ones."""
        self._reads.shutdown(wait=True)
        self._changes.shutdown(wait=True)

"""The transmission phase: many requests in flight per connection, engine calls in
threads, replies in completion order.

Ordering (proto.md, "Ordering of messages and writes"): the protocol lets a server
run requests in any order, but disksnap keeps the order a client would expect from a
disk. A request waits for every request received before it that it conflicts with:

* a write (WRITE, TRIM, WRITE_ZEROES) for every earlier request overlapping its range,
  so overlapping writes land in the order sent and reads see what came before them;
* a read (READ, BLOCK_STATUS) for every earlier overlapping write;
* a FLUSH for every earlier write, then fdatasync - so a FLUSH covers all writes
  received before it, not only those already replied to.

A write with FUA is replied to only after its data is durable (the engine's
``fua=True``). Memory is bounded by a byte budget of requests in flight, each charged
its payload plus ``REQUEST_COST`` (so at most ``MAX_INFLIGHT`` are in flight): the
server stops reading from the socket until earlier requests finish.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from disksnap.domain import errors as d
from disksnap.engine.errors import DiskNotFound, EngineClosing, OutOfBounds
from disksnap.nbd import proto as p
from disksnap.nbd.exports import ReadOnly
from disksnap.nbd.handshake import CONTEXT_ID, Session

log = logging.getLogger("disksnap.nbd")

T = TypeVar("T")
BUDGET = 64 << 20  # bytes of payload in flight per connection
MAX_INFLIGHT = 256  # requests in flight per connection, whatever their size
# What each request costs besides its payload: a task, and the list of earlier requests
# it waits for, which grows with the number in flight - so that number is bounded too.
REQUEST_COST = BUDGET // MAX_INFLIGHT
REPLY_GRACE = 5.0  # seconds a cancelled session's client has to take its last replies
WRITES = frozenset({p.CMD_WRITE, p.CMD_TRIM, p.CMD_WRITE_ZEROES})
# The command flags each command may carry; any other is EINVAL (proto.md, "Error
# values"). FUA is valid on every command once NBD_FLAG_SEND_FUA is advertised, and
# means nothing to those that write nothing. FAST_ZERO is not advertised.
FLAGS = {
    p.CMD_READ: p.CMD_FLAG_FUA | p.CMD_FLAG_DF,
    p.CMD_WRITE: p.CMD_FLAG_FUA,
    p.CMD_FLUSH: p.CMD_FLAG_FUA,
    p.CMD_TRIM: p.CMD_FLAG_FUA,
    p.CMD_WRITE_ZEROES: p.CMD_FLAG_FUA | p.CMD_FLAG_NO_HOLE,
    p.CMD_BLOCK_STATUS: p.CMD_FLAG_FUA | p.CMD_FLAG_REQ_ONE,
}
READS = frozenset({p.CMD_READ, p.CMD_BLOCK_STATUS})


class NbdError(Exception):
    """A request that fails with an NBD error value; the session goes on."""

    def __init__(self, error: int, message: str) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class _InFlight:
    write: bool
    start: int
    end: int


class Budget:
    """Bytes of requests in flight; ``take`` waits while the budget is spent."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.waiting = False  # ``take`` waits: the connection's reading is paused
        self._cond = asyncio.Condition()

    async def take(self, n: int) -> int:
        n = min(n, self.capacity)
        async with self._cond:
            self.waiting = True
            try:
                await self._cond.wait_for(lambda: self.used + n <= self.capacity)
            finally:
                self.waiting = False
            self.used += n
        return n

    async def give(self, n: int) -> None:
        async with self._cond:
            self.used -= n
            self._cond.notify_all()


class Transmission:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        session: Session,
        pool: Executor,
    ) -> None:
        self.r = reader
        self.w = writer
        self.s = session
        self.export = session.export
        self.pool = pool
        self.budget = Budget(BUDGET)
        self.inflight: dict[asyncio.Task[None], _InFlight] = {}

    async def run(self) -> None:
        """Serve requests until DISC, EOF or cancellation; in-flight requests always
        finish before this returns (``_finish``)."""
        cancelled = False
        try:
            while True:
                req = p.parse_request(await self.r.readexactly(p.REQUEST.size))
                if req.type == p.CMD_DISC:
                    return
                payload_bytes = req.length if req.type in (p.CMD_READ, p.CMD_WRITE) else 0
                cost = await self.budget.take(payload_bytes + REQUEST_COST)
                try:
                    payload = await self._payload(req)
                except BaseException:
                    await self.budget.give(cost)
                    raise
                self._start(req, payload, cost)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            await self._finish(cancelled=cancelled)

    async def _finish(self, *, cancelled: bool) -> None:
        """Wait for the requests in flight. Their engine calls always finish; their
        replies are given up when the session is cancelled (server stop, disk deleted)
        and the client has not taken them within ``REPLY_GRACE``: the connection is
        aborted, so a client that never reads cannot hold the server up for ever."""
        pending = set(self.inflight)
        if not pending:
            return
        try:
            if cancelled:
                _, pending = await asyncio.wait(pending, timeout=REPLY_GRACE)
                if pending:
                    self.w.transport.abort()
            if pending:
                await asyncio.wait(pending)
        except asyncio.CancelledError:
            self.w.transport.abort()  # their drains end: only engine calls are left
            await asyncio.wait(pending)
            raise

    async def _payload(self, req: p.Request) -> bytes | None:
        if req.type != p.CMD_WRITE:
            return None
        if req.length > p.MAX_PAYLOAD:
            # Reading it would take unbounded memory, and skipping it unbounded time.
            raise p.ProtocolError(f"write of {req.length} bytes exceeds the maximum payload")
        return await self.r.readexactly(req.length)

    def _start(self, req: p.Request, payload: bytes | None, cost: int) -> None:
        me = _InFlight(req.type in WRITES, req.offset, req.offset + req.length)
        if req.type == p.CMD_FLUSH:
            deps = [t for t, f in self.inflight.items() if f.write]
        elif req.type in WRITES or req.type in READS:
            deps = [
                t
                for t, f in self.inflight.items()
                if (me.write or f.write) and f.start < me.end and me.start < f.end
            ]
        else:
            deps = []
        task = asyncio.create_task(self._serve(req, payload, deps, cost))
        # Nothing waits for a FLUSH: it only promises something about earlier writes.
        self.inflight[task] = _InFlight(False, 0, 0) if req.type == p.CMD_FLUSH else me
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        del self.inflight[task]
        if not task.cancelled() and task.exception() is not None:
            log.error("NBD request failed", exc_info=task.exception())

    async def _serve(
        self,
        req: p.Request,
        payload: bytes | None,
        deps: list[asyncio.Task[None]],
        cost: int,
    ) -> None:
        try:
            if deps:
                await asyncio.wait(deps)
            try:
                chunks = await self._execute(req, payload)
            except NbdError as e:
                chunks = [self._error(req, e.error, str(e))]
            except Exception:  # a bug: the client still gets its reply, the log the trace
                log.exception("NBD %s: request %d failed", self.export.name, req.type)
                chunks = [self._error(req, p.EIO, "internal error")]
            self.w.writelines(chunks)
            await self.w.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to reply to
        finally:
            await self.budget.give(cost)

    def _error(self, req: p.Request, error: int, message: str) -> bytes:
        if self.s.structured:
            return p.structured_error(req.cookie, error, message)
        return p.simple_reply(req.cookie, error)

    def _ok(self, req: p.Request) -> list[bytes]:
        if self.s.structured:
            return [p.structured_done(req.cookie)]
        return [p.simple_reply(req.cookie)]

    async def _call(self, fn: Callable[[], T], *, write: bool) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, fn)
        except ReadOnly as e:
            raise NbdError(p.EPERM, str(e)) from None
        except OutOfBounds as e:
            raise NbdError(p.ENOSPC if write else p.EINVAL, e.message) from None
        except (DiskNotFound, EngineClosing) as e:
            raise NbdError(p.ESHUTDOWN, e.message) from None
        except d.InvalidArgument as e:
            raise NbdError(p.EINVAL, e.message) from None
        except d.DisksnapError as e:  # DATA_LOSS of a snapshot chunk and the like
            log.warning("NBD %s: %s", self.export.name, e.message)
            raise NbdError(p.EIO, e.message) from None
        except OSError as e:
            log.warning("NBD %s: %s", self.export.name, e)
            raise NbdError(p.ENOSPC if e.errno == errno.ENOSPC else p.EIO, str(e)) from None

    def _check_range(self, req: p.Request, *, write: bool) -> None:
        if req.offset + req.length > self.export.size:
            raise NbdError(
                p.ENOSPC if write else p.EINVAL,
                f"range {req.offset}+{req.length} is beyond the export's {self.export.size} bytes",
            )

    async def _execute(self, req: p.Request, payload: bytes | None) -> list[bytes]:
        e, fua = self.export, bool(req.flags & p.CMD_FLAG_FUA)
        kind = req.type
        allowed = FLAGS.get(kind)
        if allowed is None:
            raise NbdError(p.EINVAL, f"command {kind} is not supported")
        if req.flags & ~allowed:
            raise NbdError(
                p.EINVAL, f"flags {req.flags & ~allowed:#x} are not valid for command {kind}"
            )
        if kind in WRITES and e.read_only:
            raise NbdError(p.EPERM, f"export {e.name} is read-only")
        if kind == p.CMD_READ:
            if req.length > p.MAX_PAYLOAD:
                raise NbdError(p.EINVAL, f"read of {req.length} bytes exceeds the maximum")
            self._check_range(req, write=False)
            if req.length == 0:  # a data chunk must hold at least one byte (proto.md)
                return self._ok(req)
            data = await self._call(lambda: e.read(req.offset, req.length), write=False)
            if self.s.structured:
                return [p.structured_data_header(req.cookie, req.offset, len(data)), data]
            return [p.simple_reply(req.cookie), data]
        if kind == p.CMD_WRITE:
            assert payload is not None
            self._check_range(req, write=True)
            # A write that can be done without blocking is done here, saving two
            # thread hand-offs that wait for the GIL while a snapshot builds.
            if fua or not e.write_nowait(req.offset, payload):
                await self._call(lambda: e.write(req.offset, payload, fua=fua), write=True)
        elif kind in (p.CMD_TRIM, p.CMD_WRITE_ZEROES):
            self._check_range(req, write=True)
            punch = kind == p.CMD_TRIM or not req.flags & p.CMD_FLAG_NO_HOLE
            await self._call(
                lambda: e.write_zeroes(req.offset, req.length, punch=punch, fua=fua), write=True
            )
        elif kind == p.CMD_FLUSH:
            await self._call(e.flush, write=True)
        else:
            return await self._block_status(req)
        return self._ok(req)

    async def _block_status(self, req: p.Request) -> list[bytes]:
        if not self.s.allocation:
            raise NbdError(p.EINVAL, "no metadata context was negotiated")
        if req.length == 0:
            raise NbdError(p.EINVAL, "block status of an empty range")
        self._check_range(req, write=False)
        e = self.export
        runs = await self._call(lambda: e.extents(req.offset, req.length), write=False)
        descriptors = [(n, 0 if data else p.STATE_HOLE | p.STATE_ZERO) for _, n, data in runs]
        if req.flags & p.CMD_FLAG_REQ_ONE:
            descriptors = descriptors[:1]
        return [p.block_status(req.cookie, CONTEXT_ID, descriptors)]

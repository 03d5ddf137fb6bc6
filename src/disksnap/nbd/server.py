"""The NBD listener of ``disksnap serve``: one asyncio server on the loop it is started
on (``disksnap serve`` gives it a loop and a thread of its own, cli/serve_nbd.py), disk
I/O in its own thread pool.

Access control is the network: NBD carries no credentials here, so the server binds
to loopback unless it is told ``allow_remote`` (a trusted-network setting; TLS for NBD
comes with distributed mode). A disk being deleted disconnects its clients: the engine
tells the server before it cuts the disk's I/O off, the server stops reading their
requests, lets those in flight finish and closes the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from disksnap.engine.engine import Engine
from disksnap.meta import Meta
from disksnap.nbd import proto as p
from disksnap.nbd.exports import Exports
from disksnap.nbd.handshake import Handshake
from disksnap.nbd.transmission import BUDGET, REPLY_GRACE, Transmission

log = logging.getLogger("disksnap.nbd")

THREADS = 16
# Seconds from accepting a connection to the end of its option haggling. Clients haggle
# in milliseconds; without a deadline an idle socket held a task and a descriptor for
# ever, and enough of them would exhaust the process's files.
HANDSHAKE_TIMEOUT = 60.0
# Connections served at once. Each may buffer up to a few hundred MiB (a request being
# read, requests in flight, replies not yet taken), so their number is what bounds the
# server's memory; one more is closed at once, before the greeting.
MAX_CLIENTS = 32


class Advertised(Protocol):
    """Where the server records its live address (``cli.serve.Endpoints``)."""

    nbd: str


def _nothing() -> None:
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NbdServer:
    def __init__(
        self,
        meta: Meta,
        engine: Engine,
        *,
        host: str = "127.0.0.1",
        port: int = 10809,
        allow_remote: bool = False,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"NBD has no authentication: binding {host} needs the explicit "
                "allow-remote setting (trusted networks only)"
            )
        self.host = host
        self.port = port
        self.handshake_timeout = handshake_timeout
        self.max_clients = max_clients
        self.engine = engine
        self.exports = Exports(meta, engine)
        self.address: tuple[str, int] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[asyncio.Task[None], str | None] = {}  # task -> disk id served
        self._unwatch: Callable[[], None] = _nothing

    async def start(self, endpoints: Advertised | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="nbd")
        # The stream limit only decides when reading pauses; above the payload maximum,
        # a whole request's payload is read without pausing the socket for each piece.
        self._server = await asyncio.start_server(
            self._client, self.host, self.port, limit=2 * p.MAX_PAYLOAD, backlog=64
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = (host, port)
        if endpoints is not None:
            endpoints.nbd = f"nbd://[{host}]:{port}" if ":" in host else f"nbd://{host}:{port}"
        self._unwatch = self.engine.watch_removals(self._removed)
        log.info("NBD on %s:%s", host, port)

    async def stop(self) -> None:
        self._unwatch()
        if self._server is not None:
            self._server.close()
        clients = list(self._clients)
        for task in clients:
            task.cancel()
        if clients:
            await asyncio.wait(clients)
        if self._server is not None:
            await self._server.wait_closed()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _removed(self, disk_id: str) -> None:
        """Engine watcher: runs in the deleting thread, so it only hands the news on."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._disconnect, disk_id)

    def _disconnect(self, disk_id: str) -> None:
        for task, served in self._clients.items():
            if served == disk_id:
                log.info("NBD: disk %s deleted, disconnecting its client", disk_id)
                task.cancel()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        assert self._pool is not None
        peer = writer.get_extra_info("peername")
        if len(self._clients) >= self.max_clients:
            log.warning("NBD %s: %d clients already, refusing", peer, self.max_clients)
            writer.transport.abort()
            return
        self._clients[task] = None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.transport.set_write_buffer_limits(high=BUDGET)
        try:
            try:
                # In this task (not wait_for's): a stop() that cancels it is never lost.
                async with asyncio.timeout(self.handshake_timeout):
                    session = await Handshake(reader, writer, self.exports).run()
            except TimeoutError:
                log.info(
                    "NBD %s: no export chosen in %ss, disconnecting", peer, self.handshake_timeout
                )
                return
            if session is None:
                return
            self._clients[task] = session.export.disk_id
            log.info(
                "NBD %s: export %s (%s)",
                peer,
                session.export.name,
                "read-only" if session.export.read_only else "read-write",
            )
            try:
                await Transmission(reader, writer, session, self._pool).run()
            finally:
                session.export.close()
        except p.ProtocolError as e:
            log.info("NBD %s: protocol error, disconnecting: %s", peer, e)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up
        except asyncio.CancelledError:
            pass  # server shutdown or disk deleted
        finally:
            del self._clients[task]
            writer.close()
            # Closing flushes what is buffered first: a client that does not read gets
            # REPLY_GRACE, then the connection is dropped.
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                try:
                    await asyncio.wait_for(writer.wait_closed(), REPLY_GRACE)
                except TimeoutError:
                    writer.transport.abort()

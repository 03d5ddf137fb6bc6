"""The NBD options of ``disksnap serve`` and the listener they configure (docs/nbd.md).

The NBD server runs on an event loop of its own, in its own thread: a small write is
done on the loop (``Disk.write_nowait``), and a page-cache write that the kernel blocks
(writeback, dirty-page throttling) then holds NBD's loop only, not REST and gRPC.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from disksnap.engine.engine import Engine
from disksnap.meta import Meta
from disksnap.nbd.server import Advertised, NbdServer, is_loopback


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nbd-port", type=int, default=10809, help="NBD port (default 10809; 0 picks a free port)"
    )
    p.add_argument("--nbd-host", default="127.0.0.1", help="NBD listen address (default 127.0.0.1)")
    p.add_argument(
        "--nbd-allow-remote",
        action="store_true",
        help="allow --nbd-host to be a non-loopback address: NBD has no authentication, "
        "so only on a trusted network",
    )


class OwnLoop:
    """A listener that serves an ``NbdServer`` on a new event loop in a new thread."""

    def __init__(self, server: NbdServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        # A daemon: should the serve loop die without stopping it, the process still ends.
        self._thread = threading.Thread(target=self._loop.run_forever, name="nbd-loop", daemon=True)

    async def start(self, endpoints: Advertised) -> None:
        self._thread.start()
        try:
            await self._on_loop(self.server.start(endpoints))
        except BaseException:
            self._end()
            raise

    async def stop(self) -> None:
        try:
            await self._on_loop(self.server.stop())
        finally:
            self._end()

    async def _on_loop(self, coro: Coroutine[Any, Any, None]) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _end(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def listener(args: argparse.Namespace, meta: Meta, engine: Engine) -> OwnLoop:
    if not args.nbd_allow_remote and not is_loopback(args.nbd_host):
        raise SystemExit(
            f"disksnap serve: NBD has no authentication; serving it on {args.nbd_host} "
            "needs --nbd-allow-remote (trusted networks only)"
        )
    server = NbdServer(
        meta, engine, host=args.nbd_host, port=args.nbd_port, allow_remote=args.nbd_allow_remote
    )
    return OwnLoop(server)

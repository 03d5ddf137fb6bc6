"""The real ``NbdServer`` in the test's own event loop, on a free port, over SQLite
metadata and an engine in a temporary directory; raw sockets as clients."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from disksnap.domain.clock import FakeClock
from disksnap.engine.engine import Engine
from disksnap.meta import Meta
from disksnap.nbd.server import NbdServer


@contextlib.asynccontextmanager
async def nbd_server(root: Path, **options: Any) -> AsyncIterator[NbdServer]:
    """A started server with ``options`` (``max_clients``, ``handshake_timeout``, ...);
    stopped, and its engine and metadata closed, on the way out."""
    clock = FakeClock()
    meta = Meta.open(f"sqlite:///{root / 'meta.db'}", clock)
    engine = Engine(root / "engine", clock=clock)
    server = NbdServer(meta, engine, port=0, **options)
    await server.start()
    try:
        assert server.address is not None
        yield server
    finally:
        await server.stop()
        engine.close()
        meta.close()


def read_until_closed(sock: socket.socket, limit: int | None = None) -> bytes:
    """What the server sends until it hangs up (or ``limit`` bytes); a reset counts as
    a hang-up."""
    got = b""
    try:
        while limit is None or len(got) < limit:
            chunk = sock.recv(4096 if limit is None else limit - len(got))
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    return got

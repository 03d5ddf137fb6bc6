"""A connection that never finishes its handshake is dropped (review finding): it held
a task and a descriptor for ever, so idle sockets could exhaust the process's files.

In process: the real ``NbdServer`` on a free port over SQLite metadata and an engine in
tmp_path, with a short handshake deadline; a raw socket as the client."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

from disksnap.domain.clock import FakeClock
from disksnap.engine.engine import Engine
from disksnap.meta import Meta
from disksnap.nbd.server import NbdServer

IHAVEOPT = 0x49484156454F5054


def _until_closed(sock: socket.socket) -> bytes:
    got = b""
    while chunk := sock.recv(4096):
        got += chunk
    return got


async def _scenario(root: Path) -> tuple[bytes, bytes]:
    clock = FakeClock()
    meta = Meta.open(f"sqlite:///{root / 'meta.db'}", clock)
    engine = Engine(root / "engine", clock=clock)
    server = NbdServer(meta, engine, port=0, handshake_timeout=0.2)
    await server.start()
    assert server.address is not None
    loop = asyncio.get_running_loop()
    try:
        with socket.create_connection(server.address, timeout=10) as idle:
            silent = await loop.run_in_executor(None, _until_closed, idle)
        with socket.create_connection(server.address, timeout=10) as haggler:
            # Greeted, flags sent, then an option header whose data never comes.
            haggler.sendall(struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, 3, 100))
            stalled = await loop.run_in_executor(None, _until_closed, haggler)
    finally:
        await server.stop()
        engine.close()
        meta.close()
    return silent, stalled


def test_a_client_that_never_finishes_its_handshake_is_disconnected(tmp_path: Path) -> None:
    silent, stalled = asyncio.run(_scenario(tmp_path))
    assert silent[:8] == b"NBDMAGIC"  # the greeting, then the close
    assert len(silent) == 18
    assert len(stalled) == 18

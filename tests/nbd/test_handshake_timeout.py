"""A connection that never finishes its handshake is dropped (review finding): it held
a task and a descriptor for ever, so idle sockets could exhaust the process's files.

In process: the real ``NbdServer`` on a free port over SQLite metadata and an engine in
tmp_path, with a short handshake deadline; a raw socket as the client."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

from tests.nbd.inprocess import nbd_server, read_until_closed

IHAVEOPT = 0x49484156454F5054


async def _scenario(root: Path) -> tuple[bytes, bytes]:
    async with nbd_server(root, handshake_timeout=0.2) as server:
        address = server.address
        assert address is not None
        loop = asyncio.get_running_loop()
        with socket.create_connection(address, timeout=10) as idle:
            silent = await loop.run_in_executor(None, read_until_closed, idle)
        with socket.create_connection(address, timeout=10) as haggler:
            # Greeted, flags sent, then an option header whose data never comes.
            haggler.sendall(struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, 3, 100))
            stalled = await loop.run_in_executor(None, read_until_closed, haggler)
    return silent, stalled


def test_a_client_that_never_finishes_its_handshake_is_disconnected(tmp_path: Path) -> None:
    silent, stalled = asyncio.run(_scenario(tmp_path))
    assert silent[:8] == b"NBDMAGIC"  # the greeting, then the close
    assert len(silent) == 18
    assert len(stalled) == 18

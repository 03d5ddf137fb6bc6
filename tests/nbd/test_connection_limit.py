"""The number of NBD connections is bounded (each may buffer hundreds of MiB): one over
the limit is closed before the greeting, and a freed place is served again.

In process: the real ``NbdServer`` on a free port over SQLite metadata and an engine in
tmp_path; raw sockets as clients."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from tests.nbd.inprocess import nbd_server, read_until_closed

GREETING = 18  # NBDMAGIC, IHAVEOPT, handshake flags


def _greeting(sock: socket.socket) -> bytes:
    """What the server says first: the greeting, or nothing if it hangs up."""
    return read_until_closed(sock, GREETING)


async def _scenario(root: Path) -> tuple[list[bytes], bytes, bytes]:
    async with nbd_server(root, max_clients=2) as server:
        address = server.address
        assert address is not None
        loop = asyncio.get_running_loop()

        def connect() -> socket.socket:
            return socket.create_connection(address, timeout=10)

        first, second = connect(), connect()
        greeted = [await loop.run_in_executor(None, _greeting, s) for s in (first, second)]
        with connect() as third:
            refused = await loop.run_in_executor(None, _greeting, third)
        first.close()
        async with asyncio.timeout(10):
            while len(server._clients) > 1:  # the server notices the hang-up
                await asyncio.sleep(0.01)
        with connect() as fourth:
            again = await loop.run_in_executor(None, _greeting, fourth)
        second.close()
    return greeted, refused, again


def test_a_connection_over_the_limit_is_closed_and_a_freed_place_is_served(
    tmp_path: Path,
) -> None:
    greeted, refused, again = asyncio.run(_scenario(tmp_path))
    assert [g[:8] for g in greeted] == [b"NBDMAGIC", b"NBDMAGIC"]
    assert refused == b""
    assert again[:8] == b"NBDMAGIC"

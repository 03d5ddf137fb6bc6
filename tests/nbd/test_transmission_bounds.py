"""Memory bounds of one connection's transmission phase against a client that
pipelines without limit (review finding): the server must stop taking requests once
``MAX_INFLIGHT`` are waiting, however small they are - each one in flight holds a task
and a list of the earlier requests it waits for.

In process, over a real socket pair, with the real ``Transmission`` and a small real
export whose writes wait for a gate (a slow disk), so the queue builds deterministically.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

from disksnap.nbd import proto as p
from disksnap.nbd.handshake import Session
from disksnap.nbd.transmission import MAX_INFLIGHT, Transmission

SIZE = 1 << 20
REQUESTS = 2 * MAX_INFLIGHT


class SlowExport:
    """An in-memory disk whose writes wait until ``gate`` is set."""

    name = "slow"
    size = SIZE
    read_only = False
    multi_conn = False
    disk_id = None

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.data = bytearray(SIZE)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])

    def write(self, offset: int, data: bytes, *, fua: bool) -> None:
        self.gate.wait(30)
        self.data[offset : offset + len(data)] = data

    def write_nowait(self, offset: int, data: bytes) -> bool:
        return False  # every write waits for the gate, in a thread

    def write_zeroes(self, offset: int, length: int, *, punch: bool, fua: bool) -> None:
        self.write(offset, bytes(length), fua=fua)

    def flush(self) -> None:
        pass

    def extents(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        return [(offset, length, True)]

    def close(self) -> None:
        pass


async def _scenario() -> tuple[int, list[int]]:
    server_sock, client_sock = socket.socketpair()
    export = SlowExport()
    reader, writer = await asyncio.open_connection(sock=server_sock)
    session = Session(export, structured=False, allocation=False, flags=0)
    with ThreadPoolExecutor(4) as pool:
        t = Transmission(reader, writer, session, pool)
        serving = asyncio.create_task(t.run())
        # Every request overlaps the one before: each waits for all earlier ones.
        requests = b"".join(
            p.REQUEST.pack(p.REQUEST_MAGIC, 0, p.CMD_WRITE_ZEROES, i, 0, 4096)
            for i in range(REQUESTS)
        ) + p.REQUEST.pack(p.REQUEST_MAGIC, 0, p.CMD_DISC, 0, 0, 0)
        loop = asyncio.get_running_loop()
        sending = loop.run_in_executor(None, client_sock.sendall, requests)
        peak = 0
        for _ in range(3000):  # until the server stops reading (fixed) or took all (bug)
            peak = max(peak, len(t.inflight))
            if peak >= REQUESTS or t.budget.waiting:
                break
            await asyncio.sleep(0.01)
        export.gate.set()
        await sending
        replies = await loop.run_in_executor(None, _replies, client_sock, REQUESTS)
        await serving
    writer.close()
    client_sock.close()
    return peak, replies


def _replies(sock: socket.socket, count: int) -> list[int]:
    errors: list[int] = []
    buf = b""
    while len(errors) < count:
        while len(buf) < 16:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the connection"
            buf += chunk
        magic, error, _cookie = struct.unpack(">IIQ", buf[:16])
        assert magic == p.SIMPLE_REPLY_MAGIC
        errors.append(error)
        buf = buf[16:]
    return errors


def test_requests_in_flight_are_bounded_by_count_not_only_by_bytes() -> None:
    peak, replies = asyncio.run(_scenario())
    assert peak <= MAX_INFLIGHT
    assert replies == [0] * REQUESTS  # all served in the end

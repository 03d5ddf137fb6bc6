"""disksnap's own NBD client (``disksnap.nbd.client``: the CLI's import and export, the
benchmarks) against another server, nbdkit's memory plugin: after structured replies
are negotiated, nbdkit still answers writes, flushes and trims with simple replies, as
the protocol allows."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from disksnap.nbd import proto as p
from disksnap.nbd.client import NbdClient, NbdClientError, Url
from tests.grpc.conftest import free_port

MiB = 1 << 20
SIZE = 16 * MiB


@pytest.fixture
def nbdkit() -> Iterator[Url]:
    port = free_port()
    command = ["nbdkit", "-f", "-i", "127.0.0.1", "-p", str(port), "memory", str(SIZE)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, f"nbdkit exited with {proc.returncode}"
            assert time.monotonic() < deadline, "nbdkit did not start"
            time.sleep(0.05)
        yield Url("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(30)


def test_writes_flushes_and_reads_against_nbdkit(nbdkit: Url) -> None:
    data = random.Random(3).randbytes(64 * 1024)
    with NbdClient(nbdkit, "") as c:
        assert c.size == SIZE
        assert c.call(p.CMD_WRITE, MiB, len(data), data) == b""
        c.flush()
        assert c.call(p.CMD_READ, MiB, len(data)) == data
        assert c.call(p.CMD_READ, 0, 4096) == bytes(4096)


def test_pipelined_writes_against_nbdkit(nbdkit: Url) -> None:
    blocks = [random.Random(i).randbytes(4096) for i in range(32)]
    answered: list[int] = []
    with NbdClient(nbdkit, "") as c:
        writes = [(p.CMD_WRITE, i * 8192, 4096, b) for i, b in enumerate(blocks)]
        c.pipeline(writes, lambda reply: answered.append(reply.offset))
        assert sorted(answered) == [i * 8192 for i in range(32)]
        for i, b in enumerate(blocks):
            assert c.call(p.CMD_READ, i * 8192, 4096) == b


def test_an_error_in_a_simple_reply_is_raised(nbdkit: Url) -> None:
    with NbdClient(nbdkit, "") as c, pytest.raises(NbdClientError, match="error"):
        c.call(p.CMD_WRITE, SIZE, 4096, bytes(4096))  # past the end

"""``disksnap serve`` runs NBD on an event loop of its own thread (cli/serve_nbd.py):
the serve loop stays free while NBD works, start failures end the thread, and stop
ends it.

In process: the real ``NbdServer`` over SQLite metadata and an engine in tmp_path."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from disksnap.cli.serve_nbd import OwnLoop
from disksnap.domain.clock import FakeClock
from disksnap.engine.engine import Engine
from disksnap.meta import Meta
from disksnap.nbd.server import NbdServer
from tests.nbd.inprocess import read_until_closed

GREETING = 18


@dataclass
class Endpoints:
    nbd: str = ""


def _nbd_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "nbd-loop"]


async def _serve_once(root: Path, port: int) -> tuple[str, bytes, bool]:
    clock = FakeClock()
    meta = Meta.open(f"sqlite:///{root / 'meta.db'}", clock)
    engine = Engine(root / "engine", clock=clock)
    try:
        listener = OwnLoop(NbdServer(meta, engine, port=port))
        endpoints = Endpoints()
        await listener.start(endpoints)
        try:
            address = listener.server.address
            assert address is not None
            # The greeting comes from the other loop while this one waits on a thread.
            with socket.create_connection(address, timeout=10) as sock:
                greeting = await asyncio.to_thread(read_until_closed, sock, GREETING)
            other_loop = listener.server._loop is not asyncio.get_running_loop()
        finally:
            await listener.stop()
        return endpoints.nbd, greeting, other_loop
    finally:
        engine.close()
        meta.close()


def test_nbd_serves_from_a_loop_and_thread_of_its_own(tmp_path: Path) -> None:
    advertised, greeting, other_loop = asyncio.run(_serve_once(tmp_path, 0))
    assert advertised.startswith("nbd://127.0.0.1:")
    assert greeting.startswith(b"NBDMAGIC")
    assert other_loop
    assert not _nbd_threads()  # stop ended it


def test_a_start_that_fails_ends_the_thread(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            asyncio.run(_serve_once(tmp_path, port))
    assert not _nbd_threads()

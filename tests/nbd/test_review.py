"""Review findings: each test is a bug that was found in the NBD server and fixed."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Server
from tests.nbd import client as nbd
from tests.nbd.conftest import MiB, connect, create_disk

SIZE = 64 * MiB


def test_server_stops_while_a_client_reads_without_taking_its_replies(tmp_path: Path) -> None:
    """A client that pipelines large reads and never reads the replies fills the socket;
    SIGTERM must still stop the server (it used to wait for those replies forever)."""
    srv = Server(tmp_path / "data").start()
    try:
        disk = create_disk(srv, SIZE)
        c = connect(srv, disk)
        for _ in range(8):  # 256 MiB of replies: more than any socket buffer holds
            c.send(nbd.READ, 0, 32 * MiB)
        assert srv.stop() == 0
        c.close()
    finally:
        if srv.proc is not None:
            srv.proc.kill()
            srv.proc.wait()

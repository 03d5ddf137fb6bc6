"""Review findings: each test is a bug that was found in the NBD server and fixed."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.e2e.conftest import Server
from tests.nbd import client as nbd
from tests.nbd.conftest import MiB, connect, create_disk

SIZE = 64 * MiB
SEND_DF = 1 << 7


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


def test_df_is_offered_only_with_structured_replies(srv: Server) -> None:
    """proto.md: the server MUST NOT set NBD_FLAG_SEND_DF unless structured replies
    were negotiated (DF only means something for structured READ replies)."""
    disk = create_disk(srv, 4 * MiB)
    host, port = srv.nbd
    with connect(srv, disk, structured=False) as c:
        assert c.flags & SEND_DF == 0
        c.disconnect()
    with nbd.Client(host, port) as c:  # NBD_OPT_EXPORT_NAME: never structured
        raw = disk.encode()
        c.sock.sendall(struct.pack(">QII", nbd.IHAVEOPT, 1, len(raw)) + raw)
        _size, flags = struct.unpack(">QH", c._read(10))
        assert flags & 1
        assert not flags & SEND_DF
        c.disconnect()
    with connect(srv, disk) as c:
        assert c.flags & SEND_DF
        c.disconnect()


def test_a_long_error_message_is_cut_on_a_character_boundary(srv: Server) -> None:
    """Option error messages are UTF-8 (proto.md) and at most 4096 bytes: a long export
    name echoed back must not be cut inside a character."""
    host, port = srv.nbd
    with nbd.Client(host, port) as c:
        with pytest.raises(nbd.OptionRefused) as e:  # decoding the message must work
            c.info("é" * 2048)  # 4096 bytes; "no export named '" is 17 before it
        assert e.value.reply == nbd.REP_ERR_UNKNOWN


def test_a_zero_length_read_sends_no_empty_data_chunk(srv: Server) -> None:
    """proto.md: an OFFSET_DATA chunk's length MUST be at least 9 (it describes at least
    one byte), so a structured reply to a read of nothing has no data chunk."""
    disk = create_disk(srv, 4 * MiB)
    with connect(srv, disk) as c:
        cookie = c.send(nbd.READ, 0, 0)
        magic, flags, kind, got, length = struct.unpack(">IHHQI", c._read(20))
        assert (magic, got) == (0x668E33EF, cookie)
        body = c._read(length)
        assert kind != 1 or length >= 9, (kind, length, body)
        assert (kind, flags & 1, length) == (0, 1, 0)  # NBD_REPLY_TYPE_NONE, done
        assert c.read(0, 4) == bytes(4)  # the session goes on
        c.disconnect()

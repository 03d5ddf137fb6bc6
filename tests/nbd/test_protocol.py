"""Protocol-level behaviour of the NBD server, through a raw client: the options of the
handshake, error replies, block status, pipelining, and disconnecting a deleted disk."""

from __future__ import annotations

import struct

import pytest

from tests.e2e.conftest import Server
from tests.nbd import client as nbd
from tests.nbd.conftest import MiB, connect, create_disk, delete_disk, snapshot

SIZE = 16 * MiB


@pytest.fixture(scope="module")
def disk(srv: Server) -> str:
    return create_disk(srv, SIZE)


def test_go_reports_size_flags_and_block_sizes(srv: Server, disk: str) -> None:
    with connect(srv, disk) as c:
        assert c.size == SIZE
        assert c.block_sizes == (1, 4096, 32 * MiB)
        # HAS_FLAGS, FLUSH, FUA, TRIM, WRITE_ZEROES, DF; not read-only, not multi-conn.
        assert c.flags == 1 | 4 | 8 | 32 | 64 | 128


def test_unknown_exports_are_unknown(srv: Server) -> None:
    host, port = srv.nbd
    for name in ("fhmnosuchdisk0000000", "snapshot/fd8nosuchsnap0000000", "../etc", ""):
        with nbd.Client(host, port) as c:
            with pytest.raises(nbd.OptionRefused) as e:
                c.go(name)
            assert e.value.reply == nbd.REP_ERR_UNKNOWN
            with pytest.raises(nbd.OptionRefused):
                c.info(name)
            c.option(nbd.OPT_ABORT)


def test_info_list_and_unsupported_options(srv: Server, disk: str) -> None:
    host, port = srv.nbd
    with nbd.Client(host, port) as c:
        c.info(disk)
        assert c.size == SIZE
        assert disk in c.list()
        with pytest.raises(nbd.OptionRefused) as e:
            c.option(5)  # STARTTLS
        assert e.value.reply == nbd.REP_ERR_UNSUP
        with pytest.raises(nbd.OptionRefused) as e:
            c.option(nbd.OPT_LIST, b"junk")
        assert e.value.reply == nbd.REP_ERR_INVALID
        c.go(disk)  # haggling goes on after errors
        assert c.write(0, b"ok") == 0
        c.disconnect()


def test_meta_contexts(srv: Server, disk: str) -> None:
    host, port = srv.nbd
    with nbd.Client(host, port) as c:
        # SET before structured replies is refused; LIST is not.
        with pytest.raises(nbd.OptionRefused) as e:
            c.option(nbd.OPT_SET_META_CONTEXT, nbd.meta_query(disk, ["base:allocation"]))
        assert e.value.reply == nbd.REP_ERR_INVALID
        for queries in ([], ["base:"], ["base:allocation"]):
            replies = c.option(nbd.OPT_LIST_META_CONTEXT, nbd.meta_query(disk, queries))
            assert replies == [(nbd.REP_META_CONTEXT, b"\0\0\0\x01base:allocation")]
        assert c.option(nbd.OPT_LIST_META_CONTEXT, nbd.meta_query(disk, ["qemu:"])) == []
        c.option(nbd.OPT_STRUCTURED_REPLY)
        c.structured = True
        assert c.option(nbd.OPT_SET_META_CONTEXT, nbd.meta_query(disk, ["x:y"])) == []
        c.go(disk)  # no context chosen: block status is refused
        assert c.call(nbd.BLOCK_STATUS, 0, 4096).error == nbd.EINVAL
        c.disconnect()


def test_export_name_enters_transmission_with_simple_replies(srv: Server, disk: str) -> None:
    host, port = srv.nbd
    with nbd.Client(host, port) as c:
        raw = disk.encode()
        c.sock.sendall(struct.pack(">QII", nbd.IHAVEOPT, 1, len(raw)) + raw)
        size, flags = struct.unpack(">QH", c._read(10))  # no zeroes: negotiated
        assert (size, flags & 1) == (SIZE, 1)
        assert c.write(4096, b"simple") == 0
        assert c.read(4096, 6) == b"simple"
        assert c.call(nbd.READ, SIZE, 1).error == nbd.EINVAL
        c.disconnect()


def test_export_name_of_an_unknown_export_ends_the_session(srv: Server) -> None:
    host, port = srv.nbd
    with nbd.Client(host, port) as c:
        c.sock.sendall(struct.pack(">QII", nbd.IHAVEOPT, 1, 3) + b"bad")
        assert c.sock.recv(1) == b""


def test_out_of_range_requests_get_errors(srv: Server, disk: str) -> None:
    with connect(srv, disk) as c:
        assert c.call(nbd.READ, SIZE - 1, 2).error == nbd.EINVAL
        assert c.call(nbd.BLOCK_STATUS, SIZE, 1).error == nbd.EINVAL
        assert c.call(nbd.BLOCK_STATUS, 0, 0).error == nbd.EINVAL
        assert c.write(SIZE - 1, b"ab") == nbd.ENOSPC
        assert c.call(nbd.TRIM, SIZE, 4096).error == nbd.ENOSPC
        assert c.call(nbd.WRITE_ZEROES, 2**63, 4096).error == nbd.ENOSPC
        assert c.call(nbd.READ, 0, 33 * MiB).error == nbd.EINVAL  # above the maximum
        assert c.call(5, 0, 4096).error == nbd.EINVAL  # CACHE: not offered
        assert c.read(SIZE - 1, 1) == b"\0"  # the session goes on
        c.disconnect()


def test_flags_a_command_does_not_take_get_einval(srv: Server, disk: str) -> None:
    with connect(srv, disk) as c:
        assert c.write(0, b"kept") == 0
        assert c.call(nbd.WRITE, 0, 4, nbd.FLAG_NO_HOLE, b"lost").error == nbd.EINVAL
        assert c.call(nbd.WRITE, 0, 4, 1 << 7, b"lost").error == nbd.EINVAL  # unknown flag
        assert c.call(nbd.TRIM, 0, 4096, nbd.FLAG_REQ_ONE).error == nbd.EINVAL
        assert c.call(nbd.READ, 0, 4, nbd.FLAG_NO_HOLE).error == nbd.EINVAL
        assert c.call(nbd.BLOCK_STATUS, 0, 4096, nbd.FLAG_NO_HOLE).error == nbd.EINVAL
        assert c.call(nbd.WRITE_ZEROES, 0, 4096, 1 << 4).error == nbd.EINVAL  # FAST_ZERO
        assert c.read(0, 4) == b"kept"  # nothing was changed, and the session goes on
        # FUA is accepted on every command; DF on reads.
        assert c.call(nbd.FLUSH, 0, 0, nbd.FLAG_FUA).error == 0
        assert c.call(nbd.READ, 0, 4, nbd.FLAG_FUA | 4).error == 0
        assert c.call(nbd.WRITE, 4, 4, nbd.FLAG_FUA, b"more").error == 0
        assert c.read(0, 8) == b"keptmore"
        c.disconnect()


def test_block_status_needs_the_context_and_honours_req_one(srv: Server) -> None:
    disk = create_disk(srv, SIZE)
    with connect(srv, disk, allocation=False) as c:
        assert c.call(nbd.BLOCK_STATUS, 0, 4096).error == nbd.EINVAL
        c.disconnect()
    with connect(srv, disk) as c:
        assert c.write(MiB, b"x" * 4096) == 0
        reply = c.call(nbd.BLOCK_STATUS, 0, SIZE)
        assert reply.extents == [(MiB, 3), (4096, 0), (SIZE - MiB - 4096, 3)]
        assert c.call(nbd.BLOCK_STATUS, 0, SIZE, nbd.FLAG_REQ_ONE).extents == [(MiB, 3)]
        # WRITE_ZEROES with NO_HOLE allocates; without it, it punches a hole.
        assert c.call(nbd.WRITE_ZEROES, 2 * MiB, 8192, nbd.FLAG_NO_HOLE).error == 0
        assert c.call(nbd.BLOCK_STATUS, 2 * MiB, 8192).extents == [(8192, 0)]
        assert c.call(nbd.WRITE_ZEROES, MiB, 4096).error == 0
        assert c.call(nbd.BLOCK_STATUS, MiB, 4096).extents == [(4096, 3)]
        assert c.read(2 * MiB, 8192) == bytes(8192)
        c.disconnect()


def test_pipelined_requests_keep_the_order_of_overlapping_writes(srv: Server) -> None:
    disk = create_disk(srv, SIZE)
    with connect(srv, disk) as c:
        cookies = []
        for i in range(200):  # overlapping writes, a read after each, all in flight
            cookies.append(c.send(nbd.WRITE, 8192 * (i % 7), 65536, data=bytes([i]) * 65536))
            cookies.append(c.send(nbd.READ, 8192 * (i % 7), 65536))
        cookies.append(c.send(nbd.FLUSH, 0, 0))
        reads = {}
        for _ in cookies:
            r = c.recv()
            assert r.error == 0
            if r.data:
                reads[r.cookie] = r.data
        for i in range(200):  # each read saw the write sent just before it
            assert reads[cookies[2 * i + 1]] == bytes([i]) * 65536
        expected = bytearray(8192 * 6 + 65536)
        for i in range(200):
            expected[8192 * (i % 7) : 8192 * (i % 7) + 65536] = bytes([i]) * 65536
        assert c.read(0, len(expected)) == bytes(expected)
        c.disconnect()


def test_fua_writes_and_flush_succeed(srv: Server, disk: str) -> None:
    with connect(srv, disk) as c:
        assert c.write(8 * MiB, b"durable", nbd.FLAG_FUA) == 0
        assert c.call(nbd.FLUSH, 0, 0).error == 0
        assert c.read(8 * MiB, 7) == b"durable"
        c.disconnect()


def test_a_deleted_disk_disconnects_its_clients(srv: Server) -> None:
    disk = create_disk(srv, SIZE)
    with connect(srv, disk) as writer, connect(srv, f"readonly/{disk}") as reader:
        assert writer.write(0, b"bye") == 0
        delete_disk(srv, disk)
        for c in (writer, reader):
            c.sock.settimeout(10)
            with pytest.raises(ConnectionError):  # the server closes the connection
                _read_until_closed(c)


def _read_until_closed(c: nbd.Client) -> None:
    """Requests the server read before it let the client go get ESHUTDOWN; then the
    connection is closed (ConnectionError)."""
    for _ in range(3):
        assert c.call(nbd.READ, 0, 3).error == nbd.ESHUTDOWN


def test_a_snapshot_export_refuses_every_write(srv: Server) -> None:
    disk = create_disk(srv, SIZE)
    with connect(srv, disk) as c:
        assert c.write(0, b"snap") == 0
        c.disconnect()
    snap = snapshot(srv, disk)
    with connect(srv, f"snapshot/{snap}") as c:
        assert c.write(0, b"x") == nbd.EPERM
        assert c.call(nbd.TRIM, 0, 4096).error == nbd.EPERM
        assert c.call(nbd.WRITE_ZEROES, 0, 4096).error == nbd.EPERM
        assert c.call(nbd.FLUSH, 0, 0).error == 0
        assert c.read(0, 4) == b"snap"
        c.disconnect()

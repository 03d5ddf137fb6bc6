"""A small blocking NBD client for protocol-level tests: written from proto.md on its
own (it shares no code with the server), so an encoding mistake on either side shows.

Real clients (qemu-img, qemu-io, nbdcopy, nbdinfo) carry the end-to-end tests; this
one reaches what they never send: out-of-range requests, writes to read-only
exports, pipelined requests whose acknowledgements a test needs to see one by one.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

IHAVEOPT = 0x49484156454F5054
OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO = 2, 3, 6, 7
OPT_STRUCTURED_REPLY, OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT = 8, 9, 10
REP_ACK, REP_SERVER, REP_INFO, REP_META_CONTEXT = 1, 2, 3, 4
REP_ERR_UNSUP = (1 << 31) | 1
REP_ERR_POLICY = (1 << 31) | 2
REP_ERR_INVALID = (1 << 31) | 3
REP_ERR_UNKNOWN = (1 << 31) | 6

READ, WRITE, DISC, FLUSH, TRIM, WRITE_ZEROES, BLOCK_STATUS = 0, 1, 2, 3, 4, 6, 7
FLAG_FUA, FLAG_NO_HOLE, FLAG_REQ_ONE = 1, 2, 8
READ_ONLY = 1 << 1

EPERM, EIO, EINVAL, ENOSPC, ESHUTDOWN = 1, 5, 22, 28, 108


class OptionRefused(Exception):
    def __init__(self, reply: int, message: str) -> None:
        super().__init__(f"option refused ({reply:#x}): {message}")
        self.reply = reply


@dataclass
class Reply:
    cookie: int
    error: int = 0
    data: bytes = b""
    extents: list[tuple[int, int]] = field(default_factory=list)


class Client:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.structured = False
        self.size = 0
        self.flags = 0
        self.block_sizes: tuple[int, int, int] | None = None
        self._cookie = 0
        magic, opt, hflags = struct.unpack(">QQH", self._read(18))
        assert (magic, opt) == (0x4E42444D41474943, IHAVEOPT)
        assert hflags & 1, "server must offer fixed newstyle"
        self.sock.sendall(struct.pack(">I", 1 | 2))  # fixed newstyle, no zeroes

    @classmethod
    def connect(
        cls, host: str, port: int, name: str, *, structured: bool = True, allocation: bool = True
    ) -> Client:
        c = cls(host, port)
        try:
            c._negotiate(name, structured=structured, allocation=allocation)
        except BaseException:
            c.close()
            raise
        return c

    def _negotiate(self, name: str, *, structured: bool, allocation: bool) -> None:
        c = self
        if structured:
            c.option(OPT_STRUCTURED_REPLY)
            c.structured = True
            if allocation:
                c.option(OPT_SET_META_CONTEXT, meta_query(name, ["base:allocation"]))
        c.go(name)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    # --- handshake ------------------------------------------------------------------

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        return bytes(buf)

    def option(self, option: int, data: bytes = b"") -> list[tuple[int, bytes]]:
        """Send an option; return its replies up to the final ACK (raise on an error)."""
        self.sock.sendall(struct.pack(">QII", IHAVEOPT, option, len(data)) + data)
        replies: list[tuple[int, bytes]] = []
        while True:
            magic, opt, kind, length = struct.unpack(">QIII", self._read(20))
            assert magic == 0x3E889045565A9
            assert opt == option
            body = self._read(length)
            if kind & (1 << 31):
                raise OptionRefused(kind, body.decode())
            if kind == REP_ACK:
                return replies
            replies.append((kind, body))

    def info(self, name: str, option: int = OPT_INFO) -> list[tuple[int, bytes]]:
        raw = name.encode()
        data = struct.pack(">I", len(raw)) + raw + struct.pack(">HH", 1, 3)  # ask block size
        replies = self.option(option, data)
        for kind, body in replies:
            assert kind == REP_INFO
            (info,) = struct.unpack(">H", body[:2])
            if info == 0:
                self.size, self.flags = struct.unpack(">QH", body[2:])
            elif info == 3:
                self.block_sizes = struct.unpack(">III", body[2:])
        return replies

    def go(self, name: str) -> None:
        self.info(name, OPT_GO)

    def list(self) -> list[str]:
        out = []
        for kind, body in self.option(OPT_LIST):
            assert kind == REP_SERVER
            (n,) = struct.unpack(">I", body[:4])
            out.append(body[4 : 4 + n].decode())
        return out

    # --- transmission ---------------------------------------------------------------

    def send(self, kind: int, offset: int, length: int, flags: int = 0, data: bytes = b"") -> int:
        self._cookie += 1
        header = struct.pack(">IHHQQI", 0x25609513, flags, kind, self._cookie, offset, length)
        self.sock.sendall(header + data)
        return self._cookie

    def recv(self, lengths: dict[int, int] | None = None) -> Reply:
        """One whole reply. ``lengths`` gives the read length of cookies that are reads
        (needed to parse simple replies)."""
        (magic,) = struct.unpack(">I", self._read(4))
        if magic == 0x67446698:
            error, cookie = struct.unpack(">IQ", self._read(12))
            n = (lengths or {}).get(cookie, 0)
            return Reply(cookie, error, self._read(n) if n and not error else b"")
        assert magic == 0x668E33EF, hex(magic)
        reply: Reply | None = None
        while True:
            flags, kind, cookie, length = struct.unpack(">HHQI", self._read(16))
            body = self._read(length)
            reply = reply or Reply(cookie)
            if kind == 1:  # OFFSET_DATA
                reply.data += body[8:]
            elif kind == 5:  # BLOCK_STATUS
                reply.extents += [
                    struct.unpack(">II", body[i : i + 8]) for i in range(4, len(body), 8)
                ]
            elif kind & (1 << 15):  # ERROR
                (reply.error,) = struct.unpack(">I", body[:4])
            if flags & 1:
                return reply
            (magic,) = struct.unpack(">I", self._read(4))
            assert magic == 0x668E33EF

    def call(self, kind: int, offset: int, length: int, flags: int = 0, data: bytes = b"") -> Reply:
        cookie = self.send(kind, offset, length, flags, data)
        reply = self.recv({cookie: length} if kind == READ else None)
        assert reply.cookie == cookie
        return reply

    def read(self, offset: int, length: int) -> bytes:
        reply = self.call(READ, offset, length)
        assert reply.error == 0, reply.error
        return reply.data

    def write(self, offset: int, data: bytes, flags: int = 0) -> int:
        return self.call(WRITE, offset, len(data), flags, data).error

    def disconnect(self) -> None:
        self.send(DISC, 0, 0)
        self.close()


def meta_query(name: str, queries: list[str]) -> bytes:
    raw = name.encode()
    out = struct.pack(">I", len(raw)) + raw + struct.pack(">I", len(queries))
    for q in queries:
        out += struct.pack(">I", len(q)) + q.encode()
    return out

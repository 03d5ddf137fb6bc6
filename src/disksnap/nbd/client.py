"""A small blocking NBD client with requests pipelined, for the CLI's disk import and
export and for benchmarks: fixed newstyle, NBD_OPT_GO, structured replies and
``base:allocation`` (so holes are skipped on export and never written on import).

Not a general client: it expects a read's data in one chunk, as this server and nbdkit
send it. Commands without data may be answered with simple replies even after structured
replies were negotiated (the protocol allows it; nbdkit does so for writes).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from disksnap.nbd import proto as p

WINDOW = 8  # requests in flight


class NbdClientError(Exception):
    """The server refused the export or a request, or broke the protocol."""


@dataclass(frozen=True)
class Reply:
    offset: int  # of the request
    length: int  # of the request
    data: bytes  # a read's data
    extents: list[tuple[int, int]]  # block status descriptors: (length, flags)


@dataclass(frozen=True)
class Url:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Url:
        """``nbd://host:port`` (an export name in the path is ignored)."""
        parts = urlsplit(url)
        if parts.scheme != "nbd" or not parts.hostname:
            raise ValueError(f"not an nbd://host:port URL: {url!r}")
        return cls(parts.hostname, parts.port or 10809)

    def export(self, name: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"nbd://{host}:{self.port}/{unquote(name)}"


class NbdClient:
    def __init__(self, url: Url, name: str) -> None:
        self.name = name
        self.sock = socket.create_connection((url.host, url.port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._cookie = 0
        self._pending: dict[int, tuple[int, int]] = {}  # cookie -> (offset, length)
        try:
            self.size, self.flags = self._handshake(name)
        except BaseException:
            self.sock.close()
            raise

    def __enter__(self) -> NbdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def read_only(self) -> bool:
        return bool(self.flags & p.TFLAG_READ_ONLY)

    def close(self) -> None:
        try:
            if not self._pending:
                self.sock.sendall(p.REQUEST.pack(p.REQUEST_MAGIC, 0, p.CMD_DISC, 0, 0, 0))
        except OSError:
            pass
        finally:
            self.sock.close()

    # --- handshake ------------------------------------------------------------------

    def _recv(self, n: int) -> bytes:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if not k:
                raise NbdClientError("the server closed the connection")
            got += k
        return bytes(buf)

    def _option(self, option: int, data: bytes) -> list[tuple[int, bytes]]:
        self.sock.sendall(p.OPTION_HEADER.pack(p.IHAVEOPT, option, len(data)) + data)
        replies: list[tuple[int, bytes]] = []
        while True:
            _magic, _opt, kind, length = struct.unpack(">QIII", self._recv(20))
            body = self._recv(length)
            if kind & (1 << 31):
                raise NbdClientError(f"export {self.name!r}: {body.decode(errors='replace')}")
            if kind == p.REP_ACK:
                return replies
            replies.append((kind, body))

    def _handshake(self, name: str) -> tuple[int, int]:
        magic, opt, _flags = struct.unpack(">QQH", self._recv(18))
        if (magic, opt) != (p.NBDMAGIC, p.IHAVEOPT):
            raise NbdClientError("not a newstyle NBD server")
        self.sock.sendall(struct.pack(">I", p.FLAG_FIXED_NEWSTYLE | p.FLAG_NO_ZEROES))
        self._option(p.OPT_STRUCTURED_REPLY, b"")
        raw = name.encode()
        query = p.BASE_ALLOCATION.encode()
        meta = struct.pack(">I", len(raw)) + raw + struct.pack(">II", 1, len(query)) + query
        self._option(p.OPT_SET_META_CONTEXT, meta)
        for kind, body in self._option(p.OPT_GO, struct.pack(">I", len(raw)) + raw + b"\0\0"):
            if kind == p.REP_INFO and body[:2] == b"\0\0":
                size, flags = struct.unpack(">QH", body[2:12])
                return int(size), int(flags)
        raise NbdClientError("the server sent no export information")

    # --- requests -------------------------------------------------------------------

    def _send(self, kind: int, offset: int, length: int, data: bytes = b"", flags: int = 0) -> int:
        self._cookie += 1
        header = p.REQUEST.pack(p.REQUEST_MAGIC, flags, kind, self._cookie, offset, length)
        self.sock.sendall(header + data if len(data) < 65536 else header)
        if len(data) >= 65536:
            self.sock.sendall(data)
        self._pending[self._cookie] = (offset, length)
        return self._cookie

    def _reply(self) -> Reply:
        """The next whole reply, whichever request it answers."""
        (magic,) = struct.unpack(">I", self._recv(4))
        if magic == p.SIMPLE_REPLY_MAGIC:
            error, cookie = struct.unpack(">IQ", self._recv(12))
            offset, n = self._pending.pop(cookie)
            if error:
                raise NbdClientError(f"request failed with error {error}")
            return Reply(offset, n, b"", [])
        if magic != p.STRUCTURED_REPLY_MAGIC:
            raise NbdClientError(f"unexpected reply magic {magic:#x}")
        data, extents = b"", []
        while True:
            flags, kind, cookie, length = struct.unpack(">HHQI", self._recv(16))
            body = self._recv(length)
            if kind == p.REPLY_TYPE_OFFSET_DATA:
                data += body[8:]
            elif kind == p.REPLY_TYPE_BLOCK_STATUS:
                extents += [struct.unpack(">II", body[i : i + 8]) for i in range(4, length, 8)]
            elif kind & (1 << 15):
                (error,) = struct.unpack(">I", body[:4])
                message = body[6:].decode(errors="replace")
                raise NbdClientError(f"request failed with error {error}: {message}")
            if flags & p.REPLY_FLAG_DONE:
                offset, n = self._pending.pop(cookie)
                return Reply(offset, n, data, extents)
            (magic,) = struct.unpack(">I", self._recv(4))

    def call(self, kind: int, offset: int, length: int, data: bytes = b"", flags: int = 0) -> bytes:
        """One request, waited for (nothing else may be in flight)."""
        self._send(kind, offset, length, data, flags)
        return self._reply().data

    def flush(self) -> None:
        self.call(p.CMD_FLUSH, 0, 0)

    def extents(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """(start, length, is_data) runs covering [offset, offset+length)."""
        runs: list[tuple[int, int, bool]] = []
        end = offset + length
        while offset < end:
            self._send(p.CMD_BLOCK_STATUS, offset, min(end - offset, 1 << 30))
            for length_, state in self._reply().extents:
                n = min(length_, end - offset)
                runs.append((offset, n, not state & p.STATE_HOLE))
                offset += n
                if offset >= end:
                    break
        return runs

    def pipeline(
        self,
        requests: Iterable[tuple[int, int, int, bytes]],
        on_reply: Callable[[Reply], None],
    ) -> None:
        """Send (kind, offset, length, data) requests, ``WINDOW`` in flight at a time;
        call ``on_reply`` for each reply as it comes."""
        for kind, offset, length, data in requests:
            while len(self._pending) >= WINDOW:
                on_reply(self._reply())
            self._send(kind, offset, length, data)
        while self._pending:
            on_reply(self._reply())

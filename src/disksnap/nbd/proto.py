"""NBD wire format: constants and the encoding of every message the server sends or
parses, as the NBD project's ``doc/proto.md`` defines them (fixed newstyle handshake,
simple and structured replies, the ``base:allocation`` metadata context).

Pure functions over bytes, no I/O, so each can be tested on its own. All integers
are big-endian (network byte order).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# --- handshake ------------------------------------------------------------------------

NBDMAGIC = 0x4E42444D41474943  # "NBDMAGIC"
IHAVEOPT = 0x49484156454F5054  # "IHAVEOPT"
OPT_REPLY_MAGIC = 0x3E889045565A9

FLAG_FIXED_NEWSTYLE = 1 << 0
FLAG_NO_ZEROES = 1 << 1
CLIENT_FLAGS_KNOWN = FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
_REP_ERR = 1 << 31
REP_ERR_UNSUP = _REP_ERR | 1
REP_ERR_POLICY = _REP_ERR | 2
REP_ERR_INVALID = _REP_ERR | 3
REP_ERR_PLATFORM = _REP_ERR | 4
REP_ERR_TLS_REQD = _REP_ERR | 5
REP_ERR_UNKNOWN = _REP_ERR | 6
REP_ERR_SHUTDOWN = _REP_ERR | 7
REP_ERR_TOO_BIG = _REP_ERR | 9

INFO_EXPORT = 0
INFO_NAME = 1
INFO_DESCRIPTION = 2
INFO_BLOCK_SIZE = 3

# Transmission flags (16 bits, sent with the export's size).
TFLAG_HAS_FLAGS = 1 << 0
TFLAG_READ_ONLY = 1 << 1
TFLAG_SEND_FLUSH = 1 << 2
TFLAG_SEND_FUA = 1 << 3
TFLAG_SEND_TRIM = 1 << 5
TFLAG_SEND_WRITE_ZEROES = 1 << 6
TFLAG_SEND_DF = 1 << 7
TFLAG_CAN_MULTI_CONN = 1 << 8

# --- transmission ---------------------------------------------------------------------

REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_CACHE = 5
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7

CMD_FLAG_FUA = 1 << 0
CMD_FLAG_NO_HOLE = 1 << 1
CMD_FLAG_DF = 1 << 2
CMD_FLAG_REQ_ONE = 1 << 3
CMD_FLAG_FAST_ZERO = 1 << 4

REPLY_FLAG_DONE = 1 << 0
REPLY_TYPE_NONE = 0
REPLY_TYPE_OFFSET_DATA = 1
REPLY_TYPE_OFFSET_HOLE = 2
REPLY_TYPE_BLOCK_STATUS = 5
REPLY_TYPE_ERROR = (1 << 15) | 1

# Error values on the wire (fixed by the protocol, not the host's errno numbering).
EPERM = 1
EIO = 5
ENOMEM = 12
EINVAL = 22
ENOSPC = 28
EOVERFLOW = 75
ENOTSUP = 95
ESHUTDOWN = 108

# The base:allocation context: a hole is unallocated, a zero range reads as zeroes.
BASE_ALLOCATION = "base:allocation"
STATE_HOLE = 1 << 0
STATE_ZERO = 1 << 1

# Limits this server advertises and enforces.
MIN_BLOCK = 1
PREFERRED_BLOCK = 4096
MAX_PAYLOAD = 32 << 20
MAX_OPTION_DATA = 64 << 10  # no option this server knows needs more
MAX_STRING = 4096  # proto.md: names and messages are at most 4096 bytes

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_GREETING = struct.Struct(">QQH")
OPTION_HEADER = struct.Struct(">QII")
_OPTION_REPLY = struct.Struct(">QIII")
REQUEST = struct.Struct(">IHHQQI")
_SIMPLE_REPLY = struct.Struct(">IIQ")
_STRUCTURED_REPLY = struct.Struct(">IHHQI")


class ProtocolError(Exception):
    """The peer broke a MUST of the protocol; the session ends (hard disconnect)."""


# --- handshake messages -----------------------------------------------------------------


def greeting() -> bytes:
    return _GREETING.pack(NBDMAGIC, IHAVEOPT, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)


def parse_client_flags(raw: bytes) -> int:
    """The client's 32 flag bits; unknown ones end the session (proto.md: MUST)."""
    (flags,) = _U32.unpack(raw)
    if flags & ~CLIENT_FLAGS_KNOWN:
        raise ProtocolError(f"unknown client flags {flags:#x}")
    return int(flags)


def option_reply(option: int, reply: int, data: bytes = b"") -> bytes:
    return _OPTION_REPLY.pack(OPT_REPLY_MAGIC, option, reply, len(data)) + data


def rep_server(name: str) -> bytes:
    raw = name.encode()
    return _U32.pack(len(raw)) + raw


def info_export(size: int, flags: int) -> bytes:
    return _U16.pack(INFO_EXPORT) + _U64.pack(size) + _U16.pack(flags)


def info_block_size() -> bytes:
    return _U16.pack(INFO_BLOCK_SIZE) + struct.pack(">III", MIN_BLOCK, PREFERRED_BLOCK, MAX_PAYLOAD)


def info_name(name: str) -> bytes:
    return _U16.pack(INFO_NAME) + name.encode()


def rep_meta_context(context_id: int, name: str) -> bytes:
    return _U32.pack(context_id) + name.encode()


def export_name_reply(size: int, flags: int, *, no_zeroes: bool) -> bytes:
    return _U64.pack(size) + _U16.pack(flags) + (b"" if no_zeroes else bytes(124))


class _Cursor:
    """Reads fields off option data; any overrun is a ProtocolError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError("option data is shorter than its fields say")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        (v,) = _U16.unpack(self.take(2))
        return int(v)

    def u32(self) -> int:
        (v,) = _U32.unpack(self.take(4))
        return int(v)

    def string(self) -> str:
        n = self.u32()
        if n > MAX_STRING:
            raise ProtocolError("string longer than 4096 bytes")
        try:
            return self.take(n).decode()
        except UnicodeDecodeError:
            raise ProtocolError("string is not UTF-8") from None

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError("option data is longer than its fields say")


@dataclass(frozen=True)
class InfoRequest:
    """The data of NBD_OPT_INFO and NBD_OPT_GO."""

    name: str
    requests: tuple[int, ...]


def parse_info_request(data: bytes) -> InfoRequest:
    c = _Cursor(data)
    name = c.string()
    count = c.u16()
    requests = tuple(c.u16() for _ in range(count))
    c.end()
    return InfoRequest(name, requests)


@dataclass(frozen=True)
class MetaContextRequest:
    """The data of NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT."""

    name: str
    queries: tuple[str, ...]


def parse_meta_context_request(data: bytes) -> MetaContextRequest:
    c = _Cursor(data)
    name = c.string()
    count = c.u32()
    queries = tuple(c.string() for _ in range(count))
    c.end()
    return MetaContextRequest(name, queries)


# --- transmission messages ----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    flags: int
    type: int
    cookie: int
    offset: int
    length: int


def parse_request(header: bytes) -> Request:
    magic, flags, kind, cookie, offset, length = REQUEST.unpack(header)
    if magic != REQUEST_MAGIC:
        raise ProtocolError(f"bad request magic {magic:#x}")
    return Request(flags, kind, cookie, offset, length)


def simple_reply(cookie: int, error: int = 0) -> bytes:
    return _SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, error, cookie)


def structured_header(cookie: int, kind: int, length: int, *, done: bool = True) -> bytes:
    flags = REPLY_FLAG_DONE if done else 0
    return _STRUCTURED_REPLY.pack(STRUCTURED_REPLY_MAGIC, flags, kind, cookie, length)


def structured_done(cookie: int) -> bytes:
    return structured_header(cookie, REPLY_TYPE_NONE, 0)


def structured_data_header(cookie: int, offset: int, length: int) -> bytes:
    """Header and offset of an OFFSET_DATA chunk; ``length`` bytes of data follow."""
    return structured_header(cookie, REPLY_TYPE_OFFSET_DATA, 8 + length) + _U64.pack(offset)


def message_bytes(message: str) -> bytes:
    """``message`` as UTF-8 of at most MAX_STRING bytes, cut between characters."""
    return message.encode()[:MAX_STRING].decode(errors="ignore").encode()


def structured_error(cookie: int, error: int, message: str) -> bytes:
    raw = message_bytes(message)
    payload = _U32.pack(error) + _U16.pack(len(raw)) + raw
    return structured_header(cookie, REPLY_TYPE_ERROR, len(payload)) + payload


def block_status(cookie: int, context_id: int, extents: list[tuple[int, int]]) -> bytes:
    """A BLOCK_STATUS chunk: (length, flags) descriptors, in order from the offset."""
    payload = _U32.pack(context_id) + b"".join(struct.pack(">II", n, f) for n, f in extents)
    return structured_header(cookie, REPLY_TYPE_BLOCK_STATUS, len(payload)) + payload

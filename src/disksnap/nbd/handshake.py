"""The fixed newstyle handshake: option haggling until the client picks an export.

Options served: EXPORT_NAME, GO, INFO, LIST, ABORT, STRUCTURED_REPLY,
LIST_META_CONTEXT and SET_META_CONTEXT (``base:allocation`` only). Anything else gets
NBD_REP_ERR_UNSUP (STARTTLS included: TLS for NBD comes with distributed mode). A
client that breaks a MUST of the protocol (bad magic, unknown client flags, option
data shorter than its fields) is disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from disksnap.nbd import proto as p
from disksnap.nbd.exports import Export, ExportRefused, Exports, ExportUnknown

log = logging.getLogger("disksnap.nbd")

CONTEXT_ID = 1  # the id of base:allocation on every connection
MAX_OPTIONS = 256  # a client haggling longer than this is not a client


@dataclass
class Session:
    """What the handshake agreed on."""

    export: Export
    structured: bool
    allocation: bool  # base:allocation selected for this export
    flags: int  # transmission flags sent to the client


def transmission_flags(export: Export, *, structured: bool) -> int:
    flags = p.TFLAG_HAS_FLAGS | p.TFLAG_SEND_FLUSH | p.TFLAG_SEND_FUA
    flags |= p.TFLAG_SEND_TRIM | p.TFLAG_SEND_WRITE_ZEROES
    if structured:  # proto.md: DF MUST NOT be offered without structured replies
        flags |= p.TFLAG_SEND_DF
    if export.read_only:
        flags |= p.TFLAG_READ_ONLY
    if export.multi_conn:
        flags |= p.TFLAG_CAN_MULTI_CONN
    return flags


class Handshake:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, exports: Exports
    ) -> None:
        self.r = reader
        self.w = writer
        self.exports = exports
        self.no_zeroes = False
        self.structured = False
        self.meta_export: str | None = None  # the export SET_META_CONTEXT chose for

    async def run(self) -> Session | None:
        """The agreed session, or None when the client aborted or was refused."""
        self.w.write(p.greeting())
        await self.w.drain()
        client_flags = p.parse_client_flags(await self.r.readexactly(4))
        self.no_zeroes = bool(client_flags & p.FLAG_NO_ZEROES)
        for _ in range(MAX_OPTIONS):
            magic, option, length = p.OPTION_HEADER.unpack(
                await self.r.readexactly(p.OPTION_HEADER.size)
            )
            if magic != p.IHAVEOPT:
                raise p.ProtocolError(f"bad option magic {magic:#x}")
            if length > p.MAX_OPTION_DATA:
                raise p.ProtocolError(f"option {option} carries {length} bytes")
            data = await self.r.readexactly(length)
            done, session = await self._option(option, data)
            try:
                await self.w.drain()
            except BaseException:
                if session is not None:
                    session.export.close()  # give the writer's place back
                raise
            if done:
                return session
        raise p.ProtocolError("too many options")

    def _reply(self, option: int, reply: int, data: bytes = b"") -> None:
        self.w.write(p.option_reply(option, reply, data))

    def _error(self, option: int, reply: int, message: str) -> None:
        self._reply(option, reply, p.message_bytes(message))

    async def _option(self, option: int, data: bytes) -> tuple[bool, Session | None]:
        if option == p.OPT_EXPORT_NAME:
            return True, await self._export_name(data)
        if option == p.OPT_ABORT:
            self._reply(option, p.REP_ACK)
            return True, None
        if option in (p.OPT_GO, p.OPT_INFO):
            session = await self._go(option, data)
            return session is not None, session
        if option == p.OPT_LIST:
            await self._list(data)
        elif option == p.OPT_STRUCTURED_REPLY:
            if data:
                self._error(option, p.REP_ERR_INVALID, "STRUCTURED_REPLY takes no data")
            else:
                self.structured = True
                self._reply(option, p.REP_ACK)
        elif option in (p.OPT_LIST_META_CONTEXT, p.OPT_SET_META_CONTEXT):
            self._meta_context(option, data)
        else:
            self._error(option, p.REP_ERR_UNSUP, f"option {option} is not supported")
        return False, None

    async def _open(self, name: str, *, claim: bool) -> Export:
        """Open in a thread. If this connection is cancelled meanwhile (server stop, disk
        deletion), the thread still finishes: the export it opened is closed then."""
        opening = asyncio.ensure_future(asyncio.to_thread(self.exports.open, name, claim=claim))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_opened)
            raise

    async def _export_name(self, data: bytes) -> Session | None:
        try:
            name = data.decode()
            export = await self._open(name, claim=True)
        except (UnicodeDecodeError, ExportUnknown, ExportRefused) as e:
            log.info("NBD export refused: %s", e)
            return None  # EXPORT_NAME has no error reply: the session just ends
        flags = transmission_flags(export, structured=False)
        self.w.write(p.export_name_reply(export.size, flags, no_zeroes=self.no_zeroes))
        return Session(export, structured=False, allocation=False, flags=flags)

    async def _go(self, option: int, data: bytes) -> Session | None:
        try:
            request = p.parse_info_request(data)
        except p.ProtocolError as e:
            self._error(option, p.REP_ERR_INVALID, str(e))
            return None
        try:
            export = await self._open(request.name, claim=option == p.OPT_GO)
        except ExportUnknown as e:
            self._error(option, p.REP_ERR_UNKNOWN, str(e))
            return None
        except ExportRefused as e:
            self._error(option, p.REP_ERR_POLICY, str(e))
            return None
        flags = transmission_flags(export, structured=self.structured)
        self._reply(option, p.REP_INFO, p.info_export(export.size, flags))
        self._reply(option, p.REP_INFO, p.info_block_size())
        if p.INFO_NAME in request.requests:
            self._reply(option, p.REP_INFO, p.info_name(request.name))
        self._reply(option, p.REP_ACK)
        if option == p.OPT_INFO:
            export.close()
            return None  # reported, not entered: haggling goes on
        return Session(
            export,
            structured=self.structured,
            allocation=self.structured and self.meta_export == request.name,
            flags=flags,
        )

    async def _list(self, data: bytes) -> None:
        if data:
            self._error(p.OPT_LIST, p.REP_ERR_INVALID, "LIST takes no data")
            return
        for name in await asyncio.to_thread(self.exports.names):
            self._reply(p.OPT_LIST, p.REP_SERVER, p.rep_server(name))
        self._reply(p.OPT_LIST, p.REP_ACK)

    def _meta_context(self, option: int, data: bytes) -> None:
        setting = option == p.OPT_SET_META_CONTEXT
        if setting:
            self.meta_export = None  # a SET replaces what an earlier one chose
        if setting and not self.structured:
            self._error(option, p.REP_ERR_INVALID, "structured replies must be negotiated first")
            return
        try:
            request = p.parse_meta_context_request(data)
        except p.ProtocolError as e:
            self._error(option, p.REP_ERR_INVALID, str(e))
            return
        if setting:
            chosen = p.BASE_ALLOCATION in request.queries
        else:  # LIST: no query lists all; "base:" lists every context of namespace base
            chosen = not request.queries or any(
                q in ("base:", p.BASE_ALLOCATION) for q in request.queries
            )
        if chosen:
            self._reply(
                option, p.REP_META_CONTEXT, p.rep_meta_context(CONTEXT_ID, p.BASE_ALLOCATION)
            )
            if setting:
                self.meta_export = request.name
        self._reply(option, p.REP_ACK)


def _close_opened(opening: asyncio.Future[Export]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()

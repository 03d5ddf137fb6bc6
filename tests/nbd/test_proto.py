"""The NBD wire encoding on its own, checked against the byte layouts of proto.md."""

from __future__ import annotations

import struct

import pytest

from disksnap.nbd import proto as p


def test_greeting_offers_fixed_newstyle_without_zeroes() -> None:
    assert p.greeting() == b"NBDMAGIC" + b"IHAVEOPT" + b"\x00\x03"


def test_unknown_client_flags_end_the_session() -> None:
    assert p.parse_client_flags(b"\x00\x00\x00\x03") == 3
    with pytest.raises(p.ProtocolError):
        p.parse_client_flags(b"\x00\x00\x00\x04")


def test_option_reply_layout() -> None:
    raw = p.option_reply(p.OPT_GO, p.REP_ERR_UNKNOWN, b"nope")
    assert raw == struct.pack(">QIII", 0x3E889045565A9, 7, 0x80000006, 4) + b"nope"


def test_info_replies() -> None:
    assert p.info_export(1 << 30, 0x1234) == b"\x00\x00" + struct.pack(">QH", 1 << 30, 0x1234)
    assert p.info_block_size() == struct.pack(">HIII", 3, 1, 4096, 32 << 20)
    assert p.info_name("d") == b"\x00\x01d"


def test_export_name_reply_pads_unless_no_zeroes() -> None:
    assert len(p.export_name_reply(512, 1, no_zeroes=False)) == 8 + 2 + 124
    assert p.export_name_reply(512, 1, no_zeroes=True) == struct.pack(">QH", 512, 1)


def test_info_request_parses_and_rejects_short_data() -> None:
    data = struct.pack(">I", 4) + b"disk" + struct.pack(">HHH", 2, 3, 1)
    assert p.parse_info_request(data) == p.InfoRequest("disk", (3, 1))
    for bad in (data[:-1], data + b"x", struct.pack(">I", 5000) + bytes(5000)):
        with pytest.raises(p.ProtocolError):
            p.parse_info_request(bad)


def test_meta_context_request_parses() -> None:
    q = b"base:allocation"
    data = struct.pack(">I", 1) + b"d" + struct.pack(">II", 1, len(q)) + q
    assert p.parse_meta_context_request(data) == p.MetaContextRequest("d", ("base:allocation",))
    with pytest.raises(p.ProtocolError):
        p.parse_meta_context_request(data[:-2])
    with pytest.raises(p.ProtocolError):
        p.parse_meta_context_request(struct.pack(">I", 1) + b"\xff" + struct.pack(">I", 0))


def test_request_parse_checks_the_magic() -> None:
    raw = struct.pack(">IHHQQI", 0x25609513, 1, 1, 7, 4096, 512)
    assert p.parse_request(raw) == p.Request(flags=1, type=1, cookie=7, offset=4096, length=512)
    with pytest.raises(p.ProtocolError):
        p.parse_request(struct.pack(">IHHQQI", 0x25609514, 0, 0, 0, 0, 0))


def test_replies() -> None:
    assert p.simple_reply(9, p.EINVAL) == struct.pack(">IIQ", 0x67446698, 22, 9)
    assert p.structured_done(9) == struct.pack(">IHHQI", 0x668E33EF, 1, 0, 9, 0)
    assert p.structured_data_header(9, 4096, 10) == struct.pack(
        ">IHHQIQ", 0x668E33EF, 1, 1, 9, 18, 4096
    )
    err = p.structured_error(9, p.EPERM, "ro")
    assert err == struct.pack(">IHHQIIH", 0x668E33EF, 1, 0x8001, 9, 8, 1, 2) + b"ro"
    bs = p.block_status(9, 1, [(4096, 0), (8192, 3)])
    assert bs == struct.pack(">IHHQIIIIII", 0x668E33EF, 1, 5, 9, 20, 1, 4096, 0, 8192, 3)

"""Page tokens: round trips, the documented format, and every way to spoil one."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disksnap.domain.errors import BadRequest
from disksnap.domain.filters import Condition
from disksnap.domain.paging import (
    MAX_PAGE_TOKEN_LENGTH,
    ListQuery,
    PageCursor,
    PageTokens,
    SortOrder,
    SortValue,
)
from tests.domain.paging_values import (
    BY_CREATED,
    BY_ID,
    INVALID,
    MISMATCH,
    SECRET,
    SNAPSHOT_ID,
    TOKENS,
    WHEN,
)


def rejected(token: str, query: ListQuery = BY_CREATED, tokens: PageTokens = TOKENS) -> str:
    with pytest.raises(BadRequest) as caught:
        tokens.decode(token, query)
    [violation] = caught.value.violations
    assert violation.field == "pageToken"
    return violation.description


# Tokens round-trip.

VALUES: list[SortValue] = [
    None,
    "",
    "web-1",
    "n" * 63,
    "имя 🙂",
    0,
    -1,
    2**63 - 1,
    -(2**63),
    WHEN,
    dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    dt.datetime(2026, 1, 1, 15, tzinfo=dt.timezone(dt.timedelta(hours=3))),
]


@pytest.mark.parametrize("value", VALUES)
def test_tokens_round_trip(value: SortValue) -> None:
    token = TOKENS.encode(BY_CREATED, last_id=SNAPSHOT_ID, last_value=value)
    cursor = TOKENS.decode(token, BY_CREATED)
    assert cursor == PageCursor(BY_CREATED.order, SNAPSHOT_ID, value)
    if isinstance(value, dt.datetime):
        assert cursor is not None
        assert cursor.last_value == value


def test_an_empty_token_is_the_first_page() -> None:
    assert TOKENS.decode("", BY_CREATED) is None


def test_tokens_are_url_safe_and_fit_the_protos_limit_for_common_orders() -> None:
    for query, value in [
        (BY_ID, None),
        (BY_CREATED, WHEN),
        (ListQuery("s", (), SortOrder("status")), "CREATING"),
        (ListQuery("s", (), SortOrder("name")), "n" * 21),  # 22 would be 102
    ]:
        token = TOKENS.encode(query, last_id=SNAPSHOT_ID, last_value=value)
        assert len(token) <= 100, (query, len(token))
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_long_name_makes_a_longer_token_that_still_decodes() -> None:
    query = ListQuery("s", (), SortOrder("name"))
    token = TOKENS.encode(query, last_id=SNAPSHOT_ID, last_value="n" * 63)
    assert 100 < len(token) <= MAX_PAGE_TOKEN_LENGTH
    assert TOKENS.decode(token, query) == PageCursor(query.order, SNAPSHOT_ID, "n" * 63)


def test_the_documented_format() -> None:
    """A token assembled by hand from the module docstring decodes."""
    payload = (
        bytes([1, 1 | 2 << 1])
        + BY_CREATED.fingerprint()
        + bytes([10])
        + b"created_at"
        + bytes([len(SNAPSHOT_ID)])
        + SNAPSHOT_ID.encode()
        + struct.pack(">q", 1_000_000)
    )
    mac = hmac.new(SECRET, b"disksnap/page-token\0" + payload, hashlib.sha256).digest()[:16]
    token = base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()
    assert TOKENS.encode(BY_CREATED, last_id=SNAPSHOT_ID, last_value=1_000_000) == token
    assert TOKENS.decode(token, BY_CREATED) == PageCursor(BY_CREATED.order, SNAPSHOT_ID, 1_000_000)


def forge(payload: bytes, secret: bytes = SECRET) -> str:
    mac = hmac.new(secret, b"disksnap/page-token\0" + payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x02\x00" + BY_ID.fingerprint() + b"\x02id\x01x",  # another version
        b"\x01\x08" + BY_ID.fingerprint() + b"\x02id\x01x",  # unknown value kind
        b"\x01\x00" + BY_ID.fingerprint() + b"\x02id\x01x\x00",  # trailing byte
        b"\x01\x00" + BY_ID.fingerprint() + b"\x02id\x05x",  # id runs past the end
        b"\x01\x00" + BY_ID.fingerprint() + b"\x02\xff\xfe\x01x",  # field not UTF-8
        b"\x01\x06" + BY_ID.fingerprint() + b"\x02id\x01x" + struct.pack(">q", 2**62),  # year 10^5
    ],
)
def test_authentic_but_malformed_payloads_are_invalid(payload: bytes) -> None:
    assert rejected(forge(payload), BY_ID) == INVALID


# Tokens that must be refused.


def test_a_token_of_another_secret_is_refused_and_retired_secrets_still_work() -> None:
    old = PageTokens(b"o" * 16)
    token = old.encode(BY_CREATED, last_id=SNAPSHOT_ID, last_value=WHEN)
    assert rejected(token) == INVALID
    rotated = PageTokens(SECRET, retired=[b"o" * 16])
    assert rotated.decode(token, BY_CREATED) == PageCursor(BY_CREATED.order, SNAPSHOT_ID, WHEN)
    assert rejected(rotated.encode(BY_CREATED, last_id="x"), tokens=old) == INVALID


@pytest.mark.parametrize(
    "other",
    [
        ListQuery("snapshots/b1g", (), SortOrder("created_at")),
        ListQuery("snapshots/b1g", (), SortOrder("name", descending=True)),
        ListQuery("snapshots/b1g-other", (), SortOrder("created_at", descending=True)),
        ListQuery("snapshots/b1g", (Condition("name", "=", ("a",)),), BY_CREATED.order),
    ],
)
def test_a_token_belongs_to_its_query(other: ListQuery) -> None:
    token = TOKENS.encode(BY_CREATED, last_id=SNAPSHOT_ID, last_value=WHEN)
    assert rejected(token, other) == MISMATCH


def test_the_query_fingerprint_ignores_condition_and_list_order() -> None:
    a = Condition("status", "in", ("READY", "ERROR"))
    b = Condition("labels", "=", ("x",), "env")
    first = ListQuery("s", (a, b), SortOrder("name"))
    same = ListQuery("s", (b, Condition("status", "in", ("ERROR", "READY", "READY"))), first.order)
    token = TOKENS.encode(first, last_id="i", last_value="n")
    assert TOKENS.decode(token, same) == PageCursor(first.order, "i", "n")
    different = ListQuery("s", (a, Condition("labels", "=", ("x",), "team")), first.order)
    assert rejected(token, different) == MISMATCH


def test_every_truncation_is_refused() -> None:
    token = TOKENS.encode(BY_CREATED, last_id=SNAPSHOT_ID, last_value=WHEN)
    for end in range(1, len(token)):
        assert rejected(token[:end]) == INVALID, end
        assert rejected(token[end:]) == INVALID, end


def test_every_single_character_change_is_refused() -> None:
    token = TOKENS.encode(BY_CREATED, last_id=SNAPSHOT_ID, last_value=WHEN)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.~ é\0"
    for at, original in enumerate(token):
        for replacement in alphabet:
            if replacement != original:
                changed = token[:at] + replacement + token[at + 1 :]
                assert rejected(changed) == INVALID, (at, replacement)


@pytest.mark.parametrize("suffix", ["=", "==", "\n", " ", "A"])
def test_padding_and_trailing_characters_are_refused(suffix: str) -> None:
    token = TOKENS.encode(BY_CREATED, last_id=SNAPSHOT_ID, last_value=WHEN)
    assert rejected(token + suffix) == INVALID


@pytest.mark.parametrize("token", ["x", "abc", "-" * 40, "💥", "not a token", "AAAA" * 20])
def test_garbage_is_refused(token: str) -> None:
    assert rejected(token) == INVALID


def test_an_overlong_token_is_refused_before_decoding() -> None:
    assert rejected("A" * (MAX_PAGE_TOKEN_LENGTH + 1)) == "Length must be less than or equal to 512"
    assert rejected("A" * MAX_PAGE_TOKEN_LENGTH) == INVALID


@given(
    last_id=st.text(max_size=20),
    value=st.one_of(
        st.none(),
        st.text(max_size=40),
        st.integers(-(2**63), 2**63 - 1),
        st.datetimes(timezones=st.just(dt.UTC)),
    ),
    at=st.integers(min_value=0),
    xor=st.integers(1, 255),
)
def test_round_trip_and_any_single_byte_change_is_refused(
    last_id: str, value: SortValue, at: int, xor: int
) -> None:
    token = TOKENS.encode(BY_CREATED, last_id=last_id, last_value=value)
    assert TOKENS.decode(token, BY_CREATED) == PageCursor(BY_CREATED.order, last_id, value)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[at % len(raw)] ^= xor
    changed = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert rejected(changed) == INVALID


# Programming errors.


def test_encode_rejects_values_it_cannot_carry() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TOKENS.encode(BY_CREATED, last_id="i", last_value=dt.datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="str, int or datetime"):
        TOKENS.encode(BY_CREATED, last_id="i", last_value=True)
    with pytest.raises(TypeError, match="str, int or datetime"):
        TOKENS.encode(BY_CREATED, last_id="i", last_value=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="255 bytes"):
        TOKENS.encode(BY_CREATED, last_id="i" * 256)
    with pytest.raises(ValueError, match="65535 bytes"):
        TOKENS.encode(BY_CREATED, last_id="i", last_value="v" * 65536)
    with pytest.raises(struct.error):
        TOKENS.encode(BY_CREATED, last_id="i", last_value=2**63)


def test_secrets_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        PageTokens(b"short")
    with pytest.raises(ValueError, match="16 bytes"):
        PageTokens(SECRET, retired=[b""])

"""List paging: ``orderBy``, ``pageSize`` and opaque, authenticated page tokens.

A page token is a keyset cursor: the sort order, the sort value and id of the last item
returned, and a fingerprint of the list query (what is listed, the filter, the order).
It is URL-safe base64 (no padding) of::

    version (1) = 1 · flags (1): bit 0 descending, bits 1-2 value kind
                    (0 none, 1 str, 2 int, 3 datetime)
    query fingerprint (8): SHA-256 of the canonical ListQuery, truncated
    sort field (u8 length + UTF-8) · last id (u8 length + UTF-8)
    last value: str → u16 length + UTF-8; int → i64; datetime → i64 µs since the epoch
    MAC (16): HMAC-SHA256(secret, "disksnap/page-token\\0" + everything above), truncated

The MAC is checked first, in constant time, against the current secret and any retired
ones; only then is anything read. A forged, truncated or otherwise altered token, or one
issued for another query (other filter, orderBy, folder or parent resource) is a
BadRequest on ``pageToken``. Tokens do not expire: resuming after the last (value, id)
is well defined whatever changed since.

Tokens sorted by ``id``, ``createdAt`` or ``status``, or by a name of up to 21
characters, stay within the 100 characters the protos give ``pageToken``; one carrying a
longer string sort value is longer (156 characters for a 63-character name), so the
limit enforced here is :data:`MAX_PAGE_TOKEN_LENGTH`. Timestamps are carried to the
microsecond: sort by an int of nanoseconds if the store keeps finer ones.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from disksnap.domain import filters
from disksnap.domain.errors import BadRequest, FieldViolation
from disksnap.domain.filters import Condition, camel_to_snake, snake_to_camel
from disksnap.domain.validation import (
    DEFAULT_PAGE_SIZE,
    MAX_FILTER_LENGTH,
    MAX_ORDER_BY_LENGTH,
    max_length,
    page_size,
    raise_if_any,
    resource_id,
)

T = TypeVar("T")

SortValue = str | int | dt.datetime | None

PAGE_TOKEN_FIELD = "pageToken"  # noqa: S105 (a field name, not a secret)
ORDER_BY_FIELD = "orderBy"
MAX_PAGE_TOKEN_LENGTH = 512
MIN_SECRET_LENGTH = 16

_VERSION = 1
_MAC_LENGTH = 16
_FINGERPRINT_LENGTH = 8
_DOMAIN = b"disksnap/page-token\0"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_LISTS = ("in", "not_in")
_KIND_NONE, _KIND_STR, _KIND_INT, _KIND_TIME = range(4)
_I64 = struct.Struct(">q")
_U16 = struct.Struct(">H")
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_INVALID = "Invalid page token: it is damaged or was not issued by this service"
_MISMATCH = (
    "The page token was issued for a different query: "
    "keep filter and orderBy unchanged while paging"
)


@dataclass(frozen=True, slots=True)
class SortOrder:
    """Sort by ``field`` (snake_case), ties broken by id in the same direction."""

    field: str = "id"
    descending: bool = False

    def __str__(self) -> str:
        return f"{snake_to_camel(self.field)} {'desc' if self.descending else 'asc'}"


def parse_order_by(text: str, fields: Iterable[str]) -> SortOrder:
    """Parse ``field``, ``field asc`` or ``field desc`` (empty: ``id asc``).

    ``fields`` are the camelCase names this resource can be sorted by; ``id`` always can.
    The snake_case spelling is accepted too. Raises BadRequest on ``orderBy``.
    """
    words = text.split()
    if not words:
        return SortOrder()
    if len(words) > 2:
        raise BadRequest.single(
            ORDER_BY_FIELD, f'Expected "<field>" or "<field> asc|desc", found "{text.strip()}"'
        )
    allowed = ["id", *(f for f in fields if f != "id")]
    spelled = {**{camel_to_snake(f): f for f in allowed}, **{f: f for f in allowed}}
    found: list[FieldViolation] = []
    if words[0] not in spelled:
        listed = ", ".join(allowed)
        found.append(
            FieldViolation(ORDER_BY_FIELD, f'Unknown field "{words[0]}"; sortable fields: {listed}')
        )
    direction = words[1].lower() if len(words) == 2 else "asc"
    if direction not in ("asc", "desc"):
        found.append(
            FieldViolation(ORDER_BY_FIELD, f'Unknown direction "{words[1]}"; use asc or desc')
        )
    if found:
        raise BadRequest(found)
    return SortOrder(camel_to_snake(spelled[words[0]]), direction == "desc")


def effective_page_size(size: int) -> int:
    """The number of items to return for a valid ``pageSize`` (0 means the default, 100)."""
    return size or DEFAULT_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One list query: what is listed (``scope``, e.g. the kind and folder), filter, order."""

    scope: str
    conditions: tuple[Condition, ...] = ()
    order: SortOrder = SortOrder()

    def fingerprint(self) -> bytes:
        """A digest that ignores the order of conditions and of values in IN lists."""
        conditions = sorted(
            json.dumps(
                [c.field, c.label_key, c.op, sorted(set(c.values)) if c.op in _LISTS else c.values],
                ensure_ascii=False,
            )
            for c in self.conditions
        )
        canonical = json.dumps(
            [self.scope, conditions, self.order.field, self.order.descending],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).digest()[:_FINGERPRINT_LENGTH]


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where the next page starts: after the item (``last_value``, ``last_id``).

    ``last_value`` is None when the order is by id (the id is the sort value).
    """

    order: SortOrder
    last_id: str
    last_value: SortValue = None


class PageTokens:
    """Issues and checks page tokens under a server secret (injected, ≥ 16 bytes).

    ``retired`` secrets are still accepted when decoding, so a secret can be rotated
    without breaking the paging clients are in the middle of.
    """

    def __init__(self, secret: bytes, *, retired: Sequence[bytes] = ()) -> None:
        for key in (secret, *retired):
            if len(key) < MIN_SECRET_LENGTH:
                raise ValueError(f"a page token secret needs {MIN_SECRET_LENGTH} bytes or more")
        self._secret = secret
        self._keys = (secret, *retired)

    def encode(self, query: ListQuery, *, last_id: str, last_value: SortValue = None) -> str:
        """The token of the page after the item (``last_value``, ``last_id``) of ``query``."""
        kind, value = _pack_value(last_value)
        payload = b"".join(
            [
                bytes([_VERSION, int(query.order.descending) | kind << 1]),
                query.fingerprint(),
                _short(query.order.field.encode()),
                _short(last_id.encode()),
                value,
            ]
        )
        raw = payload + _mac(self._secret, payload)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def decode(self, token: str, query: ListQuery) -> PageCursor | None:
        """The cursor in ``token`` (None for ``""``, the first page); BadRequest if invalid."""
        if not token:
            return None
        if len(token) > MAX_PAGE_TOKEN_LENGTH:
            raise BadRequest(max_length(PAGE_TOKEN_FIELD, token, MAX_PAGE_TOKEN_LENGTH))
        raw = _unbase64(token)
        payload, mac = raw[:-_MAC_LENGTH], raw[-_MAC_LENGTH:]
        if len(raw) <= _MAC_LENGTH or not any(
            hmac.compare_digest(mac, _mac(key, payload)) for key in self._keys
        ):
            raise BadRequest.single(PAGE_TOKEN_FIELD, _INVALID)
        fingerprint, cursor = _unpack(payload)
        if fingerprint != query.fingerprint() or cursor.order != query.order:
            raise BadRequest.single(PAGE_TOKEN_FIELD, _MISMATCH)
        return cursor


@dataclass(frozen=True, slots=True)
class Listable:
    """What one List method accepts: the fields it filters and sorts on (camelCase), and
    the values an enum field (``status``) may be compared with."""

    kind: str
    filter_fields: tuple[str, ...] = ()
    filter_labels: bool = False
    order_fields: tuple[str, ...] = ("id",)
    filter_enums: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListRequest:
    """A checked List request: the query, how many items to return, where to start."""

    query: ListQuery
    page_size: int
    cursor: PageCursor | None


def parse_list_request(
    tokens: PageTokens,
    listable: Listable,
    *,
    parent_field: str,
    parent_id: str,
    size: int = 0,
    token: str = "",
    filter_text: str = "",
    order_by: str = "",
) -> ListRequest:
    """Check every parameter of a List request and raise one BadRequest with all problems.

    ``parent_field``/``parent_id`` is what the list is scoped to (``folderId`` for
    ``List``, ``snapshotId`` for ``ListOperations``). The token is checked only when the
    filter and orderBy parse, since it must belong to exactly that query.
    """
    found = resource_id(parent_field, parent_id) + page_size("pageSize", size)
    conditions = _attempt(found, lambda: _filter(filter_text, listable))
    order = _attempt(found, lambda: _order(order_by, listable))
    cursor = None
    if conditions is not None and order is not None:
        query = ListQuery(f"{listable.kind}/{parent_id}", conditions, order)
        cursor = _attempt(found, lambda: tokens.decode(token, query))
    if found:
        raise BadRequest(found)
    return ListRequest(query, effective_page_size(size), cursor)


def _attempt(found: list[FieldViolation], parse: Callable[[], T]) -> T | None:
    """``parse()``, or None with its violations added to ``found``."""
    try:
        return parse()
    except BadRequest as bad:
        found += bad.violations
        return None


def _filter(text: str, listable: Listable) -> tuple[Condition, ...]:
    raise_if_any(max_length(filters.FILTER_FIELD, text, MAX_FILTER_LENGTH))
    conditions = filters.parse_filter(text, listable.filter_fields, labels=listable.filter_labels)
    for c in conditions:
        field = snake_to_camel(c.field)
        allowed = listable.filter_enums.get(field, ())
        wrong = [v for v in c.values if allowed and v not in allowed]
        if wrong:
            raise BadRequest.single(
                filters.FILTER_FIELD, f"Invalid {field} {wrong[0]!r}: one of {', '.join(allowed)}"
            )
    return conditions


def _order(text: str, listable: Listable) -> SortOrder:
    raise_if_any(max_length(ORDER_BY_FIELD, text, MAX_ORDER_BY_LENGTH))
    return parse_order_by(text, listable.order_fields)


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _DOMAIN + payload, hashlib.sha256).digest()[:_MAC_LENGTH]


def _short(data: bytes) -> bytes:
    if len(data) > 255:
        raise ValueError("a page token field or id is limited to 255 bytes")
    return bytes([len(data)]) + data


def _pack_value(value: SortValue) -> tuple[int, bytes]:
    if value is None:
        return _KIND_NONE, b""
    if isinstance(value, str):
        data = value.encode()
        if len(data) > 0xFFFF:
            raise ValueError("a page token sort value is limited to 65535 bytes")
        return _KIND_STR, _U16.pack(len(data)) + data
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("a page token timestamp must be timezone-aware")
        return _KIND_TIME, _I64.pack((value - _EPOCH) // _MICROSECOND)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a page token sort value is str, int or datetime, not {type(value)}")
    return _KIND_INT, _I64.pack(value)


def _unbase64(token: str) -> bytes:
    """Strict URL-safe base64 without padding: one spelling per byte string."""
    if not set(token) <= _B64_ALPHABET or len(token) % 4 == 1:
        raise BadRequest.single(PAGE_TOKEN_FIELD, _INVALID)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise BadRequest.single(PAGE_TOKEN_FIELD, _INVALID)  # non-zero padding bits
    return raw


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._data):
            raise ValueError("truncated")
        chunk = self._data[self._at : self._at + n]
        self._at += n
        return chunk

    def short(self) -> str:
        return self.take(self.take(1)[0]).decode()

    def done(self) -> bool:
        return self._at == len(self._data)


def _unpack(payload: bytes) -> tuple[bytes, PageCursor]:
    """Read an authenticated payload (it can still be of another version or malformed)."""
    try:
        reader = _Reader(payload)
        version, flags = reader.take(2)
        kind = flags >> 1
        if version != _VERSION or kind > _KIND_TIME:
            raise ValueError("unknown version or value kind")
        fingerprint = reader.take(_FINGERPRINT_LENGTH)
        order = SortOrder(reader.short(), bool(flags & 1))
        last_id = reader.short()
        value: SortValue = None
        if kind == _KIND_STR:
            value = reader.take(_U16.unpack(reader.take(2))[0]).decode()
        elif kind in (_KIND_INT, _KIND_TIME):
            number = _I64.unpack(reader.take(8))[0]
            value = number if kind == _KIND_INT else _EPOCH + number * _MICROSECOND
        if not reader.done():
            raise ValueError("trailing bytes")
    except (ValueError, UnicodeDecodeError, binascii.Error, OverflowError):
        raise BadRequest.single(PAGE_TOKEN_FIELD, _INVALID) from None
    return fingerprint, PageCursor(order, last_id, value)

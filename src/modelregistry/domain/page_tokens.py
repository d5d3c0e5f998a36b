"""Page tokens: opaque, signed keyset cursors bound to the request that made them.

A token carries the sort-key values of the last row of a page (a keyset cursor, never an
offset) in a compact binary encoding, followed by a truncated HMAC-SHA256 over a *binding*
string and the payload, all in URL-safe base64 without padding. The binding is built by the
caller from the method, parent, filter and order_by (``page_token_binding``), so a token is
only valid for the request shape that produced it. The key is shared by every replica (the
``server_secrets`` table), so any replica accepts any replica's tokens.

Tokens are signed, not encrypted: a client who decodes one sees values from a row it was
already sent. Anything wrong with a token is InvalidArgument on ``page_token``: text that
cannot be a token at all (garbage, truncated) is "not a page token of this list"; a well-formed
token whose signature fails (another request's, or tampered) "does not match this request".

Values: None, bool, int, str, float, Decimal and tz-aware datetime (exact to the
microsecond, decoded in UTC).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.models import Page

T = TypeVar("T")

CursorValue = None | bool | int | str | float | Decimal | datetime

MAX_TOKEN_LENGTH = 4096
_FORMAT_VERSION = 1
_TAG_BYTES = 16  # 128 bits of HMAC-SHA256: forging one is as hard as guessing the key
_CONTEXT = b"modelregistry/page_token/v1\x00"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NONE, _FALSE, _TRUE, _INT, _STR, _DATETIME, _DECIMAL, _FLOAT = range(8)
_MISMATCH = (
    "page_token does not match this request: pass the same parent, filter and order_by as "
    "the call that returned it, or omit page_token to start over"
)
_GARBAGE = (
    "is not a page token of this list: pass the next_page_token of a previous response "
    "unchanged, or omit page_token to start over"
)


class _Malformed(Exception):
    pass


def page_token_binding(method: str, parent: str, filter_text: str, order_by: str) -> str:
    """The binding for a List call: unambiguous whatever characters the parts contain."""
    return json.dumps([method, parent, filter_text, order_by], separators=(",", ":"))


def encode_page_token(key: bytes, binding: str, values: Sequence[CursorValue]) -> str:
    """Sign ``values`` for ``binding``; the result is safe in URLs and has no padding."""
    if not key:
        raise ValueError("page token key is empty")
    payload = bytearray([_FORMAT_VERSION])
    for value in values:
        _encode_value(payload, value)
    tag = _tag(key, binding, bytes(payload))
    return base64.urlsafe_b64encode(bytes(payload) + tag).rstrip(b"=").decode("ascii")


def decode_page_token(key: bytes, binding: str, token: str) -> list[CursorValue]:
    """The values ``encode_page_token`` signed, or InvalidArgument on ``page_token``."""
    if not key:
        raise ValueError("page token key is empty")
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise _not_a_token()
    try:
        padded = token + "=" * (-len(token) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise _not_a_token() from None
    if len(raw) < 1 + _TAG_BYTES or raw[0] != _FORMAT_VERSION:
        raise _not_a_token()
    payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(key, binding, payload)):
        raise _invalid()
    try:
        return _decode_payload(payload)
    except _Malformed:
        raise _not_a_token() from None


def decode_cursor(key: bytes, binding: str, token: str, *shape: type) -> tuple[Any, ...]:
    """The values of a signed token, refused unless they have this list's cursor `shape`
    (one type per value)."""
    values = decode_page_token(key, binding, token)
    if len(values) != len(shape) or not all(
        _has_type(value, expected) for value, expected in zip(values, shape, strict=True)
    ):
        raise _invalid()
    return tuple(values)


def _has_type(value: CursorValue, expected: type) -> bool:
    # To isinstance a bool is an int; never to a cursor.
    return isinstance(value, expected) and (expected is bool or not isinstance(value, bool))


def next_page(
    items: list[T],
    limit: int,
    key: bytes,
    binding: str,
    cursor_of: Callable[[T], Sequence[CursorValue]],
) -> Page[T]:
    """One page of `items` read with `limit + 1`: the extra row says another page follows,
    which starts after the cursor of the last row kept."""
    if len(items) <= limit:
        return Page(items, "")
    return Page(items[:limit], encode_page_token(key, binding, cursor_of(items[limit - 1])))


def next_page_of_keyed(
    rows: Sequence[tuple[T, Sequence[CursorValue]]], limit: int, key: bytes, binding: str
) -> Page[T]:
    """`next_page` for rows read with their cursors beside them, as (item, cursor) pairs:
    for orders whose sort key the database computes (filters, metrics, `order_by`)."""
    page = next_page(list(rows), limit, key, binding, lambda row: row[1])
    return Page([item for item, _ in page.items], page.next_page_token)


def _tag(key: bytes, binding: str, payload: bytes) -> bytes:
    bound = binding.encode("utf-8")
    message = _CONTEXT + len(bound).to_bytes(4, "big") + bound + payload
    return hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES]


def _invalid() -> InvalidArgument:
    return InvalidArgument.for_field("page_token", _MISMATCH)


def _not_a_token() -> InvalidArgument:
    return InvalidArgument.for_field("page_token", _GARBAGE)


# --- payload encoding ----------------------------------------------------------------------


def _encode_value(out: bytearray, value: CursorValue) -> None:
    if value is None:
        out.append(_NONE)
    elif isinstance(value, bool):
        out.append(_TRUE if value else _FALSE)
    elif isinstance(value, int):
        out.append(_INT)
        _write_varint(out, _zigzag(value))
    elif isinstance(value, str):
        _write_bytes(out, _STR, value.encode("utf-8"))
    elif isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TypeError("page token datetimes must be timezone-aware")
        out.append(_DATETIME)
        _write_varint(out, _zigzag((value - _EPOCH) // _MICROSECOND))
    elif isinstance(value, Decimal):
        _write_bytes(out, _DECIMAL, str(value).encode("ascii"))
    elif isinstance(value, float):
        out.append(_FLOAT)
        out += struct.pack(">d", value)
    else:
        raise TypeError(f"cannot put a {type(value).__name__} in a page token")


def _decode_payload(payload: bytes) -> list[CursorValue]:
    if not payload or payload[0] != _FORMAT_VERSION:
        raise _Malformed
    values: list[CursorValue] = []
    position = 1
    while position < len(payload):
        tag = payload[position]
        position += 1
        value: CursorValue
        if tag == _NONE:
            value = None
        elif tag in (_FALSE, _TRUE):
            value = tag == _TRUE
        elif tag == _INT:
            raw, position = _read_varint(payload, position)
            value = _unzigzag(raw)
        elif tag == _DATETIME:
            raw, position = _read_varint(payload, position)
            try:
                value = _EPOCH + _unzigzag(raw) * _MICROSECOND
            except OverflowError:
                raise _Malformed from None
        elif tag in (_STR, _DECIMAL):
            data, position = _read_bytes(payload, position)
            try:
                value = data.decode("utf-8") if tag == _STR else Decimal(data.decode("ascii"))
            except (UnicodeDecodeError, InvalidOperation):
                raise _Malformed from None
        elif tag == _FLOAT:
            if position + 8 > len(payload):
                raise _Malformed
            (value,) = struct.unpack(">d", payload[position : position + 8])
            position += 8
        else:
            raise _Malformed
        values.append(value)
    return values


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value: int) -> int:
    return value // 2 if value % 2 == 0 else -(value + 1) // 2


def _write_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 140:
            raise _Malformed
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, position


def _write_bytes(out: bytearray, tag: int, data: bytes) -> None:
    out.append(tag)
    _write_varint(out, len(data))
    out += data


def _read_bytes(data: bytes, position: int) -> tuple[bytes, int]:
    length, position = _read_varint(data, position)
    if position + length > len(data):
        raise _Malformed
    return data[position : position + length], position + length

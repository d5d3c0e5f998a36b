"""Page tokens: round trip, binding, tampering and garbage."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.page_tokens import (
    CursorValue,
    decode_page_token,
    encode_page_token,
    page_token_binding,
)

KEY = b"k" * 32
BINDING = page_token_binding("ListModelVersions", "models/-", "stage = PRODUCTION", "version")

cursor_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=30),
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))])),
)


MISMATCH = "does not match this request"
NOT_A_TOKEN = "is not a page token of this list"


def assert_rejected(
    token: str, binding: str = BINDING, key: bytes = KEY, because: str | None = None
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(key, binding, token)
    violation = caught.value.violations[0]
    assert violation.field == "page_token"
    reasons = [because] if because is not None else [MISMATCH, NOT_A_TOKEN]
    assert any(reason in violation.description for reason in reasons), violation.description


@given(st.lists(cursor_values, max_size=6))
def test_round_trip(values: list[CursorValue]) -> None:
    decoded = decode_page_token(KEY, BINDING, encode_page_token(KEY, BINDING, values))
    assert decoded == values
    assert [type(v) for v in decoded] == [type(v) for v in values]
    for sent, got in zip(values, decoded, strict=True):
        if isinstance(got, datetime):
            assert got.tzinfo is UTC
            assert got.microsecond == sent.microsecond  # type: ignore[union-attr]


def test_tokens_are_short_and_url_safe() -> None:
    token = encode_page_token(
        KEY, BINDING, [Decimal("0.9731"), datetime(2026, 1, 2, 3, 4, 5, 678901, UTC), 12345]
    )
    assert len(token) < 60
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_another_binding_is_rejected() -> None:
    token = encode_page_token(KEY, BINDING, [7, 42])
    for other in [
        page_token_binding("ListModelVersions", "models/-", "stage = STAGING", "version"),
        page_token_binding("ListModelVersions", "models/-", "stage = PRODUCTION", "version desc"),
        page_token_binding("ListModelVersions", "models/x", "stage = PRODUCTION", "version"),
        page_token_binding("ListModels", "models/-", "stage = PRODUCTION", "version"),
    ]:
        assert_rejected(token, binding=other, because=MISMATCH)


def test_binding_parts_cannot_be_shifted() -> None:
    assert page_token_binding("M", "a", "b c", "") != page_token_binding("M", "a b", "c", "")


def test_another_key_is_rejected() -> None:
    assert_rejected(encode_page_token(KEY, BINDING, [1]), key=b"x" * 32)


@given(st.lists(cursor_values, min_size=1, max_size=4), st.data())
def test_any_changed_byte_is_rejected(values: list[CursorValue], data: st.DataObject) -> None:
    token = encode_page_token(KEY, BINDING, values)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    assert_rejected(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())


def test_truncated_and_extended_tokens_are_rejected() -> None:
    token = encode_page_token(KEY, BINDING, ["llama", 3])
    assert_rejected(token[:-1])
    assert_rejected(token[:10])
    assert_rejected(token + "A")
    assert_rejected(token + "AAAA")


@pytest.mark.parametrize("garbage", ["", "x", "!!!!", "====", "é" * 30, "A" * 5000, "a b c"])
def test_garbage_is_not_a_page_token_of_this_list(garbage: str) -> None:
    # Not "does not match this request": nothing about the request would make it valid.
    assert_rejected(garbage, because=NOT_A_TOKEN)


@given(st.text(max_size=100))
def test_random_text_is_rejected(text: str) -> None:
    assert_rejected(text)


def test_unsupported_values_are_a_programming_error() -> None:
    with pytest.raises(TypeError):
        encode_page_token(KEY, BINDING, [datetime(2026, 1, 1)])  # naive
    with pytest.raises(TypeError):
        encode_page_token(KEY, BINDING, [object()])  # type: ignore[list-item]

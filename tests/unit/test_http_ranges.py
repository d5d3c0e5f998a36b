"""Range headers (RFC 9110 §14) as the HTTP edge reads them for artifact downloads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelregistry.http.streaming import ByteRange, RangeNotSatisfiable, parse_range

sizes = st.integers(min_value=1, max_value=1 << 40)


def test_no_header_means_the_whole() -> None:
    assert parse_range(None, 10) is None


@given(size=sizes, data=st.data())
def test_first_last_inside_the_file_is_that_range(size: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(0, size - 1))
    last = data.draw(st.integers(first, size - 1))
    wanted = parse_range(f"bytes={first}-{last}", size)
    assert wanted == ByteRange(first, last)
    assert wanted.length == last - first + 1
    assert wanted.content_range(size) == f"bytes {first}-{last}/{size}"


@given(size=sizes, data=st.data())
def test_a_last_position_past_the_end_is_cut_to_the_end(size: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(0, size - 1))
    last = data.draw(st.integers(size, size + (1 << 20)))
    assert parse_range(f"bytes={first}-{last}", size) == ByteRange(first, size - 1)


@given(size=sizes, data=st.data())
def test_an_open_range_runs_to_the_end(size: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(0, size - 1))
    assert parse_range(f"bytes={first}-", size) == ByteRange(first, size - 1)


@given(size=sizes, suffix=st.integers(1, 1 << 41))
def test_a_suffix_is_the_last_bytes(size: int, suffix: int) -> None:
    assert parse_range(f"bytes=-{suffix}", size) == ByteRange(max(size - suffix, 0), size - 1)


@given(size=st.integers(0, 1 << 40), extra=st.integers(0, 1 << 20))
def test_a_first_position_at_or_past_the_end_is_unsatisfiable(size: int, extra: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(f"bytes={size + extra}-", size)
    with pytest.raises(RangeNotSatisfiable):
        parse_range(f"bytes={size + extra}-{size + extra + 5}", size)


@given(size=sizes, data=st.data())
def test_last_before_first_is_unsatisfiable(size: int, data: st.DataObject) -> None:
    first = data.draw(st.integers(1, size + 10))
    last = data.draw(st.integers(0, first - 1))
    with pytest.raises(RangeNotSatisfiable):
        parse_range(f"bytes={first}-{last}", size)


@pytest.mark.parametrize("header", ["bytes=-0", "bytes=0-", "bytes=-5"])
def test_any_range_of_an_empty_file_or_an_empty_suffix_is_unsatisfiable(header: str) -> None:
    size = 10 if header == "bytes=-0" else 0
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


@pytest.mark.parametrize(
    "header",
    ["items=0-5", "bytes=0-5,10-20", "bytes=a-b", "bytes 0-5", "", "bytes=-", "bytes=0-5;x"],
)
def test_other_units_multi_ranges_and_nonsense_are_served_whole(header: str) -> None:
    assert parse_range(header, 100) is None


@given(header=st.text(max_size=40), size=st.integers(0, 1 << 40))
def test_any_header_gives_a_range_inside_the_file_or_whole_or_416(header: str, size: int) -> None:
    try:
        wanted = parse_range(header, size)
    except RangeNotSatisfiable:
        return
    if wanted is not None:
        assert 0 <= wanted.first <= wanted.last < size


def test_huge_positions_are_refused_without_parsing_them() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=" + "9" * 5000 + "-", 10)

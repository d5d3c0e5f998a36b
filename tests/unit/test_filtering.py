"""The filter language as callers write it: precedence, typing, enums, errors and limits."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.filtering import (
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    MODEL_FILTER_FIELDS,
    VERSION_FILTER_FIELDS,
    And,
    Compare,
    Contains,
    Expr,
    FieldKind,
    Not,
    Op,
    Or,
    Present,
    parse_filter,
    quote_string,
)

V = VERSION_FILTER_FIELDS


def parse(text: str) -> Expr | None:
    return parse_filter(text, V)


def version_is(n: int, op: Op = Op.EQ) -> Compare:
    return Compare("version", None, FieldKind.INTEGER, op, n)


def error_of(text: str, fields: object = V) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parse_filter(text, V if fields is V else MODEL_FILTER_FIELDS)
    assert [v.field for v in caught.value.violations] == ["filter"]
    return caught.value.violations[0].description


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_filter_means_no_filter(text: str) -> None:
    assert parse(text) is None


def test_or_binds_tighter_than_and() -> None:
    expected = And((version_is(1), Or((version_is(2), version_is(3)))))
    assert parse("version = 1 AND version = 2 OR version = 3") == expected
    assert parse("version = 1 version = 2 OR version = 3") == expected


def test_juxtaposition_and_explicit_and_are_the_same() -> None:
    assert parse("version = 1 version = 2") == parse("version = 1 AND version = 2")
    assert parse("version=1 version=2") == And((version_is(1), version_is(2)))


def test_parentheses_override_precedence() -> None:
    assert parse("(version = 1 AND version = 2) OR version = 3") == Or(
        (And((version_is(1), version_is(2))), version_is(3))
    )


def test_not_and_minus_negate_one_term() -> None:
    assert parse("NOT version = 1 OR version = 2") == Or((Not(version_is(1)), version_is(2)))
    assert parse("-version = 1") == Not(version_is(1))
    assert parse("-labels:team") == Not(Present("labels", "team", FieldKind.STRING_MAP))


def test_negative_numbers_are_values_not_negations() -> None:
    assert parse("metrics.delta > -1.5") == Compare(
        "metrics", "delta", FieldKind.NUMBER_MAP, Op.GT, Decimal("-1.5")
    )
    assert parse("metrics.delta>-2e-3") == Compare(
        "metrics", "delta", FieldKind.NUMBER_MAP, Op.GT, Decimal("-0.002")
    )


@pytest.mark.parametrize(
    ("text", "op"),
    [("=", Op.EQ), ("!=", Op.NE), ("<", Op.LT), ("<=", Op.LE), (">", Op.GT), (">=", Op.GE)],
)
def test_every_comparison_operator(text: str, op: Op) -> None:
    assert parse(f"version {text} 7") == version_is(7, op)


def test_strings_accept_quotes_escapes_and_bare_words() -> None:
    assert parse(r'description = "say \"hi\"\n\\"') == Compare(
        "description", None, FieldKind.STRING, Op.EQ, 'say "hi"\n\\'
    )
    assert parse("owner = alice") == Compare("owner", None, FieldKind.STRING, Op.EQ, "alice")
    assert parse("name:llama") == Contains("name", None, FieldKind.STRING, "llama")
    assert parse("name:*") == Present("name", None, FieldKind.STRING)


@given(st.text(st.characters(exclude_characters="\x00"), max_size=40))
def test_quote_string_round_trips_any_text_without_nul(text: str) -> None:
    parsed = parse(f"description = {quote_string(text)}")
    assert parsed == Compare("description", None, FieldKind.STRING, Op.EQ, text)


@pytest.mark.parametrize(
    "text", ['description = "a\x00b"', "description = a\x00", 'labels.a\x00 = "x"', "\x00"]
)
def test_nul_anywhere_is_refused_before_it_reaches_postgresql(text: str) -> None:
    # PostgreSQL text cannot hold U+0000: in a value, a bare word or a map key it was INTERNAL.
    assert "NUL (U+0000)" in error_of(text)


def test_map_forms() -> None:
    labels = FieldKind.STRING_MAP
    assert parse("labels:team") == Present("labels", "team", labels)
    assert parse('labels:"team"') == Present("labels", "team", labels)
    assert parse("labels.team:*") == Present("labels", "team", labels)
    assert parse("labels:*") == Present("labels", None, labels)
    assert parse('labels.team:"ml"') == Contains("labels", "team", labels, "ml")
    assert parse("labels.app.kubernetes.io/name = web") == Compare(
        "labels", "app.kubernetes.io/name", labels, Op.EQ, "web"
    )
    assert parse("metrics:loss") == Present("metrics", "loss", FieldKind.NUMBER_MAP)


def test_string_map_number_literals() -> None:
    params = FieldKind.STRING_MAP
    # = and != compare the literal's source text; ordering compares numerically.
    assert parse("parameters.epochs = 10") == Compare("parameters", "epochs", params, Op.EQ, "10")
    assert parse("parameters.lr = 1e-3") == Compare("parameters", "lr", params, Op.EQ, "1e-3")
    assert parse("parameters.lr < 1e-3") == Compare(
        "parameters", "lr", params, Op.LT, Decimal("0.001")
    )
    assert parse('parameters.opt < "b"') == Compare("parameters", "opt", params, Op.LT, "b")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("stage = PRODUCTION", "PRODUCTION"),
        ("stage = production", "PRODUCTION"),
        ('stage = "Staging"', "STAGING"),
        ("stage = STAGE_ARCHIVED", "ARCHIVED"),
        ("stage = stage_development", "DEVELOPMENT"),
        ("status = MODEL_VERSION_STATUS_READY", "READY"),
        ("status = pending", "PENDING"),
    ],
)
def test_enum_values_normalise_to_the_short_upper_case_name(text: str, value: str) -> None:
    parsed = parse(text)
    assert isinstance(parsed, Compare)
    assert parsed.value == value


def test_timestamps_are_normalised_to_utc_with_microseconds() -> None:
    parsed = parse('create_time >= "2026-03-01T12:30:00.123456+02:00"')
    assert parsed == Compare(
        "create_time",
        None,
        FieldKind.TIMESTAMP,
        Op.GE,
        datetime(2026, 3, 1, 10, 30, 0, 123456, tzinfo=UTC),
    )
    assert parse('update_time < "2026-01-01T00:00:00.100000000z"') == Compare(
        "update_time", None, FieldKind.TIMESTAMP, Op.LT, datetime(2026, 1, 1, 0, 0, 0, 100000, UTC)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour = red", 'unknown field "colour" at column 1'),
        ("labels = x", "labels is a map: name a key"),
        ("metrics < 1", "metrics is a map: name a key"),
        ("name.first = x", "field name has no subfields"),
        ("labels. = x", "lacks a key"),
        ('version = "3"', "version is an integer"),
        ("version = 1.5", "not whole"),
        ("version = 9223372036854775808", "out of range"),
        ("version:3", "version is an integer"),
        ("stage < PRODUCTION", "stage is an enum: only = and != apply"),
        ("stage = LIVE", "is not one of DEVELOPMENT, STAGING, PRODUCTION, ARCHIVED"),
        ("stage = STAGE_UNSPECIFIED", "is not one of"),
        ("stage:*", "stage is an enum"),
        ('create_time > "yesterday"', "create_time is a timestamp: expected an RFC 3339"),
        ('create_time > "2026-01-01"', "create_time is a timestamp"),
        ('create_time > "2026-01-01T00:00:00"', "create_time is a timestamp"),
        ('create_time > "2026-02-30T00:00:00Z"', "is not a valid time"),
        ('create_time > "2026-01-01T00:00:00.0000001Z"', "more precise than a microsecond"),
        ("create_time:x", "create_time is a timestamp"),
        ('metrics.loss = "low"', "metrics.loss is a number: expected a number"),
        ("metrics.loss = low", "metrics.loss is a number"),
        ("metrics.loss:0.5", "metrics.loss is a number: ':' with a value"),
        ("metrics.loss < 1e5000", "out of range"),
        ("version = 1 AND", "expected a comparison after AND"),
        ("version = 1 OR", "expected a comparison after OR"),
        ("(version = 1", "expected ')' to close the '(' at column 1"),
        ("version = 1)", "unmatched ')' at column 12"),
        ("()", "empty parentheses at column 1"),
        ("version", "expected an operator"),
        ("version =", "expected a value after '=' (column 9) for version, found end of filter"),
        ("name = OR", "quote it"),
        ('"llama"', "expected a field name at column 1"),
        ("name = x , y", "unexpected character ',' at column 10"),
        ("name ! x", "did you mean '!='"),
        ('name = "open', "string starting at column 8 is not closed"),
        (r'name = "\q"', r"unknown escape \q at column 9"),
        ("name = AND x", "expected a value"),
        ("and = 1", 'unknown field "and"'),
        ("name = x NOT", "expected a comparison at column 13, found end of filter"),
    ],
)
def test_errors_say_what_and_where(text: str, expected: str) -> None:
    assert expected in error_of(text)


def test_model_catalogue_has_no_version_fields() -> None:
    assert 'unknown field "stage"' in error_of("stage = PRODUCTION", MODEL_FILTER_FIELDS)
    assert parse_filter("owner = bob labels.team = ml", MODEL_FILTER_FIELDS) is not None


def test_length_limit() -> None:
    assert parse("version = 1".ljust(MAX_FILTER_LENGTH)) == version_is(1)
    assert "at most 4096" in error_of("version = 1".ljust(MAX_FILTER_LENGTH + 1))


def test_depth_limit_protects_the_stack() -> None:
    ok = "(" * MAX_DEPTH + "version = 1" + ")" * MAX_DEPTH
    assert parse(ok) == version_is(1)
    assert "more than 32 deep" in error_of("(" * (MAX_DEPTH + 1) + "version = 1" + ")" * 33)
    assert "more than 32 deep" in error_of("NOT " * (MAX_DEPTH + 1) + "version = 1")
    assert "more than 32 deep" in error_of("-" * 2000 + "version = 1")
    assert "more than 32 deep" in error_of("(" * 2000)


def test_long_flat_filters_do_not_recurse() -> None:
    text = " OR ".join(["version = 1"] * 250)
    parsed = parse(text)
    assert isinstance(parsed, Or)
    assert len(parsed.operands) == 250


@given(st.text(max_size=200))
def test_any_text_parses_or_fails_with_invalid_argument(text: str) -> None:
    try:
        parse(text)
    except InvalidArgument as error:
        fields = [violation.field for violation in error.violations]
    else:
        return
    assert fields == ["filter"]

"""order_by as callers write it: defaults, directions, map keys and errors."""

from __future__ import annotations

import pytest

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.filtering import FieldKind
from modelregistry.domain.ordering import (
    MAX_ORDER_KEYS,
    MODEL_ORDER_FIELDS,
    VERSION_ORDER_FIELDS,
    OrderKey,
    parse_order_by,
)


def test_empty_order_by_means_the_method_default() -> None:
    assert parse_order_by("", MODEL_ORDER_FIELDS) == [
        OrderKey("name", None, descending=False, kind=FieldKind.STRING)
    ]
    assert parse_order_by("  ", VERSION_ORDER_FIELDS) == [
        OrderKey("version", None, descending=True, kind=FieldKind.INTEGER)
    ]


def test_fields_directions_and_metric_keys() -> None:
    assert parse_order_by("metrics.accuracy desc, version", VERSION_ORDER_FIELDS) == [
        OrderKey("metrics", "accuracy", descending=True, kind=FieldKind.NUMBER_MAP),
        OrderKey("version", None, descending=False, kind=FieldKind.INTEGER),
    ]
    assert parse_order_by("create_time DESC,update_time asc", MODEL_ORDER_FIELDS) == [
        OrderKey("create_time", None, descending=True, kind=FieldKind.TIMESTAMP),
        OrderKey("update_time", None, descending=False, kind=FieldKind.TIMESTAMP),
    ]


def test_distinct_metric_keys_may_be_combined() -> None:
    keys = parse_order_by("metrics.a, metrics.b desc", VERSION_ORDER_FIELDS)
    assert [(k.key, k.descending) for k in keys] == [("a", False), ("b", True)]


@pytest.mark.parametrize(
    ("text", "catalogue", "expected"),
    [
        ("colour", MODEL_ORDER_FIELDS, "cannot order by 'colour'"),
        ("version", MODEL_ORDER_FIELDS, "the fields you can order by are name, create_time"),
        ("metrics.loss", MODEL_ORDER_FIELDS, "cannot order by 'metrics.loss'"),
        ("name, name desc", MODEL_ORDER_FIELDS, "names name twice"),
        ("metrics.a, metrics.a desc", VERSION_ORDER_FIELDS, "names metrics.a twice"),
        ("metrics", VERSION_ORDER_FIELDS, "metrics is a map: name a key"),
        ("metrics.", VERSION_ORDER_FIELDS, "metrics is a map: name a key"),
        ("version.x", VERSION_ORDER_FIELDS, "field version has no subfields"),
        ("version up", VERSION_ORDER_FIELDS, "unknown direction 'up' after version"),
        ("version desc desc", VERSION_ORDER_FIELDS, "is not a field optionally followed by desc"),
        ("version,", VERSION_ORDER_FIELDS, "item 2 is empty"),
        (", version", VERSION_ORDER_FIELDS, "item 1 is empty"),
        ("metrics.a\x00", VERSION_ORDER_FIELDS, "NUL (U+0000) character at column 10"),
        ("name\x00 desc", MODEL_ORDER_FIELDS, "NUL (U+0000)"),
    ],
)
def test_errors_name_the_problem(text: str, catalogue: object, expected: str) -> None:
    assert catalogue in (MODEL_ORDER_FIELDS, VERSION_ORDER_FIELDS)
    with pytest.raises(InvalidArgument) as caught:
        parse_order_by(
            text, VERSION_ORDER_FIELDS if catalogue is VERSION_ORDER_FIELDS else MODEL_ORDER_FIELDS
        )
    assert caught.value.violations[0].field == "order_by"
    assert expected in caught.value.violations[0].description


def test_number_of_keys_is_bounded() -> None:
    text = ", ".join(f"metrics.m{i}" for i in range(MAX_ORDER_KEYS + 1))
    with pytest.raises(InvalidArgument, match="at most 8"):
        parse_order_by(text, VERSION_ORDER_FIELDS)
    assert len(parse_order_by(text.rsplit(",", 1)[0], VERSION_ORDER_FIELDS)) == MAX_ORDER_KEYS

"""Filters and keyset paging on a real PostgreSQL agree with a reference written in Python.

Hypothesis generates a small registry (models and versions inserted straight into the tables)
and filter expression trees. Each tree is rendered to filter text, parsed back by
``domain.filtering``, compiled by ``storage.sql_filters`` and run; the matching ids must equal
those of ``evaluate`` below, which restates the documented semantics over the same data. The
paging property pages through random orderings with signed keyset tokens while rows are being
inserted and checks that every row that existed when paging began appears exactly once, in
the order a Python sort gives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, cast

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelregistry.domain.filtering import (
    MODEL_FILTER_FIELDS,
    VERSION_FILTER_FIELDS,
    FieldKind,
    FieldSpec,
    parse_filter,
    quote_string,
)
from modelregistry.domain.ordering import (
    MODEL_ORDER_FIELDS,
    VERSION_ORDER_FIELDS,
    OrderKey,
    parse_order_by,
)
from modelregistry.domain.page_tokens import (
    CursorValue,
    decode_page_token,
    encode_page_token,
    page_token_binding,
)
from modelregistry.storage.listing_store import MODEL_FIELD_COLUMNS, VERSION_FIELD_COLUMNS
from modelregistry.storage.sql_filters import compile_filter, compile_order

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- data ------------------------------------------------------------------------------------

# Few distinct values, so that comparisons hit equal, smaller and larger values often. The
# awkward characters check escaping (LIKE wildcards, quotes, backslashes) and code-point order.
TEXTS = ["", "a", "b", "ab", "ba", "A", "a%", "_", 'q"', "\\", "é", "a b", "AND"]
KEYS = ["team", "env", "lr"]
PARAMETER_VALUES = ["10", "1e-3", "-2", "0.5", ".5", "1.", "abc", "", "x1", "+3", "1e999"]
METRIC_VALUES = ["0", "0.5", "-1", "3", "1e20", "-0.25", "2.5"]
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
TIMES = [BASE_TIME + timedelta(seconds=s, microseconds=us) for s in (0, 1) for us in (0, 1, 7)]
STAGES = ["DEVELOPMENT", "STAGING", "PRODUCTION", "ARCHIVED"]
STATUSES = ["PENDING", "READY"]

texts = st.sampled_from(TEXTS)
string_maps = st.dictionaries(st.sampled_from(KEYS), texts | st.sampled_from(PARAMETER_VALUES))
metric_maps = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(METRIC_VALUES))
times = st.sampled_from(TIMES)


@dataclass
class Row:
    """A model or a version as the filter sees it (a version carries its model's name, owner)."""

    values: dict[str, Any]
    id: int = 0


@dataclass
class Registry:
    models: list[Row] = field(default_factory=list)
    versions: list[Row] = field(default_factory=list)


@st.composite
def registries(draw: st.DrawFn) -> Registry:
    names = draw(st.lists(texts.filter(bool), min_size=1, max_size=4, unique=True))
    registry = Registry()
    for name in names:
        registry.models.append(
            Row(
                {
                    "name": name,
                    # Unique as the names are; NULL in the table means "the id".
                    "display_name": draw(st.sampled_from([name, f"{name} shown"])),
                    "owner": draw(texts),
                    "description": draw(texts),
                    "labels": draw(string_maps),
                    "create_time": draw(times),
                    "update_time": draw(times),
                }
            )
        )
    latest = dict.fromkeys(range(len(names)), 0)
    in_production: set[int] = set()
    for _ in range(draw(st.integers(0, 14))):
        registry.versions.append(
            new_version(draw, registry, latest, in_production, draw(st.integers(0, len(names) - 1)))
        )
    return registry


def new_version(
    draw: Callable[[st.SearchStrategy[Any]], Any],
    registry: Registry,
    latest: dict[int, int],
    in_production: set[int],
    model: int,
) -> Row:
    latest[model] += 1
    stage = draw(st.sampled_from(STAGES))
    if stage == "PRODUCTION" and model in in_production:  # one PRODUCTION per model
        stage = "STAGING"
    if stage == "PRODUCTION":
        in_production.add(model)
    return Row(
        {
            "model": model,
            "name": registry.models[model].values["name"],
            "display_name": registry.models[model].values["display_name"],
            "owner": registry.models[model].values["owner"],
            "version": latest[model],
            "stage": stage,
            "status": draw(st.sampled_from(STATUSES)),
            "description": draw(texts),
            "run_id": draw(texts),
            "source": draw(texts),
            "created_by": draw(texts),
            "labels": draw(string_maps),
            "parameters": draw(string_maps),
            "metrics": draw(metric_maps),
            "create_time": draw(times),
            "update_time": draw(times),
        }
    )


def metrics_json(metrics: dict[str, str]) -> str:
    """Metrics as JSON numbers, written from their exact decimal text."""
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in metrics.items()) + "}"


async def insert_model(conn: asyncpg.Connection, row: Row) -> None:
    v = row.values
    row.id = await conn.fetchval(
        """INSERT INTO models (name, owner, description, labels, create_time, update_time,
                               display_name)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7) RETURNING id""",
        v["name"],
        v["owner"],
        v["description"],
        json.dumps(v["labels"]),
        v["create_time"],
        v["update_time"],
        v["display_name"],
    )


async def insert_version(conn: asyncpg.Connection, registry: Registry, row: Row) -> None:
    v = row.values
    row.id = await conn.fetchval(
        """INSERT INTO model_versions (model_id, version, stage, status, description, run_id,
               created_by, labels, parameters, metrics, create_time, update_time,
               source_repository)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11, $12, $13)
           RETURNING id""",
        registry.models[v["model"]].id,
        v["version"],
        v["stage"],
        v["status"],
        v["description"],
        v["run_id"],
        v["created_by"],
        json.dumps(v["labels"]),
        json.dumps(v["parameters"]),
        metrics_json(v["metrics"]),
        v["create_time"],
        v["update_time"],
        v["source"],
    )


async def load(conn: asyncpg.Connection, registry: Registry) -> None:
    await conn.execute("TRUNCATE models, model_versions RESTART IDENTITY CASCADE")
    for model in registry.models:
        await insert_model(conn, model)
    for version in registry.versions:
        await insert_version(conn, registry, version)


# --- filter trees, their text, and the reference semantics --------------------------------


@dataclass(frozen=True)
class Literal:
    text: str  # as written in the filter
    value: Any  # what it means: str, int, Decimal, datetime
    is_number: bool = False


@dataclass(frozen=True)
class Leaf:
    field: str
    key: str | None
    op: str  # = != < <= > >= : (with literal) :* (literal None)
    literal: Literal | None


@dataclass(frozen=True)
class Node:
    op: str  # AND OR NOT
    operands: tuple[Tree, ...]


Tree = Leaf | Node

_WORD = re.compile(r"[A-Za-z]+")
_NUMBER_TEXT = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,3})?")
COMPARISONS = ["=", "!=", "<", "<=", ">", ">="]


def string_literal(text: str, bare: bool) -> Literal:
    if bare and _WORD.fullmatch(text) and text not in ("AND", "OR", "NOT"):
        return Literal(text, text)
    return Literal(quote_string(text), text)


def number_literal(text: str) -> Literal:
    return Literal(text, Decimal(text), is_number=True)


def time_literal(moment: datetime, offset_minutes: int) -> Literal:
    zone = timezone(timedelta(minutes=offset_minutes))
    local = moment.astimezone(zone)
    text = local.isoformat(timespec="microseconds")
    if offset_minutes == 0:
        text = text.replace("+00:00", "Z")
    return Literal(quote_string(text), moment)


def leaves(spec: FieldSpec) -> st.SearchStrategy[Leaf]:
    name = spec.name
    keys = st.sampled_from(KEYS)
    strings = st.builds(string_literal, texts | st.sampled_from(PARAMETER_VALUES), st.booleans())
    if spec.kind is FieldKind.STRING:
        return st.one_of(
            st.builds(
                Leaf, st.just(name), st.none(), st.sampled_from([*COMPARISONS, ":"]), strings
            ),
            st.just(Leaf(name, None, ":*", None)),
        )
    if spec.kind is FieldKind.INTEGER:
        integers = st.integers(-1, 5).map(lambda n: Literal(str(n), n, is_number=True))
        return st.builds(Leaf, st.just(name), st.none(), st.sampled_from(COMPARISONS), integers)
    if spec.kind is FieldKind.TIMESTAMP:
        moments = st.sampled_from(TIMES) | st.sampled_from(TIMES).map(
            lambda t: t + timedelta(microseconds=1)
        )
        literal = st.builds(time_literal, moments, st.sampled_from([0, 120, -330]))
        return st.builds(Leaf, st.just(name), st.none(), st.sampled_from(COMPARISONS), literal)
    if spec.kind is FieldKind.ENUM:
        spellings = st.sampled_from(spec.enum_values).flatmap(
            lambda v: st.sampled_from(
                [Literal(v, v), Literal(v.lower(), v), Literal(spec.enum_prefix + v, v)]
            )
        )
        return st.builds(Leaf, st.just(name), st.none(), st.sampled_from(["=", "!="]), spellings)
    numbers = st.sampled_from([*METRIC_VALUES, *PARAMETER_VALUES[:6], "2"]).map(number_literal)
    has_key = st.one_of(
        st.builds(Leaf, st.just(name), keys, st.just(":*"), st.none()),
        keys.map(lambda k: Leaf(name, None, ":", Literal(k, k))),
        st.just(Leaf(name, None, ":*", None)),
    )
    if spec.kind is FieldKind.NUMBER_MAP:
        compare = st.builds(Leaf, st.just(name), keys, st.sampled_from(COMPARISONS), numbers)
        return has_key | compare
    compare = st.builds(Leaf, st.just(name), keys, st.sampled_from(COMPARISONS), strings | numbers)
    contains = st.builds(Leaf, st.just(name), keys, st.just(":"), strings)
    return has_key | compare | contains


def trees(fields: Sequence[FieldSpec]) -> st.SearchStrategy[Tree]:
    leaf = st.one_of([leaves(spec) for spec in fields])
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.builds(
                Node, st.sampled_from(["AND", "OR"]), st.lists(children, min_size=2, max_size=3)
            ).map(lambda n: Node(n.op, tuple(n.operands))),
            children.map(lambda c: Node("NOT", (c,))),
        ),
        max_leaves=8,
    )


def render(tree: Tree, spacing: str = " ") -> str:
    if isinstance(tree, Leaf):
        path = tree.field if tree.key is None else f"{tree.field}.{tree.key}"
        if tree.literal is None:
            return f"{path}:*"
        return f"{path}{spacing}{tree.op}{spacing}{tree.literal.text}"
    if tree.op == "NOT":
        (operand,) = tree.operands
        return f"NOT ({render(operand)})" if isinstance(operand, Node) else f"-{render(operand)}"
    joiner = " OR " if tree.op == "OR" else (" AND " if len(tree.operands) != 2 else " ")
    return "(" + joiner.join(render(operand) for operand in tree.operands) + ")"


def evaluate(tree: Tree, row: dict[str, Any]) -> bool:
    """The documented semantics, restated over Python values."""
    if isinstance(tree, Node):
        results = [evaluate(operand, row) for operand in tree.operands]
        if tree.op == "NOT":
            return not results[0]
        return all(results) if tree.op == "AND" else any(results)
    value = row[tree.field]
    literal = tree.literal
    if tree.op == ":*":
        if tree.key is None:
            return bool(value)  # non-empty string or map
        return tree.key in value
    assert literal is not None
    if isinstance(value, dict):
        if tree.key is None:  # map:key
            return literal.value in value
        if tree.key not in value:
            return False  # absent entries compare false
        stored = value[tree.key]
        if tree.field == "metrics":
            return compare(Decimal(stored), tree.op, literal.value)
        if tree.op == ":":
            return literal.value in stored
        if literal.is_number and tree.op in ("=", "!="):
            return compare(stored, tree.op, literal.text)
        if literal.is_number:
            if not _NUMBER_TEXT.fullmatch(stored):
                return False
            return compare(Decimal(stored), tree.op, literal.value)
        return compare(stored, tree.op, literal.value)
    if tree.op == ":":
        return literal.value in value
    return compare(value, tree.op, literal.value)


def compare(left: Any, op: str, right: Any) -> bool:
    return bool(
        {
            "=": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]
    )


async def matching_ids(conn: asyncpg.Connection, text: str, versions: bool) -> set[int]:
    fields = VERSION_FILTER_FIELDS if versions else MODEL_FILTER_FIELDS
    params: list[object] = []
    where = compile_filter(
        parse_filter(text, fields),
        VERSION_FIELD_COLUMNS if versions else MODEL_FIELD_COLUMNS,
        params,
    )
    source = "model_versions v JOIN models m ON m.id = v.model_id" if versions else "models m"
    row_id = "v.id" if versions else "m.id"
    rows = await conn.fetch(f"SELECT {row_id} AS id FROM {source} WHERE {where}", *params)  # noqa: S608
    return {row["id"] for row in rows}


@PROPERTY_SETTINGS
@given(
    registry=registries(),
    version_filters=st.lists(trees(list(VERSION_FILTER_FIELDS.values())), max_size=6),
    model_filters=st.lists(trees(list(MODEL_FILTER_FIELDS.values())), max_size=3),
)
async def test_filters_match_the_reference(
    migrated_database_url: str,
    registry: Registry,
    version_filters: list[Tree],
    model_filters: list[Tree],
) -> None:
    conn = await asyncpg.connect(migrated_database_url)
    try:
        await load(conn, registry)
        for tree in version_filters:
            text = render(tree)
            expected = {row.id for row in registry.versions if evaluate(tree, row.values)}
            assert await matching_ids(conn, text, versions=True) == expected, text
        for tree in model_filters:
            text = render(tree, spacing="")
            expected = {row.id for row in registry.models if evaluate(tree, row.values)}
            assert await matching_ids(conn, text, versions=False) == expected, text
    finally:
        await conn.close()


# --- paging ----------------------------------------------------------------------------------


def cursor_of(values: Sequence[object]) -> list[CursorValue]:
    assert all(v is None or isinstance(v, str | int | Decimal | datetime) for v in values)
    return cast(list[CursorValue], values)


TOKEN_KEY = b"test-page-token-key"


@st.composite
def order_bys(draw: st.DrawFn) -> str:
    candidates = ["version", "create_time", "update_time", *(f"metrics.{k}" for k in KEYS)]
    chosen = draw(st.lists(st.sampled_from(candidates), max_size=3, unique=True))
    return ", ".join(f"{path}{draw(st.sampled_from(['', ' desc', ' asc']))}" for path in chosen)


def reference_order(rows: list[Row], keys: list[OrderKey]) -> list[int]:
    """Sort by each key from last to first (stable sorts), after the id tie-breaker."""
    ordered = sorted(rows, key=lambda r: r.id)
    for key in reversed(keys):
        if key.field == "metrics":
            metric = key.key

            def sort_key(row: Row, metric: str | None = metric) -> tuple[bool, Decimal]:
                stored = row.values["metrics"].get(metric)
                return (stored is None, Decimal(stored) if stored is not None else Decimal(0))

            present = [r for r in ordered if sort_key(r)[0] is False]
            absent = [r for r in ordered if sort_key(r)[0] is True]  # last, either way
            present.sort(key=lambda r: sort_key(r)[1], reverse=key.descending)
            ordered = present + absent
        else:
            field_name = key.field
            ordered.sort(key=lambda r: r.values[field_name], reverse=key.descending)
    return [row.id for row in ordered]


@PROPERTY_SETTINGS
@given(
    registry=registries(),
    order_by=order_bys(),
    page_size=st.integers(1, 4),
    concurrent=st.data(),
)
async def test_keyset_pages_return_every_row_once_in_order(
    migrated_database_url: str,
    registry: Registry,
    order_by: str,
    page_size: int,
    concurrent: st.DataObject,
) -> None:
    keys = parse_order_by(order_by, VERSION_ORDER_FIELDS)
    binding = page_token_binding("ListModelVersions", "models/-", "", order_by)
    conn = await asyncpg.connect(migrated_database_url)
    try:
        await load(conn, registry)
        existing = reference_order(registry.versions, keys)
        latest = {i: 0 for i in range(len(registry.models))}
        for row in registry.versions:
            latest[row.values["model"]] = max(latest[row.values["model"]], row.values["version"])
        in_production = {
            row.values["model"] for row in registry.versions if row.values["stage"] == "PRODUCTION"
        }

        seen: list[int] = []
        token = ""
        for _ in range(100):
            params: list[object] = []
            order = compile_order(keys, VERSION_FIELD_COLUMNS, "v.id", params)
            where = "TRUE"
            if token:
                where = order.after(decode_page_token(TOKEN_KEY, binding, token), params)
            rows = await conn.fetch(
                f"SELECT v.id, {order.select_list} "  # noqa: S608
                "FROM model_versions v JOIN models m ON m.id = v.model_id "
                f"WHERE {where} ORDER BY {order.order_by} LIMIT {page_size + 1}",
                *params,
            )
            seen.extend(row["id"] for row in rows[:page_size])
            if len(rows) <= page_size:
                break
            token = encode_page_token(
                TOKEN_KEY, binding, cursor_of(order.cursor_from_row(rows[page_size - 1]))
            )
            # Another client registers a version between two pages.
            if concurrent.draw(st.booleans(), label="insert between pages"):
                model = concurrent.draw(st.integers(0, len(registry.models) - 1))
                row = new_version(concurrent.draw, registry, latest, in_production, model)
                await insert_version(conn, registry, row)
        else:
            raise AssertionError("paging did not end")
    finally:
        await conn.close()

    assert len(seen) == len(set(seen)), "a row appeared on two pages"
    assert [row_id for row_id in seen if row_id in set(existing)] == existing


@st.composite
def model_order_bys(draw: st.DrawFn) -> str:
    chosen = draw(st.lists(st.sampled_from(["name", "create_time", "update_time"]), unique=True))
    return ", ".join(f"{path}{draw(st.sampled_from(['', ' desc']))}" for path in chosen)


@PROPERTY_SETTINGS
@given(registry=registries(), order_by=model_order_bys(), page_size=st.integers(1, 3))
async def test_model_pages_follow_code_point_order(
    migrated_database_url: str, registry: Registry, order_by: str, page_size: int
) -> None:
    keys = parse_order_by(order_by, MODEL_ORDER_FIELDS)
    binding = page_token_binding("ListModels", "", "", order_by)
    conn = await asyncpg.connect(migrated_database_url)
    try:
        await load(conn, registry)
        seen: list[int] = []
        token = ""
        while True:
            params: list[object] = []
            order = compile_order(keys, MODEL_FIELD_COLUMNS, "m.id", params)
            where = "TRUE"
            if token:
                where = order.after(decode_page_token(TOKEN_KEY, binding, token), params)
            rows = await conn.fetch(
                f"SELECT m.id, {order.select_list} FROM models m "  # noqa: S608
                f"WHERE {where} ORDER BY {order.order_by} LIMIT {page_size + 1}",
                *params,
            )
            seen.extend(row["id"] for row in rows[:page_size])
            if len(rows) <= page_size:
                break
            token = encode_page_token(
                TOKEN_KEY, binding, cursor_of(order.cursor_from_row(rows[page_size - 1]))
            )
    finally:
        await conn.close()
    assert seen == reference_order(registry.models, keys)

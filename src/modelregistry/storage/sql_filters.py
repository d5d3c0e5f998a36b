"""Compile filters and orderings into parameterised PostgreSQL.

Values and map keys always travel as ``$n`` parameters (numbered after whatever the caller
already put in ``params``), each with an explicit cast so the driver encodes it for the right
type; only column expressions from the caller's ``columns`` mapping and fixed SQL text are
pasted into the statement.

``columns`` maps a field name to a SQL expression: scalar fields to NOT NULL columns of the
matching type (text, bigint, timestamptz; enums as their short-name text), map fields to
jsonb objects (``labels``/``parameters`` with string values, ``metrics`` with number values).

Filters keep two-valued logic: every comparison on a map entry is wrapped in
``COALESCE(..., FALSE)``, so an absent key makes it false and ``NOT`` of it true. Text
ordering comparisons use ``COLLATE "C"`` (code-point order) and substring tests use
``strpos`` (no LIKE wildcards to escape). See ``domain.filtering`` for the semantics.

Orderings: ``compile_order`` returns the ORDER BY list, the cursor expressions to select with
each row, and ``after(cursor)``, the keyset predicate "strictly after this row" in the
expanded OR-of-ANDs form. A unique tie-breaker column ends every ordering, so the order is
total: paging with the cursor of the last row returns every row that existed when paging began
exactly once (rows inserted meanwhile may or may not appear; a row whose sort key changes
meanwhile may move). A metric key sorts rows without the metric last in both directions
(``NULLS LAST``), and ``after`` treats that NULL group explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.filtering import (
    NUMERIC_TEXT_PATTERN,
    And,
    Compare,
    Contains,
    Expr,
    FieldKind,
    Like,
    Not,
    Op,
    Or,
    Present,
)
from modelregistry.domain.ordering import OrderKey
from modelregistry.domain.page_tokens import CursorValue

_SQL_OPS = {Op.EQ: "=", Op.NE: "<>", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}
_SCALAR_CASTS = {
    FieldKind.STRING: "text",
    FieldKind.ENUM: "text",
    FieldKind.INTEGER: "bigint",
    FieldKind.TIMESTAMP: "timestamptz",
    FieldKind.NUMBER_MAP: "numeric",
}
_CURSOR_ALIAS = "_cursor_{}"


def compile_filter(expr: Expr | None, columns: Mapping[str, str], params: list[object]) -> str:
    """A SQL boolean for ``expr`` (``TRUE`` for None); appends its values to ``params``."""
    if expr is None:
        return "TRUE"
    return _Compiler(columns, params).compile(expr)


class _Compiler:
    def __init__(self, columns: Mapping[str, str], params: list[object]) -> None:
        self._columns = columns
        self._params = params

    def param(self, value: object, cast: str) -> str:
        self._params.append(value)
        return f"${len(self._params)}::{cast}"

    def column(self, field: str) -> str:
        try:
            return f"({self._columns[field]})"
        except KeyError:
            raise ValueError(f"no SQL column mapped for filter field {field!r}") from None

    def compile(self, expr: Expr) -> str:
        if isinstance(expr, And | Or):
            joiner = " AND " if isinstance(expr, And) else " OR "
            return "(" + joiner.join(self.compile(operand) for operand in expr.operands) + ")"
        if isinstance(expr, Not):
            return f"(NOT {self.compile(expr.operand)})"
        if isinstance(expr, Present):
            return self.present(expr)
        if isinstance(expr, Contains):
            return self.contains(expr)
        if isinstance(expr, Like):
            return self.like(expr)
        return self.compare(expr)

    def like(self, expr: Like) -> str:
        column = self.column(expr.field)
        target = column if expr.key is None else f"({column} ->> {self.param(expr.key, 'text')})"
        op = "ILIKE" if expr.case_insensitive else "LIKE"
        return f"COALESCE({target} {op} {self.param(expr.pattern, 'text')}, FALSE)"

    def present(self, expr: Present) -> str:
        column = self.column(expr.field)
        if expr.kind is FieldKind.STRING:
            return f"({column} <> '')"
        if expr.key is None:
            return f"({column} <> '{{}}'::jsonb)"
        return f"({column} ? {self.param(expr.key, 'text')})"

    def contains(self, expr: Contains) -> str:
        column = self.column(expr.field)
        if expr.key is None:
            return f"(strpos({column}, {self.param(expr.value, 'text')}) > 0)"
        entry = f"({column} ->> {self.param(expr.key, 'text')})"
        return f"COALESCE(strpos({entry}, {self.param(expr.value, 'text')}) > 0, FALSE)"

    def compare(self, expr: Compare) -> str:
        column = self.column(expr.field)
        op = _SQL_OPS[expr.op]
        ordering = expr.op not in (Op.EQ, Op.NE)
        if expr.kind is FieldKind.STRING_MAP:
            entry = f"({column} ->> {self.param(expr.key, 'text')})"
            if isinstance(expr.value, str):
                collate = ' COLLATE "C"' if ordering else ""
                value = self.param(expr.value, "text")
                return f"COALESCE({entry}{collate} {op} {value}, FALSE)"
            number = f"(CASE WHEN {entry} ~ '{NUMERIC_TEXT_PATTERN}' THEN {entry}::numeric END)"
            return f"COALESCE({number} {op} {self.param(expr.value, 'numeric')}, FALSE)"
        if expr.kind is FieldKind.NUMBER_MAP:
            number = _metric(column, self.param(expr.key, "text"))
            return f"COALESCE({number} {op} {self.param(expr.value, 'numeric')}, FALSE)"
        collate = ' COLLATE "C"' if ordering and expr.kind is FieldKind.STRING else ""
        value = self.param(expr.value, _SCALAR_CASTS[expr.kind])
        return f"({column}{collate} {op} {value})"


def _metric(column: str, key_placeholder: str) -> str:
    """A metric as numeric, NULL when absent (or, defensively, not a JSON number)."""
    entry = f"({column} -> {key_placeholder})"
    return f"(CASE WHEN jsonb_typeof({entry}) = 'number' THEN {entry}::numeric END)"


# --- ordering and keyset cursors -----------------------------------------------------------


class RowLike(Protocol):
    def __getitem__(self, key: str, /) -> object: ...


@dataclass(frozen=True)
class _SortColumn:
    sql: str  # with COLLATE "C" for text, so ORDER BY and the keyset agree
    descending: bool
    cast: str
    nullable: bool  # NULLs (absent metrics) sort last in both directions


@dataclass(frozen=True)
class KeysetOrder:
    """A compiled ordering. Select ``select_list`` with each row, ``ORDER BY order_by``, and
    make the next page with ``after(cursor_from_row(last_row), params)``."""

    columns: tuple[_SortColumn, ...]

    @property
    def order_by(self) -> str:
        """The ORDER BY list (without the keywords)."""
        return ", ".join(
            f"{c.sql} {'DESC' if c.descending else 'ASC'}{' NULLS LAST' if c.nullable else ''}"
            for c in self.columns
        )

    @property
    def cursor_exprs(self) -> tuple[str, ...]:
        """The SQL expressions whose values make a row's cursor, in order."""
        return tuple(c.sql for c in self.columns)

    @property
    def select_list(self) -> str:
        """``expr AS _cursor_0, ...`` to add to the SELECT list."""
        return ", ".join(
            f"{c.sql} AS {_CURSOR_ALIAS.format(i)}" for i, c in enumerate(self.columns)
        )

    def cursor_from_row(self, row: RowLike) -> list[CursorValue]:
        """The cursor values of a row selected with ``select_list``."""
        return [cast(CursorValue, row[_CURSOR_ALIAS.format(i)]) for i in range(len(self.columns))]

    def after(self, cursor: Sequence[object], params: list[object]) -> str:
        """SQL true for rows strictly after the row whose cursor values are ``cursor``."""
        if len(cursor) != len(self.columns) or cursor[-1] is None:
            raise InvalidArgument.for_field(
                "page_token",
                "page_token does not match this request: pass the same filter and order_by "
                "as the call that returned it",
            )
        if (
            not any(c.nullable for c in self.columns)
            and len({c.descending for c in self.columns}) == 1
        ):
            # One direction, no NULLs: a row comparison, which an index on the columns serves.
            op = "<" if self.columns[0].descending else ">"
            keys = ", ".join(c.sql for c in self.columns)
            values = ", ".join(
                _push(params, v, c.cast) for c, v in zip(self.columns, cursor, strict=True)
            )
            return f"(({keys}) {op} ({values}))"
        branches: list[str] = []
        equal_prefix: list[str] = []
        for column, value in zip(self.columns, cursor, strict=True):
            placeholder = "" if value is None else _push(params, value, column.cast)
            strictly = _strictly_after(column, placeholder, value is None)
            if strictly is not None:
                branches.append(" AND ".join([*equal_prefix, strictly]))
            if value is None:
                equal_prefix.append(f"{column.sql} IS NULL")
            else:
                equal_prefix.append(f"{column.sql} = {placeholder}")
        return "(" + " OR ".join(f"({branch})" for branch in branches) + ")"


def compile_order(
    order: Sequence[OrderKey],
    columns: Mapping[str, str],
    tie_breaker: str,
    params: list[object],
    tie_breaker_type: str = "bigint",
) -> KeysetOrder:
    """Compile ``order`` plus the ascending unique ``tie_breaker``; map keys go to ``params``."""
    sort_columns: list[_SortColumn] = []
    for key in order:
        column = f"({columns[key.field]})"
        if key.kind is FieldKind.NUMBER_MAP:
            if key.key is None:
                raise ValueError(f"ordering by map field {key.field!r} needs a key")
            sql = _metric(column, _push(params, key.key, "text"))
            sort_columns.append(_SortColumn(sql, key.descending, "numeric", nullable=True))
        elif key.kind is FieldKind.STRING:
            sql = f'{column} COLLATE "C"'
            sort_columns.append(_SortColumn(sql, key.descending, "text", nullable=False))
        else:
            cast = _SCALAR_CASTS[key.kind]
            sort_columns.append(_SortColumn(column, key.descending, cast, nullable=False))
    sort_columns.append(_SortColumn(tie_breaker, False, tie_breaker_type, nullable=False))
    return KeysetOrder(tuple(sort_columns))


def _push(params: list[object], value: object, cast: str) -> str:
    params.append(value)
    return f"${len(params)}::{cast}"


def _strictly_after(column: _SortColumn, placeholder: str, cursor_is_null: bool) -> str | None:
    """Rows whose value in ``column`` sorts strictly after the cursor's, or None if none can."""
    if cursor_is_null:
        return None  # NULLs sort last: nothing is after them in this column
    op = "<" if column.descending else ">"
    comparison = f"{column.sql} {op} {placeholder}"
    if column.nullable:
        return f"({comparison} OR {column.sql} IS NULL)"
    return comparison

"""List filters: parse and validate AIP-160 filter text into a typed expression tree.

Pure: no I/O. ``storage.sql_filters`` turns the tree into parameterised SQL; every value in the
tree is already of the type the database column holds.

Grammar (the subset documented on RegistryService)::

    expr       := and_expr
    and_expr   := or_expr { ["AND"] or_expr }      juxtaposition means AND
    or_expr    := unary { "OR" unary }             OR binds tighter than AND (AIP-160)
    unary      := ["NOT" | "-"] primary
    primary    := "(" expr ")" | comparison
    comparison := field op value | field ":" ( value | "*" )
    op         := "=" | "!=" | "<" | "<=" | ">" | ">="
    value      := "quoted string" | number | bare_word

``a AND b OR c`` is ``a AND (b OR c)``. Keywords are upper case; ``true``/``false`` are bare
words. Quoted strings take the escapes ``\\"``, ``\\\\``, ``\\n``, ``\\t``, ``\\r``. A field
is ``name`` or, for a map, ``name.key`` (the key is everything after the first dot, so
``labels.app.kubernetes.io/name`` names the key ``app.kubernetes.io/name``).

Semantics (two-valued logic everywhere: every comparison is true or false, never unknown):

* STRING: ``=`` ``!=`` compare text; ``<`` ``<=`` ``>`` ``>=`` compare by code point;
  ``field:"x"`` means the value contains ``x`` (case-sensitive); ``field:*`` means non-empty.
  A number literal or bare word is taken as its source text.
* INTEGER: a number literal with an integral value; no ``:``.
* TIMESTAMP: an RFC 3339 string with a zone (``"2026-01-01T00:00:00Z"``), at most microsecond
  precision; no ``:``.
* ENUM: ``=`` and ``!=`` only; the short name in any case (``production``) or the full proto
  name (``STAGE_PRODUCTION``); normalised to the short upper-case name the database stores.
* Maps (STRING_MAP ``labels``/``parameters``, NUMBER_MAP ``metrics``): ``map:key``,
  ``map.key:*`` mean the key is present; ``map:*`` means the map is not empty. Any other
  comparison on an absent key is FALSE (so ``NOT metrics.loss < 1`` matches versions without
  ``loss``, and ``labels.team != "ml"`` does not match versions without ``team``).
* STRING_MAP with a key: ``=``/``!=`` compare text (a number literal by its source text:
  ``parameters.epochs = 10`` matches ``"10"``); ``map.key:"x"`` means the value contains ``x``;
  ``<`` ``<=`` ``>`` ``>=`` with a number literal compare numerically when the stored value is a
  plain decimal number (``NUMERIC_TEXT_PATTERN``; otherwise false), with a string or bare word
  compare text by code point.
* NUMBER_MAP with a key: number literals only, numeric comparison; no ``:`` except ``:*``.

Limits: at most ``MAX_FILTER_LENGTH`` characters and ``MAX_DEPTH`` nested parentheses or
negations, so a hostile filter cannot exhaust the stack. Every error is InvalidArgument on the
``filter`` field and says what is wrong and at which (1-based) column.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from modelregistry.domain.errors import InvalidArgument, excerpt

MAX_FILTER_LENGTH = 4096
MAX_DEPTH = 32
# Number literals beyond this decimal exponent are refused rather than sent to the database.
MAX_NUMBER_EXPONENT = 1000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# A stored STRING_MAP value takes part in a numeric comparison only if it matches this; the
# SQL compiler uses the same pattern (exponent bounded so a cast to numeric cannot overflow).
NUMERIC_TEXT_PATTERN = r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]{1,3})?$"

_FIELD = "filter"
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)
_SINGLE_CHAR_TOKENS = {"(": "LPAREN", ")": "RPAREN", ":": "HAS", "*": "STAR", "=": "EQ"}
_NOT_IN_WORDS = frozenset('()"=!<>:*,')
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_KEYWORDS = frozenset({"AND", "OR", "NOT"})


class FieldKind(enum.Enum):
    STRING = "string"
    INTEGER = "integer"
    TIMESTAMP = "timestamp"
    ENUM = "enum"
    STRING_MAP = "string map"
    NUMBER_MAP = "number map"

    @property
    def is_map(self) -> bool:
        return self in (FieldKind.STRING_MAP, FieldKind.NUMBER_MAP)


@dataclass(frozen=True)
class FieldSpec:
    """A filterable field. ENUM fields list their short names and the proto name prefix."""

    name: str
    kind: FieldKind
    enum_values: tuple[str, ...] = ()
    enum_prefix: str = ""


def field_catalogue(*specs: FieldSpec) -> Mapping[str, FieldSpec]:
    return MappingProxyType({spec.name: spec for spec in specs})


MODEL_FILTER_FIELDS = field_catalogue(
    FieldSpec("name", FieldKind.STRING),
    FieldSpec("owner", FieldKind.STRING),
    FieldSpec("description", FieldKind.STRING),
    FieldSpec("labels", FieldKind.STRING_MAP),
    FieldSpec("create_time", FieldKind.TIMESTAMP),
    FieldSpec("update_time", FieldKind.TIMESTAMP),
)

VERSION_FILTER_FIELDS = field_catalogue(
    FieldSpec("name", FieldKind.STRING),  # the model id
    FieldSpec("owner", FieldKind.STRING),  # the model's owner
    FieldSpec("version", FieldKind.INTEGER),
    FieldSpec(
        "stage",
        FieldKind.ENUM,
        ("DEVELOPMENT", "STAGING", "PRODUCTION", "ARCHIVED"),
        "STAGE_",
    ),
    FieldSpec("status", FieldKind.ENUM, ("PENDING", "READY"), "MODEL_VERSION_STATUS_"),
    FieldSpec("description", FieldKind.STRING),
    FieldSpec("run_id", FieldKind.STRING),
    FieldSpec("created_by", FieldKind.STRING),
    FieldSpec("labels", FieldKind.STRING_MAP),
    FieldSpec("parameters", FieldKind.STRING_MAP),
    FieldSpec("metrics", FieldKind.NUMBER_MAP),
    FieldSpec("create_time", FieldKind.TIMESTAMP),
    FieldSpec("update_time", FieldKind.TIMESTAMP),
)


class Op(enum.Enum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


Value = str | int | Decimal | datetime


@dataclass(frozen=True)
class Compare:
    """``field[.key] op value``. For STRING_MAP a Decimal value means a numeric comparison."""

    field: str
    key: str | None
    kind: FieldKind
    op: Op
    value: Value


@dataclass(frozen=True)
class Contains:
    """``field[.key]:"text"``: the (string) value contains ``text``."""

    field: str
    key: str | None
    kind: FieldKind
    value: str


@dataclass(frozen=True)
class Present:
    """``map:key`` / ``map.key:*`` (key present), ``map:*`` (key None: map not empty), or
    ``string_field:*`` (non-empty)."""

    field: str
    key: str | None
    kind: FieldKind


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Compare | Contains | Present | Not | And | Or


def parse_filter(text: str, fields: Mapping[str, FieldSpec]) -> Expr | None:
    """Parse and validate ``text`` against ``fields``; None for an empty filter."""
    if len(text) > MAX_FILTER_LENGTH:
        raise _error(f"is {len(text)} characters long; at most {MAX_FILTER_LENGTH} are allowed")
    if "\x00" in text:  # PostgreSQL text cannot hold U+0000, in a value or a map key
        raise _error(f"has a NUL (U+0000) character at column {text.index(chr(0)) + 1}")
    tokens = _tokenize(text)
    if len(tokens) == 1:  # only END
        return None
    return _Parser(tokens, fields).parse()


# --- lexer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # LPAREN RPAREN HAS STAR EQ NE LT LE GT GE MINUS STRING NUMBER WORD AND OR NOT END
    text: str  # the value for STRING, else the source text
    column: int  # 1-based

    def describe(self) -> str:
        if self.kind == "END":
            return "end of filter"
        if self.kind == "STRING":
            return f"string {quote_string(self.text)}"
        return f"{self.text!r}"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        column = i + 1
        if char.isspace():
            i += 1
        elif char in _SINGLE_CHAR_TOKENS:
            tokens.append(_Token(_SINGLE_CHAR_TOKENS[char], char, column))
            i += 1
        elif char in "<>!":
            two = text[i : i + 2]
            if two in ("<=", ">=", "!="):
                tokens.append(_Token({"<=": "LE", ">=": "GE", "!=": "NE"}[two], two, column))
                i += 2
            elif char == "!":
                raise _error(f"unexpected '!' at column {column}; did you mean '!='?")
            else:
                tokens.append(_Token("LT" if char == "<" else "GT", char, column))
                i += 1
        elif char == '"':
            value, i = _read_string(text, i)
            tokens.append(_Token("STRING", value, column))
        elif char == "-" and not _NUMBER.match(text, i):
            tokens.append(_Token("MINUS", "-", column))
            i += 1
        elif char in _NOT_IN_WORDS:
            raise _error(f"unexpected character {char!r} at column {column}")
        else:
            start = i
            i += 1
            while i < n and not text[i].isspace() and text[i] not in _NOT_IN_WORDS:
                i += 1
            word = text[start:i]
            if word in _KEYWORDS:
                kind = word
            elif _NUMBER.fullmatch(word):
                kind = "NUMBER"
            else:
                kind = "WORD"
            tokens.append(_Token(kind, word, column))
    tokens.append(_Token("END", "", n + 1))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return "".join(chars), i + 1
        if char == "\\":
            escaped = text[i + 1 : i + 2]
            if not escaped:
                break
            if escaped not in _ESCAPES:
                raise _error(
                    f"unknown escape \\{escaped} at column {i + 1} in the string starting at "
                    f'column {start + 1}; use \\", \\\\, \\n, \\t or \\r'
                )
            chars.append(_ESCAPES[escaped])
            i += 2
        else:
            chars.append(char)
            i += 1
    raise _error(f"string starting at column {start + 1} is not closed with '\"'")


# --- parser --------------------------------------------------------------------------------

_COMPARISON_OPS = {
    "EQ": Op.EQ,
    "NE": Op.NE,
    "LT": Op.LT,
    "LE": Op.LE,
    "GT": Op.GT,
    "GE": Op.GE,
}
_STARTS_UNARY = frozenset({"NOT", "MINUS", "LPAREN", "WORD", "STRING", "NUMBER"})
_VALUE_KINDS = frozenset({"STRING", "NUMBER", "WORD"})


class _Parser:
    def __init__(self, tokens: list[_Token], fields: Mapping[str, FieldSpec]) -> None:
        self._tokens = tokens
        self._position = 0
        self._fields = fields
        self._depth = 0

    def parse(self) -> Expr:
        expr = self._and_expr()
        token = self._peek()
        if token.kind != "END":
            if token.kind == "RPAREN":
                raise _error(f"unmatched ')' at column {token.column}")
            raise _error(f"unexpected {token.describe()} at column {token.column}")
        return expr

    def _peek(self) -> _Token:
        return self._tokens[self._position]

    def _next(self) -> _Token:
        token = self._tokens[self._position]
        if token.kind != "END":
            self._position += 1
        return token

    def _and_expr(self) -> Expr:
        operands = [self._or_expr()]
        while True:
            token = self._peek()
            if token.kind == "AND":
                self._next()
                if self._peek().kind not in _STARTS_UNARY:
                    after = self._peek()
                    raise _error(
                        f"expected a comparison after AND (column {token.column}), "
                        f"found {after.describe()} at column {after.column}"
                    )
            elif token.kind not in _STARTS_UNARY:
                break
            operands.append(self._or_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _or_expr(self) -> Expr:
        operands = [self._unary()]
        while self._peek().kind == "OR":
            token = self._next()
            if self._peek().kind not in _STARTS_UNARY:
                after = self._peek()
                raise _error(
                    f"expected a comparison after OR (column {token.column}), "
                    f"found {after.describe()} at column {after.column}"
                )
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _unary(self) -> Expr:
        token = self._peek()
        if token.kind in ("NOT", "MINUS"):
            self._next()
            self._enter(token)
            operand = self._unary()
            self._depth -= 1
            return Not(operand)
        return self._primary()

    def _enter(self, token: _Token) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _error(
                f"nests parentheses and negations more than {MAX_DEPTH} deep "
                f"(at column {token.column})"
            )

    def _primary(self) -> Expr:
        token = self._next()
        if token.kind == "LPAREN":
            self._enter(token)
            if self._peek().kind == "RPAREN":
                raise _error(f"empty parentheses at column {token.column}")
            expr = self._and_expr()
            closing = self._next()
            if closing.kind != "RPAREN":
                raise _error(
                    f"expected ')' to close the '(' at column {token.column}, "
                    f"found {closing.describe()} at column {closing.column}"
                )
            self._depth -= 1
            return expr
        if token.kind == "WORD":
            return self._comparison(token)
        if token.kind in ("STRING", "NUMBER"):
            raise _error(
                f"expected a field name at column {token.column}, found {token.describe()}; "
                'write a comparison such as name = "x"'
            )
        raise _error(f"expected a comparison at column {token.column}, found {token.describe()}")

    def _comparison(self, field_token: _Token) -> Expr:
        spec, key = self._resolve_field(field_token)
        path = _path(spec.name, key)
        op_token = self._next()
        if op_token.kind == "HAS":
            value = self._next()
            if value.kind == "STAR":
                return _validate_present(spec, key, path, value)
            if value.kind not in _VALUE_KINDS:
                raise _error(
                    f"expected a value or '*' after ':' (column {op_token.column}) for {path}, "
                    f"found {value.describe()}"
                )
            return _validate_has(spec, key, path, value)
        op = _COMPARISON_OPS.get(op_token.kind)
        if op is None:
            raise _error(
                f"expected an operator (=, !=, <, <=, >, >=, :) after {path} at column "
                f"{op_token.column}, found {op_token.describe()}"
            )
        value = self._next()
        if value.kind not in _VALUE_KINDS:
            raise _error(
                f"expected a value after '{op.value}' (column {op_token.column}) for {path}, "
                f"found {value.describe()}" + ("; quote it" if value.kind in _KEYWORDS else "")
            )
        return _validate_compare(spec, key, path, op, value)

    def _resolve_field(self, token: _Token) -> tuple[FieldSpec, str | None]:
        name, dot, key = token.text.partition(".")
        spec = self._fields.get(name) if _NAME.fullmatch(name) else None
        if spec is None:
            known = ", ".join(sorted(self._fields))
            raise _error(
                f"unknown field {quote_string(name)} at column {token.column}; "
                f"the fields you can filter on are {known}"
            )
        if not dot:
            return spec, None
        if not spec.kind.is_map:
            raise _error(
                f"field {name} has no subfields ({excerpt(token.text)} at column {token.column})"
            )
        if not key:
            raise _error(f"{name}. at column {token.column} lacks a key, as in {name}.<key>")
        return spec, key


# --- validation: literal -> typed value ----------------------------------------------------


def _validate_present(spec: FieldSpec, key: str | None, path: str, star: _Token) -> Expr:
    if spec.kind in (FieldKind.STRING, FieldKind.STRING_MAP, FieldKind.NUMBER_MAP):
        return Present(spec.name, key, spec.kind)
    raise _error(f"{path} is {_article(spec.kind)}: ':*' (column {star.column}) does not apply")


def _validate_has(spec: FieldSpec, key: str | None, path: str, value: _Token) -> Expr:
    if spec.kind.is_map and key is None:
        # `labels:team` is the has-key form.
        return Present(spec.name, value.text, spec.kind)
    if spec.kind in (FieldKind.STRING, FieldKind.STRING_MAP):
        return Contains(spec.name, key, spec.kind, value.text)
    hint = "; use = or :*" if spec.kind is FieldKind.NUMBER_MAP else "; use =, <, >, ..."
    raise _error(
        f"{path} is {_article(spec.kind)}: ':' with a value (column {value.column}) only applies "
        f"to strings{hint}"
    )


def _validate_compare(spec: FieldSpec, key: str | None, path: str, op: Op, value: _Token) -> Expr:
    kind = spec.kind
    if kind.is_map and key is None:
        raise _error(
            f"{path} is a map: name a key, as in {path}.<key> (column {value.column}), "
            f"or test for a key with {path}:<key>"
        )
    typed: Value
    if kind is FieldKind.STRING:
        typed = value.text
    elif kind is FieldKind.INTEGER:
        typed = _integer(path, value)
    elif kind is FieldKind.TIMESTAMP:
        typed = _timestamp(path, value)
    elif kind is FieldKind.ENUM:
        if op not in (Op.EQ, Op.NE):
            raise _error(f"{path} is an enum: only = and != apply ('{op.value}' given)")
        typed = _enum_value(spec, value)
    elif kind is FieldKind.STRING_MAP:
        numeric = value.kind == "NUMBER" and op not in (Op.EQ, Op.NE)
        typed = _decimal(path, value) if numeric else value.text
    else:  # NUMBER_MAP
        if value.kind != "NUMBER":
            raise _error(
                f"{path} is a number: expected a number, found {value.describe()} "
                f"at column {value.column}"
            )
        typed = _decimal(path, value)
    return Compare(spec.name, key, kind, op, typed)


def _decimal(path: str, value: _Token) -> Decimal:
    try:
        number = Decimal(value.text)
    except InvalidOperation:  # pragma: no cover - the lexer only makes valid numbers
        raise _error(f"{path}: {excerpt(value.text)} is not a number") from None
    if number and abs(number.adjusted()) > MAX_NUMBER_EXPONENT:
        raise _error(f"{path}: the number {value.text} at column {value.column} is out of range")
    return number


def _integer(path: str, value: _Token) -> int:
    if value.kind != "NUMBER":
        raise _error(
            f"{path} is an integer: expected a number, found {value.describe()} "
            f"at column {value.column}"
        )
    number = _decimal(path, value)
    if number != number.to_integral_value():
        raise _error(f"{path} is an integer: {value.text} at column {value.column} is not whole")
    integer = int(number)
    if not INT64_MIN <= integer <= INT64_MAX:
        raise _error(f"{path}: {value.text} at column {value.column} is out of range")
    return integer


def _timestamp(path: str, value: _Token) -> datetime:
    hint = 'an RFC 3339 timestamp such as "2026-01-01T00:00:00Z"'
    match = _RFC3339.fullmatch(value.text) if value.kind != "NUMBER" else None
    if match is None:
        raise _error(
            f"{path} is a timestamp: expected {hint}, found {value.describe()} "
            f"at column {value.column}"
        )
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    fraction = fraction or ""
    if len(fraction) > 6 and fraction[6:].strip("0"):
        raise _error(
            f"{path}: {value.describe()} at column {value.column} is more precise than a "
            "microsecond"
        )
    try:
        parsed = datetime.fromisoformat(
            f"{year}-{month}-{day}T{hour}:{minute}:{second}"
            f".{(fraction[:6]).ljust(6, '0')}{'+00:00' if zone in 'Zz' else zone}"
        )
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _error(
            f"{path}: {value.describe()} at column {value.column} is not a valid time; "
            f"expected {hint}"
        ) from None


def _enum_value(spec: FieldSpec, value: _Token) -> str:
    if value.kind != "NUMBER":
        text = value.text.upper()
        if spec.enum_prefix and text.startswith(spec.enum_prefix):
            text = text[len(spec.enum_prefix) :]
        if text in spec.enum_values:
            return text
    raise _error(
        f"{spec.name}: {value.describe()} at column {value.column} is not one of "
        f"{', '.join(spec.enum_values)}"
    )


# --- helpers -------------------------------------------------------------------------------


def _path(name: str, key: str | None) -> str:
    return name if key is None else f"{name}.{key}"


def _article(kind: FieldKind) -> str:
    text = {
        FieldKind.STRING: "a string",
        FieldKind.INTEGER: "an integer",
        FieldKind.TIMESTAMP: "a timestamp",
        FieldKind.ENUM: "an enum",
        FieldKind.STRING_MAP: "a map of strings",
        FieldKind.NUMBER_MAP: "a number",
    }
    return text[kind]


def quote_string(text: str) -> str:
    """Render ``text`` as a filter string literal (the inverse of the lexer's string rule)."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _error(description: str) -> InvalidArgument:
    return InvalidArgument.for_field(_FIELD, description)

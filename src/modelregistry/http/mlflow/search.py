"""MLflow's search filter and order_by, translated into the registry's own filter tree and
sort keys, so MLflow searches run as the same parameterised SQL as ListModels and
ListModelVersions.

Supported (MLflow's registry search grammar: comparisons joined by AND):

* models: ``name`` (=, !=, LIKE, ILIKE), ``tags.<key>`` / ``tag.<key>`` (=, !=, LIKE, ILIKE);
  keys may be quoted with backticks or double quotes (``tag.`mlflow.prompt.is_prompt```).
* versions: the same, plus ``run_id`` (=, !=, IN), ``source_path`` (=, !=, LIKE, ILIKE) and
  ``version_number`` (=, !=, <, <=, >, >=).

``name`` is the display name. ``tags.k != 'v'`` also matches models without the tag, as in
MLflow (the client appends ``tag.`mlflow.prompt.is_prompt` != 'true'`` to every model
search). Anything else is INVALID_PARAMETER_VALUE naming the clause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.filtering import (
    INT64_MAX,
    And,
    Compare,
    Expr,
    FieldKind,
    Like,
    Not,
    Op,
    Or,
)
from modelregistry.domain.ordering import OrderKey

MAX_FILTER_CHARS = 4096
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:`[^`]*`|"[^"]*"|[A-Za-z0-9_./-]+))*)
      | (?P<number>-?\d+)
    )""",
    re.VERBOSE,
)
_OPS = {"=": Op.EQ, "!=": Op.NE, "<>": Op.NE, "<": Op.LT, "<=": Op.LE, ">": Op.GT, ">=": Op.GE}
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE")


@dataclass(frozen=True)
class _Token:
    kind: str  # string op punct ident number word
    text: str
    value: str


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _error(f"cannot read the filter from {text[position : position + 20]!r}")
        position = match.end()
        kind = match.lastgroup or ""
        raw = match.group(kind)
        value = raw[1:-1].replace(raw[0] * 2, raw[0]) if kind == "string" else raw
        if kind == "ident" and raw.upper() in ("AND", "OR", "LIKE", "ILIKE", "IN", "NOT"):
            kind = "word"
            value = raw.upper()
        tokens.append(_Token(kind, raw, value))
    return tokens


def parse_search_filter(text: str, *, versions: bool) -> Expr | None:
    """The filter tree for an MLflow search filter (None for an empty one)."""
    if len(text) > MAX_FILTER_CHARS:
        raise _error(f"is {len(text)} characters long; at most {MAX_FILTER_CHARS} are allowed")
    tokens = _tokens(text)
    if not tokens:
        return None
    clauses: list[Expr] = []
    position = 0
    while True:
        clause, position = _clause(tokens, position, versions)
        clauses.append(clause)
        if position >= len(tokens):
            break
        word = tokens[position]
        if word.kind != "word" or word.value != "AND":
            raise _error(
                f"expected AND after a comparison, found {word.text!r}; MLflow search joins "
                "comparisons with AND only"
            )
        position += 1
    return clauses[0] if len(clauses) == 1 else And(tuple(clauses))


def _clause(tokens: list[_Token], position: int, versions: bool) -> tuple[Expr, int]:
    if position >= len(tokens) or tokens[position].kind != "ident":
        found = tokens[position].text if position < len(tokens) else "the end of the filter"
        raise _error(f"expected an attribute such as name or tags.<key>, found {found!r}")
    ident = tokens[position]
    op_token = tokens[position + 1] if position + 1 < len(tokens) else None
    if op_token is None or op_token.kind not in ("op", "word"):
        raise _error(f"expected a comparison operator after {ident.text!r}")
    op = op_token.value
    if op == "NOT":
        raise _error(f"'{ident.text} NOT ...' is not supported; use != for a negation")
    if op in ("AND", "OR"):
        raise _error(f"expected a comparison operator after {ident.text!r}, found {op}")
    clause_text = f"{ident.text} {op_token.text}"
    if op == "IN":
        values, position = _in_list(tokens, position + 2, clause_text)
        return _in_clause(ident, values, versions, clause_text), position
    if position + 2 >= len(tokens) or tokens[position + 2].kind not in ("string", "number"):
        raise _error(f"expected a quoted value after {clause_text!r}")
    value = tokens[position + 2]
    clause_text = f"{clause_text} {value.text}"
    return _comparison(ident, op, value, versions, clause_text), position + 3


def _in_list(tokens: list[_Token], position: int, clause: str) -> tuple[list[str], int]:
    if position >= len(tokens) or tokens[position].text != "(":
        raise _error(f"expected '(' after {clause!r}")
    values: list[str] = []
    position += 1
    while position < len(tokens):
        token = tokens[position]
        if token.kind != "string":
            break
        values.append(token.value)
        position += 1
        if position < len(tokens) and tokens[position].text == ",":
            position += 1
            continue
        if position < len(tokens) and tokens[position].text == ")":
            return values, position + 1
        break
    raise _error(f"{clause!r} needs a list of quoted values such as ('a', 'b')")


def _attribute(ident: _Token) -> tuple[str, str | None]:
    name, dot, rest = ident.text.partition(".")
    if name.lower() in ("tags", "tag") and dot:
        key = rest
        if len(key) >= 2 and key[0] == key[-1] and key[0] in '`"':
            key = key[1:-1]
        if not key:
            raise _error(f"{ident.text!r} lacks a tag key")
        return "tags", key
    if dot:
        raise _error(f"unsupported attribute {ident.text!r}")
    return name.lower(), None


def _comparison(ident: _Token, op: str, value: _Token, versions: bool, clause: str) -> Expr:
    attribute, key = _attribute(ident)
    if attribute == "tags":
        return _string_clause("labels", key, FieldKind.STRING_MAP, op, value, clause)
    if attribute == "name":
        return _string_clause("display_name", None, FieldKind.STRING, op, value, clause)
    if versions and attribute == "source_path":
        return _string_clause("source", None, FieldKind.STRING, op, value, clause)
    if versions and attribute == "run_id":
        if op not in ("=", "!="):
            raise _unsupported(clause, "run_id takes =, != or IN")
        return Compare("run_id", None, FieldKind.STRING, _OPS[op], _text(value, clause))
    if versions and attribute in ("version_number", "version"):
        if op not in _OPS or (value.kind != "number" and not value.value.isdigit()):
            raise _unsupported(clause, "version_number takes =, !=, <, <=, > or >= and a number")
        number = int(value.value)
        if abs(number) > INT64_MAX:
            raise _unsupported(clause, "the version number is out of range")
        return Compare("version", None, FieldKind.INTEGER, _OPS[op], number)
    fields = "name, tags.<key>" + (", run_id, source_path, version_number" if versions else "")
    raise _unsupported(clause, f"this registry searches by {fields}")


def _string_clause(
    field: str, key: str | None, kind: FieldKind, op: str, value: _Token, clause: str
) -> Expr:
    text = _text(value, clause)
    if op not in _STRING_OPS:
        raise _unsupported(clause, "strings take =, !=, LIKE or ILIKE")
    if op in ("LIKE", "ILIKE"):
        return Like(field, key, kind, text, case_insensitive=op == "ILIKE")
    equal = Compare(field, key, kind, Op.EQ, text)
    if op == "=":
        return equal
    # An absent tag is "not equal" too (MLflow's meaning, which the client's prompt filter
    # relies on), so negate the equality rather than compare with !=.
    return Not(equal) if key is not None else Compare(field, key, kind, Op.NE, text)


def _in_clause(ident: _Token, values: list[str], versions: bool, clause: str) -> Expr:
    attribute, _ = _attribute(ident)
    if not (versions and attribute == "run_id"):
        raise _unsupported(clause, "IN applies to run_id in model version searches only")
    return Or(tuple(Compare("run_id", None, FieldKind.STRING, Op.EQ, v) for v in values))


def _text(value: _Token, clause: str) -> str:
    if value.kind != "string":
        raise _unsupported(clause, "quote string values with ' or \"")
    return value.value


MODEL_ORDER = {
    "name": "display_name",
    "timestamp": "create_time",
    "creation_timestamp": "create_time",
    "last_updated_timestamp": "update_time",
}
VERSION_ORDER = {**MODEL_ORDER, "version_number": "version"}
_KINDS = {
    "display_name": FieldKind.STRING,
    "create_time": FieldKind.TIMESTAMP,
    "update_time": FieldKind.TIMESTAMP,
    "version": FieldKind.INTEGER,
}


def parse_search_order(items: list[str], *, versions: bool) -> list[OrderKey]:
    """Sort keys for MLflow's order_by list (`name ASC`, `last_updated_timestamp DESC`)."""
    catalogue = VERSION_ORDER if versions else MODEL_ORDER
    keys: list[OrderKey] = []
    seen: set[str] = set()
    for item in items:
        words = item.split()
        if not 1 <= len(words) <= 2 or (
            len(words) == 2 and words[1].upper() not in ("ASC", "DESC")
        ):
            raise _order_error(f"{item!r} is not an attribute optionally followed by ASC or DESC")
        field = catalogue.get(words[0].strip("`").lower())
        if field is None:
            raise _order_error(f"cannot order by {words[0]!r}; use {', '.join(sorted(catalogue))}")
        if field in seen:
            continue
        seen.add(field)
        descending = len(words) == 2 and words[1].upper() == "DESC"
        keys.append(OrderKey(field, None, descending, _KINDS[field]))
    if not keys:
        keys.append(OrderKey("display_name", None, False, FieldKind.STRING))
    if versions and "version" not in seen:
        keys.append(OrderKey("version", None, True, FieldKind.INTEGER))
    return keys


def _unsupported(clause: str, why: str) -> InvalidArgument:
    return _error(f"unsupported clause {clause!r}: {why}")


def _error(description: str) -> InvalidArgument:
    return InvalidArgument.for_field("filter", description)


def _order_error(description: str) -> InvalidArgument:
    return InvalidArgument.for_field("order_by", description)

"""List ordering: parse and validate ``order_by`` (AIP-132).

``order_by`` is a comma-separated list of fields, each optionally followed by ``desc`` (or
``asc``, the default), e.g. ``metrics.accuracy desc, version``. An empty ``order_by`` means the
method's default order. Map fields (``metrics.<key>``) need a key; rows without that key sort
last in both directions. A field (with its key) may appear once; at most ``MAX_ORDER_KEYS``
fields. Errors are InvalidArgument on ``order_by``.

Pure: ``storage.sql_filters.compile_order`` turns the keys into ORDER BY and keyset SQL, and
always appends a unique tie-breaker, so equal keys never make paging ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from modelregistry.domain.errors import InvalidArgument, excerpt
from modelregistry.domain.filtering import FieldKind

MAX_ORDER_BY_LENGTH = 1024
MAX_ORDER_KEYS = 8

_FIELD = "order_by"
_ITEM = re.compile(r"\s*(?P<path>[^\s,]+)(?:\s+(?P<direction>[^\s,]+))?\s*")


@dataclass(frozen=True)
class OrderKey:
    """One sort key: ``field`` (with ``key`` for a map), its direction and the field's kind."""

    field: str
    key: str | None
    descending: bool
    kind: FieldKind


@dataclass(frozen=True)
class OrderCatalogue:
    """The fields a List method orders by (kinds: STRING, INTEGER, TIMESTAMP, NUMBER_MAP)."""

    fields: Mapping[str, FieldKind]
    default: tuple[OrderKey, ...]


MODEL_ORDER_FIELDS = OrderCatalogue(
    fields=MappingProxyType(
        {
            "name": FieldKind.STRING,
            "create_time": FieldKind.TIMESTAMP,
            "update_time": FieldKind.TIMESTAMP,
        }
    ),
    default=(OrderKey("name", None, descending=False, kind=FieldKind.STRING),),
)

VERSION_ORDER_FIELDS = OrderCatalogue(
    fields=MappingProxyType(
        {
            "version": FieldKind.INTEGER,
            "create_time": FieldKind.TIMESTAMP,
            "update_time": FieldKind.TIMESTAMP,
            "metrics": FieldKind.NUMBER_MAP,
        }
    ),
    default=(OrderKey("version", None, descending=True, kind=FieldKind.INTEGER),),
)


def parse_order_by(text: str, allowed: OrderCatalogue) -> list[OrderKey]:
    """Parse ``text`` into sort keys; the catalogue's default for an empty string."""
    if len(text) > MAX_ORDER_BY_LENGTH:
        raise _error(f"is {len(text)} characters long; at most {MAX_ORDER_BY_LENGTH} are allowed")
    if "\x00" in text:  # PostgreSQL text cannot hold U+0000 (a metrics key reaches SQL)
        raise _error(f"has a NUL (U+0000) character at column {text.index(chr(0)) + 1}")
    if not text.strip():
        return list(allowed.default)
    keys: list[OrderKey] = []
    seen: set[tuple[str, str | None]] = set()
    for position, item in enumerate(text.split(","), start=1):
        key = _parse_item(item, position, allowed)
        if (key.field, key.key) in seen:
            raise _error(f"names {_path(key.field, key.key)} twice")
        seen.add((key.field, key.key))
        keys.append(key)
    if len(keys) > MAX_ORDER_KEYS:
        raise _error(f"names {len(keys)} fields; at most {MAX_ORDER_KEYS} are allowed")
    return keys


def _parse_item(item: str, position: int, allowed: OrderCatalogue) -> OrderKey:
    match = _ITEM.fullmatch(item)
    if match is None:
        shown = item.strip()
        raise _error(
            f"item {position} ({excerpt(shown)}) is not a field optionally followed by desc"
            if shown
            else f"item {position} is empty; separate fields with a single comma"
        )
    path, direction = match.group("path"), match.group("direction")
    descending = False
    if direction is not None:
        if direction.lower() not in ("asc", "desc"):
            raise _error(f"unknown direction {excerpt(direction)} after {path}; use desc or asc")
        descending = direction.lower() == "desc"
    name, dot, map_key = path.partition(".")
    kind = allowed.fields.get(name)
    if kind is None:
        known = ", ".join(
            f"{field}.<key>" if k is FieldKind.NUMBER_MAP else field
            for field, k in allowed.fields.items()
        )
        raise _error(f"cannot order by {excerpt(path)}; the fields you can order by are {known}")
    if kind.is_map:
        if not map_key:
            raise _error(f"{name} is a map: name a key, as in {name}.<key>")
        return OrderKey(name, map_key, descending, kind)
    if dot:
        raise _error(f"field {name} has no subfields ({excerpt(path)})")
    return OrderKey(name, None, descending, kind)


def _path(name: str, key: str | None) -> str:
    return name if key is None else f"{name}.{key}"


def _error(description: str) -> InvalidArgument:
    return InvalidArgument.for_field(_FIELD, description)

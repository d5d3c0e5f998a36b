"""MLflow request messages: the JSON body (or, for GET, the query string) checked against the
fields of the request in MLflow's model_registry.proto, so a wrong type, an unknown field, a
NUL byte or broken JSON is an INVALID_PARAMETER_VALUE naming the field, never a 500."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request

from modelregistry.domain.errors import InvalidArgument

Kind = Literal["str", "int", "bool", "strs", "tags"]
# Bodies of these calls are small; anything larger is not an MLflow client talking.
MAX_BODY_BYTES = 1 << 20
# Per string field; the domain's own limits (256 for names, 5,000 for tag values, ...) are
# tighter and checked where the value is used.
MAX_STRING_CHARS = 1 << 16
MAX_LIST_ITEMS = 1000


@dataclass
class Message:
    """A parsed request: the fields present, by name."""

    values: dict[str, Any] = field(default_factory=dict)

    def text(self, name: str, *, required: bool = False) -> str:
        value: str = self.values.get(name, "")
        if required and not value:
            raise InvalidArgument.for_field(name, f"Missing value for required parameter '{name}'")
        return value

    def has(self, name: str) -> bool:
        return name in self.values

    def integer(self, name: str, default: int) -> int:
        value: int = self.values.get(name, default)
        return value

    def flag(self, name: str) -> bool:
        return bool(self.values.get(name, False))

    def texts(self, name: str) -> list[str]:
        value: list[str] = self.values.get(name, [])
        return value

    def tag_map(self, name: str) -> dict[str, str]:
        value: dict[str, str] = self.values.get(name, {})
        return value


async def read_message(request: Request, fields: Mapping[str, Kind]) -> Message:
    """The request's message: query parameters for GET (as the MLflow client sends them),
    else the JSON body (an empty body is an empty message)."""
    if request.method in ("GET", "HEAD"):
        raw: dict[str, Any] = {}
        for key in request.query_params:
            values = request.query_params.getlist(key)
            raw[key] = values if fields.get(key) == "strs" else values[-1]
        return _check(raw, fields, from_query=True)
    body = await _body(request)
    if not body.strip():
        raw = {}
        for key in request.query_params:
            raw[key] = request.query_params[key]
        return _check(raw, fields, from_query=True)
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidArgument.for_field("body", "the request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise InvalidArgument.for_field("body", "the request body must be a JSON object")
    return _check(parsed, fields, from_query=False)


async def _body(request: Request) -> bytes:
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_BODY_BYTES:
            raise InvalidArgument.for_field(
                "body", f"the request body is larger than {MAX_BODY_BYTES} bytes"
            )
    return bytes(chunks)


def _check(raw: Mapping[str, Any], fields: Mapping[str, Kind], *, from_query: bool) -> Message:
    message = Message()
    for name, value in raw.items():
        kind = fields.get(name)
        if kind is None:
            known = ", ".join(sorted(fields)) or "none"
            raise InvalidArgument.for_field(
                _printable(name), f"unknown field {_printable(name)!r}; this call takes {known}"
            )
        if value is None:
            continue
        message.values[name] = _convert(name, kind, value, from_query)
    return message


def _convert(name: str, kind: Kind, value: Any, from_query: bool) -> Any:
    if kind == "str":
        return _string(name, value)
    if kind == "int":
        if isinstance(value, str) and (from_query or value.lstrip("-").isdigit()):
            if not value.lstrip("-").isdigit() or len(value) > 18:
                raise _wrong(name, "an integer")
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(name, "an integer")
        return value
    if kind == "bool":
        if isinstance(value, str) and from_query and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise _wrong(name, "true or false")
        return value
    if kind == "strs":
        items = value if isinstance(value, list) else None
        if items is None or len(items) > MAX_LIST_ITEMS:
            raise _wrong(name, f"a list of at most {MAX_LIST_ITEMS} strings")
        return [_string(f"{name}[{i}]", item) for i, item in enumerate(items)]
    return _tags(name, value)


def _tags(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, list) or len(value) > MAX_LIST_ITEMS:
        raise _wrong(name, 'a list of {"key": ..., "value": ...} objects')
    tags: dict[str, str] = {}
    for index, item in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(item, dict) or set(item) - {"key", "value"} or "key" not in item:
            raise _wrong(where, 'an object {"key": ..., "value": ...}')
        tags[_string(f"{where}.key", item["key"])] = _string(
            f"{where}.value", item.get("value", "")
        )
    return tags


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong(name, "a string")
    if len(value) > MAX_STRING_CHARS:
        raise InvalidArgument.for_field(
            name, f"is {len(value)} characters long; at most {MAX_STRING_CHARS} are allowed"
        )
    if "\x00" in value:
        raise InvalidArgument.for_field(name, "must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidArgument.for_field(name, "is not valid Unicode text") from None
    return value


def _wrong(name: str, expected: str) -> InvalidArgument:
    return InvalidArgument.for_field(
        name, f"Invalid value for parameter '{name}': expected {expected}"
    )


def _printable(name: str) -> str:
    shown = "".join(ch if ch.isprintable() else "?" for ch in name[:100])
    return shown + ("..." if len(name) > 100 else "")

"""What every request must be before a servicer sees it: a well-formed message without NUL.

Both checks run in the request deserializer, for every RPC, so no servicer, service or SQL
statement has to repeat them:

* Bytes that are not a message of the method's request type (not protobuf at all, truncated,
  or a string field holding invalid UTF-8) would otherwise reach grpc.aio's own handler, which
  answers UNKNOWN with the Python exception's class name.
* PostgreSQL's text types refuse U+0000 anywhere, so a NUL in any string field (a name, a
  label key, a filter, a comment) would fail at the database as INTERNAL. A string field
  holding NUL is refused here, naming the field; bytes fields may hold anything.

A refused request is handed on as a `RefusedRequest`; the edge interceptor raises its error
once the caller is authenticated, so an anonymous caller learns nothing about validation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from modelregistry.domain.error_reason import ErrorReason
from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.validation import entry_path

NUL = "\x00"
_NUL_RULE = "must not contain NUL (U+0000) characters"


class RefusedRequest:
    """Stands in for a request the deserializer refused; carries the error to report."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


Deserializer = Callable[[bytes], Any]


def guarded_deserializer(deserialize: Deserializer | None) -> Deserializer | None:
    """`deserialize`, returning a RefusedRequest instead of raising or passing on NUL."""
    if deserialize is None:
        return None
    message_class = getattr(deserialize, "__self__", None)
    descriptor: Descriptor | None = getattr(message_class, "DESCRIPTOR", None)
    type_name = descriptor.full_name if descriptor is not None else "request"
    may_hold_text = descriptor is None or _may_hold_text(descriptor, set())

    def guarded(data: bytes) -> Any:
        try:
            message = deserialize(data)
        except Exception:  # DecodeError from any backend; the cause is always the bytes
            return RefusedRequest(malformed_request(type_name))
        if may_hold_text and isinstance(message, Message):
            path = nul_field_path(message)
            if path is not None:
                return RefusedRequest(InvalidArgument.for_field(path, _NUL_RULE))
        return message

    return guarded


def malformed_request(type_name: str) -> InvalidArgument:
    return InvalidArgument(
        message=(
            f"the request is not a valid {type_name} message: it is truncated, is not "
            "protobuf, or a string field holds invalid UTF-8"
        ),
        reason=ErrorReason.MALFORMED_REQUEST,
    )


def nul_field_path(message: Message, prefix: str = "") -> str | None:
    """The path of the first string field (map keys included) holding NUL, or None.

    Only fields that can hold text are read: reading a bytes field copies it, and a Write
    message carries a megabyte of them."""
    for field in _text_fields(cast(Descriptor, message.DESCRIPTOR)):
        path = prefix + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            value = getattr(message, field.name)
            found = _first_with_nul(value if field.is_repeated else (value,))
            if found is not None:
                return f"{path}[{found}]" if field.is_repeated else path
        elif field.is_repeated or message.HasField(field.name):
            found_path = _nul_in_message_field(field, getattr(message, field.name), path)
            if found_path is not None:
                return found_path
    return None


_TEXT_FIELDS: dict[str, tuple[FieldDescriptor, ...]] = {}


def _text_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The string fields of a message type, and its message fields that can hold strings."""
    fields = _TEXT_FIELDS.get(descriptor.full_name)
    if fields is None:
        fields = _TEXT_FIELDS[descriptor.full_name] = tuple(
            field
            for field in descriptor.fields
            if field.type == FieldDescriptor.TYPE_STRING
            or (field.message_type is not None and _may_hold_text(field.message_type, set()))
        )
    return fields


def _nul_in_message_field(field: FieldDescriptor, value: Any, path: str) -> str | None:
    entry = field.message_type
    assert entry is not None  # a message field always has its type
    if entry.GetOptions().map_entry:
        value_field = entry.fields_by_name["value"]
        for key, item in value.items():
            if isinstance(key, str) and NUL in key:
                return path  # the key itself is bad: naming it would echo the NUL
            where = entry_path(path, str(key))
            if value_field.type == FieldDescriptor.TYPE_STRING and NUL in item:
                return where
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                found = nul_field_path(item, where + ".")
                if found is not None:
                    return found
        return None
    if field.is_repeated:
        for index, item in enumerate(value):
            found = nul_field_path(item, f"{path}[{index}].")
            if found is not None:
                return found
        return None
    return nul_field_path(value, path + ".")


def _first_with_nul(values: Iterable[str]) -> int | None:
    for index, text in enumerate(values):
        if NUL in text:
            return index
    return None


def _may_hold_text(descriptor: Descriptor, seen: set[str]) -> bool:
    """Whether a message of this type can hold a string anywhere (then it is walked)."""
    if descriptor.full_name in seen:
        return False  # already being looked at higher up; its other fields decide
    seen.add(descriptor.full_name)
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            return True
        entry = field.message_type
        if entry is not None and _may_hold_text(entry, seen):
            return True
    return False

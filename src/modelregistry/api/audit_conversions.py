"""Protobuf <-> domain conversion for audit events and their filter. Mechanical."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from modelregistry.api.conversions import datetime_from_timestamp, timestamp
from modelregistry.domain import audit
from modelregistry.domain.validation import Violations
from modelregistry.v1 import audit_pb2


def event_to_proto(event: audit.AuditEvent) -> audit_pb2.AuditEvent:
    return audit_pb2.AuditEvent(
        sequence=event.sequence,
        event_time=timestamp(event.time),
        principal=event.principal,
        action=event.action,
        resource=event.resource,
        request_id=event.request_id,
        before=_struct(event.before),
        after=_struct(event.after),
    )


def _struct(summary: dict[str, Any] | None) -> struct_pb2.Struct | None:
    if summary is None:
        return None
    message = struct_pb2.Struct()
    message.update(summary)
    return message


def filter_from_proto(
    message: audit_pb2.AuditEventFilter, path: str, out: Violations
) -> audit.AuditFilter:
    """The filter, with its violations (fields named under `path`) added to `out`."""
    start = end = None
    if message.HasField("start_time"):
        start = _instant(message.start_time, f"{path}.start_time", out)
    if message.HasField("end_time"):
        end = _instant(message.end_time, f"{path}.end_time", out)
    result = audit.AuditFilter(
        resource=message.resource,
        principal=message.principal,
        actions=tuple(message.actions),
        start_time=start,
        end_time=end,
    )
    audit.check_filter(result, path, out)
    return result


def _instant(value: Timestamp, path: str, out: Violations) -> datetime | None:
    # Rounded up to PostgreSQL's microseconds: `time >= start` and `time < end` then keep
    # their meaning for every stored time.
    return datetime_from_timestamp(value, path, out, round_up=True)

"""Protobuf <-> domain conversion for ListModelHistory. Mechanical."""

from __future__ import annotations

from modelregistry.api.conversions import timestamp
from modelregistry.domain.history import HistoryEntry, HoldingKind
from modelregistry.v1 import registry_service_pb2 as pb

_KIND_TO_PROTO = {
    HoldingKind.STAGE: pb.HOLDING_KIND_STAGE,
    HoldingKind.ALIAS: pb.HOLDING_KIND_ALIAS,
    HoldingKind.DEPLOYMENT: pb.HOLDING_KIND_DEPLOYMENT,
}
KIND_FROM_PROTO: dict[int, HoldingKind] = {v: k for k, v in _KIND_TO_PROTO.items()}


def history_entry_to_proto(entry: HistoryEntry) -> pb.HistoryEntry:
    message = pb.HistoryEntry(
        kind=_KIND_TO_PROTO[entry.kind],
        key=entry.key,
        version=entry.version_name,
        start_time=timestamp(entry.start_time),
        principal=entry.principal,
    )
    if entry.end_time is not None:
        message.end_time.CopyFrom(timestamp(entry.end_time))
    return message

"""AuditService: request validation and conversion; use cases live in service/audit.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TypeAlias

import grpc
from google.protobuf.message import Message

from modelregistry.api import audit_conversions as conv
from modelregistry.api.call_context import call_context
from modelregistry.domain.audit import AuditFilter, check_after_sequence
from modelregistry.domain.validation import Violations
from modelregistry.service.audit import AuditService
from modelregistry.v1 import audit_pb2, audit_service_pb2_grpc
from modelregistry.v1 import audit_service_pb2 as pb

# Servicers read metadata and abort through the context; every message is a protobuf one.
Context: TypeAlias = grpc.aio.ServicerContext[Message, Message]


class AuditServicer(audit_service_pb2_grpc.AuditServiceServicer):
    def __init__(self, audit: AuditService) -> None:
        self._service = audit

    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: Context
    ) -> pb.ListAuditEventsResponse:
        audit_filter = _checked(request.filter, request.after_sequence)
        page = await self._service.list_events(
            call_context(), audit_filter, request.after_sequence, request.page_size,
            request.page_token,
        )  # fmt: skip
        return pb.ListAuditEventsResponse(
            audit_events=[conv.event_to_proto(e) for e in page.items],
            next_page_token=page.next_page_token,
        )

    async def WatchEvents(
        self, request: pb.WatchEventsRequest, context: Context
    ) -> AsyncIterator[audit_pb2.AuditEvent]:
        audit_filter = _checked(request.filter, request.after_sequence)
        events = self._service.watch(call_context(), audit_filter, request.after_sequence)
        async with aclosing(events):
            async for event in events:
                yield conv.event_to_proto(event)


def _checked(message: audit_pb2.AuditEventFilter, after_sequence: int) -> AuditFilter:
    violations = Violations()
    check_after_sequence(after_sequence, "after_sequence", violations)
    audit_filter = conv.filter_from_proto(message, "filter", violations)
    violations.raise_if_any()
    return audit_filter

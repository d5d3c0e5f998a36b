"""AuditService: reading and following the audit log."""

from __future__ import annotations

from modelregistry.service.audit import AuditService
from modelregistry.v1 import audit_service_pb2_grpc


class AuditServicer(audit_service_pb2_grpc.AuditServiceServicer):
    def __init__(self, audit: AuditService) -> None:
        self._service = audit

"""AccessService: tokens and grants (admin only), and who the caller is."""

from __future__ import annotations

from modelregistry.service.access import AccessService
from modelregistry.v1 import access_service_pb2_grpc


class AccessServicer(access_service_pb2_grpc.AccessServiceServicer):
    def __init__(self, access: AccessService) -> None:
        self._service = access

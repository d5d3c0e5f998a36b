"""PolicyService: promotion policies and approvals."""

from __future__ import annotations

from modelregistry.service.policy import PolicyService
from modelregistry.v1 import policy_service_pb2_grpc


class PolicyServicer(policy_service_pb2_grpc.PolicyServiceServicer):
    def __init__(self, policy: PolicyService) -> None:
        self._service = policy

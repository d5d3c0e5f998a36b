"""PolicyService: request validation and conversion; use cases live in service/policy.py."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from modelregistry.api import policy_conversions as conv
from modelregistry.api.call_context import call_context
from modelregistry.domain import names
from modelregistry.domain import policy as dp
from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.validation import Violations
from modelregistry.service.policy import PolicyService
from modelregistry.v1 import policy_pb2, policy_service_pb2_grpc
from modelregistry.v1 import policy_service_pb2 as pb

Context: TypeAlias = grpc.aio.ServicerContext


class PolicyServicer(policy_service_pb2_grpc.PolicyServiceServicer):
    def __init__(self, policy: PolicyService) -> None:
        self._service = policy

    async def GetPromotionPolicy(
        self, request: pb.GetPromotionPolicyRequest, context: Context
    ) -> policy_pb2.PromotionPolicy:
        model_id = names.parse_policy_name(request.name, "name")
        return conv.policy_to_proto(await self._service.get(model_id))

    async def UpdatePromotionPolicy(
        self, request: pb.UpdatePromotionPolicyRequest, context: Context
    ) -> policy_pb2.PromotionPolicy:
        message = request.promotion_policy
        prefix = "promotion_policy"
        violations = Violations()
        model_id = ""
        try:
            model_id = names.parse_policy_name(message.name, f"{prefix}.name")
        except InvalidArgument as exc:
            violations.items.extend(exc.violations)
        rules = conv.rules_from_proto(message, prefix, violations)
        dp.check_rules(rules, prefix, violations)
        violations.raise_if_any()
        updated = await self._service.update(call_context(), model_id, rules, message.etag)
        return conv.policy_to_proto(updated)

    async def CreateApproval(
        self, request: pb.CreateApprovalRequest, context: Context
    ) -> policy_pb2.Approval:
        ref = names.parse_version_name(request.parent, "parent")
        violations = Violations()
        dp.check_approval_comment(request.approval.comment, "approval.comment", violations)
        violations.raise_if_any()
        approval = await self._service.create_approval(
            call_context(), ref, request.approval.comment
        )
        return conv.approval_to_proto(approval)

    async def ListApprovals(
        self, request: pb.ListApprovalsRequest, context: Context
    ) -> pb.ListApprovalsResponse:
        ref = names.parse_version_name(request.parent, "parent")
        page = await self._service.list_approvals(ref, request.page_size, request.page_token)
        return pb.ListApprovalsResponse(
            approvals=[conv.approval_to_proto(a) for a in page.items],
            next_page_token=page.next_page_token,
        )

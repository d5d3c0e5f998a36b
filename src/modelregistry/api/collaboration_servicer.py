"""CollaborationService: request validation and conversion; use cases live in service/."""

from __future__ import annotations

from typing import TypeAlias

import grpc
from google.protobuf import empty_pb2

from modelregistry.api import collaboration_conversions as conv
from modelregistry.api.call_context import call_context
from modelregistry.domain import collaboration as co
from modelregistry.domain import names
from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.validation import Violations, check_request_id
from modelregistry.service.collaboration import CollaborationService
from modelregistry.v1 import collaboration_pb2, collaboration_service_pb2_grpc
from modelregistry.v1 import collaboration_service_pb2 as pb

Context: TypeAlias = grpc.aio.ServicerContext


class CollaborationServicer(collaboration_service_pb2_grpc.CollaborationServiceServicer):
    def __init__(self, collaboration: CollaborationService) -> None:
        self._service = collaboration

    # -- comments ---------------------------------------------------------------------------

    async def CreateComment(
        self, request: pb.CreateCommentRequest, context: Context
    ) -> collaboration_pb2.Comment:
        ref = names.parse_version_name(request.parent, "parent")
        violations = Violations()
        co.check_comment_body(request.comment.body, "comment.body", violations)
        _check_request_id(request.request_id, violations)
        parent = None
        if request.comment.parent_comment:
            try:
                parent = names.parse_version_child_name(
                    request.comment.parent_comment, "comment.parent_comment", names.COMMENTS
                )
            except InvalidArgument as exc:
                violations.items.extend(exc.violations)
        violations.raise_if_any()
        comment = await self._service.create_comment(
            call_context(), ref, request.comment.body, parent, request.request_id or None
        )
        return conv.comment_to_proto(comment)

    async def ListComments(
        self, request: pb.ListCommentsRequest, context: Context
    ) -> pb.ListCommentsResponse:
        ref = names.parse_version_name(request.parent, "parent")
        page = await self._service.list_comments(ref, request.page_size, request.page_token)
        return pb.ListCommentsResponse(
            comments=[conv.comment_to_proto(c) for c in page.items],
            next_page_token=page.next_page_token,
        )

    async def DeleteComment(
        self, request: pb.DeleteCommentRequest, context: Context
    ) -> empty_pb2.Empty:
        ref, comment_id = names.parse_version_child_name(request.name, "name", names.COMMENTS)
        await self._service.delete_comment(call_context(), ref, comment_id)
        return empty_pb2.Empty()

    async def UpdateComment(
        self, request: pb.UpdateCommentRequest, context: Context
    ) -> collaboration_pb2.Comment:
        ref, comment_id = names.parse_version_child_name(
            request.comment.name, "comment.name", names.COMMENTS
        )
        violations = Violations()
        co.check_comment_body(request.comment.body, "comment.body", violations)
        violations.raise_if_any()
        comment = await self._service.update_comment(
            call_context(), ref, comment_id, request.comment.body
        )
        return conv.comment_to_proto(comment)

    # -- flags ------------------------------------------------------------------------------

    async def CreateFlag(
        self, request: pb.CreateFlagRequest, context: Context
    ) -> collaboration_pb2.Flag:
        ref = names.parse_version_name(request.parent, "parent")
        violations = Violations()
        severity = conv.SEVERITY_FROM_PROTO.get(request.flag.severity)
        if severity is None:
            violations.add(
                "flag.severity",
                "set a severity: FLAG_SEVERITY_LOW, _MEDIUM, _HIGH or _CRITICAL",
            )
        co.check_flag_reason(request.flag.reason, "flag.reason", violations)
        _check_request_id(request.request_id, violations)
        violations.raise_if_any()
        assert severity is not None
        flag = await self._service.create_flag(
            call_context(), ref, severity, request.flag.reason, request.request_id or None
        )
        return conv.flag_to_proto(flag)

    async def ListFlags(
        self, request: pb.ListFlagsRequest, context: Context
    ) -> pb.ListFlagsResponse:
        ref = names.parse_version_name(request.parent, "parent")
        state = None
        if request.state != collaboration_pb2.FLAG_STATE_UNSPECIFIED:
            state = conv.STATE_FROM_PROTO.get(request.state)
            if state is None:
                raise InvalidArgument.for_field(
                    "state", "use FLAG_STATE_OPEN, FLAG_STATE_RESOLVED, or leave it unset for all"
                )
        page = await self._service.list_flags(ref, state, request.page_size, request.page_token)
        return pb.ListFlagsResponse(
            flags=[conv.flag_to_proto(f) for f in page.items],
            next_page_token=page.next_page_token,
        )

    async def ResolveFlag(
        self, request: pb.ResolveFlagRequest, context: Context
    ) -> collaboration_pb2.Flag:
        ref, flag_id = names.parse_version_child_name(request.name, "name", names.FLAGS)
        violations = Violations()
        co.check_resolution(request.resolution, "resolution", violations)
        violations.raise_if_any()
        flag = await self._service.resolve_flag(call_context(), ref, flag_id, request.resolution)
        return conv.flag_to_proto(flag)

    # -- deployments ------------------------------------------------------------------------

    async def CreateDeployment(
        self, request: pb.CreateDeploymentRequest, context: Context
    ) -> collaboration_pb2.Deployment:
        ref = names.parse_version_name(request.parent, "parent")
        deployment = request.deployment
        violations = Violations()
        co.check_environment(deployment.environment, "deployment.environment", violations)
        co.check_endpoint(deployment.endpoint, "deployment.endpoint", violations)
        status = co.DeploymentStatus.PENDING
        if deployment.status != collaboration_pb2.DEPLOYMENT_STATUS_UNSPECIFIED:
            known = conv.STATUS_FROM_PROTO.get(deployment.status)
            if known is None:
                violations.add("deployment.status", _STATUS_RULE)
            else:
                status = known
        _check_request_id(request.request_id, violations)
        violations.raise_if_any()
        created = await self._service.create_deployment(
            call_context(), ref, deployment.environment, deployment.endpoint, status,
            request.request_id or None,
        )  # fmt: skip
        return conv.deployment_to_proto(created)

    async def ListDeployments(
        self, request: pb.ListDeploymentsRequest, context: Context
    ) -> pb.ListDeploymentsResponse:
        ref = names.parse_version_name(request.parent, "parent")
        page = await self._service.list_deployments(ref, request.page_size, request.page_token)
        return pb.ListDeploymentsResponse(
            deployments=[conv.deployment_to_proto(d) for d in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateDeploymentStatus(
        self, request: pb.UpdateDeploymentStatusRequest, context: Context
    ) -> collaboration_pb2.Deployment:
        ref, deployment_id = names.parse_version_child_name(request.name, "name", names.DEPLOYMENTS)
        status = conv.STATUS_FROM_PROTO.get(request.status)
        if status is None:
            raise InvalidArgument.for_field("status", _STATUS_RULE)
        updated = await self._service.update_deployment_status(
            call_context(), ref, deployment_id, status
        )
        return conv.deployment_to_proto(updated)


_STATUS_RULE = "set a status: DEPLOYMENT_STATUS_PENDING, _ACTIVE, _FAILED or _RETIRED"


def _check_request_id(request_id: str, violations: Violations) -> None:
    if request_id:
        check_request_id(request_id, "request_id", violations)

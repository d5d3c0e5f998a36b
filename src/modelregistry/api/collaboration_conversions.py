"""Protobuf <-> domain conversion for comments, flags and deployments. Mechanical."""

from __future__ import annotations

from modelregistry.api.conversions import timestamp
from modelregistry.domain import collaboration as co
from modelregistry.v1 import collaboration_pb2 as pb

_SEVERITY_TO_PROTO = {
    co.FlagSeverity.LOW: pb.FLAG_SEVERITY_LOW,
    co.FlagSeverity.MEDIUM: pb.FLAG_SEVERITY_MEDIUM,
    co.FlagSeverity.HIGH: pb.FLAG_SEVERITY_HIGH,
    co.FlagSeverity.CRITICAL: pb.FLAG_SEVERITY_CRITICAL,
}
SEVERITY_FROM_PROTO: dict[int, co.FlagSeverity] = {v: k for k, v in _SEVERITY_TO_PROTO.items()}
_STATE_TO_PROTO = {
    co.FlagState.OPEN: pb.FLAG_STATE_OPEN,
    co.FlagState.RESOLVED: pb.FLAG_STATE_RESOLVED,
}
STATE_FROM_PROTO: dict[int, co.FlagState] = {v: k for k, v in _STATE_TO_PROTO.items()}
_STATUS_TO_PROTO = {
    co.DeploymentStatus.PENDING: pb.DEPLOYMENT_STATUS_PENDING,
    co.DeploymentStatus.ACTIVE: pb.DEPLOYMENT_STATUS_ACTIVE,
    co.DeploymentStatus.FAILED: pb.DEPLOYMENT_STATUS_FAILED,
    co.DeploymentStatus.RETIRED: pb.DEPLOYMENT_STATUS_RETIRED,
}
STATUS_FROM_PROTO: dict[int, co.DeploymentStatus] = {v: k for k, v in _STATUS_TO_PROTO.items()}


def comment_to_proto(comment: co.Comment) -> pb.Comment:
    return pb.Comment(
        name=comment.name,
        author=comment.author,
        body=comment.body,
        parent_comment=comment.parent_name,
        create_time=timestamp(comment.create_time),
        update_time=timestamp(comment.update_time) if comment.update_time else None,
    )


def flag_to_proto(flag: co.Flag) -> pb.Flag:
    message = pb.Flag(
        name=flag.name,
        state=_STATE_TO_PROTO[flag.state],
        severity=_SEVERITY_TO_PROTO[flag.severity],
        reason=flag.reason,
        raised_by=flag.raised_by,
        create_time=timestamp(flag.create_time),
        resolved_by=flag.resolved_by,
        resolution=flag.resolution,
    )
    if flag.resolve_time is not None:
        message.resolve_time.CopyFrom(timestamp(flag.resolve_time))
    return message


def deployment_to_proto(deployment: co.Deployment) -> pb.Deployment:
    return pb.Deployment(
        name=deployment.name,
        environment=deployment.environment,
        endpoint=deployment.endpoint,
        status=_STATUS_TO_PROTO[deployment.status],
        deployed_by=deployment.deployed_by,
        create_time=timestamp(deployment.create_time),
        update_time=timestamp(deployment.update_time),
    )

"""Protobuf <-> domain conversion for promotion policies and approvals. Mechanical."""

from __future__ import annotations

from modelregistry.api.conversions import timestamp
from modelregistry.domain import policy as dp
from modelregistry.domain.validation import Violations
from modelregistry.v1 import policy_pb2 as pb

_COMPARATOR_TO_PROTO = {
    dp.Comparator.GREATER_OR_EQUAL: pb.COMPARATOR_GREATER_OR_EQUAL,
    dp.Comparator.GREATER: pb.COMPARATOR_GREATER,
    dp.Comparator.LESS_OR_EQUAL: pb.COMPARATOR_LESS_OR_EQUAL,
    dp.Comparator.LESS: pb.COMPARATOR_LESS,
}
COMPARATOR_FROM_PROTO: dict[int, dp.Comparator] = {v: k for k, v in _COMPARATOR_TO_PROTO.items()}


def rules_from_proto(message: pb.PromotionPolicy, prefix: str, out: Violations) -> dp.PolicyRules:
    """The rules of `message`; a comparator left unset is reported into `out`."""
    requirements = []
    for index, item in enumerate(message.required_metrics):
        comparator = COMPARATOR_FROM_PROTO.get(item.comparator)
        if comparator is None:
            dp.unspecified_comparator(f"{prefix}.required_metrics[{index}].comparator", out)
            # A stand-in keeps the indexes of the other checks right; the request is refused.
            comparator = dp.Comparator.GREATER_OR_EQUAL
        requirements.append(dp.MetricRequirement(item.metric, comparator, item.threshold))
    return dp.PolicyRules(
        required_metrics=tuple(requirements),
        required_approvals=message.required_approvals,
        allow_open_flags=message.allow_open_flags,
        protected_aliases=tuple(message.protected_aliases),
    )


def policy_to_proto(policy: dp.PromotionPolicy) -> pb.PromotionPolicy:
    rules = policy.rules
    message = pb.PromotionPolicy(
        name=policy.name,
        required_metrics=[
            pb.MetricRequirement(
                metric=r.metric,
                comparator=_COMPARATOR_TO_PROTO[r.comparator],
                threshold=r.threshold,
            )
            for r in rules.required_metrics
        ],
        required_approvals=rules.required_approvals,
        allow_open_flags=rules.allow_open_flags,
        protected_aliases=rules.protected_aliases,
        updated_by=policy.updated_by,
        etag=policy.etag,
    )
    if policy.update_time is not None:
        message.update_time.CopyFrom(timestamp(policy.update_time))
    return message


def approval_to_proto(approval: dp.Approval) -> pb.Approval:
    return pb.Approval(
        name=approval.name,
        approver=approval.approver,
        comment=approval.comment,
        create_time=timestamp(approval.create_time),
    )
